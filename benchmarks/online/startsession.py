"""The ceiling workloads: ``StartSession`` alone, closed-loop unary, closed-loop ``Stream`` and open-loop Poisson.

The same three run against the echo server and OCC, so their ratio is the share of the framework's ceiling that
OCC reaches. Each runs until ``deadline`` (perf_counter seconds) or until ``budget`` requests were issued.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import grpc

from benchmarks.online.recorder import Recorder, clamp_us
from benchmarks.online.softswitch import code_name, status_name
from occ.v1 import charging_pb2 as pb
from occ.v1 import charging_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from benchmarks.online.loadgen import Workload

CALL_TIMEOUT_S = 10.0
OPEN_LOOP_MAX_IN_FLIGHT = 20_000  # beyond this the server is hopelessly behind: count the request as skipped


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


async def unary_closed(stubs: Sequence[pb_grpc.ChargingStub], workload: Workload, requests: Requests,
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
            recorder.answer("start", code_name(answer.result_code), clock() - started)

    await asyncio.gather(*(caller(stubs[i % len(stubs)]) for i in range(workload.concurrency)))


async def stream_closed(stubs: Sequence[pb_grpc.ChargingStub], workload: Workload, requests: Requests,
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
                    recorder.answer("start", code_name(answer.session.result_code), clock() - started)
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


async def open_loop_starts(stubs: Sequence[pb_grpc.ChargingStub], workload: Workload, requests: Requests,
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
        recorder.answer("start", code_name(answer.result_code), int((now - scheduled) * 1e9), int((now - sent) * 1e9))

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
            recorder.send_lag.record_value(clamp_us(int((sent - scheduled) * 1e9)))
        task = asyncio.ensure_future(one(stubs[n % len(stubs)], requests.session(), scheduled, sent))
        n += 1
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight)
