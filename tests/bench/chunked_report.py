"""The report section of the chunked-upload cases (chunked.py): wall time of each variant,
its ratio to the in-process baseline of the same run against the issue's target, proxy, Redis
and emulator CPU, per-request latency and the bytes that went through Redis."""

from __future__ import annotations

import statistics

import chunked

MiB = 1 << 20
VARIANTS = {chunked.CASE: "1 proxy, sessions in process",
            chunked.CASE_REDIS: "1 proxy, Redis sessions",
            chunked.CASE_REPLICAS: "3 proxies, one Redis, round-robin per request"}


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _f(v, spec=".2f") -> str:
    return "–" if v is None else format(v, spec)


def report(runs: dict[str, list]) -> list[str]:
    """The Markdown section for the chunked cases that ran (runs: case -> its Runs)."""
    ok = {c: [r for r in rs if r.error is None] for c, rs in runs.items()}
    base = ok.get(chunked.CASE) or []
    base_s = _med(r.seconds for r in base)
    base_by_round = {r.round: r.seconds for r in base}
    out = ["", f"### Chunked upload: {chunked.SIZE // MiB} MiB in {chunked.CHUNK // MiB} MiB "
           "PATCHes, Redis sessions against in-process (medians)", "",
           "| case | setup | wall | each round | / in-process (each round) | proxy CPU s "
           "| proxy CPU s/GiB | redis CPU s | emulator CPU s | PATCH p50 / p90 / max "
           "| PATCH p50: no part / part shipped "
           "| PUT | through Redis in / out | Redis commands |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case, rs in ok.items():
        if not rs:
            out.append(f"| {case} | {VARIANTS[case]} | FAILED | | | | | | | | | | | |")
            continue
        s = _med(r.seconds for r in rs)
        ratio = f"{s / base_s:.2f}×" if base_s else "–"
        each = ", ".join(f"{r.seconds / base_by_round[r.round]:.2f}" for r in rs
                         if r.round in base_by_round)
        x = lambda k: _med(r.extra.get(k) for r in rs)  # noqa: E731
        cpu = x("proxy_cpu")
        redis_io = (f"{x('total_net_input_bytes') / MiB:,.0f} / "
                    f"{x('total_net_output_bytes') / MiB:,.0f} MiB"
                    if case != chunked.CASE else "–")
        cmds = _f(x("total_commands_processed"), ",.0f") if case != chunked.CASE else "–"
        out.append(
            f"| {case} | {VARIANTS[case]} | {s:.2f} s "
            f"| {', '.join(f'{r.seconds:.2f}' for r in rs)} | {ratio} ({each}) "
            f"| {_f(cpu)} | {_f(cpu / (chunked.SIZE / (1 << 30)) if cpu else None)} "
            f"| {_f(_med(r.cpu.get(chunked.REDIS) for r in rs))} "
            f"| {_f(_med(r.cpu.get('emulator') for r in rs))} "
            f"| {x('patch_p50'):.0f} / {x('patch_p90'):.0f} / {x('patch_max'):.0f} ms "
            f"| {x('patch_nopart'):.0f} / {x('patch_part'):.0f} ms "
            f"| {x('put'):.0f} ms | {redis_io} | {cmds} |")
    lines = []
    for case in (chunked.CASE_REDIS, chunked.CASE_REPLICAS):
        s = _med(r.seconds for r in ok.get(case) or [])
        if s and base_s:
            verdict = "met" if s / base_s <= chunked.TARGET else "MISSED"
            lines.append(f"{case} / {chunked.CASE}: {s / base_s:.2f} (target ≤ "
                         f"{chunked.TARGET}: {verdict})")
    patches = -(-chunked.SIZE // chunked.CHUNK)
    out += ["", ("; ".join(lines) + ". " if lines else "") +
            f"Each upload: POST, {patches} PATCHes with Content-Range, PUT ?digest= with no "
            "body, from python http.client on one keep-alive connection per proxy; checked by "
            "the 202 Range after every PATCH, the PUT's 201 and Docker-Content-Digest, and a "
            "HEAD of the blob (Content-Length, Docker-Content-Digest), untimed. \"Part shipped\": "
            f"the PATCHes whose bytes complete a {chunked.PART // MiB} MiB part (the proxy "
            "sends it to ECR during them). Proxy CPU is "
            "the sum over the case's proxies; Redis CPU and the emulator's (a stand-in for "
            "AWS) are not in it. Redis bytes and commands are INFO deltas around the upload. "
            "The variants share one emulator and run one after the other, their order "
            "reversed every other round."]
    return out
