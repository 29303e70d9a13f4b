"""gRPC server interceptors: per-method call counts by status, latency, and a log line for unexpected errors.

On the hot path, so the wrapped handler of each method is built once and reused, and the metric children are bound
once per (method, status): a call costs a ``perf_counter`` pair, a dict lookup and two metric updates.
Streaming methods pass through untouched (a stream's lifetime is not a latency).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc.aio import AbortError

from occ import metrics

log = logging.getLogger(__name__)

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


def method_label(full_method: str) -> str:
    """The metric label of ``/occ.v1.Charging/StartSession``: ``StartSession``."""
    return full_method.rsplit("/", 1)[-1]


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts unary calls in ``occ_grpc_calls_total{method, code}`` and times them in ``occ_request_duration_seconds``.

    ``code`` is the gRPC status name (``OK``, ``INVALID_ARGUMENT``, ``CANCELLED``, ``UNKNOWN`` for an exception the
    servicer did not turn into a status). The servicers count telecom result codes themselves.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _timed(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _timed(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    label = method_label(method)
    inner = handler.unary_unary
    observe = metrics.REQUEST_SECONDS.labels(label).observe
    counters: dict[grpc.StatusCode, Callable[[], None]] = {}
    perf_counter = time.perf_counter

    def count(code: grpc.StatusCode) -> None:
        inc = counters.get(code)
        if inc is None:
            inc = counters[code] = metrics.GRPC_CALLS.labels(label, code.name).inc
        inc()

    async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = perf_counter()
        code = grpc.StatusCode.UNKNOWN
        try:
            response = await inner(request, context)
            code = context.code() or grpc.StatusCode.OK
            return response
        except AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            log.exception("unexpected error in a gRPC method", extra={"method": method})
            raise
        finally:
            observe(perf_counter() - started)
            count(code)

    return grpc.unary_unary_rpc_method_handler(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
