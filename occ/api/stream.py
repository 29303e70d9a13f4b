"""One ``Charging.Stream`` call: requests of any kind on one bidirectional stream, each answered as it completes.

Answers carry the request's correlation id; a request that fails is answered with a ``StreamError`` (its status from
the error table, ``occ.api.errors``; UNAVAILABLE for anything else) and the stream goes on. The sessions a stream
starts or updates are registered in the servicer's ``streams`` so that notices (aborts, re-auth requests) for them
are pushed on it, until they end or the stream closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from occ.api.errors import grpc_status
from occ.v1 import charging_pb2 as pb

log = logging.getLogger(__name__)
STREAM_IN_FLIGHT = 1024
"""Requests of one stream being processed at once; the stream stops reading beyond that (back-pressure)."""
MISSING_REQUEST = "request: one of authorize, start, update, end, event, balance is required"

Carried = tuple[str, str]
"""(account, session id): session ids are not unique alone."""


class StreamCall:
    """Reads one stream's requests and queues their answers on ``outgoing`` (``None`` ends it).

    Attributes:
        outgoing: answers in the order they complete, then ``None``.
        sessions: the sessions this stream carries.
    """

    def __init__(self, answer: Callable[[str, Any], Awaitable[Any]], streams: dict[Carried, asyncio.Queue]) -> None:
        self._answer, self._streams = answer, streams
        self.outgoing: asyncio.Queue[pb.StreamAnswer | None] = asyncio.Queue()
        self.sessions: set[Carried] = set()
        self._slots = asyncio.Semaphore(STREAM_IN_FLIGHT)
        self._tasks: set[asyncio.Task] = set()

    async def read(self, request_iterator: AsyncIterator[pb.StreamRequest]) -> None:
        """Take every request, answer each in a task of its own (at most ``STREAM_IN_FLIGHT`` at once), then end."""
        try:
            async for message in request_iterator:
                kind = message.WhichOneof("request")
                if kind is None:
                    self._fail(message.correlation_id, grpc.StatusCode.INVALID_ARGUMENT, MISSING_REQUEST)
                    continue
                if kind in ("start", "update"):
                    self._carry((getattr(message, kind).subscriber, getattr(message, kind).session_id))
                await self._slots.acquire()
                task = asyncio.create_task(self._handle(message, kind))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._tasks:
                await asyncio.gather(*self._tasks)
        finally:
            self.outgoing.put_nowait(None)

    async def _handle(self, message: pb.StreamRequest, kind: str) -> None:
        request = getattr(message, kind)
        try:
            answer = await self._answer(kind, request)
            if kind == "end" and answer.result_code == 2001:  # ended: aborts no longer concern this stream
                self._drop((request.subscriber, request.session_id))
            field = "session" if kind in ("start", "update", "end") else kind
            self.outgoing.put_nowait(pb.StreamAnswer(correlation_id=message.correlation_id, **{field: answer}))
        except Exception as exc:  # every request on a stream gets an answer, whatever went wrong
            code = grpc_status(exc)
            if code is None:
                log.exception("stream request failed", extra={"correlation_id": message.correlation_id})
                code = grpc.StatusCode.UNAVAILABLE
            self._fail(message.correlation_id, code, str(exc))
        finally:
            self._slots.release()

    def _fail(self, correlation_id: int, code: grpc.StatusCode, text: str) -> None:
        error = pb.StreamError(grpc_code=code.value[0], message=text)
        self.outgoing.put_nowait(pb.StreamAnswer(correlation_id=correlation_id, error=error))

    def _carry(self, carried: Carried) -> None:
        self.sessions.add(carried)
        self._streams[carried] = self.outgoing

    def _drop(self, carried: Carried) -> None:
        self.sessions.discard(carried)
        if self._streams.get(carried) is self.outgoing:
            del self._streams[carried]

    def forget_sessions(self) -> None:
        """The stream is closing: notices for its sessions have nowhere to go (another stream may carry them now)."""
        for carried in self.sessions:
            if self._streams.get(carried) is self.outgoing:
                del self._streams[carried]
