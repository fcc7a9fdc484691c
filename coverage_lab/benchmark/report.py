"""The benchmark's Markdown report and its plot (matplotlib, the `bench` extra).

The plot has two panels: the distribution of time to ring on both paths for
each sustained step (empirical CDFs, log scale: the tails are the point), and
the ramp's p50/p99 time to ring against the call rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from coverage_lab.benchmark.sipp import (
    PATHS,
    RING_LIMIT_MS,
    SILENCE_LIMIT_MS,
    BenchResult,
    StepResult,
)


def _ms(summary: dict[str, float], key: str) -> str:
    value = summary.get(key)
    return "–" if value is None else f"{value:g}"


def _table(steps: Sequence[StepResult]) -> list[str]:
    lines = [
        "| step | path | calls | failed | retrans. | ring p50 | p95 | p99 | 200 OK p50 | p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for step in steps:
        for name, path in step.paths.items():
            lines.append(
                f"| {step.step}{'' if step.valid else ' (invalid)'} | {name} | {path.placed} "
                f"| {path.failed} | {path.retransmissions} | {_ms(path.ring_ms, 'p50')} "
                f"| {_ms(path.ring_ms, 'p95')} | {_ms(path.ring_ms, 'p99')} "
                f"| {_ms(path.answer_ms, 'p50')} | {_ms(path.answer_ms, 'p99')} |"
            )
    return lines


def _costs(steps: Sequence[StepResult]) -> list[str]:
    lines = [
        "| step | ring B−A p50 / p99 (ms) | B/A p50 / p99 | engine CPU (% core) "
        "| engine CPU/call (ms) | engine peak RSS (MiB) | Asterisk CPU (% core) "
        "| SIPp CPU (% core) | load avg |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        lines.append(
            f"| {s.step} | {_ms(s.b_minus_a_ms, 'p50')} / {_ms(s.b_minus_a_ms, 'p99')} "
            f"| {_ms(s.b_over_a, 'p50')} / {_ms(s.b_over_a, 'p99')} "
            f"| {s.engine_cpu_percent_of_core:g} | {s.engine_cpu_ms_per_call:g} "
            f"| {s.engine_peak_rss_mib:g} | {s.asterisk_cpu_percent_of_core:g} "
            f"| {s.sipp_cpu_percent_of_core:g} | {s.load_average:g} |"
        )
    return lines


def _voices(steps: Sequence[StepResult]) -> list[str]:
    lines = [
        "| step | path | journey | first heard p50 / p99 / max | person p50 / p99 "
        f"| longest silence p50 / p99 / max | over {SILENCE_LIMIT_MS / 1000:g} s |",
        "|---|---|---|---|---|---|---:|",
    ]
    journeys = {p.name: p.journey for p in PATHS}
    for step in steps:
        for name, path in step.paths.items():
            heard, person, silent = path.first_audio_ms, path.person_ms, path.silence_ms
            over = "–" if path.over_silence_limit is None else str(path.over_silence_limit)
            lines.append(
                f"| {step.step} | {name} | {journeys.get(name, '')} "
                f"| {_ms(heard, 'p50')} / {_ms(heard, 'p99')} / {_ms(heard, 'max')} "
                f"| {_ms(person, 'p50')} / {_ms(person, 'p99')} "
                f"| {_ms(silent, 'p50')} / {_ms(silent, 'p99')} / {_ms(silent, 'max')} | {over} |"
            )
    return lines


def markdown(result: BenchResult, plot: str | None) -> str:
    """The report: machine, both paths side by side per step, costs, the ramp's verdict."""
    m = result.machine
    out = [
        "# coverage-engine benchmark: dialplan alone (A) vs the engine (B)",
        "",
        f"Run {result.started} on {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
        f"{m.get('memory_gib', '?')} GiB, Linux {m.get('kernel', '?')}, {m.get('sipp', 'SIPp')}.",
        "Both paths run at the step's rate at the same time; times in milliseconds. "
        "Ring: the caller's INVITE to the phone's INVITE. 200 OK: the caller's INVITE to its "
        "200 OK (on B the engine answers the caller before the phone rings).",
        "",
        "## Time to ring and to answer",
        "",
        *_table([*result.steps, *result.ramp]),
        "",
        "## What B costs",
        "",
        *_costs([*result.steps, *result.ramp]),
        "",
        "The engine's CPU per call is over the calls of B and C (both through the engine).",
        "",
        "## Time to a human voice",
        "",
        "From the caller's INVITE: the first thing the caller hears (the local ringback "
        "of a 180 Ringing, Asterisk's ringback, the announcement or music, captured on "
        "loopback), and the person picking up (the phone's 200 OK); the longest silence "
        "the caller sat through before that person.",
        "",
        *_voices([*result.steps, *result.ramp]),
        "",
    ]
    invalid = [s for s in [*result.steps, *result.ramp] if not s.valid]
    for step in invalid:
        out.append(f"* {step.step} is invalid: {'; '.join(step.invalid_reasons)}")
    if invalid:
        out.append("")
    if result.ramp or result.ramp_limit:
        out += [
            "## Ramp",
            "",
            f"Stops at the first rate with a failed call or a p99 time to ring over "
            f"{RING_LIMIT_MS:g} ms: {result.ramp_limit or 'no ramp run'}.",
            "",
        ]
    if plot:
        out += [f"![time to ring, A vs B, and the ramp]({plot})", ""]
    return "\n".join(out)


def plot(result: BenchResult, path: Path) -> bool:
    """Write the PNG; False when matplotlib is not installed (the `bench` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {"A": "-", "B": "--"}
    compared = {p.name for p in PATHS if p.compared}
    for step in result.steps:
        for name, res in step.paths.items():
            if name not in compared:
                continue  # path C rings after its announcement: another scale
            samples = sorted(res.ring_samples_ms)
            if not samples:
                continue
            fraction = [(i + 1) / len(samples) for i in range(len(samples))]
            kind = "dialplan" if name == "A" else "engine"
            label = f"{name} {kind}, {step.step}"
            left.step(samples, fraction, styles[name], where="post", label=label)
    left.set_xscale("log")
    left.set_xlabel("time to ring (ms, log scale)")
    left.set_ylabel("fraction of calls")
    left.set_title("Time to ring: dialplan alone (A) vs engine (B)")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    ramp = [*result.steps, *result.ramp]
    for name in sorted(compared):
        rates = [s.rate for s in ramp if s.paths[name].ring_ms]
        for key, marker in (("p50", "o"), ("p99", "^")):
            values = [s.paths[name].ring_ms[key] for s in ramp if s.paths[name].ring_ms]
            right.plot(rates, values, styles[name], marker=marker, label=f"{name} {key}")
    right.axhline(RING_LIMIT_MS, color="grey", linewidth=0.8, linestyle=":")
    right.set_yscale("log")
    right.set_xlabel("calls per second on each path")
    right.set_ylabel("time to ring (ms, log scale)")
    right.set_title("Load steps and ramp")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(result: BenchResult, outdir: Path) -> Path:
    """results.json, time-to-ring.png (when matplotlib is there) and report.md in `outdir`."""
    from coverage_lab.benchmark.sipp import write_json

    write_json(result, outdir / "results.json")
    png = "time-to-ring.png" if plot(result, outdir / "time-to-ring.png") else None
    report = outdir / "report.md"
    report.write_text(markdown(result, png), encoding="utf-8")
    return report
