"""The softswitch simulator: places calls on OCC the way a switch does, unary or over ``Stream``.

A call is ``Authorize`` (may it go ahead?) → ``StartSession`` (reserve a first quota) → ``UpdateSession`` whenever
the grant or its validity time is about to run out (report the usage, ask for more) → ``EndSession`` (report the
last usage) when the caller hangs up, when a final-unit indication says the credit is spent, or when the run's hard
stop comes. A share of arrivals are messages: one ``ChargeEvent`` (direct debit of one SMS). Calls are refused for
credit on the accounts created short of it (``accounts.py``), so the 4012 path is part of the load.

Time is compressed by ``time_scale``: a 90-second call lasts 90 / ``time_scale`` wall seconds and reports 90 seconds
of usage, so a run of seconds sees the full request mix of long calls (updates included). Every request's latency
runs from the moment it was due (the arrival for ``Authorize``, the report time for an update or end), so a late
answer or a late send counts against the server and the load generator alike, never silently.

Arrivals are open-loop Poisson at ``rate`` calls/s (``rate`` > 0) or, with ``rate`` 0, a closed loop of
``concurrency`` calls per load process placed back to back. Both stop placing calls at the phase deadline and end
every running call by ``drain_s`` later at the latest, so a phase always stops by itself.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from benchmarks.online.recorder import Recorder
from benchmarks.online.traffic import Destinations, call_duration_s, next_step, poisson_arrivals
from occ.v1 import charging_pb2 as pb
from occ.v1 import charging_pb2_grpc as pb_grpc

CALL_TIMEOUT_S = 10.0
MAX_CALLS_IN_FLIGHT = 20_000  # per process: beyond this the server is hopelessly behind; the arrival is skipped
VOICE_RATING_GROUP = 100
MESSAGE_RATING_GROUP = 200


@dataclass(frozen=True)
class CallMix:
    """What the simulated switch's calls look like.

    Attributes:
        destinations: where calls and messages go (the tariff's priced voice prefixes).
        mean_call_s: mean holding time, simulated seconds (exponential).
        max_call_s: longest call, simulated seconds.
        quota_s: seconds of voice asked for on start and on every update.
        guard_s: how long before the grant runs out the switch reports (simulated seconds).
        time_scale: simulated seconds per wall second.
        message_share: share of arrivals that are a message (one ChargeEvent) rather than a call.
    """

    destinations: Destinations
    mean_call_s: float = 90.0
    max_call_s: int = 3600
    quota_s: int = 60
    guard_s: int = 5
    time_scale: float = 30.0
    message_share: float = 0.1


class StreamFailed(Exception):
    """A request on a Stream got an error answer or the stream broke; ``args[0]`` names it."""


class Client:
    """Sends one request of a kind (``authorize``, ``start``, ``update``, ``end``, ``event``) and returns its answer."""

    async def send(self, kind: str, request: Any) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class UnaryClient(Client):
    def __init__(self, stub: pb_grpc.ChargingStub) -> None:
        self._methods = {
            "authorize": stub.Authorize,
            "start": stub.StartSession,
            "update": stub.UpdateSession,
            "end": stub.EndSession,
            "event": stub.ChargeEvent,
        }

    async def send(self, kind: str, request: Any) -> Any:
        return await self._methods[kind](request, timeout=CALL_TIMEOUT_S)


class StreamClient(Client):
    """One bidirectional ``Stream``: requests written in turn, answers matched to them by correlation id."""

    def __init__(self, stub: pb_grpc.ChargingStub, lifetime_s: float) -> None:
        self._call = stub.Stream(timeout=lifetime_s)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._write_lock = asyncio.Lock()
        self._reader = asyncio.ensure_future(self._read())
        self.pushed = 0  # server-initiated messages (aborts, re-auth requests)

    async def _read(self) -> None:
        failure = "stream ended early"
        try:
            while (answer := await self._call.read()) is not grpc.aio.EOF:
                future = self._pending.pop(answer.correlation_id, None)
                if future is None:
                    self.pushed += 1
                    continue
                kind = answer.WhichOneof("answer")
                if kind == "error":
                    future.set_exception(StreamFailed(f"stream {status_name(answer.error.grpc_code)}"))
                else:
                    future.set_result(getattr(answer, kind))
        except grpc.aio.AioRpcError as error:
            failure = error.code().name
        for future in self._pending.values():
            if not future.done():
                future.set_exception(StreamFailed(failure))
        self._pending.clear()

    async def send(self, kind: str, request: Any) -> Any:
        if self._reader.done():
            raise StreamFailed("stream closed")
        self._next_id += 1
        correlation_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        message = pb.StreamRequest(correlation_id=correlation_id, **{kind: request})  # kinds are the oneof's names
        async with self._write_lock:
            await self._call.write(message)
        return await asyncio.wait_for(future, CALL_TIMEOUT_S)

    async def close(self) -> None:
        try:
            await self._call.done_writing()
            await asyncio.wait_for(self._reader, CALL_TIMEOUT_S)
        except (grpc.aio.AioRpcError, TimeoutError):
            pass  # every answer was in: the closing handshake does not count
        finally:
            self._call.cancel()


def status_name(value: int) -> str:
    """The name of a gRPC status code given as an integer (``StreamError.grpc_code``)."""
    for status in grpc.StatusCode:
        if status.value[0] == value:
            return status.name
    return str(value)


def code_name(code: int) -> str:
    try:
        return pb.ResultCode.Name(code)
    except ValueError:
        return str(code)


class Switch:
    """One load process's switch: draws calls and messages and plays them through its clients."""

    def __init__(self, clients: Sequence[Client], mix: CallMix, subscribers: Sequence[str], recorder: Recorder,
                 *, tag: str, seed: int) -> None:  # fmt: skip
        self._clients = clients
        self.mix = mix
        self._subscribers = subscribers
        self.recorder = recorder
        self._tag = tag
        self._rng = random.Random(seed)
        self._placed = 0
        self.in_flight = 0
        self.unended: list[tuple[str, str]] = []  # (account, session) the switch started but could not end

    async def _request(self, client: Client, kind: str, request: Any, due_s: float, label: str = "") -> Any | None:
        """Send one request; record its latency from ``due_s`` and its result code (under ``label``, by default the
        kind); None on an error."""
        try:
            answer = await client.send(kind, request)
        except grpc.aio.AioRpcError as error:
            self.recorder.error(error.code().name)
            return None
        except (StreamFailed, TimeoutError) as error:
            self.recorder.error(str(error) or "timeout")
            return None
        latency_ns = int((time.perf_counter() - due_s) * 1e9)
        label = label or kind
        self.recorder.answer(label, code_name(answer.result_code), latency_ns, headline=label != "end_at_stop")
        return answer

    async def place(self, due_s: float, stop_s: float) -> None:
        """One arrival due at ``due_s`` (perf_counter): a message or a call, played to its end (``stop_s`` at most)."""
        self._placed += 1
        n, rng = self._placed, self._rng
        subscriber, called = rng.choice(self._subscribers), self.mix.destinations.draw(rng)
        client = self._clients[n % len(self._clients)]
        self.in_flight += 1
        try:
            if rng.random() < self.mix.message_share:
                await self._message(client, f"ss-{self._tag}-m{n}", subscriber, called, due_s)
            else:
                duration_s = call_duration_s(rng, self.mix.mean_call_s, self.mix.max_call_s)
                await self._call(client, f"ss-{self._tag}-c{n}", subscriber, called, duration_s, due_s, stop_s)
        finally:
            self.in_flight -= 1

    async def _message(self, client: Client, session_id: str, subscriber: str, called: str, due_s: float) -> None:
        request = pb.EventRequest(session_id=session_id, subscriber=subscriber, called_party=called,
                                  action=pb.DIRECT_DEBIT, service=pb.MESSAGE, rating_group=MESSAGE_RATING_GROUP,
                                  units=1)  # fmt: skip
        answer = await self._request(client, "event", request, due_s)
        if answer is not None:
            self.recorder.call("message_charged" if answer.result_code == pb.SUCCESS else "message_refused")

    async def _call(self, client: Client, session_id: str, subscriber: str, called: str, duration_s: int, due_s: float,
                    stop_s: float) -> None:  # fmt: skip
        mix, recorder = self.mix, self.recorder
        authorize = pb.AuthorizeRequest(subscriber=subscriber, called_party=called, service=pb.VOICE)
        authorized = await self._request(client, "authorize", authorize, due_s)
        if authorized is None:
            return recorder.call("failed")
        if authorized.result_code != pb.SUCCESS or authorized.max_units <= 0:
            return recorder.call(_refusal(authorized.result_code))
        quota = pb.QuotaRequest(rating_group=VOICE_RATING_GROUP, service=pb.VOICE, requested_units=mix.quota_s)
        session = pb.SessionRequest(session_id=session_id, subscriber=subscriber, called_party=called, quotas=[quota])
        answer = await self._request(client, "start", session, time.perf_counter())
        if answer is None:
            self.unended.append((subscriber, session_id))  # it may have started: the sweeper will close it
            return recorder.call("failed")
        if answer.result_code != pb.SUCCESS:
            return recorder.call(_refusal(answer.result_code))
        recorder.call("started")
        used_s, number, report_s = 0, 0, time.perf_counter()
        while True:
            granted = answer.quotas[0] if answer.quotas else pb.QuotaAnswer()
            final = granted.final_unit.action != pb.FINAL_UNIT_ACTION_UNSPECIFIED
            step = next_step(remaining_s=duration_s - used_s, granted_s=granted.granted_units,
                             validity_s=granted.validity_time_s or answer.validity_time_s, final=final,
                             guard_s=mix.guard_s)  # fmt: skip
            due_s, after_s = report_s + step.after_s / mix.time_scale, step.after_s
            kind, stopped = step.kind, due_s > stop_s
            if stopped:  # the run's hard stop: end the call with the usage up to then
                due_s, kind = stop_s, "end"
                after_s = min(int((stop_s - report_s) * mix.time_scale), step.after_s)
            await asyncio.sleep(max(due_s - time.perf_counter(), 0))
            number += 1
            used_s += after_s
            report = pb.QuotaRequest(rating_group=VOICE_RATING_GROUP, service=pb.VOICE, used_units=after_s,
                                     requested_units=mix.quota_s if kind == "update" else 0)  # fmt: skip
            request = pb.SessionRequest(session_id=session_id, request_number=number, subscriber=subscriber,
                                        called_party=called, quotas=[report])  # fmt: skip
            # Ends forced by the hard stop come all at once: their latency is kept apart from the headline figures.
            answer = await self._request(client, kind, request, due_s, label="end_at_stop" if stopped else kind)
            report_s = due_s
            if answer is None:
                self.unended.append((subscriber, session_id))
                return recorder.call("failed")
            if kind == "end":
                return recorder.call("ended_at_stop" if stopped else "cut_off" if used_s < duration_s else "completed")
            if answer.result_code == pb.UNKNOWN_SESSION_ID:
                return recorder.call(_refusal(answer.result_code))  # closed meanwhile (swept): nothing to end
            # Any other refusal grants nothing, so the next step ends the call at once.


def _refusal(code: int) -> str:
    return "rejected_credit" if code == pb.CREDIT_LIMIT_REACHED else f"rejected_{code_name(code)}"


async def open_loop(switch: Switch, rate_per_s: float, *, deadline_s: float, stop_s: float, budget: int,
                    seed: int) -> None:  # fmt: skip
    """Poisson arrivals at ``rate_per_s`` until ``deadline_s`` or ``budget`` arrivals, then wait for every call
    (each ends by ``stop_s`` at the latest)."""
    tasks: set[asyncio.Task[None]] = set()
    start_s = time.perf_counter()
    for placed, offset_s in enumerate(poisson_arrivals(rate_per_s, random.Random(seed))):
        due_s = start_s + offset_s
        if due_s >= deadline_s or placed >= budget:
            break
        await asyncio.sleep(max(due_s - time.perf_counter(), 0))
        if switch.in_flight >= MAX_CALLS_IN_FLIGHT:
            switch.recorder.skipped += switch.recorder.measuring
            continue
        task = asyncio.ensure_future(switch.place(due_s, stop_s))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)


async def closed_loop(switch: Switch, concurrency: int, *, deadline_s: float, stop_s: float, budget: int) -> None:
    """``concurrency`` calls at a time, each placed as soon as the previous one ends, until the deadline or budget."""
    placed = 0

    async def slot() -> None:
        nonlocal placed
        while placed < budget and (now_s := time.perf_counter()) < deadline_s:
            placed += 1
            await switch.place(now_s, stop_s)

    await asyncio.gather(*(slot() for _ in range(concurrency)))
