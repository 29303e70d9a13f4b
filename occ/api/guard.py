"""The guard interceptor: no request can make the server answer UNKNOWN or log a traceback per request.

gRPC answers UNKNOWN (with the exception's text) and logs a traceback whenever a request cannot be decoded or a
servicer raises something it did not turn into a status. The guard wraps every method of every service once:

- **Undecodable input is INVALID_ARGUMENT.** The request deserializer never raises to gRPC: a unary request that is
  not its message becomes an :class:`Undecodable` the wrapped method answers INVALID_ARGUMENT; a frame of a request
  stream that is not its message raises :class:`~occ.core.errors.InvalidRequest` out of the request iterator, so a
  streaming servicer ends after what it accepted (``Charging.Stream`` answers every request it took first). Each
  is logged as one short warning line, at most one per method every ``LOG_INTERVAL_S``.
- **Everything else a method raises is mapped by the one error table** (``occ.core.errors``; a Redis outage is
  UNAVAILABLE), and what the table does not know (a bug) is INTERNAL with a short message (the traceback goes to
  the log, at most once per method every ``LOG_INTERVAL_S``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc.aio import AbortError

from occ.api.errors import status_and_details
from occ.core.errors import InvalidRequest
from occ.core.throttle import Throttle

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 10.0
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]
_CONSTRUCTORS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class Undecodable:
    """A unary request whose bytes are not its message. Attributes: message: what was expected; size: bytes."""

    __slots__ = ("message", "size")

    def __init__(self, message: str, size: int) -> None:
        self.message, self.size = message, size

    @property
    def details(self) -> str:
        return f"request: not a valid {self.message} message ({self.size} bytes)"


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each method's handler once (cached per method) as the module docstring says."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        self._throttle = Throttle(LOG_INTERVAL_S)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self.guarded(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def guarded(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` with a deserializer that never raises to gRPC and a behaviour that never fails UNKNOWN."""
        streaming_in, streaming_out = handler.request_streaming, handler.response_streaming
        inner = handler.stream_stream or handler.stream_unary or handler.unary_stream or handler.unary_unary
        decode = handler.request_deserializer
        if decode is not None:
            decode = _strict(decode, self._undecodable(method)) if streaming_in else _lenient(decode)
        if streaming_out and inspect.isasyncgenfunction(inner):
            behavior = self._generator(method, inner)
        else:
            behavior = self._coroutine(method, inner)
        return _CONSTRUCTORS[streaming_in, streaming_out](
            behavior, request_deserializer=decode, response_serializer=handler.response_serializer
        )

    def _coroutine(self, method: str, inner: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if type(request) is Undecodable:
                await self._refuse(method, request, context)
            try:
                return await inner(request, context)
            except (AbortError, asyncio.CancelledError):
                raise
            except Exception as error:
                await self._fail(method, error, context)

        return behavior

    def _generator(self, method: str, inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if type(request) is Undecodable:
                await self._refuse(method, request, context)
            try:
                async for answer in inner(request, context):
                    yield answer
            except (AbortError, asyncio.CancelledError):
                raise
            except Exception as error:
                await self._fail(method, error, context)

        return behavior

    def _undecodable(self, method: str) -> Callable[[str, int], None]:
        def report(message: str, size: int) -> None:
            dropped = self._throttle.ready(("undecodable", method))
            if dropped is not None:
                log.warning(
                    "undecodable request: not a valid %s message (%d bytes; %d more since the last line)",
                    message, size, dropped, extra={"method": method},
                )  # fmt: skip

        return report

    async def _refuse(self, method: str, request: Undecodable, context: grpc.aio.ServicerContext) -> None:
        self._undecodable(method)(request.message, request.size)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.details)

    async def _fail(self, method: str, error: Exception, context: grpc.aio.ServicerContext) -> None:
        status, details = status_and_details(error)
        if status is grpc.StatusCode.INTERNAL or status is grpc.StatusCode.UNAVAILABLE:
            dropped = self._throttle.ready((status, method))
            if dropped is not None:
                log.error(
                    "%s in %s: %s: %s (%d more since the last line)",
                    status.name, method, type(error).__name__, str(error)[:200], dropped,
                    exc_info=error if status is grpc.StatusCode.INTERNAL else None, extra={"method": method},
                )  # fmt: skip
        await context.abort(status, details)


def _message_name(decode: Callable[[bytes], Any]) -> str:
    """``occ.v1.SessionRequest`` for ``SessionRequest.FromString``; ``request`` for a deserializer of another kind."""
    owner = getattr(decode, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", "request")


def _lenient(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A unary request's deserializer: the message, or an :class:`Undecodable` the method refuses."""
    name = _message_name(decode)

    def deserialize(data: bytes) -> Any:
        try:
            return decode(data)
        except Exception:
            return Undecodable(name, len(data))

    return deserialize


def _strict(decode: Callable[[bytes], Any], report: Callable[[str, int], None]) -> Callable[[bytes], Any]:
    """A request stream's deserializer: the message, or :class:`InvalidRequest` out of the request iterator."""
    name = _message_name(decode)

    def deserialize(data: bytes) -> Any:
        try:
            return decode(data)
        except Exception:
            report(name, len(data))
            raise InvalidRequest("request", f"a frame is not a valid {name} message ({len(data)} bytes)") from None

    return deserialize
