"""The ``diameter`` phase of ``occ bench``: the same call work over OCC's Diameter gateway and over gRPC, one after
the other in the same run, against the same server and accounts.

A call is three request/answer pairs: INITIAL asking 60 s of voice, UPDATE reporting 30 s and asking 60 s more,
TERMINATE reporting 20 s (CCR-I/U/T with one MSCC over Diameter; ``StartSession``/``UpdateSession``/``EndSession``
over gRPC). ``concurrency`` calls run back to back (a closed loop) for ``seconds`` or ``max_calls`` calls, whichever
comes first, from this process's event loop (one TCP connection per transport), so both transports pay the same
Python client. Figures per transport: pairs/s, calls/s, latency percentiles per request kind (HdrHistogram), result
codes, server CPU per pair; then Diameter ÷ gRPC. Every call is ended (TERMINATE / EndSession), so the correctness
phase can demand that these accounts have no open session left; a call whose request failed is listed as unended.
The money check: the accounts' balances (``GetBalance``) must have dropped by exactly the number of completed calls,
both transports together, times the cost of one (the ``cost_micros`` gRPC's ``EndSession`` answers): a request
charged twice, or not at all, over either transport is a violation.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from benchmarks.online.accounts import RICH_TOP_UP_MICROS, AccountSpec
from benchmarks.online.diameter_client import INITIAL, TERMINATE, UPDATE, DiameterClient, voice_ccr
from benchmarks.online.machine import progress
from benchmarks.online.measure import Summary, cpu_window
from benchmarks.online.recorder import clamp_us, new_histogram, quantiles_ms
from occ.v1 import charging_pb2 as pb
from occ.v1 import charging_pb2_grpc as pb_grpc

CLIENT_HOST, CLIENT_REALM = "bench.occ.test", "bench.test"
OCC_REALM = "localdomain"  # occ serve's default Origin-Realm (the gateway does not insist on Destination-Realm)
CALLED = "447700900123"  # a UK mobile on the example tariff: the same price at any hour
REQUESTED_S, UPDATE_USED_S, END_USED_S = 60, 30, 20
VOICE_RATING_GROUP = 100
REQUEST_TIMEOUT_S = 10.0
KINDS = ("start", "update", "end")


def serve_options(port: int) -> list[str]:
    """What ``occ serve`` needs to take this phase's Diameter client: the port, and the client as an allowed peer."""
    return ["--diameter-port", str(port), "--diameter-peers", f"{CLIENT_HOST}=127.0.0.1"]


def accounts(count: int, run_id: str) -> list[AccountSpec]:
    """The phase's own accounts: numeric ids (an E.164 Subscription-Id names them), rich, fresh for every run."""
    return [AccountSpec(f"99{run_id}{i:05d}", RICH_TOP_UP_MICROS) for i in range(count)]


@dataclass(frozen=True)
class CallLoad:
    """Attributes:
    seconds: how long each transport is loaded.
    concurrency: calls in flight, each placed as soon as the last ended.
    subscribers: accounts the calls are charged to (round robin).
    called: the called number of every call.
    max_calls: cap per transport.
    tag: makes session ids unique to this run.
    """

    seconds: float
    concurrency: int
    subscribers: Sequence[str]
    called: str
    max_calls: int
    tag: str


@dataclass
class Tally:
    """What one transport's loop recorded: latency per request kind (µs), result codes, errors, unended calls."""

    histograms: dict[str, Any] = field(default_factory=lambda: {kind: new_histogram() for kind in KINDS})
    codes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unended: list[tuple[str, str]] = field(default_factory=list)
    calls: int = 0
    call_costs: Counter[int] = field(default_factory=Counter)

    def summary(self, elapsed_s: float, client_cpu_s: float) -> Summary:
        pairs = sum(h.get_total_count() for h in self.histograms.values())
        everything = new_histogram()
        for histogram in self.histograms.values():
            everything.add(histogram)
        return {
            "pairs": pairs, "calls": self.calls, "elapsed_s": round(elapsed_s, 3),
            "pairs_per_s": round(pairs / elapsed_s, 1) if elapsed_s else 0.0,
            "calls_per_s": round(self.calls / elapsed_s, 1) if elapsed_s else 0.0,
            "latency_ms": quantiles_ms(everything) if pairs else {},
            "latency_ms_by_kind": {k: quantiles_ms(h) for k, h in self.histograms.items() if h.get_total_count()},
            "codes": dict(self.codes), "errors": dict(self.errors), "unended": self.unended,
            "client_cpu_us_per_pair": round(client_cpu_s * 1e6 / pairs, 1) if pairs else None,
            "call_costs_micros": dict(self.call_costs),
        }  # fmt: skip


Exchange = Callable[[str, str, int, int, int, int | None], Awaitable[tuple[int, int | None]]]
"""(kind, session id, subscriber index, request number, requested s, used s) → (result code, the session's cost in
micro-units where the answer says it, else None)."""


async def _closed_loop(load: CallLoad, exchange: Exchange, tally: Tally, prefix: str) -> float:
    """Run ``load.concurrency`` callers until the time or the call budget runs out; the elapsed seconds."""
    numbers = itertools.count()
    deadline = time.perf_counter() + load.seconds

    async def timed(kind: str, *args: Any) -> int | None:
        began = time.perf_counter_ns()
        try:
            code, cost = await asyncio.wait_for(exchange(kind, *args), REQUEST_TIMEOUT_S)
        except (TimeoutError, grpc.RpcError, ConnectionError, OSError) as error:
            tally.errors[f"{kind}:{type(error).__name__}"] += 1
            return None
        tally.histograms[kind].record_value(clamp_us(time.perf_counter_ns() - began))
        tally.codes[f"{kind}:{code}"] += 1
        if kind == "end" and cost is not None:
            tally.call_costs[cost] += 1
        return code

    async def caller() -> None:
        while time.perf_counter() < deadline and (n := next(numbers)) < load.max_calls:
            who = n % len(load.subscribers)
            session_id = f"{prefix};{load.tag};{n}"
            code = await timed("start", session_id, who, 0, REQUESTED_S, None)
            if code != 2001:
                if code is None:
                    tally.unended.append((load.subscribers[who], session_id))
                continue
            update = await timed("update", session_id, who, 1, REQUESTED_S, UPDATE_USED_S)
            end = await timed("end", session_id, who, 2, 0, END_USED_S)
            if update is None or end is None:
                tally.unended.append((load.subscribers[who], session_id))
            tally.calls += 1

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(load.concurrency)))
    return time.perf_counter() - began


async def over_diameter(port: int, load: CallLoad, origin_realm: str) -> Summary:
    client = DiameterClient(CLIENT_HOST, CLIENT_REALM)
    await client.connect("127.0.0.1", port)
    types = {"start": INITIAL, "update": UPDATE, "end": TERMINATE}

    async def exchange(kind: str, session_id: str, who: int, number: int, requested_s: int, used_s: int | None) -> int:
        request = voice_ccr(CLIENT_HOST, CLIENT_REALM, session_id, types[kind], number, load.subscribers[who],
                            load.called, destination_realm=origin_realm, requested_s=requested_s,
                            used_s=used_s)  # fmt: skip
        return (await client.request(request)).result_code, None

    tally, cpu = Tally(), time.process_time()
    try:
        elapsed = await _closed_loop(load, exchange, tally, CLIENT_HOST)
    finally:
        await client.close()
    return tally.summary(elapsed, time.process_time() - cpu)


async def over_grpc(target: str, load: CallLoad) -> Summary:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ChargingStub(channel)
        methods = {"start": stub.StartSession, "update": stub.UpdateSession, "end": stub.EndSession}

        async def exchange(kind: str, session_id: str, who: int, number: int, requested_s: int,
                           used_s: int | None) -> int:  # fmt: skip
            quota = pb.QuotaRequest(rating_group=VOICE_RATING_GROUP, service=pb.VOICE, requested_units=requested_s,
                                    used_units=used_s or 0)  # fmt: skip
            request = pb.SessionRequest(session_id=session_id, request_number=number, subscriber=load.subscribers[who],
                                        called_party=load.called, quotas=[quota])  # fmt: skip
            answer = await methods[kind](request, timeout=REQUEST_TIMEOUT_S)
            return answer.result_code, answer.cost_micros

        tally, cpu = Tally(), time.process_time()
        elapsed = await _closed_loop(load, exchange, tally, "grpc")
        return tally.summary(elapsed, time.process_time() - cpu)


def _measured(name: str, pid: int | None, run: Callable[[], Awaitable[Summary]]) -> Summary:
    start, stop = cpu_window(pid)
    start()
    result = asyncio.run(run())
    window = stop()
    if "server_cpu_s" in window and result["pairs"]:
        result["server_cpu_us_per_pair"] = round(window["server_cpu_s"] * 1e6 / result["pairs"], 1)
    latency = result.get("latency_ms", {})
    progress(f"  {name}: {result['pairs_per_s']:,.0f} pairs/s ({result['calls_per_s']:,.0f} calls/s), "
             f"p99 {latency.get('p99', 0):.2f} ms, errors {sum(result['errors'].values())}")  # fmt: skip
    return result


async def total_balance(target: str, subscribers: Sequence[str]) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ChargingStub(channel)
        total = 0
        for subscriber in subscribers:
            total += (
                await stub.GetBalance(pb.BalanceRequest(subscriber=subscriber), timeout=REQUEST_TIMEOUT_S)
            ).balance_micros
    return total


def money_check(diameter: Summary, grpc_side: Summary, charged_micros: int) -> Summary:
    """What the calls of both transports should have cost against what the accounts were charged."""
    costs = {int(cost) for cost in grpc_side["call_costs_micros"]}
    calls = diameter["calls"] + grpc_side["calls"]
    if len(costs) != 1 or diameter["unended"] or grpc_side["unended"]:
        return {"status": "not checked", "reason": f"call costs {sorted(costs)}, unended calls", "violations": 0}
    expected = calls * costs.pop()
    return {"status": "exact" if expected == charged_micros else "mismatch", "calls": calls,
            "expected_micros": expected, "charged_micros": charged_micros,
            "violations": int(expected != charged_micros)}  # fmt: skip


def run(
    grpc_target: str, diameter_port: int, pid: int | None, load: CallLoad, origin_realm: str = OCC_REALM
) -> Summary:
    """Both transports, Diameter first, their ratios and the money check; progress on stderr."""
    progress(f"diameter: {load.concurrency} calls in flight, {load.seconds:g} s per transport (CCR-I/U/T vs "
             f"Start/Update/EndSession) …")  # fmt: skip
    before = asyncio.run(total_balance(grpc_target, load.subscribers))
    diameter = _measured("Diameter", pid, lambda: over_diameter(diameter_port, load, origin_realm))
    grpc_side = _measured("gRPC", pid, lambda: over_grpc(grpc_target, load))
    money = money_check(diameter, grpc_side, before - asyncio.run(total_balance(grpc_target, load.subscribers)))
    progress(f"  money: {money}")
    ratios: Summary = {}
    if grpc_side["pairs_per_s"]:
        ratios["pairs_per_s"] = round(diameter["pairs_per_s"] / grpc_side["pairs_per_s"], 3)
    p99_d, p99_g = diameter.get("latency_ms", {}).get("p99"), grpc_side.get("latency_ms", {}).get("p99")
    if p99_d and p99_g:
        ratios["p99"] = round(p99_d / p99_g, 3)
    cpu_d, cpu_g = diameter.get("server_cpu_us_per_pair"), grpc_side.get("server_cpu_us_per_pair")
    if cpu_d and cpu_g:
        ratios["server_cpu_per_pair"] = round(cpu_d / cpu_g, 3)
    progress(f"  Diameter ÷ gRPC: {ratios}")
    return {"diameter": diameter, "grpc": grpc_side, "diameter_over_grpc": ratios, "money": money,
            "work": f"CCR-I {REQUESTED_S} s, CCR-U {UPDATE_USED_S} s used + {REQUESTED_S} s, "
                    f"CCR-T {END_USED_S} s used"}  # fmt: skip


def markdown(result: Summary) -> list[str]:
    """The phase's table for ``summary.md``."""
    lines = ["", "## Diameter gateway vs gRPC (same calls, same run)", "",
             f"Work per call: {result['work']}.", "",
             "| transport | pairs/s | calls/s | p50 ms | p99 ms | p99 I / U / T ms | server CPU µs/pair | errors |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]  # fmt: skip
    for name in ("diameter", "grpc"):
        side = result[name]
        latency, kinds = side.get("latency_ms", {}), side.get("latency_ms_by_kind", {})
        per_kind = " / ".join(f"{kinds[k]['p99']:.2f}" if k in kinds else "–" for k in KINDS)
        lines.append(f"| {name} | {side['pairs_per_s']:,.0f} | {side['calls_per_s']:,.0f} | "
                     f"{latency.get('p50', 0):.2f} | {latency.get('p99', 0):.2f} | {per_kind} | "
                     f"{side.get('server_cpu_us_per_pair', '–')} | {sum(side['errors'].values())} |")  # fmt: skip
    lines.append(f"\nDiameter ÷ gRPC: {result['diameter_over_grpc']}; money check: {result['money']}")
    return lines
