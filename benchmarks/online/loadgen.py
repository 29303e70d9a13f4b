"""Load generator for ``occ.v1.Charging``: closed-loop unary, closed-loop ``Stream`` and open-loop Poisson arrivals.

``run_phase`` starts P load processes (multiprocessing, spawned: never forked from a process that has loaded gRPC),
each with its own uvloop event loop and grpc.aio channels. Every channel gets its own TCP connection (a local
subchannel pool), so several channels spread over SO_REUSEPORT server workers. The phase goes:

1. each process connects and warms up (a short run of the same traffic, not measured), then reports ready;
2. the parent records the server's CPU time and releases all processes at once;
3. each process runs the phase until its deadline (``seconds``) or its share of ``max_requests``, whichever comes
   first, stops issuing requests, waits for those in flight, and sends back its latency histogram (HdrHistogram,
   microseconds, 3 significant digits, encoded), its result-code and error counts and its own CPU time;
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

Each request is a real ``StartSession`` (CCR-INITIAL): session id ``bench-<tag><process>-<n>`` (distinct in a run),
request number 0, a subscriber and a called party drawn at random from the given lists, and one voice quota for
rating group 100 asking for 60 s.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
import uvloop
from hdrh.histogram import HdrHistogram

from occ.v1 import charging_pb2 as pb
from occ.v1 import charging_pb2_grpc as pb_grpc

HIST_MIN_US, HIST_MAX_US, HIST_DIGITS = 1, 60_000_000, 3
CHANNEL_OPTIONS = (
    ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel, not one shared per process
    ("grpc.max_receive_message_length", 65536),
)
CALL_TIMEOUT_S = 10.0
OPEN_LOOP_MAX_IN_FLIGHT = 20_000  # beyond this the server is hopelessly behind: count the request as skipped
READY_TIMEOUT_S = 60.0
START_TIMEOUT_S = 600.0
RESULT_TIMEOUT_S = 120.0


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HIST_MIN_US, HIST_MAX_US, HIST_DIGITS)


@dataclass(frozen=True)
class Workload:
    """What every load process of one phase does (its share of counts and rates is computed per process)."""

    target: str  # host:port, loopback only
    mode: str  # "unary" | "stream" | "open"
    processes: int
    seconds: float
    max_requests: int  # in all processes together
    concurrency: int  # unary: in-flight calls per process; stream: in-flight messages per stream
    streams: int = 1  # stream mode: streams per process
    rate: float = 0.0  # open mode: requests/s in all processes together
    channels: int = 1  # channels (TCP connections) per process
    subscribers: tuple[str, ...] = ("bench-0000",)
    called: tuple[str, ...] = ("+442079460000",)
    tag: str = "u"  # makes session ids distinct between phases of a run
    warmup_s: float = 0.5
    seed: int = 1


@dataclass
class ProcessResult:
    index: int
    requests: int = 0  # answered, whatever the result code
    errors: Counter[str] = field(default_factory=Counter)  # gRPC status (unary) or stream error, by name
    codes: Counter[str] = field(default_factory=Counter)  # SessionAnswer.result_code, by name
    skipped: int = 0  # open loop: not sent because too many were in flight
    elapsed_s: float = 0.0  # release → last answer
    cpu_s: float = 0.0  # this process's CPU time over the same span
    histogram: bytes = b""  # latency, µs
    send_lag: bytes = b""  # open loop: actual − scheduled send, µs
    service: bytes = b""  # open loop: answer − actual send, µs


@dataclass
class PhaseResult:
    workload: Workload
    requests: int
    errors: Counter[str]
    codes: Counter[str]
    skipped: int
    elapsed_s: float
    loadgen_cpu_s: float
    histogram: HdrHistogram
    send_lag: HdrHistogram | None
    service: HdrHistogram | None

    @property
    def throughput(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, percentile: float) -> float:
        return self.histogram.get_value_at_percentile(percentile) / 1000

    def summary(self) -> dict[str, object]:
        def quantiles(histogram: HdrHistogram) -> dict[str, float]:
            values = {f"p{p:g}": histogram.get_value_at_percentile(p) / 1000 for p in (50, 90, 99, 99.9)}
            return {**values, "max": histogram.get_max_value() / 1000, "mean": histogram.get_mean_value() / 1000}

        summary: dict[str, object] = {
            "requests": self.requests,
            "elapsed_s": round(self.elapsed_s, 3),
            "throughput_per_s": round(self.throughput, 1),
            "latency_ms": quantiles(self.histogram),
            "result_codes": dict(self.codes.most_common()),
            "errors": dict(self.errors.most_common()),
            "skipped": self.skipped,
            "loadgen_cpu_s": round(self.loadgen_cpu_s, 3),
            "loadgen_cpu_cores": round(self.loadgen_cpu_s / self.elapsed_s, 3) if self.elapsed_s else 0.0,
        }
        if self.send_lag is not None and self.service is not None:
            summary["send_lag_ms"] = quantiles(self.send_lag)
            summary["service_time_ms"] = quantiles(self.service)  # from the actual send, for comparison
        return summary


# --------------------------------------------------------------------------------------------------------------------
# Requests


class Requests:
    """Builds the StartSession requests of one process: distinct session ids, random subscriber and called party."""

    def __init__(self, workload: Workload, index: int) -> None:
        self.index = index
        self._prefix = f"bench-{workload.tag}{index}-"
        self._subscribers = workload.subscribers
        self._called = workload.called
        self._random = random.Random(workload.seed * 1000 + index)
        self._quota = pb.QuotaRequest(rating_group=100, service=pb.VOICE, requested_units=60)
        self.issued = 0

    def session(self) -> pb.SessionRequest:
        n = self.issued
        self.issued += 1
        choice = self._random.choice
        return pb.SessionRequest(
            session_id=f"{self._prefix}{n}",
            request_number=0,
            subscriber=choice(self._subscribers),
            called_party=choice(self._called),
            quotas=(self._quota,),
        )


def _code_name(code: int) -> str:
    try:
        return pb.ResultCode.Name(code)
    except ValueError:
        return str(code)


def _us(nanoseconds: int) -> int:
    """A duration in whole microseconds, clamped to the histogram's range."""
    return max(HIST_MIN_US, min(nanoseconds // 1000, HIST_MAX_US))


class Recorder:
    """Counts and latencies of one process; ``measuring`` is false during the warm-up."""

    def __init__(self) -> None:
        self.histogram = new_histogram()
        self.send_lag = new_histogram()
        self.service = new_histogram()
        self.codes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.requests = 0
        self.skipped = 0
        self.last_answer = 0.0
        self.measuring = False

    def answer(self, result_code: int, latency_ns: int, service_ns: int | None = None) -> None:
        if self.measuring:
            self.requests += 1
            self.codes[_code_name(result_code)] += 1
            self.histogram.record_value(_us(latency_ns))
            if service_ns is not None:
                self.service.record_value(_us(service_ns))
            self.last_answer = time.perf_counter()

    def error(self, name: str) -> None:
        if self.measuring:
            self.errors[name] += 1
            self.last_answer = time.perf_counter()


# --------------------------------------------------------------------------------------------------------------------
# The three modes. Each runs until ``deadline`` (perf_counter seconds) or until ``budget`` requests were issued.


async def _unary_closed(stubs: Sequence[pb_grpc.ChargingStub], workload: Workload, requests: Requests,
                        recorder: Recorder, deadline: float, budget: int) -> None:  # fmt: skip
    async def caller(stub: pb_grpc.ChargingStub) -> None:
        clock = time.perf_counter_ns
        deadline_ns = int(deadline * 1e9)
        while requests.issued < budget and clock() < deadline_ns:
            request = requests.session()
            started = clock()
            try:
                answer = await stub.StartSession(request, timeout=CALL_TIMEOUT_S)
            except grpc.aio.AioRpcError as error:
                recorder.error(error.code().name)
                continue
            recorder.answer(answer.result_code, clock() - started)

    await asyncio.gather(*(caller(stubs[i % len(stubs)]) for i in range(workload.concurrency)))


async def _stream_closed(stubs: Sequence[pb_grpc.ChargingStub], workload: Workload, requests: Requests,
                         recorder: Recorder, deadline: float, budget: int) -> None:  # fmt: skip
    async def one_stream(stub: pb_grpc.ChargingStub) -> None:
        clock = time.perf_counter_ns
        deadline_ns = int(deadline * 1e9)
        call = stub.Stream(timeout=max(deadline - time.perf_counter(), 0) + 4 * CALL_TIMEOUT_S)
        sent: dict[int, int] = {}  # correlation id → send time (ns)
        correlation = 0

        async def send() -> bool:
            nonlocal correlation
            if requests.issued >= budget or clock() >= deadline_ns:
                return False
            correlation += 1
            sent[correlation] = clock()
            await call.write(pb.StreamRequest(correlation_id=correlation, start=requests.session()))
            return True

        try:
            await exchange(call, sent, send)
        finally:
            call.cancel()

    async def exchange(call: grpc.aio.StreamStreamCall, sent: dict[int, int], send: Callable) -> None:
        clock = time.perf_counter_ns
        try:
            for _ in range(workload.concurrency):
                if not await send():
                    break
            while sent:
                answer = await call.read()
                if answer is grpc.aio.EOF:
                    for _ in sent:
                        recorder.error("stream ended early")
                    return
                started = sent.pop(answer.correlation_id, None)
                if started is None:
                    continue  # server-initiated (abort, re-auth) or unknown: not an answer to us
                kind = answer.WhichOneof("answer")
                if kind == "session":
                    recorder.answer(answer.session.result_code, clock() - started)
                elif kind == "error":
                    recorder.error(f"stream {status_name(answer.error.grpc_code)}")
                else:
                    recorder.error(f"stream answer {kind}")
                await send()
        except grpc.aio.AioRpcError as error:
            for _ in sent:
                recorder.error(error.code().name)
            return
        try:
            # Every answer is in: close our side and let the server end the stream (EOF, then its status).
            await call.done_writing()
            while await asyncio.wait_for(call.read(), CALL_TIMEOUT_S) is not grpc.aio.EOF:
                pass
        except (grpc.aio.AioRpcError, TimeoutError):
            pass  # nothing was pending: the closing handshake does not count

    await asyncio.gather(*(one_stream(stubs[i % len(stubs)]) for i in range(workload.streams)))


def status_name(value: int) -> str:
    """The name of a gRPC status code given as an integer (``StreamError.grpc_code``)."""
    for status in grpc.StatusCode:
        if status.value[0] == value:
            return status.name
    return str(value)


async def _open_loop(stubs: Sequence[pb_grpc.ChargingStub], workload: Workload, requests: Requests,
                     recorder: Recorder, deadline: float, budget: int, rate: float) -> None:  # fmt: skip
    """Poisson arrivals at ``rate``/s: the gaps are exponential, drawn ahead of time from a fixed seed."""
    gaps = random.Random(f"{workload.seed}-{requests.index}-{requests.issued}")  # its own arrivals per process
    clock = time.perf_counter
    in_flight: set[asyncio.Task[None]] = set()

    async def one(stub: pb_grpc.ChargingStub, request: pb.SessionRequest, scheduled: float, sent: float) -> None:
        try:
            answer = await stub.StartSession(request, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            recorder.error(error.code().name)
            return
        now = clock()
        recorder.answer(answer.result_code, int((now - scheduled) * 1e9), int((now - sent) * 1e9))

    scheduled = clock()
    n = 0
    while requests.issued < budget:
        scheduled += gaps.expovariate(rate)
        if scheduled >= deadline:
            break
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= OPEN_LOOP_MAX_IN_FLIGHT:
            if recorder.measuring:
                recorder.skipped += 1
            continue
        sent = clock()
        if recorder.measuring:
            recorder.send_lag.record_value(_us(int((sent - scheduled) * 1e9)))
        task = asyncio.ensure_future(one(stubs[n % len(stubs)], requests.session(), scheduled, sent))
        n += 1
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight)


async def _run(workload: Workload, index: int, ready: multiprocessing.Queue, start: multiprocessing.Event,
               results: multiprocessing.Queue) -> None:  # fmt: skip
    channels = [grpc.aio.insecure_channel(workload.target, options=CHANNEL_OPTIONS) for _ in range(workload.channels)]
    try:
        await asyncio.wait_for(asyncio.gather(*(channel.channel_ready() for channel in channels)), READY_TIMEOUT_S)
        stubs = [pb_grpc.ChargingStub(channel) for channel in channels]
        requests, recorder = Requests(workload, index), Recorder()
        share = workload.max_requests // workload.processes + (index < workload.max_requests % workload.processes)
        rate = workload.rate / workload.processes

        async def run(seconds: float, budget: int) -> None:
            deadline = time.perf_counter() + seconds
            if workload.mode == "unary":
                await _unary_closed(stubs, workload, requests, recorder, deadline, budget)
            elif workload.mode == "stream":
                await _stream_closed(stubs, workload, requests, recorder, deadline, budget)
            elif workload.mode == "open":
                await _open_loop(stubs, workload, requests, recorder, deadline, budget, rate)
            else:
                raise ValueError(f"unknown mode {workload.mode!r}")

        if workload.warmup_s > 0:
            await run(workload.warmup_s, requests.issued + max(share // 10, 100))
        ready.put(index)
        if not await asyncio.to_thread(start.wait, START_TIMEOUT_S):
            raise TimeoutError("never released")
        recorder.measuring = True
        cpu0, t0 = time.process_time(), time.perf_counter()
        await run(workload.seconds, requests.issued + share)
        recorder.last_answer = recorder.last_answer or time.perf_counter()
        result = ProcessResult(
            index=index,
            requests=recorder.requests,
            errors=recorder.errors,
            codes=recorder.codes,
            skipped=recorder.skipped,
            elapsed_s=max(recorder.last_answer, t0 + 1e-9) - t0,
            cpu_s=time.process_time() - cpu0,
            histogram=recorder.histogram.encode(),
            send_lag=recorder.send_lag.encode() if workload.mode == "open" else b"",
            service=recorder.service.encode() if workload.mode == "open" else b"",
        )
        results.put(result)
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))


def process_main(workload: Workload, index: int, ready: multiprocessing.Queue, start: multiprocessing.Event,
                 results: multiprocessing.Queue) -> None:  # fmt: skip
    """Entry point of one load process."""
    try:
        uvloop.run(_run(workload, index, ready, start, results))
    except BaseException as error:
        ready.put(f"process {index} failed: {error!r}")
        results.put(f"process {index} failed: {error!r}")
        raise


def _collect(messages: multiprocessing.Queue, processes: list, timeout_s: float, step: str) -> list:
    """One message from each load process within ``timeout_s``; a failure message or a dead process raises."""
    deadline = time.monotonic() + timeout_s
    collected: list = []
    while len(collected) < len(processes):
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


def run_phase(workload: Workload, *, on_release: Callable[[], None], on_finish: Callable[[], None]) -> PhaseResult:
    """Run one phase in ``workload.processes`` load processes; ``on_release``/``on_finish`` bracket the measurement
    (the caller samples the server's CPU time there)."""
    context = multiprocessing.get_context("spawn")
    ready, results, start = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=process_main, args=(workload, i, ready, start, results), daemon=True)
        for i in range(workload.processes)
    ]
    for process in processes:
        process.start()
    try:
        _collect(ready, processes, READY_TIMEOUT_S + workload.warmup_s + 2 * CALL_TIMEOUT_S, "warm-up")
        on_release()
        start.set()
        collected: list[ProcessResult] = _collect(results, processes, workload.seconds + RESULT_TIMEOUT_S, "phase")
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

    histogram, send_lag, service = new_histogram(), new_histogram(), new_histogram()
    errors: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    for part in collected:
        histogram.decode_and_add(part.histogram)
        if part.send_lag:
            send_lag.decode_and_add(part.send_lag)
            service.decode_and_add(part.service)
        errors.update(part.errors)
        codes.update(part.codes)
    return PhaseResult(
        workload=workload,
        requests=sum(part.requests for part in collected),
        errors=errors,
        codes=codes,
        skipped=sum(part.skipped for part in collected),
        elapsed_s=max(part.elapsed_s for part in collected),
        loadgen_cpu_s=sum(part.cpu_s for part in collected),
        histogram=histogram,
        send_lag=send_lag if workload.mode == "open" else None,
        service=service if workload.mode == "open" else None,
    )
