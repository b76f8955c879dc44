"""The chunked-upload cases of the benchmark (issue 13): one 256 MiB blob in 3 MiB PATCHes.

What it owns
    The client of these cases: a registry client's chunked upload written with http.client
    (POST, then PATCH after PATCH of 3 MiB each with its Content-Range, then a PUT ?digest=
    with no body), each target's requests on one keep-alive connection of its own; its checks
    (202 with the Range it expects after every PATCH, 201 with Docker-Content-Digest on the
    PUT, then a HEAD of the blob: 200, Content-Length and Docker-Content-Digest); the per-request
    latencies; the Redis-side numbers read with INFO; and the report section (chunked_report.py
    writes it). Three variants, measured alternately in one run against one emulator:

      chunked-256M           one proxy, sessions in the process (the baseline)
      chunked-256M-redis     one proxy with [sessions] redis_url (ECR_PROXY_REDIS_URL)
      chunked-256M-replicas  three proxies sharing that Redis; each request of the upload goes
                             to the next proxy in turn (POST on 1, PATCH on 2, 3, 1, ...)

    The redis-server itself (a free loopback port, --save '' --appendonly no) is started and
    stopped by bench.py with the other servers, from redis_cmd() and redis_ready() here.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import socket
import sys
import time

MiB = 1 << 20
CASE, CASE_REDIS, CASE_REPLICAS = "chunked-256M", "chunked-256M-redis", "chunked-256M-replicas"
CASES = (CASE, CASE_REDIS, CASE_REPLICAS)
REDIS = "redis"
PROXY_REDIS = "ecr-proxy+redis"  # the -redis variant's proxy, and replica 1
REPLICAS = (PROXY_REDIS, "ecr-proxy+redis-2", "ecr-proxy+redis-3")
SIZE = 256 * MiB
CHUNK = 3 * MiB
PART = 10 * MiB  # the partSize the emulator announces, as ECR does: where the proxy ships parts
SEED = 13
TARGET = 1.3  # Redis sessions may take at most this many times the in-process time
TIMEOUT = 300  # seconds, any one socket operation of one request
PROGRESS_EVERY = 64 * MiB


class Failed(Exception):
    """A request got an answer other than the one expected (fields as bench.CaseError's)."""

    def __init__(self, cmd: str, how: str, output: str = ""):
        self.cmd, self.how, self.output = cmd, how, output
        super().__init__(f"{cmd}: {how}")


def servers_for(cases) -> tuple[bool, tuple[str, ...]]:
    """Whether the selected cases need Redis, and which Redis-backed proxies they need."""
    if CASE_REPLICAS in cases:
        return True, REPLICAS
    if CASE_REDIS in cases:
        return True, (PROXY_REDIS,)
    return False, ()


def proxies(case: str, plain: str) -> tuple[str, ...]:
    """The proxies a variant's upload goes through (`plain`: bench.py's in-process proxy)."""
    return {CASE: (plain,), CASE_REDIS: (PROXY_REDIS,), CASE_REPLICAS: REPLICAS}[case]


# Redis -------------------------------------------------------------------------------------


def redis_cmd(port: int) -> list[str]:
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no"]


def _redis(port: int, command: bytes) -> bytes:
    """One inline command's raw reply (enough for PING and INFO)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command + b"\r\n")
        buf = b""
        while True:
            part = s.recv(65536)
            if not part:
                return buf
            buf += part
            if buf.startswith(b"+") or buf.startswith(b"-"):
                return buf
            if buf.startswith(b"$"):
                head, _, rest = buf.partition(b"\r\n")
                if len(rest) >= int(head[1:]) + 2:
                    return rest[:int(head[1:])]


def redis_ready(port: int) -> bool:
    try:
        return _redis(port, b"PING").startswith(b"+PONG")
    except OSError:
        return False


def redis_info(port: int) -> dict[str, float]:
    """INFO's numeric fields (used_cpu_sys, total_net_input_bytes, ...)."""
    out = {}
    for line in _redis(port, b"INFO").decode(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def redis_delta(before: dict, after: dict) -> dict[str, float]:
    keys = ("used_cpu_sys", "used_cpu_user", "total_net_input_bytes", "total_net_output_bytes",
            "total_commands_processed")
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys}


# The blob and the client ------------------------------------------------------------------

_blob: tuple[bytes, str] | None = None


def blob() -> tuple[bytes, str]:
    """256 MiB of seeded random bytes and their digest (made once, kept in memory)."""
    global _blob
    if _blob is None:
        rng = random.Random(SEED)  # randbytes takes at most 2**31 bits at once
        data = b"".join(rng.randbytes(min(4 * MiB, SIZE - i)) for i in range(0, SIZE, 4 * MiB))
        _blob = data, "sha256:" + hashlib.sha256(data).hexdigest()
    return _blob


class Client:
    """The targets in turn, one keep-alive connection each, and the latency of every request."""

    def __init__(self, hosts: list[str]):
        self.conns = [http.client.HTTPConnection(h, timeout=TIMEOUT) for h in hosts]
        self.hosts = hosts
        self.next = 0
        self.latency: list[tuple[str, int, float]] = []  # method, target index, seconds

    def request(self, method: str, path: str, body=None, headers=None, want=(200,)):
        i = self.next
        self.next = (i + 1) % len(self.conns)
        conn = self.conns[i]
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            text = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise Failed(f"{method} http://{self.hosts[i]}{path}", f"no answer: {e!r}") from None
        self.latency.append((method, i, time.monotonic() - t0))
        if resp.status not in want:
            raise Failed(f"{method} http://{self.hosts[i]}{path}",
                         f"HTTP {resp.status}, wanted {' or '.join(map(str, want))}",
                         f"{dict(resp.getheaders())}\n{text.decode(errors='replace')}")
        return resp

    def close(self) -> None:
        for c in self.conns:
            c.close()


def _path(location: str | None, what: str) -> str:
    if not location:
        raise Failed(what, "no Location header")
    if "://" in location:  # absolute: keep the path, the next request may go elsewhere
        location = "/" + location.split("://", 1)[1].partition("/")[2]
    return location


def upload(hosts: list[str], repo: str, label: str) -> Client:
    """The chunked upload of blob() into repo, each request to the next of hosts."""
    data, digest = blob()
    view = memoryview(data)
    client = Client(hosts)
    t0 = time.monotonic()
    try:
        r = client.request("POST", f"/v2/{repo}/blobs/uploads/", b"",
                           {"Content-Length": "0"}, want=(202,))
        loc = _path(r.getheader("Location"), "POST")
        sent = 0
        while sent < len(data):
            n = min(CHUNK, len(data) - sent)
            r = client.request("PATCH", loc, view[sent:sent + n], {
                "Content-Type": "application/octet-stream", "Content-Length": str(n),
                "Content-Range": f"{sent}-{sent + n - 1}"}, want=(202,))
            sent += n
            if r.getheader("Range") != f"0-{sent - 1}":
                raise Failed(f"PATCH {loc}", f"Range {r.getheader('Range')!r} after "
                             f"{sent} bytes, wanted '0-{sent - 1}'")
            loc = _path(r.getheader("Location"), "PATCH")
            if sent % PROGRESS_EVERY == 0:
                print(f"  {label}: {sent // MiB}/{len(data) // MiB} MiB in "
                      f"{time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
        sep = "&" if "?" in loc else "?"
        r = client.request("PUT", f"{loc}{sep}digest={digest}", b"", {"Content-Length": "0"},
                           want=(201,))
        if r.getheader("Docker-Content-Digest") != digest:
            raise Failed(f"PUT {loc}", f"Docker-Content-Digest "
                         f"{r.getheader('Docker-Content-Digest')!r}, wanted {digest}")
    finally:
        client.close()
    return client


def verify(host: str, repo: str) -> None:
    """HEAD of the uploaded blob: 200, its length and its digest."""
    data, digest = blob()
    client = Client([host])
    try:
        r = client.request("HEAD", f"/v2/{repo}/blobs/{digest}")
    finally:
        client.close()
    length, got = r.getheader("Content-Length"), r.getheader("Docker-Content-Digest")
    if length != str(len(data)) or got != digest:
        raise Failed(f"HEAD http://{host}/v2/{repo}/blobs/{digest}",
                     f"Content-Length {length}, Docker-Content-Digest {got}; wanted "
                     f"{len(data)} and {digest}")


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2] if xs else 0.0


def latency_stats(client: Client) -> dict[str, float]:
    """PATCH latency in ms: median, p90 and max, and the medians of the PATCHes whose bytes
    complete a PART (the proxy ships a part to ECR during them) and of the others; the POST
    and PUT in ms."""
    patch = [s for m, _, s in client.latency if m == "PATCH"]
    if not patch:
        return {}
    ships, rest, sent = [], [], 0
    for s in patch:
        n = min(CHUNK, SIZE - sent)
        (ships if (sent + n) // PART > sent // PART else rest).append(s)
        sent += n
    patch.sort()
    out = {"patch_p50": _median(patch) * 1e3,
           "patch_p90": patch[min(len(patch) - 1, int(len(patch) * 0.9))] * 1e3,
           "patch_max": patch[-1] * 1e3, "patches": len(patch),
           "patch_part": _median(ships) * 1e3, "patch_nopart": _median(rest) * 1e3}
    for method in ("POST", "PUT"):
        out[method.lower()] = sum(s for m, _, s in client.latency if m == method) * 1e3
    return out
