#!/usr/bin/env python3
"""Benchmark: ecr-proxy (backed by the ECR emulator) against the CNCF distribution registry.

What it measures
    The same client workloads against two registries on loopback, alternately (distribution,
    ecr-proxy, distribution, ecr-proxy, ...) for --rounds rounds:

      push-512M               skopeo copy of one 512 MiB layer image (OCI layout -> registry)
      pull-512M               skopeo copy of it back into a fresh OCI layout
      push-20layers           skopeo copy of 20 layers of 100 KiB .. 32 MiB (~174 MiB)
      pull-20layers           skopeo copy of it back
      docker-push-256M        docker push of a FROM scratch image of 256 MiB (4 COPY layers)
      push-16x64M-concurrent  16 skopeo copies of distinct 64 MiB images at once, wall time
      manifest-get            hey -n N -c16: N GETs of /v2/<repo>/manifests/<digest>
      head-blob               hey -n N -c16: N HEADs of /v2/<repo>/blobs/<digest>
      manifest-get-auth       manifest-get against a second ecr-proxy with [auth] on, a bearer
                              token on every request, against ecr-proxy with auth off (not
                              distribution): auth.py
      pull-512M-cached        pull-512M from a third ecr-proxy with [cache], its cache filled
                              by an untimed pull first, against distribution: cache.py
      chunked-256M            a chunked upload (3 MiB PATCHes, then PUT ?digest=) of a 256 MiB
                              blob through ecr-proxy, sessions in the process: chunked.py
      chunked-256M-redis      the same through an ecr-proxy with [sessions] on a redis-server
                              the bench starts on loopback
      chunked-256M-replicas   the same through three such proxies sharing that Redis, each
                              request to the next proxy in turn (the chunked cases compare with
                              each other, not with distribution; their order alternates by round)

    Transfer cases report wall time of the client command; rate cases send a fixed number of
    requests (--requests, the same for both registries) and report requests/s and p99 latency as
    hey prints them. (hey, not wrk: wrk only runs for a fixed duration, and its parser waits for
    the body a HEAD response's Content-Length announces.)

    For each server process alone (distribution; ecr-proxy; the emulator, which stands in for
    AWS and is not part of the proxy's cost) it reads, around the measured command only:
    CPU seconds = delta of utime+stime from /proc/PID/stat (in SC_CLK_TCK ticks), also per GiB
    moved for transfer cases, and peak RSS = VmHWM from /proc/PID/status. VmHWM is a
    process-lifetime peak, so before each measured command it is reset by writing 5 to
    /proc/PID/clear_refs (Linux >= 4.0): the figure is that run's own peak. If the reset is
    refused, the figure is the lifetime peak so far (said in the report). The lifetime peak of
    each process is reported at the end as well.

How
    Every server gets a free 127.0.0.1 port and its own temp dir: `docker-registry serve`
    with a generated config, `ecr-proxy emulator --data DIR`, and `ecr-proxy serve` pointed at
    the emulator with AWS_ENDPOINT_URL_ECR. Test images are generated once as OCI layouts
    (uncompressed tar layers of seeded random bytes, hashed while streamed to disk). Each round
    pushes into fresh repository names, and every skopeo gets a private blob-info cache, so no
    push can turn into a cross-repository mount of a blob seen in an earlier round; for the same
    reason the docker image is rebuilt with new data each round (docker remembers where it
    pushed a layer and mounts it from there). Client tools run on the same 2 cores as the
    servers, so absolute numbers include their cost; the ratio is what to read.

Usage
    tests/bench/run [--rounds N] [--cases a,b] [--out FILE] [--keep] [--requests N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import auth
import cache
import chunked
import chunked_report

ROOT = Path(__file__).resolve().parents[2]
# Where `cargo build --release` put the binary (CARGO_TARGET_DIR, as cargo reads it).
BIN = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "ecr-proxy"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")
CHUNK = 4 * MiB

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

# Image (b): 20 layers from 100 KiB to 32 MiB, several around the 10 MiB ECR part size.
TWENTY_LAYER_KIB = [100, 160, 256, 400, 640, 1024, 1536, 2048, 3072, 4096,
                    5120, 6144, 8192, 10240, 12288, 16384, 20480, 24576, 28672, 32768]
DOCKER_FILES_MIB = [128, 64, 48, 16]  # 256 MiB, one layer per COPY

D, P = "distribution", "ecr-proxy"
COPY_TIMEOUT = 900  # seconds, any single client command
READY_TRIES = 200   # x 0.1 s

DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CaseError(Exception):
    """A client command failed: what was run, how it ended, and what it printed."""

    def __init__(self, cmd, how: str, output: str = ""):
        self.cmd = cmd if isinstance(cmd, str) else " ".join(map(str, cmd))
        self.how = how
        self.output = output or ""
        super().__init__(f"{self.cmd}: {how}")


def run_cmd(cmd, *, timeout=COPY_TIMEOUT, env=None) -> str:
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, env=env)
    except FileNotFoundError as e:
        raise CaseError(cmd, f"not installed ({e})") from None
    except subprocess.TimeoutExpired as e:
        out = e.output.decode(errors="replace") if isinstance(e.output, bytes) else (e.output or "")
        raise CaseError(cmd, f"timed out after {timeout} s", out) from None
    if p.returncode != 0:
        raise CaseError(cmd, f"exit {p.returncode}", p.stdout)
    return p.stdout


# --------------------------------------------------------------------------------------------
# Servers


class Server:
    """One server process on a loopback port, with its log file and /proc readings."""

    def __init__(self, name: str, cmd: list[str], port: int, workdir: Path, env=None,
                 registry=True, creds: str | None = None, ready=None):
        self.name, self.cmd, self.port, self.workdir = name, cmd, port, workdir
        self.env = env
        self.creds = creds  # user:password for skopeo, when the registry wants them
        self.registry = registry  # a registry must answer GET /v2/ with 200
        self.ready = ready  # or, for what is no HTTP server, ready(port) -> bool
        self.logfile = workdir / "server.log"
        self.proc: subprocess.Popen | None = None
        self.lifetime_peak = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.logfile, "wb") as out:
            # Own session: a Ctrl-C reaches only this script, which then stops the servers.
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)

    def wait_ready(self) -> None:
        url = f"http://{self.host}/v2/"
        for _ in range(READY_TRIES):
            self.check_alive()
            if self.ready is not None:
                if self.ready(self.port):
                    return
                time.sleep(0.1)
                continue
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200 or not self.registry:
                        return
            except urllib.error.HTTPError as e:
                if not self.registry or e.code == 401:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer GET {url}:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"{self.name} is not running (exit {code}):\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()  # fields from 3 (state) on
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15
        return (utime + stime) / CLK_TCK

    def peak_rss(self) -> int:
        """VmHWM in bytes: the peak since start or since the last reset_peak()."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                value = int(line.split()[1]) * KiB
                self.lifetime_peak = max(self.lifetime_peak, value)
                return value
        return 0

    def reset_peak(self) -> bool:
        self.peak_rss()  # keep the lifetime figure before it is reset
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) or "(empty log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.peak_rss()
        except OSError:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_servers(tmp: Path, with_auth: bool = False, with_cache: bool = False,
                  redis_proxies: tuple[str, ...] = ()) -> dict[str, Server]:
    """distribution, the emulator and ecr-proxy (and, with_auth, a second ecr-proxy with
    [auth] on; with_cache, one with [cache]; with redis_proxies, a redis-server and those
    proxies with [sessions] on it), each ready; returns them by name."""
    servers: dict[str, Server] = {}
    try:
        ddir = tmp / "distribution"
        (ddir / "data").mkdir(parents=True)
        dport = free_port()
        (ddir / "config.yml").write_text(
            DISTRIBUTION_CONFIG.format(root=ddir / "data", port=dport))
        servers[D] = Server(D, ["docker-registry", "serve", str(ddir / "config.yml")], dport, ddir)

        edir = tmp / "emulator"
        (edir / "data").mkdir(parents=True)
        eport = free_port()
        servers["emulator"] = Server(
            "emulator", [str(BIN), "emulator", "--data", str(edir / "data"),
                         "--listen", f"127.0.0.1:{eport}"],
            eport, edir, env=dict(os.environ, RUST_LOG="warn"), registry=False)

        pdir = tmp / "ecr-proxy"
        pdir.mkdir()
        pport = free_port()
        penv = dict(os.environ,
                    AWS_ENDPOINT_URL_ECR=f"http://127.0.0.1:{eport}",
                    AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                    AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                    ECR_PROXY_CREATE_REPOSITORIES="true", ECR_PROXY_BLOB_MODE="stream",
                    RUST_LOG="warn")
        servers[P] = Server(P, [str(BIN), "serve", "--listen", f"127.0.0.1:{pport}"],
                            pport, pdir, env=penv)
        if with_auth:
            adir = tmp / "ecr-proxy-auth"
            adir.mkdir()
            aport = free_port()
            servers[auth.NAME] = Server(
                auth.NAME, [str(BIN), "serve", "--config", str(auth.write_config(adir)),
                            "--listen", f"127.0.0.1:{aport}"],
                aport, adir, env=penv, creds=f"{auth.USER}:{auth.PASSWORD}")
        if with_cache:
            cdir = tmp / "ecr-proxy-cache"
            cdir.mkdir()
            cport = free_port()
            servers[cache.NAME] = Server(
                cache.NAME, [str(BIN), "serve", "--config", str(cache.write_config(cdir)),
                             "--listen", f"127.0.0.1:{cport}"],
                cport, cdir, env=penv)
        if redis_proxies:
            rdir = tmp / chunked.REDIS
            rdir.mkdir()
            rport = free_port()
            servers[chunked.REDIS] = Server(chunked.REDIS, chunked.redis_cmd(rport), rport,
                                            rdir, ready=chunked.redis_ready)
            renv = dict(penv, ECR_PROXY_REDIS_URL=f"redis://127.0.0.1:{rport}")
        for name in redis_proxies:
            sdir = tmp / name
            sdir.mkdir()
            sport = free_port()
            servers[name] = Server(name, [str(BIN), "serve", "--listen", f"127.0.0.1:{sport}"],
                                   sport, sdir, env=renv)

        for name in servers:
            servers[name].start()
            servers[name].wait_ready()
            log(f"started {name} on {servers[name].host} (pid {servers[name].proc.pid})")
        return servers
    except BaseException:
        for s in servers.values():
            s.stop()
        raise


# --------------------------------------------------------------------------------------------
# Test images


@dataclass
class OciImage:
    """An image in an OCI layout on disk, under one tag."""

    path: Path
    tag: str
    manifest_digest: str
    total_bytes: int  # manifest + config + layers
    layers: list[tuple[str, int]]

    @property
    def ref(self) -> str:
        return f"oci:{self.path}:{self.tag}"


class _HashingFile:
    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b: bytes) -> None:
        self.f.write(b)
        self.h.update(b)
        self.n += len(b)


def random_bytes(rng: random.Random, size: int):
    """Incompressible bytes from a seeded generator, CHUNK at a time."""
    while size > 0:
        n = min(CHUNK, size)
        yield rng.randbytes(n)
        size -= n


def write_tar_layer(blobs: Path, seed: int, size: int) -> tuple[str, int]:
    """A tar of one file of `size` random bytes, streamed to blobs/ while hashed."""
    tmp = blobs / f".tmp-{seed}"
    with open(tmp, "wb") as f:
        out = _HashingFile(f)
        info = tarfile.TarInfo(f"data-{seed}.bin")
        info.size, info.mode, info.mtime = size, 0o644, 0
        out.write(info.tobuf(format=tarfile.USTAR_FORMAT))
        for chunk in random_bytes(random.Random(seed), size):
            out.write(chunk)
        out.write(b"\0" * (-size % 512) + b"\0" * 1024)  # padding, end-of-archive
    os.replace(tmp, blobs / out.h.hexdigest())
    return f"sha256:{out.h.hexdigest()}", out.n


def write_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    hexd = hashlib.sha256(data).hexdigest()
    (blobs / hexd).write_bytes(data)
    return f"sha256:{hexd}", len(data)


def write_oci_image(path: Path, seeds_sizes: list[tuple[int, int]], tag="v1") -> OciImage:
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers = [write_tar_layer(blobs, seed, size) for seed, size in seeds_sizes]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
    }, separators=(",", ":")).encode()
    cdigest, csize = write_blob(blobs, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cdigest, "size": csize},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": n} for d, n in layers],
    }, separators=(",", ":")).encode()
    mdigest, msize = write_blob(blobs, manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (path / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": mdigest, "size": msize,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }))
    total = msize + csize + sum(n for _, n in layers)
    return OciImage(path, tag, mdigest, total, layers)


def generate_images(root: Path) -> dict[str, OciImage]:
    t0 = time.monotonic()
    images = {"512M": write_oci_image(root / "big", [(1, 512 * MiB)])}
    images["20layers"] = write_oci_image(
        root / "twenty", [(100 + i, kib * KiB) for i, kib in enumerate(TWENTY_LAYER_KIB)])
    for i in range(16):
        images[f"64M-{i}"] = write_oci_image(root / f"c16-{i:02}", [(1000 + i, 64 * MiB)])
    total = sum(im.total_bytes for im in images.values())
    log(f"generated {len(images)} OCI images, {total / GiB:.2f} GiB, in "
        f"{time.monotonic() - t0:.1f} s under {root}")
    return images


# --------------------------------------------------------------------------------------------
# Measurement


class Meter:
    """Wall time, per-server CPU delta and per-server peak RSS around a `with` block."""

    def __init__(self, servers: dict[str, Server]):
        self.servers = servers
        self.seconds = 0.0
        self.cpu: dict[str, float] = {}
        self.peak: dict[str, int] = {}
        self.reset_ok = True

    def __enter__(self):
        for s in self.servers.values():
            s.check_alive()
            self.reset_ok &= s.reset_peak()
        self._cpu0 = {n: s.cpu_seconds() for n, s in self.servers.items()}
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self._t0
        for n, s in self.servers.items():
            try:
                self.cpu[n] = s.cpu_seconds() - self._cpu0[n]
                self.peak[n] = s.peak_rss()
            except OSError:  # the process is gone; the run loop reports it
                pass
        return False


@dataclass
class Run:
    case: str
    target: str
    round: int
    seconds: float | None = None
    gib: float | None = None          # data moved by the client (transfer cases)
    rps: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    error: CaseError | chunked.Failed | None = None
    extra: dict[str, float] = field(default_factory=dict)  # chunked: latencies, Redis counters


class Bench:
    """Servers, images, scratch space and the repositories pushed so far."""

    def __init__(self, tmp: Path, servers: dict[str, Server], images: dict[str, OciImage],
                 requests: int):
        self.tmp, self.servers, self.images = tmp, servers, images
        self.requests = requests
        self.pushed: dict[tuple[str, str], str] = {}  # (server, image key) -> repository
        self.docker_images: dict[int, str] = {}       # round -> local image tag
        self.reset_ok = True
        self._n = 0

    def scratch(self, prefix: str) -> Path:
        self._n += 1
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-{self._n}-", dir=self.tmp / "scratch"))

    # skopeo -----------------------------------------------------------------------------

    def skopeo_cmd(self, src: str, dst: str, creds: str | None = None) -> tuple[list[str], dict]:
        # A private blob-info cache for each copy: skopeo (containers/image) otherwise remembers
        # where it pushed a blob and mounts it from that repository instead of uploading.
        # Running as root it keeps that cache in /var/lib/containers/cache whatever HOME is;
        # _CONTAINERS_ROOTLESS_UID makes it use $XDG_DATA_HOME/containers/cache instead.
        info_cache = self.scratch("skopeo-cache")
        env = dict(os.environ, XDG_DATA_HOME=str(info_cache), _CONTAINERS_ROOTLESS_UID="65534")
        cmd = ["skopeo", "copy", "--quiet", "--preserve-digests"]
        if src.startswith("docker://"):
            cmd.append("--src-tls-verify=false")
            if creds:
                cmd.append(f"--src-creds={creds}")
        if dst.startswith("docker://"):
            cmd.append("--dest-tls-verify=false")
            if creds:
                cmd.append(f"--dest-creds={creds}")
        return cmd + [src, dst], env

    def skopeo(self, src: str, dst: str, creds: str | None = None) -> None:
        cmd, env = self.skopeo_cmd(src, dst, creds)
        run_cmd(cmd, env=env)

    def push_image(self, srv: Server, key: str, repo: str, meter: Meter | None = None) -> None:
        image = self.images[key]
        dst = f"docker://{srv.host}/{repo}:{image.tag}"
        if meter is None:
            self.skopeo(image.ref, dst, srv.creds)
        else:
            with meter:
                self.skopeo(image.ref, dst, srv.creds)
        self.pushed[(srv.name, key)] = repo

    def ensure_pushed(self, srv: Server, key: str, rnd: int) -> str:
        """The latest repository holding image `key` on srv; pushed there, untimed, if none."""
        if (srv.name, key) not in self.pushed:
            repo = f"bench/setup-{key.lower()}-r{rnd}"
            log(f"  (setup: pushing {key} to {srv.name}/{repo}, not timed)")
            self.push_image(srv, key, repo)
        return self.pushed[(srv.name, key)]

    # docker -----------------------------------------------------------------------------

    def docker_image(self, rnd: int) -> str:
        """A 256 MiB FROM scratch image with data new to this round (built once per round)."""
        if rnd in self.docker_images:
            return self.docker_images[rnd]
        ctx = self.scratch("docker-ctx")
        dockerfile = ["FROM scratch"]
        for i, mib in enumerate(DOCKER_FILES_MIB):
            with open(ctx / f"f{i}", "wb") as f:
                for chunk in random_bytes(random.Random(10_000 * rnd + i), mib * MiB):
                    f.write(chunk)
            dockerfile.append(f"COPY f{i} /f{i}")
        (ctx / "Dockerfile").write_text("\n".join(dockerfile) + "\n")
        tag = f"ecr-proxy-bench:r{rnd}-{os.getpid()}"
        t0 = time.monotonic()
        run_cmd(["docker", "build", "-q", "-t", tag, str(ctx)],
                env=dict(os.environ, DOCKER_BUILDKIT="0"))
        log(f"  (built docker image {tag} in {time.monotonic() - t0:.1f} s, not timed)")
        shutil.rmtree(ctx, ignore_errors=True)
        self.docker_images[rnd] = tag
        return tag

    def remove_docker_images(self) -> None:
        for tag in self.docker_images.values():
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
        self.docker_images.clear()

    def manifest_bytes(self, srv: Server, repo: str, ref: str) -> int:
        """Bytes of an image as stored: manifest + config + layers, from the registry."""
        url = f"http://{srv.host}/v2/{repo}/manifests/{ref}"
        req = urllib.request.Request(url, headers={"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
        except OSError as e:
            raise CaseError(f"GET {url}", str(e)) from None
        m = json.loads(body)
        return len(body) + m["config"]["size"] + sum(layer["size"] for layer in m["layers"])

    # request rates --------------------------------------------------------------------

    def check_once(self, url: str, method: str, accept: str | None,
                   headers: dict[str, str] | None = None) -> None:
        """One request first: a load test of error responses would measure nothing useful."""
        headers = dict(headers or {})
        if accept:
            headers["Accept"] = accept
        req = urllib.request.Request(url, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
        except urllib.error.HTTPError as e:
            raise CaseError(f"{method} {url}", f"HTTP {e.code}", e.read().decode(errors="replace"))
        except OSError as e:
            raise CaseError(f"{method} {url}", str(e)) from None

    def hey(self, run: Run, meter: Meter, url: str, method: str, accept: str | None,
            headers: dict[str, str] | None = None) -> None:
        """A fixed number of requests from 16 workers: hey -n N -c 16."""
        self.check_once(url, method, accept, headers)
        cmd = ["hey", "-n", str(self.requests), "-c", "16", "-t", "5", "-m", method]
        if accept:
            cmd += ["-H", f"Accept: {accept}"]
        for name, value in (headers or {}).items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(url)
        with meter:
            out = run_cmd(cmd, timeout=600)
        parse_hey(out, run, cmd)
        if run.requests != self.requests:
            raise CaseError(cmd, f"hey did {run.requests} requests, not {self.requests}", out)




def parse_hey(out: str, run: Run, cmd) -> None:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99% in ([\d.]+) secs", out)
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    if not (rps and p99 and codes):
        raise CaseError(cmd, "could not parse hey's output", out)
    if set(codes) != {"200"} or "Error distribution" in out:
        raise CaseError(cmd, "hey saw failed requests", out)
    run.rps = float(rps.group(1))
    run.p99_ms = float(p99.group(1)) * 1e3
    run.requests = int(codes["200"])


# --------------------------------------------------------------------------------------------
# Cases: each fills `run` and does its own untimed setup outside `meter`.


def case_push(key: str, slug: str):
    def push(b: Bench, srv: Server, rnd: int, run: Run, meter: Meter) -> None:
        b.push_image(srv, key, f"bench/{slug}-r{rnd}", meter)
        run.seconds, run.gib = meter.seconds, b.images[key].total_bytes / GiB
    return push


def case_pull(key: str):
    def pull(b: Bench, srv: Server, rnd: int, run: Run, meter: Meter) -> None:
        image = b.images[key]
        repo = b.ensure_pushed(srv, key, rnd)
        out = b.scratch("pull")
        try:
            with meter:
                b.skopeo(f"docker://{srv.host}/{repo}:{image.tag}", f"oci:{out}:{image.tag}")
            index = json.loads((out / "index.json").read_text())
            got = [m["digest"] for m in index["manifests"]]
            if image.manifest_digest not in got:
                raise CaseError("pull check",
                                f"pulled manifest {got}, pushed {image.manifest_digest}")
        finally:
            shutil.rmtree(out, ignore_errors=True)
        run.seconds, run.gib = meter.seconds, image.total_bytes / GiB
    return pull


def case_docker_push(b: Bench, srv: Server, rnd: int, run: Run, meter: Meter) -> None:
    local = b.docker_image(rnd)
    repo = f"bench/docker-256m-r{rnd}"
    tag = f"{srv.host}/{repo}:v1"
    run_cmd(["docker", "tag", local, tag], timeout=60)
    try:
        with meter:
            run_cmd(["docker", "push", tag])
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True, timeout=120)
    run.seconds = meter.seconds
    run.gib = b.manifest_bytes(srv, repo, "v1") / GiB  # as pushed: docker gzips the layers


def case_push_concurrent(b: Bench, srv: Server, rnd: int, run: Run, meter: Meter) -> None:
    keys = [f"64M-{i}" for i in range(16)]
    cmds = []
    for i, key in enumerate(keys):
        image = b.images[key]
        repo = f"bench/c16-r{rnd}-{i:02}"
        dst = f"docker://{srv.host}/{repo}:{image.tag}"
        cmds.append((key, repo, *b.skopeo_cmd(image.ref, dst)))
    procs: list[tuple[subprocess.Popen, list[str], Path]] = []
    try:
        with meter:
            for key, repo, cmd, env in cmds:
                logf = b.scratch("c16-log") / "out.txt"
                with open(logf, "wb") as f:
                    procs.append((subprocess.Popen(cmd, env=env, stdout=f,
                                                   stderr=subprocess.STDOUT), cmd, logf))
            deadline = time.monotonic() + COPY_TIMEOUT
            for p, cmd, logf in procs:
                try:
                    p.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise CaseError(cmd, f"timed out after {COPY_TIMEOUT} s",
                                    logf.read_text(errors="replace")) from None
        failed = [(p, cmd, logf) for p, cmd, logf in procs if p.returncode != 0]
        if failed:
            p, cmd, logf = failed[0]
            raise CaseError(cmd, f"exit {p.returncode} ({len(failed)} of 16 copies failed)",
                            logf.read_text(errors="replace"))
    finally:
        for p, _, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for key, repo, _, _ in cmds:
        b.pushed[(srv.name, key)] = repo
    run.seconds = meter.seconds
    run.gib = sum(b.images[k].total_bytes for k in keys) / GiB


def case_manifest_get(b: Bench, srv: Server, rnd: int, run: Run, meter: Meter) -> None:
    image = b.images["20layers"]
    repo = b.ensure_pushed(srv, "20layers", rnd)
    b.hey(run, meter, f"http://{srv.host}/v2/{repo}/manifests/{image.manifest_digest}", "GET",
          OCI_MANIFEST)


def case_manifest_get_auth(b: Bench, srv: Server, rnd: int, run: Run, meter: Meter) -> None:
    """manifest-get with auth off (ecr-proxy) or on (auth.NAME: a token on every request)."""
    if srv.name != auth.NAME:
        return case_manifest_get(b, srv, rnd, run, meter)
    image = b.images["20layers"]
    repo = b.ensure_pushed(srv, "20layers", rnd)
    url = f"http://{srv.host}/v2/{repo}/manifests/{image.manifest_digest}"
    try:
        bearer = auth.token(srv.host, repo)  # before the meter: the rate is what is measured
    except OSError as e:
        raise CaseError(f"GET http://{srv.host}/token", str(e)) from None
    b.hey(run, meter, url, "GET", OCI_MANIFEST, {"Authorization": f"Bearer {bearer}"})


def case_pull_cached(b: Bench, srv: Server, rnd: int, run: Run, meter: Meter) -> None:
    """pull-512M from distribution, or from ecr-proxy's disk cache (filled before, untimed)."""
    if srv.name == cache.NAME and (srv.name, "warmed") not in b.pushed:
        repo = b.ensure_pushed(srv, cache.KEY, rnd)
        out = b.scratch("warm")
        log(f"  (setup: filling {srv.name}'s cache with {repo}, not timed)")
        try:
            image = b.images[cache.KEY]
            b.skopeo(f"docker://{srv.host}/{repo}:{image.tag}", f"oci:{out}:{image.tag}")
        finally:
            shutil.rmtree(out, ignore_errors=True)
        b.pushed[(srv.name, "warmed")] = repo
    case_pull(cache.KEY)(b, srv, rnd, run, meter)


def case_head_blob(b: Bench, srv: Server, rnd: int, run: Run, meter: Meter) -> None:
    image = b.images["20layers"]
    repo = b.ensure_pushed(srv, "20layers", rnd)
    digest = image.layers[-1][0]
    b.hey(run, meter, f"http://{srv.host}/v2/{repo}/blobs/{digest}", "HEAD", None)


CASES = {
    "push-512M": case_push("512M", "push-512m"),
    "pull-512M": case_pull("512M"),
    "push-20layers": case_push("20layers", "push-20layers"),
    "pull-20layers": case_pull("20layers"),
    "docker-push-256M": case_docker_push,
    "push-16x64M-concurrent": case_push_concurrent,
    "manifest-get": case_manifest_get,
    "head-blob": case_head_blob,
    auth.CASE: case_manifest_get_auth,
    cache.CASE: case_pull_cached,
}
KNOWN = [*CASES, *chunked.CASES]  # the chunked cases run through run_chunked, not CASES
RPS_CASES = {"manifest-get", "head-blob", auth.CASE}
PUSH_CASES = {c for c in CASES if "push" in c}


def targets(case: str) -> tuple[str, str]:
    """What a case compares: ecr-proxy against distribution, auth off against auth on, or
    distribution against the cached pull."""
    if case == auth.CASE:
        return (P, auth.NAME)
    if case == cache.CASE:
        return (D, cache.NAME)
    if case in chunked.CASES:
        return (case,)  # its proxies: chunked.proxies()
    return (D, P)


# --------------------------------------------------------------------------------------------
# Report


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_mib(n) -> str:
    return "–" if not n else f"{n / MiB:.0f} MiB"


def fmt_result(runs: list[Run], case: str) -> str:
    ok = [r for r in runs if r.error is None]
    if not ok:
        return "FAILED" if runs else "–"
    if case in RPS_CASES:
        return f"{med(r.rps for r in ok):,.0f} req/s, p99 {med(r.p99_ms for r in ok):.2f} ms"
    return f"{med(r.seconds for r in ok):.2f} s"


def fmt_ratio(d: list[Run], p: list[Run], case: str) -> str:
    d = [r for r in d if r.error is None]
    p = [r for r in p if r.error is None]
    if not d or not p or not all(r.rps or r.seconds for r in d):
        return "–"
    if case in RPS_CASES:
        return (f"req/s {med(r.rps for r in p) / med(r.rps for r in d):.2f}×, "
                f"p99 {med(r.p99_ms for r in p) / med(r.p99_ms for r in d):.2f}×")
    return f"{med(r.seconds for r in p) / med(r.seconds for r in d):.2f}×"


def fmt_cpu(runs: list[Run], server: str, case: str) -> str:
    ok = [r for r in runs if r.error is None and server in r.cpu]
    if not ok:
        return "–"
    if case in RPS_CASES:
        return f"{med(r.cpu[server] for r in ok):.1f} s/run"
    return f"{med(r.cpu[server] / r.gib for r in ok):.2f} s/GiB"


def fmt_peak(runs: list[Run], server: str) -> str:
    return fmt_mib(max((r.peak.get(server, 0) for r in runs), default=0))


def report(results: dict[str, dict[str, list[Run]]], b: Bench, rounds: int, elapsed: float,
           requests: int) -> str:
    auth_runs = results.get(auth.CASE)
    cache_runs = results.get(cache.CASE)
    chunked_runs = {c: results[c][c] for c in chunked.CASES if c in results}
    results = {c: by for c, by in results.items()
               if c not in (auth.CASE, cache.CASE, *chunked.CASES)}
    out: list[str] = []
    if results:  # the tables against distribution
        out = [f"## ecr-proxy vs distribution ({rounds} round{'s' * (rounds != 1)}, medians)", "",
               "| case | distribution median | ecr-proxy median | ratio ours/distribution "
               "| proxy CPU s/GiB | proxy peak RSS | distribution CPU s/GiB "
               "| distribution peak RSS |",
               "|---|---|---|---|---|---|---|---|"]
        for case, by in results.items():
            d, p = by[D], by[P]
            out.append(f"| {case} | {fmt_result(d, case)} | {fmt_result(p, case)} "
                       f"| {fmt_ratio(d, p, case)} | {fmt_cpu(p, P, case)} | {fmt_peak(p, P)} "
                       f"| {fmt_cpu(d, D, case)} | {fmt_peak(d, D)} |")
        out += ["", "### CPU seconds per run (median) and the emulator (stand-in for AWS, not "
                "the proxy's cost)", "",
                "| case | GiB moved | distribution CPU s | proxy CPU s | emulator CPU s "
                "| emulator CPU s/GiB | emulator peak RSS | requests done (D / P) |",
                "|---|---|---|---|---|---|---|---|"]
        for case, by in results.items():
            d = [r for r in by[D] if r.error is None]
            p = [r for r in by[P] if r.error is None]
            gib = med(r.gib for r in p) or med(r.gib for r in d)
            dcpu, pcpu = med(r.cpu.get(D) for r in d), med(r.cpu.get(P) for r in p)
            ecpu = med(r.cpu.get("emulator") for r in p)
            eper = med(r.cpu["emulator"] / r.gib for r in p if r.gib) if gib else None
            reqs = (f"{med(r.requests for r in d):,.0f} / {med(r.requests for r in p):,.0f}"
                    if case in RPS_CASES and d and p else "–")
            f = lambda v, spec=".2f": "–" if v is None else format(v, spec)  # noqa: E731
            out.append(f"| {case} | {f(gib)} | {f(dcpu)} | {f(pcpu)} | {f(ecpu)} "
                       f"| {f(eper)} | {fmt_peak(by[P], 'emulator')} | {reqs} |")
    life = ", ".join(f"{n} {fmt_mib(s.lifetime_peak)}" for n, s in b.servers.items())
    out += ["", f"Lifetime peak RSS (VmHWM): {life}.",
            "Peak RSS per case: " + ("each run's own peak (VmHWM reset through clear_refs "
                                     "before the run), the max over rounds."
                                     if b.reset_ok else
                                     "the lifetime peak so far (the VmHWM reset was refused)."),
            f"Rates: {requests:,} requests per run from hey -n {requests} -c 16 (GET manifest by "
            "digest; HEAD blob), each on one URL; the load tool shares the 2 cores "
            "with the server. Transfer CPU is per GiB the client moved (docker: the gzipped "
            "size as pushed).",
            f"Total runtime {elapsed / 60:.1f} min; {os.cpu_count()} CPUs; "
            f"CPU from /proc/PID/stat at {CLK_TCK} ticks/s."]
    if auth_runs is not None:
        out += auth.report(auth_runs[P], auth_runs[auth.NAME], requests)
        results[auth.CASE] = auth_runs
    if cache_runs is not None:
        out += cache.report(cache_runs[D], cache_runs[cache.NAME])
        results[cache.CASE] = cache_runs
    if chunked_runs:
        out += chunked_report.report(chunked_runs)
        results.update({c: {c: runs} for c, runs in chunked_runs.items()})
    failures = [r for by in results.values() for runs in by.values() for r in runs if r.error]
    if failures:
        out += ["", "### Failures", ""]
        for r in failures:
            out += [f"- round {r.round} {r.case} {r.target}: `{r.error.cmd}`: {r.error.how}",
                    "", "```", r.error.output.strip()[-3000:] or "(no output)", "```", ""]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Main


def run_case(b: Bench, case: str, srv: Server, rnd: int, rounds: int) -> Run:
    run = Run(case, srv.name, rnd)
    meter = Meter(b.servers)
    prefix = f"[round {rnd}/{rounds}] {case} {srv.name} …"
    try:
        CASES[case](b, srv, rnd, run, meter)
    except CaseError as e:
        run.error = e
        log(f"{prefix} FAILED: {e.cmd}: {e.how}\n{e.output.strip()[-2000:]}")
        if srv.name in (P, auth.NAME, cache.NAME):
            log(f"  {srv.name} log tail:\n{srv.log_tail(15)}")
    for s in b.servers.values():
        s.check_alive()
    b.reset_ok &= meter.reset_ok
    run.cpu, run.peak = dict(meter.cpu), dict(meter.peak)
    if run.error is None:
        if case in RPS_CASES:
            value = f"{run.rps:,.0f} req/s, p99 {run.p99_ms:.2f} ms ({run.requests:,} requests)"
        else:
            value = f"{run.seconds:.2f} s"
        cpu = f"cpu {run.cpu.get(srv.name, 0):.2f} s"
        if srv.name in (P, auth.NAME, cache.NAME):
            cpu += f" + emulator {run.cpu.get('emulator', 0):.2f} s"
        log(f"{prefix} {value}  [{cpu}, peak {fmt_mib(run.peak.get(srv.name))}]")
    return run


def run_chunked(b: Bench, case: str, rnd: int, rounds: int) -> Run:
    """One upload of a chunked case through its proxies (chunked.py), then its HEAD check."""
    run = Run(case, case, rnd)
    names = chunked.proxies(case, P)
    hosts = [b.servers[n].host for n in names]
    redis = b.servers.get(chunked.REDIS) if case != chunked.CASE else None
    repo = f"bench/{case.lower()}-r{rnd}"
    label = f"[round {rnd}/{rounds}] {case}"
    meter = Meter(b.servers)
    try:
        info0 = chunked.redis_info(redis.port) if redis else {}
        with meter:  # the upload only: the INFO reads and the HEAD are not timed
            client = chunked.upload(hosts, repo, label)
        info1 = chunked.redis_info(redis.port) if redis else {}
        chunked.verify(hosts[0], repo)
        run.seconds, run.gib = meter.seconds, chunked.SIZE / GiB
        run.extra = chunked.latency_stats(client)
        run.extra.update(chunked.redis_delta(info0, info1) if redis else {})
        run.extra["proxy_cpu"] = sum(meter.cpu.get(n, 0) for n in names)
    except (chunked.Failed, OSError) as e:
        run.error = e if isinstance(e, chunked.Failed) else chunked.Failed("redis INFO", str(e))
        log(f"{label} FAILED: {run.error.cmd}: {run.error.how}\n{run.error.output[-2000:]}")
        for n in names:
            log(f"  {n} log tail:\n{b.servers[n].log_tail(15)}")
    for s in b.servers.values():
        s.check_alive()
    b.reset_ok &= meter.reset_ok
    run.cpu, run.peak = dict(meter.cpu), dict(meter.peak)
    if run.error is None:
        x = run.extra
        log(f"{label} {run.seconds:.2f} s  [proxy cpu {x['proxy_cpu']:.2f} s"
            f" + redis {run.cpu.get(chunked.REDIS, 0):.2f} s"
            f" + emulator {run.cpu.get('emulator', 0):.2f} s; PATCH p50 {x['patch_p50']:.0f} ms"
            f", p90 {x['patch_p90']:.0f} ms, max {x['patch_max']:.0f} ms; PUT {x['put']:.0f} ms]")
    return run


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="default 3")
    ap.add_argument("--cases", default=",".join(KNOWN),
                    help=f"comma-separated subset of: {', '.join(KNOWN)}")
    ap.add_argument("--out", type=Path, help="also write the Markdown report here")
    ap.add_argument("--keep", action="store_true", help="leave the temp dir in place")
    ap.add_argument("--requests", type=int, default=30000,
                    help="requests per manifest-get / head-blob run (default 30000)")
    ap.add_argument("--tmp", type=Path, default=None, help="parent of the temp dir")
    args = ap.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in KNOWN]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; known: {', '.join(KNOWN)}")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: run cargo build --release (tests/bench/run does)")
    # Ctrl-C (even if inherited as ignored), SIGTERM and SIGHUP end the run through the
    # finally blocks that stop every server and client.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="ecr-proxy-bench-", dir=args.tmp))
    (tmp / "scratch").mkdir()
    servers: dict[str, Server] = {}
    b = None
    try:
        plain = [c for c in args.cases if c not in chunked.CASES]
        chunks = [c for c in args.cases if c in chunked.CASES]
        images = generate_images(tmp / "images") if plain else {}
        if chunks:
            data, digest = chunked.blob()
            log(f"generated the chunked cases' blob in memory: {len(data) // MiB} MiB, {digest}")
        servers = start_servers(tmp, with_auth=auth.CASE in args.cases,
                                with_cache=cache.CASE in args.cases,
                                redis_proxies=chunked.servers_for(chunks)[1])
        b = Bench(tmp, servers, images, args.requests)
        results = {c: {t: [] for t in targets(c)} for c in args.cases}
        for rnd in range(1, args.rounds + 1):
            try:
                for case in plain:
                    for target in targets(case):
                        results[case][target].append(
                            run_case(b, case, servers[target], rnd, args.rounds))
                for case in chunks if rnd % 2 else chunks[::-1]:  # alternate the order
                    results[case][case].append(run_chunked(b, case, rnd, args.rounds))
            finally:
                b.remove_docker_images()
        for s in servers.values():
            s.peak_rss()
        text = report(results, b, args.rounds, time.monotonic() - started, args.requests)
        print("\n" + text, end="", flush=True)
        if args.out:
            args.out.write_text(text)
            log(f"report written to {args.out}")
        failed = any(r.error for by in results.values() for runs in by.values() for r in runs)
        return 1 if failed else 0
    finally:
        if b is not None:
            b.remove_docker_images()
        for s in servers.values():
            s.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temp dir removed (unless --keep)", file=sys.stderr)
        sys.exit(130)
