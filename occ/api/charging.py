"""``occ.v1.Charging``: the gRPC face of the engine.

Each call is validated (``wire.py``; INVALID_ARGUMENT naming the field, nothing written), submitted to the batcher,
and answered from the outcome. ``Stream`` carries the same requests with correlation ids and answers each as it
completes; the server also pushes session aborts on the stream that last carried the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import grpc

from occ import metrics
from occ.api import wire
from occ.api.errors import abort
from occ.api.stream import StreamCall
from occ.core.batcher import Batcher
from occ.core.errors import OccError
from occ.core.requests import Kind, Outcome, Work
from occ.core.tariffs import TariffHolder
from occ.v1 import charging_pb2 as pb
from occ.v1 import charging_pb2_grpc

log = logging.getLogger(__name__)


class ChargingService(charging_pb2_grpc.ChargingServicer):
    def __init__(self, batcher: Batcher[Work, Outcome], tariffs: TariffHolder, *, validity_time_s: int) -> None:
        self.batcher, self.tariffs, self.validity_time_s = batcher, tariffs, validity_time_s
        # (account, session id) → the outgoing queue of the stream that carries it (session ids are not unique alone)
        self.streams: dict[tuple[str, str], asyncio.Queue] = {}
        self._counters: dict[tuple[str, int], Callable[[], None]] = {}  # (kind, result code) → its metric's inc

    def _country_code(self) -> str:
        return self.tariffs.current.tariff.country_code

    async def _session(self, kind: Kind, request: pb.SessionRequest) -> pb.SessionAnswer:
        outcome = await self.batcher.submit(wire.session_work(kind, request, self._country_code()))
        return wire.session_answer(request, outcome, self.validity_time_s)

    async def _answer(self, kind: str, request):
        """The answer message for one request of any kind; raises an ``OccError`` (``occ.core.errors``)."""
        answer = await self._answer_of_kind(kind, request)
        key = (kind, answer.result_code)
        count = self._counters.get(key)
        if count is None:
            count = self._counters[key] = metrics.REQUESTS.labels(kind, str(answer.result_code)).inc
        count()
        return answer

    async def _answer_of_kind(self, kind: str, request):
        if kind == "authorize":
            work = wire.authorize_work(request, self._country_code())
            return wire.authorize_answer(await self.batcher.submit(work))
        if kind in ("start", "update", "end"):
            return await self._session(Kind(kind), request)
        if kind == "event":
            return wire.event_answer(await self.batcher.submit(wire.event_work(request, self._country_code())))
        return wire.balance_answer(await self.batcher.submit(wire.balance_work(request)))

    async def _unary(self, kind: str, request, context: grpc.aio.ServicerContext):
        try:
            return await self._answer(kind, request)
        except OccError as exc:
            await abort(context, exc)

    async def Authorize(self, request, context):
        return await self._unary("authorize", request, context)

    async def StartSession(self, request, context):
        return await self._unary("start", request, context)

    async def UpdateSession(self, request, context):
        return await self._unary("update", request, context)

    async def EndSession(self, request, context):
        return await self._unary("end", request, context)

    async def ChargeEvent(self, request, context):
        return await self._unary("event", request, context)

    async def GetBalance(self, request, context):
        return await self._unary("balance", request, context)

    async def Stream(
        self, request_iterator: AsyncIterator[pb.StreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamAnswer]:
        call = StreamCall(self._answer, self.streams)
        reader = asyncio.create_task(call.read(request_iterator))
        try:
            while (answer := await call.outgoing.get()) is not None:
                yield answer
        finally:
            reader.cancel()
            call.forget_sessions()

    def push_notice(self, kind: str, account_id: str, session_id: str, reason: str = "") -> bool:
        """Push an ``abort`` (end the session now) or a ``reauth`` (send an update now) to the switch on the stream
        that carries the account's session; False when no stream of this frontend carries it."""
        queue = self.streams.get((account_id, session_id))
        if queue is None:
            return False
        if kind == "abort":
            queue.put_nowait(pb.StreamAnswer(abort=pb.AbortSession(session_id=session_id, reason=reason)))
        else:
            queue.put_nowait(pb.StreamAnswer(reauth=pb.ReauthRequest(session_id=session_id)))
        return True
