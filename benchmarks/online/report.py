"""The run's report: the targets, the Markdown summary (what the README's performance section shows) and the plots.

Plots are PNG files written with matplotlib's Agg backend (no display needed): throughput over time and latency
percentiles over time for every OCC phase, and latency against offered load for the softswitch's rate sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

Summary = dict[str, Any]
TARGET_UNARY_RATIO = 0.85
TARGET_STREAM_RATIO = 0.75
TARGET_P99_MS = 5.0
TARGET_RATE = 1000.0


def _check(name: str, label: str, value: float, shown: str, target: float, passed: bool) -> Summary:
    return {"name": name, "label": label, "value": value, "shown": shown, "target": target, "pass": passed}


def targets(phases: dict[str, dict[str, Summary]], sweep: list[Summary], violations: int | None) -> list[Summary]:
    """The issue's targets, each measured in this run: ratios to the echo ceiling, p99 at 1,000/s, correctness."""
    checks = []
    echo, occ = phases.get("echo", {}), phases.get("occ", {})
    for mode, target, label in (("unary", TARGET_UNARY_RATIO, "unary"), ("stream", TARGET_STREAM_RATIO, "Stream")):
        if mode in echo and mode in occ:
            value = occ[mode]["throughput_per_s"] / max(echo[mode]["throughput_per_s"], 1e-9)
            shown = f"{value:.1%}"
            if "server_cpu_us_per_request" in occ[mode]:
                cpu = echo[mode]["server_cpu_us_per_request"] / max(occ[mode]["server_cpu_us_per_request"], 1e-9)
                shown += f" (server CPU per request: {cpu:.1%})"
            checks.append(_check(f"{mode}_ratio", f"{label} OCC ÷ {label} echo (req/s) ≥ {target:.0%}",
                                 round(value, 3), shown, target, value >= target))  # fmt: skip
    if "open" in occ:
        p99 = occ["open"]["latency_ms"]["p99"]
        rate = occ["open"].get("offered_per_s", TARGET_RATE)
        checks.append(_check("open_loop_p99_ms", f"p99 at {rate:,.0f} StartSession/s open-loop ≤ {TARGET_P99_MS:g} ms",
                             p99, f"{p99:.2f} ms", TARGET_P99_MS, p99 <= TARGET_P99_MS))  # fmt: skip
    at_target = [s for s in sweep if s["offered_calls_per_s"] >= TARGET_RATE]
    if at_target:
        chosen = min(at_target, key=lambda s: s["offered_calls_per_s"])
        p99 = chosen["latency_ms"]["p99"]
        label = f"softswitch p99 at {chosen['offered_calls_per_s']:,.0f} calls/s offered ≤ {TARGET_P99_MS:g} ms"
        checks.append(_check("softswitch_p99_ms", label, p99, f"{p99:.2f} ms", TARGET_P99_MS, p99 <= TARGET_P99_MS))
    if violations is not None:
        checks.append(_check("correctness", "correctness violations = 0", violations, str(violations), 0,
                             violations == 0))  # fmt: skip
    return checks


def _codes(summary: Summary) -> str:
    return "; ".join(
        f"{kind}: " + ", ".join(f"{code} {count:,}" for code, count in counts.items())
        for kind, counts in summary["result_codes"].items()
    )


def _errors(summary: Summary) -> str:
    errors = dict(summary["errors"]) | ({"skipped": summary["skipped"]} if summary.get("skipped") else {})
    return ", ".join(f"{name} {count:,}" for name, count in errors.items()) or "0"


def markdown(results: Summary) -> list[str]:
    """The Markdown summary: ceilings and ratios, every phase, the softswitch's calls, correctness, targets."""
    info, phases = results["machine"], results["phases"]
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, grpcio {info['grpcio']}; "
             f"{results['parameters']['workers']} server worker(s); {results['parameters']['seconds']} s per phase",
             ""]  # fmt: skip
    header = (
        "| server | phase | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | server CPU µs/req | result codes | errors |"
    )
    lines += [header, "|---" * (header.count("|") - 1) + "|"]
    rows = [(server, summary) for server, by_mode in phases.items() for summary in by_mode.values()]
    for server, summary in [*rows, *(("occ", summary) for summary in results["softswitch"])]:
        latency = summary["latency_ms"]
        cpu = summary.get("server_cpu_us_per_request")
        lines.append(
            f"| {server} | {summary['description']} | {summary['throughput_per_s']:,.0f} | {latency['p50']:.2f} "
            f"| {latency['p90']:.2f} | {latency['p99']:.2f} | {latency['p99.9']:.2f} "
            f"| {'—' if cpu is None else f'{cpu:,.0f}'} | {_codes(summary)} | {_errors(summary)} |"
        )
    ceilings = results.get("ceilings", {})
    lines += ["", "| ceiling | figure |", "|---|---|"]
    for run in ceilings.get("redis", {}).get("runs", []):
        lines.append(f"| Redis alone, session.lua starts (redis-benchmark, {run['batch']} per call) "
                     f"| {run['starts_per_s']:,} starts/s |")  # fmt: skip
    for server in ("echo", "occ"):
        peak = ceilings.get(f"h2load_{server}", {})
        if peak.get("status") == "measured":
            lines.append(f"| h2load peak, {server} Authorize | {peak['requests_per_s']:,.0f} req/s "
                         f"(mean {peak.get('mean_ms', 0):.2f} ms; gRPC check {peak['grpc_check']}) |")  # fmt: skip
        elif peak:
            lines.append(f"| h2load peak, {server} | {peak.get('reason', peak.get('status'))} |")
    if results["softswitch"]:
        lines += ["", "| softswitch phase | offered calls/s | arrivals/s | calls and messages | req/s | p99 ms "
                  "| p99 ms, ends at the hard stop |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for summary in results["softswitch"]:
            calls = ", ".join(f"{name} {count:,}" for name, count in summary["calls"].items())
            stop = summary["latency_ms_by_kind"].get("end_at_stop", {}).get("p99")
            stop_shown = "—" if stop is None else f"{stop:.2f}"
            lines.append(f"| {summary['description']} | {summary['offered_calls_per_s']:,.0f} "
                         f"| {summary['arrivals_per_s']:,.0f} | {calls} | {summary['throughput_per_s']:,.0f} "
                         f"| {summary['latency_ms']['p99']:.2f} | {stop_shown} |")  # fmt: skip
    correctness = results.get("correctness")
    if correctness:
        lines += ["", "| correctness check | result |", "|---|---|"]
        accounts = correctness["accounts"]
        for key in ("below_credit_limit", "sessions_left_open", "reserved_without_session", "open_without_deadline"):
            lines.append(f"| {key.replace('_', ' ')} | {accounts[key]} |")
        lines.append(f"| sessions awaiting the sweeper (ceiling phases, failed requests) "
                     f"| {accounts['sessions_awaiting_sweeper']:,} |")  # fmt: skip
        settlement = correctness["settlement"]
        for name, label in (("settle", "settlement drained (occ settle --once)"), ("reconcile", "occ reconcile clean")):
            step = settlement.get(name, settlement)
            lines.append(f"| {label} | {step['status']}{' (' + step['reason'] + ')' if 'reason' in step else ''} |")
    if results["targets"]:
        lines += ["", "| target | value | status |", "|---|---|---|"]
        for check in results["targets"]:
            lines.append(f"| {check['label']} | {check['shown']} | {'PASS' if check['pass'] else 'FAIL'} |")
    return lines


def plots(results: Summary, directory: Path) -> list[str]:
    """Write the PNG plots into ``directory``; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    occ = [*results["phases"].get("occ", {}).values(), *results["softswitch"]]
    written: list[str] = []

    def save(figure: Any, name: str) -> None:
        figure.tight_layout()
        figure.savefig(directory / name, dpi=100)
        plt.close(figure)
        written.append(name)

    def whole_seconds(summary: Summary) -> list[dict]:
        # Whole seconds only: the last, partial one would show as a fall that never happened.
        return [row for row in summary["timeline"] if row["second"] + 1 <= summary["elapsed_s"]]

    if occ:
        figure, axes = plt.subplots(figsize=(9, 4.5))
        for summary in occ:
            rows = whole_seconds(summary)
            axes.plot([r["second"] for r in rows], [r["requests"] for r in rows], marker=".",
                      label=summary["description"])  # fmt: skip
        axes.set(title="OCC: answered requests per second", xlabel="seconds since the phase began", ylabel="req/s")
        axes.legend(fontsize=6)
        axes.grid(alpha=0.3)
        save(figure, "throughput_over_time.png")

        columns = 2
        rows_n = (len(occ) + columns - 1) // columns
        figure, grid = plt.subplots(rows_n, columns, figsize=(10, 2.4 * rows_n), squeeze=False, sharex=True)
        for place, summary in zip(grid.flat, occ, strict=False):
            rows = whole_seconds(summary)
            for percentile in ("p50", "p90", "p99", "p99.9"):
                place.plot([r["second"] for r in rows], [r[percentile] for r in rows], marker=".", label=percentile)
            place.set_title(summary["description"], fontsize=8)
            place.set_yscale("log")
            place.grid(alpha=0.3)
        for place in list(grid.flat)[len(occ) :]:
            place.axis("off")
        grid.flat[0].legend(fontsize=6)
        figure.supxlabel("seconds since the phase began", fontsize=8)
        figure.supylabel("latency, ms", fontsize=8)
        figure.suptitle("OCC: latency percentiles per second")
        save(figure, "latency_over_time.png")
    open_loop = sorted((s for s in results["softswitch"] if s["offered_calls_per_s"] > 0),
                       key=lambda s: s["offered_calls_per_s"])  # fmt: skip
    if open_loop:
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for transport, style in (("unary", "-"), ("stream", ":")):
            sweep = [s for s in open_loop if s["transport"] == transport]
            offered = [s["offered_calls_per_s"] for s in sweep]
            for color, percentile in enumerate(("p50", "p90", "p99", "p99.9")):
                axes.plot(offered, [s["latency_ms"][percentile] for s in sweep], marker="o", linestyle=style,
                          color=f"C{color}", label=f"{percentile} ({transport})" if sweep else None)  # fmt: skip
        axes.axhline(TARGET_P99_MS, color="grey", linestyle="--", linewidth=0.8, label=f"{TARGET_P99_MS:g} ms target")
        axes.set(title="Softswitch: latency vs offered load", xlabel="offered calls/s", ylabel="latency, ms")
        axes.set_yscale("log")
        axes.legend(fontsize=7)
        axes.grid(alpha=0.3)
        save(figure, "latency_vs_load.png")
    return written
