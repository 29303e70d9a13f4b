"""The run's report: the targets, the Markdown summary (what the README's performance section shows) and the plots.

Plots are PNG files written with matplotlib's Agg backend (no display needed): throughput over time and latency
percentiles over time for every OCC phase, and latency against offered load for the softswitch's rate sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

Summary = dict[str, Any]
TARGET_CPU_RATIO = 1.6  # server CPU per unary StartSession, OCC ÷ echo
TARGET_UNARY_RATIO = 0.70
TARGET_STREAM_RATIO = 0.75
TARGET_P99_MS = 5.0
TARGET_P999_MS = 15.0
TARGET_RATE = 1000.0
TARGET_SOFTSWITCH_P99_MS = 25.0
KEEP_UP_SHARE = 0.95  # arrivals served ÷ offered, allowing for the Poisson draw
KNEE_P99_MS = 50.0
TARGET_KNEE_CALLS = 1500.0
TARGET_PAUSE = "no event-loop pause over 5 ms in any OCC phase"


def _check(name: str, label: str, value: float, shown: str, target: float, passed: bool) -> Summary:
    return {"name": name, "label": label, "value": value, "shown": shown, "target": target, "pass": passed}


def knee(stream_phases: list[Summary]) -> Summary:
    """The offered rate where the softswitch's p99 over ``Stream`` crosses ``KNEE_P99_MS``, interpolated linearly
    between the two measured rates around the crossing; "above" the highest rate when none crosses."""
    measured = sorted(((s["offered_calls_per_s"], s["latency_ms"]["p99"]) for s in stream_phases), key=lambda r: r[0])
    if not measured:
        return {}
    points = [{"offered_calls_per_s": rate, "p99_ms": p99} for rate, p99 in measured]
    lowest, lowest_p99 = measured[0]
    if lowest_p99 > KNEE_P99_MS:
        return {"calls_per_s": lowest, "shown": f"below {lowest:,.0f} calls/s (p99 over {KNEE_P99_MS:g} ms at "
                f"every rate)", "below_range": True, "points": points}  # fmt: skip
    below = measured[0]
    for rate, p99 in measured[1:]:
        if p99 > KNEE_P99_MS:
            low_rate, low_p99 = below
            share = (KNEE_P99_MS - low_p99) / max(p99 - low_p99, 1e-9)
            at = low_rate + share * (rate - low_rate)
            return {"calls_per_s": round(at), "shown": f"{at:,.0f} calls/s", "points": points}
        below = (rate, p99)
    top = measured[-1][0]
    return {"calls_per_s": top, "shown": f"above {top:,.0f} calls/s (p99 under {KNEE_P99_MS:g} ms at every rate)",
            "points": points}  # fmt: skip


def pauses_by_phase(results: Summary) -> list[tuple[str, Summary]]:
    """(phase description, pauses) of every OCC phase whose pauses were measured."""
    phases = [*results["phases"].get("occ", {}).values(), *results["softswitch"], *results.get("stream_knee", [])]
    return [(s["description"], s["pauses"]) for s in phases if s.get("pauses", {}).get("status") == "measured"]


def targets(phases: dict[str, dict[str, Summary]], sweep: list[Summary], violations: int | None, *,
            knee: Summary | None = None, pauses: list[tuple[str, Summary]] | None = None) -> list[Summary]:  # fmt: skip
    """The issue's targets, each measured in this run beside its ceilings."""
    checks = []
    echo, occ = phases.get("echo", {}), phases.get("occ", {})
    if "unary" in echo and "unary" in occ and "server_cpu_us_per_request" in occ["unary"]:
        ratio = occ["unary"]["server_cpu_us_per_request"] / max(echo["unary"]["server_cpu_us_per_request"], 1e-9)
        checks.append(_check("cpu_ratio", f"server CPU per unary StartSession, OCC ÷ echo ≤ {TARGET_CPU_RATIO:g}×",
                             round(ratio, 2), f"{ratio:.2f}× ({occ['unary']['server_cpu_us_per_request']:,.0f} ÷ "
                             f"{echo['unary']['server_cpu_us_per_request']:,.0f} µs)", TARGET_CPU_RATIO,
                             ratio <= TARGET_CPU_RATIO))  # fmt: skip
    for mode, target, label in (("unary", TARGET_UNARY_RATIO, "unary"), ("stream", TARGET_STREAM_RATIO, "Stream")):
        if mode in echo and mode in occ:
            value = occ[mode]["throughput_per_s"] / max(echo[mode]["throughput_per_s"], 1e-9)
            checks.append(_check(f"{mode}_ratio", f"{label} OCC ÷ {label} echo (req/s) ≥ {target:.0%}",
                                 round(value, 3), f"{value:.1%}", target, value >= target))  # fmt: skip
    if "open" in occ:
        latency = occ["open"]["latency_ms"]
        rate = occ["open"].get("offered_per_s", TARGET_RATE)
        for key, name, limit in (("p99", "open_loop_p99_ms", TARGET_P99_MS),
                                 ("p99.9", "open_loop_p999_ms", TARGET_P999_MS)):  # fmt: skip
            value = latency[key]
            checks.append(_check(name, f"{key} at {rate:,.0f} StartSession/s open-loop ≤ {limit:g} ms", value,
                                 f"{value:.2f} ms", limit, value <= limit))  # fmt: skip
    at_target = [s for s in sweep if s["offered_calls_per_s"] >= TARGET_RATE and s.get("transport") == "unary"]
    if at_target:
        chosen = min(at_target, key=lambda s: s["offered_calls_per_s"])
        p99, offered = chosen["latency_ms"]["p99"], chosen["offered_calls_per_s"]
        served = chosen["arrivals_per_s"] / offered
        kept_up = served >= KEEP_UP_SHARE and not chosen.get("skipped") and not chosen["errors"]
        label = (f"softswitch unary at {offered:,.0f} calls/s offered: keeps up (arrivals ≥ {KEEP_UP_SHARE:.0%} "
                 f"of offered, none skipped or failed) with p99 ≤ {TARGET_SOFTSWITCH_P99_MS:g} ms")  # fmt: skip
        checks.append(_check("softswitch_p99_ms", label, p99, f"{served:.1%} served, p99 {p99:.2f} ms",
                             TARGET_SOFTSWITCH_P99_MS, kept_up and p99 <= TARGET_SOFTSWITCH_P99_MS))  # fmt: skip
    if knee:
        passed = knee["calls_per_s"] > TARGET_KNEE_CALLS and not knee.get("below_range")
        checks.append(_check("stream_knee", f"softswitch Stream knee (p99 crosses {KNEE_P99_MS:g} ms) > "
                             f"{TARGET_KNEE_CALLS:,.0f} calls/s", knee["calls_per_s"], knee["shown"],
                             TARGET_KNEE_CALLS, passed))  # fmt: skip
    if pauses:
        over = sum(p["lag_over_5ms"] for _, p in pauses)
        worst = max(pauses, key=lambda item: float(item[1]["largest_lag_ms"]))
        shown = f"{over:,} lag samples over 5 ms; largest {worst[1]['largest_lag_shown']} ({worst[0]})"
        checks.append(_check("pauses", TARGET_PAUSE, over, shown, 0, over == 0))
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
    switched = [*results["softswitch"], *results.get("stream_knee", [])]
    for server, summary in [*rows, *(("occ", summary) for summary in switched)]:
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
    if switched:
        lines += ["", "| softswitch phase | offered calls/s | arrivals/s | calls and messages | req/s | p99 ms "
                  "| p99 ms, ends at the hard stop |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for summary in switched:
            calls = ", ".join(f"{name} {count:,}" for name, count in summary["calls"].items())
            stop = summary["latency_ms_by_kind"].get("end_at_stop", {}).get("p99")
            stop_shown = "—" if stop is None else f"{stop:.2f}"
            lines.append(f"| {summary['description']} | {summary['offered_calls_per_s']:,.0f} "
                         f"| {summary['arrivals_per_s']:,.0f} | {calls} | {summary['throughput_per_s']:,.0f} "
                         f"| {summary['latency_ms']['p99']:.2f} | {stop_shown} |")  # fmt: skip
    lines += _knee_lines(results) + _pause_lines(results) + _scaling_lines(results)
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


def _knee_lines(results: Summary) -> list[str]:
    found = results.get("knee") or {}
    if not found:
        return []
    points = ", ".join(f"{p['offered_calls_per_s']:,.0f} → {p['p99_ms']:.2f} ms" for p in found["points"])
    return ["", f"Softswitch `Stream` knee (offered rate where p99 crosses {KNEE_P99_MS:g} ms): {found['shown']} "
            f"(p99 by offered calls/s: {points})"]  # fmt: skip


def _pause_lines(results: Summary) -> list[str]:
    measured = pauses_by_phase(results)
    if not measured:
        return []
    lines = ["", "| OCC phase | event-loop lag samples (every 5 ms) | over 5 ms | largest pause | full collections |",
             "|---|---|---|---|---|"]  # fmt: skip
    for description, pauses in measured:
        lines.append(f"| {description} | {pauses['lag_samples']:,} | {pauses['lag_over_5ms']:,} "
                     f"| {pauses['largest_lag_shown']} | {pauses['full_collections']:,} |")  # fmt: skip
    return lines


def _scaling_lines(results: Summary) -> list[str]:
    rows = results.get("scaling") or []
    if not rows:
        return []
    lines = ["", "| workers | echo req/s | echo µs CPU/req | OCC req/s | OCC µs CPU/req | OCC ÷ echo req/s "
             "| OCC ÷ echo CPU/req |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        echo, occ = row["echo"], row["occ"]
        echo_cpu, occ_cpu = echo.get("server_cpu_us_per_request", 0), occ.get("server_cpu_us_per_request", 0)
        lines.append(f"| {row['workers']} | {echo['throughput_per_s']:,.0f} | {echo_cpu:,.0f} "
                     f"| {occ['throughput_per_s']:,.0f} | {occ_cpu:,.0f} "
                     f"| {occ['throughput_per_s'] / max(echo['throughput_per_s'], 1e-9):.1%} "
                     f"| {occ_cpu / max(echo_cpu, 1e-9):.2f}× |")  # fmt: skip
    return lines


def plots(results: Summary, directory: Path) -> list[str]:
    """Write the PNG plots into ``directory``; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    occ = [*results["phases"].get("occ", {}).values(), *results["softswitch"], *results.get("stream_knee", [])]
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
    open_loop = sorted((s for s in [*results["softswitch"], *results.get("stream_knee", [])]
                        if s["offered_calls_per_s"] > 0),
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
