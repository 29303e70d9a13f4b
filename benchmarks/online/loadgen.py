"""Load generator for ``occ.v1.Charging``: ceiling phases (closed-loop unary, closed-loop ``Stream``, open-loop
Poisson ``StartSession``) and the softswitch simulator (``softswitch.py``), in separate load processes.

``run_phase`` starts P load processes (multiprocessing, spawned: never forked from a process that has loaded gRPC),
each with its own uvloop event loop and grpc.aio channels. Every channel gets its own TCP connection (a local
subchannel pool), so several channels spread over SO_REUSEPORT server workers. The phase goes:

1. each process connects and warms up (a short run of the same traffic, not measured), then reports ready;
2. the parent records the server's CPU time and releases all processes at once;
3. each process runs the phase until its deadline (``seconds``) or its share of ``max_requests``, whichever comes
   first, stops issuing requests, waits for those in flight (softswitch: ends its running calls by ``drain_s``
   later at the latest), and sends back its ``recorder.Recorded``: latency histograms (HdrHistogram, µs), a
   per-second timeline, result-code and error counts and its own CPU time; once a second meanwhile it reports its
   answered and failed requests so far, for the progress line;
4. the parent records the server's CPU time again and merges the histograms.

Modes:

``unary``
    closed loop: ``concurrency`` coroutines per process, each sending one ``StartSession`` and waiting for its
    answer before the next. Latency is the call's round trip.
``stream``
    closed loop over ``Stream``: ``streams`` bidirectional streams per process, each keeping ``concurrency``
    ``StreamRequest`` messages (``start``) in flight, matched to answers by ``correlation_id``.
``open``
    open loop: unary ``StartSession`` calls sent at Poisson arrival times for ``rate`` requests/s per process.
    Latency runs from the *scheduled* send time, so a slow answer or a late send is charged to the measurement
    (no coordinated omission); the send lag (actual − scheduled) is kept in a second histogram to show how much
    of it is the load generator's own timer.

``calls``
    the softswitch simulator: calls (Authorize → StartSession → UpdateSession … → EndSession) and messages, open
    loop at ``rate`` calls/s or closed loop with ``concurrency`` calls per process, unary or over ``streams``
    streams per channel (``transport``).

In the ceiling modes each request is a real ``StartSession`` (CCR-INITIAL): session id ``bench-<tag><process>-<n>``
(distinct in a run), request number 0, a subscriber and a called party drawn at random from the given lists, and
one voice quota for rating group 100 asking for 60 s.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import uvloop
from hdrh.histogram import HdrHistogram

from benchmarks.online.recorder import Recorded, Recorder, merged, quantiles_ms
from benchmarks.online.softswitch import CallMix, StreamClient, Switch, UnaryClient, closed_loop, open_loop
from benchmarks.online.startsession import CALL_TIMEOUT_S, Requests, open_loop_starts, stream_closed, unary_closed
from occ.v1 import charging_pb2_grpc as pb_grpc

CHANNEL_OPTIONS = (
    ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel, not one shared per process
    ("grpc.max_receive_message_length", 65536),
)
READY_TIMEOUT_S = 60.0
START_TIMEOUT_S = 600.0
RESULT_TIMEOUT_S = 120.0
TICK_S = 1.0


@dataclass(frozen=True)
class Workload:
    """What every load process of one phase does (its share of counts and rates is computed per process).

    Attributes:
        target: host:port of the server, loopback only.
        mode: ``unary`` | ``stream`` | ``open`` (the StartSession ceiling phases) | ``calls`` (the softswitch).
        processes: load processes.
        seconds: measured seconds (softswitch: the arrival window; running calls then end within ``drain_s``).
        max_requests: cap on requests (softswitch: arrivals) in all processes together.
        concurrency: unary: calls in flight per process; stream: messages in flight per stream; softswitch closed
            loop: calls at a time per process.
        streams: stream and softswitch-over-Stream modes: streams per channel (ceiling: per process).
        rate: open mode: requests/s; softswitch: calls/s (0: closed loop); in all processes together.
        channels: channels (TCP connections) per process.
        subscribers: account ids requests are drawn from.
        called: called parties of the ceiling phases.
        tag: makes session ids distinct between phases and runs.
        warmup_s: unmeasured traffic before the release.
        seed: seeds every random draw (arrivals, accounts, destinations, durations).
        calls: softswitch mode: the call mix.
        transport: softswitch mode: ``unary`` or ``stream``.
        drain_s: softswitch mode: wall seconds after the arrival window by which every running call is ended.
    """

    target: str
    mode: str
    processes: int
    seconds: float
    max_requests: int
    concurrency: int
    streams: int = 1
    rate: float = 0.0
    channels: int = 1
    subscribers: tuple[str, ...] = ("bench-0000",)
    called: tuple[str, ...] = ("+442079460000",)
    tag: str = "u"
    warmup_s: float = 0.5
    seed: int = 1
    calls: CallMix | None = None
    transport: str = "unary"
    drain_s: float = 10.0


@dataclass
class PhaseResult:
    """The merged records of all load processes of one phase.

    Attributes:
        workload: what ran.
        parts: each process's records.
        histogram: latency of every answered request, µs.
        by_kind: latency per request kind, µs.
    """

    workload: Workload
    parts: list[Recorded]
    histogram: HdrHistogram = field(init=False)
    by_kind: dict[str, HdrHistogram] = field(init=False)

    def __post_init__(self) -> None:
        self.histogram = merged([part.histogram for part in self.parts])
        kinds = sorted({kind for part in self.parts for kind in part.by_kind})
        self.by_kind = {kind: merged([part.by_kind.get(kind, b"") for part in self.parts]) for kind in kinds}

    @property
    def requests(self) -> int:
        return sum(part.requests for part in self.parts)

    @property
    def elapsed_s(self) -> float:
        return max(part.elapsed_s for part in self.parts)

    @property
    def throughput(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def loadgen_cpu_s(self) -> float:
        return sum(part.cpu_s for part in self.parts)

    @property
    def unended(self) -> list[tuple[str, str]]:
        return [item for part in self.parts for item in part.unended]

    def codes(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for part in self.parts:
            for kind, counts in part.codes.items():
                out.setdefault(kind, Counter()).update(counts)
        return {kind: dict(counts.most_common()) for kind, counts in sorted(out.items())}

    def timeline(self) -> list[dict[str, float]]:
        """Per second since the release: answered requests, errors and latency percentiles (ms) of that second."""
        seconds: dict[int, list] = {}
        for part in self.parts:
            for second, answered, errors, encoded in part.timeline:
                entry = seconds.setdefault(second, [0, 0, []])
                entry[0] += answered
                entry[1] += errors
                entry[2].append(encoded)
        rows = []
        for second, (answered, errors, encoded) in sorted(seconds.items()):
            quantiles = quantiles_ms(merged(encoded))
            rows.append({"second": second, "requests": answered, "errors": errors,
                         **{key: quantiles[key] for key in ("p50", "p90", "p99", "p99.9")}})  # fmt: skip
        return rows

    def summary(self) -> dict[str, object]:
        def total(name: str) -> Counter[str]:
            counts: Counter[str] = Counter()
            for part in self.parts:
                counts.update(getattr(part, name))
            return counts

        summary: dict[str, object] = {
            "requests": self.requests,
            "elapsed_s": round(self.elapsed_s, 3),
            "throughput_per_s": round(self.throughput, 1),
            "latency_ms": quantiles_ms(self.histogram),
            "latency_ms_by_kind": {kind: quantiles_ms(histogram) for kind, histogram in self.by_kind.items()},
            "result_codes": self.codes(),
            "errors": dict(total("errors").most_common()),
            "skipped": sum(part.skipped for part in self.parts),
            "loadgen_cpu_s": round(self.loadgen_cpu_s, 3),
            "loadgen_cpu_cores": round(self.loadgen_cpu_s / self.elapsed_s, 3) if self.elapsed_s else 0.0,
            "timeline": self.timeline(),
        }
        if self.workload.mode == "calls":
            summary["calls"] = calls = dict(total("calls").most_common())
            summary["arrivals"] = arrivals = sum(count for outcome, count in calls.items() if outcome != "started")
            summary["arrivals_per_s"] = round(arrivals / self.workload.seconds, 1)
            summary["unended_sessions"] = [list(item) for item in self.unended]
        if self.workload.mode == "open":
            summary["send_lag_ms"] = quantiles_ms(merged([part.send_lag for part in self.parts]))
            summary["service_time_ms"] = quantiles_ms(merged([part.service for part in self.parts]))
        return summary


# --------------------------------------------------------------------------------------------------------------------
# One load process


async def _ticker(recorder: Recorder, index: int, ticks: multiprocessing.Queue) -> None:
    """Report answered and failed requests once a second (for the parent's progress line)."""
    while True:
        await asyncio.sleep(TICK_S)
        if recorder.measuring:
            elapsed_s = time.perf_counter() - recorder.started_s
            ticks.put((index, elapsed_s, recorder.requests, sum(recorder.errors.values())))


async def _run(workload: Workload, index: int, queues: tuple[multiprocessing.Queue, ...],
               start: multiprocessing.Event) -> None:  # fmt: skip
    ready, results, ticks = queues
    channels = [grpc.aio.insecure_channel(workload.target, options=CHANNEL_OPTIONS) for _ in range(workload.channels)]
    clients: list = []
    try:
        await asyncio.wait_for(asyncio.gather(*(channel.channel_ready() for channel in channels)), READY_TIMEOUT_S)
        stubs = [pb_grpc.ChargingStub(channel) for channel in channels]
        recorder = Recorder()
        share = workload.max_requests // workload.processes + (index < workload.max_requests % workload.processes)
        rate = workload.rate / workload.processes
        switch = None
        if workload.mode == "calls":
            assert workload.calls is not None, "the softswitch mode needs a call mix"
            if workload.transport == "stream":
                lifetime_s = READY_TIMEOUT_S + workload.warmup_s + workload.seconds + workload.drain_s + START_TIMEOUT_S
                clients = [StreamClient(stub, lifetime_s) for stub in stubs for _ in range(workload.streams)]
            else:
                clients = [UnaryClient(stub) for stub in stubs]
            tag, seed = f"{workload.tag}{index}", workload.seed + index
            switch = Switch(clients, workload.calls, workload.subscribers, recorder, tag=tag, seed=seed)
        requests = Requests(workload, index)
        issued = 0

        async def run(seconds: float, budget: int, drain_s: float) -> None:
            nonlocal issued
            deadline = time.perf_counter() + seconds
            if switch is not None:
                stop_s = deadline + drain_s
                if rate > 0:
                    seed = workload.seed * 1000 + index + issued
                    await open_loop(switch, rate, deadline_s=deadline, stop_s=stop_s, budget=budget, seed=seed)
                else:
                    await closed_loop(switch, workload.concurrency, deadline_s=deadline, stop_s=stop_s, budget=budget)
                issued += budget
            elif workload.mode == "unary":
                await unary_closed(stubs, workload, requests, recorder, deadline, requests.issued + budget)
            elif workload.mode == "stream":
                await stream_closed(stubs, workload, requests, recorder, deadline, requests.issued + budget)
            elif workload.mode == "open":
                await open_loop_starts(stubs, workload, requests, recorder, deadline, requests.issued + budget, rate)
            else:
                raise ValueError(f"unknown mode {workload.mode!r}")

        if workload.warmup_s > 0:
            await run(workload.warmup_s, max(share // 10, 100), 0.0)
        ready.put(index)
        if not await asyncio.to_thread(start.wait, START_TIMEOUT_S):
            raise TimeoutError("never released")
        recorder.start()
        ticker = asyncio.ensure_future(_ticker(recorder, index, ticks))
        cpu0 = time.process_time()
        await run(workload.seconds, share, workload.drain_s)
        ticker.cancel()
        unended = switch.unended if switch is not None else []
        results.put((index, recorder.recorded(time.process_time() - cpu0, workload.mode == "open", unended)))
    finally:
        await asyncio.gather(*(client.close() for client in clients))
        await asyncio.gather(*(channel.close() for channel in channels))


def process_main(workload: Workload, index: int, queues: tuple[multiprocessing.Queue, ...],
                 start: multiprocessing.Event) -> None:  # fmt: skip
    """Entry point of one load process."""
    try:
        uvloop.run(_run(workload, index, queues, start))
    except BaseException as error:
        queues[0].put(f"process {index} failed: {error!r}")
        queues[1].put(f"process {index} failed: {error!r}")
        raise


# --------------------------------------------------------------------------------------------------------------------
# The parent


def _collect(messages: multiprocessing.Queue, processes: list, timeout_s: float, step: str,
             on_wait: Callable[[], None] = lambda: None) -> list:  # fmt: skip
    """One message from each load process within ``timeout_s``; a failure message or a dead process raises."""
    deadline = time.monotonic() + timeout_s
    collected: list = []
    while len(collected) < len(processes):
        on_wait()
        try:
            message = messages.get(timeout=0.5)
        except queue.Empty:
            dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a load process died during the {step} (exit code {dead[0]})") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"load processes did not finish the {step} within {timeout_s:g} s") from None
            continue
        if isinstance(message, str):
            raise RuntimeError(message)
        collected.append(message)
    return collected


def run_phase(workload: Workload, *, on_release: Callable[[], None], on_finish: Callable[[], None],
              on_progress: Callable[[float, int, int], None] = lambda *_: None) -> PhaseResult:  # fmt: skip
    """Run one phase in ``workload.processes`` load processes; ``on_release``/``on_finish`` bracket the measurement
    (the caller samples the server's CPU time there); ``on_progress(elapsed_s, requests, errors)`` gets the
    seconds since the release and the running totals about once a second."""
    context = multiprocessing.get_context("spawn")
    ready, results, ticks, start = context.Queue(), context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=process_main, args=(workload, i, (ready, results, ticks), start), daemon=True)
        for i in range(workload.processes)
    ]
    latest: dict[int, tuple[float, int, int]] = {}

    def drain_ticks() -> None:
        changed = False
        while True:
            try:
                index, elapsed_s, answered, errors = ticks.get_nowait()
            except queue.Empty:
                break
            latest[index], changed = (elapsed_s, answered, errors), True
        if changed:
            values = latest.values()
            on_progress(max(v[0] for v in values), sum(v[1] for v in values), sum(v[2] for v in values))

    for process in processes:
        process.start()
    try:
        warmup_timeout_s = READY_TIMEOUT_S + workload.warmup_s + workload.drain_s + 2 * CALL_TIMEOUT_S
        _collect(ready, processes, warmup_timeout_s, "warm-up")
        on_release()
        start.set()
        timeout_s = workload.seconds + workload.drain_s + RESULT_TIMEOUT_S
        collected = _collect(results, processes, timeout_s, "phase", drain_ticks)
        on_finish()
    except BaseException:
        for process in processes:
            if process.is_alive():
                process.terminate()
        raise
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        ticks.close()
    return PhaseResult(workload, [part for _, part in sorted(collected, key=lambda item: item[0])])
