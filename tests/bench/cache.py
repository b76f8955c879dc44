"""The cache-hit case of the benchmark (issue 12): a 512 MiB pull served from the disk cache.

What it owns
    The third ecr-proxy of the run, started from a `[cache]` config (its folder in the proxy's
    own work dir, 4 GiB), the untimed pull that fills its cache before the first timed run, and
    the report section comparing its pull time with distribution's (which serves from its own
    local disk) in the same run. The image reaches ECR through this proxy itself. bench.py
    starts the servers, runs skopeo and measures; this module starts nothing of its own.
"""

from __future__ import annotations

import statistics
from pathlib import Path

CASE = "pull-512M-cached"
NAME = "ecr-proxy+cache"
KEY = "512M"
TARGET = 1.0  # the cached pull may take at most this many times distribution's pull time

CONFIG = """\
[cache]
dir = "cache"
max_size = "4GiB"
"""


def write_config(pdir: Path) -> Path:
    config = pdir / "config.toml"
    config.write_text(CONFIG)
    return config


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def report(runs_d: list, runs_c: list) -> list[str]:
    """The Markdown section: both pull times, the ratio, the target, and CPU."""
    d = [r for r in runs_d if r.error is None]
    c = [r for r in runs_c if r.error is None]
    out = ["", f"### 512 MiB pull served from the disk cache ({NAME}) against distribution",
           "",
           "| | distribution | ecr-proxy, cache hit | cache / distribution |",
           "|---|---|---|---|"]
    if not d or not c:
        return out + ["| (no successful run of both) | | | |"]
    sd, sc = _med(r.seconds for r in d), _med(r.seconds for r in c)
    cpu_d = _med(r.cpu.get("distribution", 0) / r.gib for r in d)
    cpu_c = _med(r.cpu.get(NAME, 0) / r.gib for r in c)
    emu = _med(r.cpu.get("emulator", 0) for r in c)
    out += [f"| pull time (median) | {sd:.2f} s | {sc:.2f} s | {sc / sd:.2f}× |",
            f"| server CPU s/GiB | {cpu_d:.2f} | {cpu_c:.2f} | {cpu_c / cpu_d:.2f}× |",
            f"| each round | {', '.join(f'{r.seconds:.2f}' for r in d)} "
            f"| {', '.join(f'{r.seconds:.2f}' for r in c)} | |"]
    verdict = "met" if sc / sd <= TARGET else "MISSED"
    out += ["", f"Cached pull / distribution's pull: {sc / sd:.2f} (target ≤ {TARGET}: "
            f"{verdict}). skopeo copies the image to an OCI layout; both serve from local disk "
            f"(the emulator's CPU during the cached runs, {emu:.2f} s, shows ECR was not asked "
            "for the blobs)."]
    return out
