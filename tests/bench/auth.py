"""The auth case of the benchmark (issue 11): manifest GET by digest with auth on.

What it owns
    The second ecr-proxy of the run, started from an `[auth]` config (an htpasswd file written
    by `htpasswd -nbB`, and the issue's rules: alice may push `bench/*`, every signed-in
    subject may pull), the token the load generator fetches from its `/token` (Basic alice)
    before each run and sends as `Authorization: Bearer` on every request, and the report
    section comparing it with the same binary with auth off (bench.py's ecr-proxy), measured
    alternately in the same run. bench.py starts the servers, runs hey and measures; this
    module must not start processes of its own beyond `htpasswd`.
"""

from __future__ import annotations

import base64
import json
import statistics
import subprocess
import urllib.request
from pathlib import Path

CASE = "manifest-get-auth"
NAME = "ecr-proxy+auth"
USER, PASSWORD = "alice", "alice-pw"
SERVICE = "ecr-proxy"
TARGET = 1.2  # auth on may be at most this many times slower than auth off

CONFIG = """\
[auth]
htpasswd = "users.htpasswd"
[[auth.rules]]
subjects = ["alice"]
repositories = ["bench/*"]
actions = ["pull", "push", "delete"]
[[auth.rules]]
subjects = ["*"]
repositories = ["*"]
actions = ["pull"]
"""


def write_config(pdir: Path) -> Path:
    """users.htpasswd (bcrypt, by htpasswd -nbB) and config.toml in pdir; the config's path."""
    try:
        line = subprocess.run(["htpasswd", "-nbB", USER, PASSWORD], capture_output=True,
                              text=True, check=True).stdout.strip()
    except FileNotFoundError:
        raise RuntimeError("htpasswd is not installed (apache2-utils; tests/bench/run "
                           "installs it)") from None
    (pdir / "users.htpasswd").write_text(line + "\n")
    config = pdir / "config.toml"
    config.write_text(CONFIG)
    return config


def basic() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def token(host: str, repo: str) -> str:
    """A bearer token for pulling `repo`, from the proxy's token endpoint with Basic alice."""
    url = f"http://{host}/token?service={SERVICE}&scope=repository:{repo}:pull"
    req = urllib.request.Request(url, headers={"Authorization": basic()})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["token"]


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def pairs(off: list, on: list) -> list:
    """The runs of the same round, auth off then on (run one after the other)."""
    by_round = {r.round: r for r in on}
    return [(r, by_round[r.round]) for r in off if r.round in by_round]


def report(runs_off: list, runs_on: list, requests: int) -> list[str]:
    """The Markdown section: both rates, the ratio, and the target."""
    off = [r for r in runs_off if r.error is None]
    on = [r for r in runs_on if r.error is None]
    out = ["", f"### Manifest GET by digest with auth on ({NAME}) against auth off (ecr-proxy)",
           "",
           "| | auth off | auth on (Bearer token) | on / off (each round's pair) |",
           "|---|---|---|---|"]
    if not off or not on:
        return out + ["| (no successful run of both) | | | |"]
    rps_off, rps_on = _med(r.rps for r in off), _med(r.rps for r in on)
    p99_off, p99_on = _med(r.p99_ms for r in off), _med(r.p99_ms for r in on)
    cpu_off = _med(r.cpu.get("ecr-proxy") for r in off)
    cpu_on = _med(r.cpu.get(NAME) for r in on)
    out += [f"| req/s (median) | {rps_off:,.0f} | {rps_on:,.0f} | {rps_on / rps_off:.3f} |",
            f"| p99 (median) | {p99_off:.2f} ms | {p99_on:.2f} ms | {p99_on / p99_off:.2f}× |",
            f"| proxy CPU s/run | {cpu_off:.2f} | {cpu_on:.2f} | {cpu_on / cpu_off:.2f}× |",
            f"| each round, req/s | {', '.join(f'{r.rps:,.0f}' for r in off)} "
            f"| {', '.join(f'{r.rps:,.0f}' for r in on)} "
            f"| {', '.join(f'{b.rps / a.rps:.2f}' for a, b in pairs(off, on))} |"]
    slower = rps_off / rps_on
    verdict = "met" if slower <= TARGET else "MISSED"
    out += ["", f"Rate with auth off / with auth on: {slower:.3f} "
            f"(target ≤ {TARGET}: {verdict}). Each run: {requests:,} requests from hey -c 16, "
            "one token fetched before the run (not timed) and sent on every request; the two "
            "proxies share the emulator and run alternately."]
    return out
