"""One gRPC server (one worker's worth): the app's services, gRPC health and reflection, the metrics interceptor.

::

    server = GrpcServer(settings, app_factory=App)   # occ.server passes occ.app.App
    await server.start()                   # app.start(), bind host:port, health SERVING for "" and each service
    ...
    await server.stop()                    # health NOT_SERVING, in-flight calls get grace_s, app.close()
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from occ.settings import Settings

log = logging.getLogger(__name__)

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class App(Protocol):
    """What the server needs of the application (``occ.app.App``)."""

    async def start(self) -> None:
        """Connect to Redis, load what is needed, start background tasks."""

    def add_to_server(self, server: grpc.aio.Server) -> list[str]:
        """Register the servicers on ``server``; return the full names of the services registered."""

    async def close(self) -> None:
        """Stop background tasks and close connections (called after the server has stopped)."""


AppFactory = Callable[[Settings], App]


def grpc_address(host: str, port: int) -> str:
    """``host:port`` for gRPC, with an IPv6 literal in brackets (``[::1]:50051``)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


PENDING_REQUESTS = 100_000
"""Calls gRPC core may hold before the app takes them. Its defaults (a soft limit of 1,000, past which it cancels
calls at random, and a hard limit of 3,000) drop about one call in ten from a burst of 2,000 concurrent starts;
the batcher, not gRPC core, is where OCC queues work."""


def server_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.so_reuseport", int(settings.workers > 1)),  # workers share the port; a lone server owns it
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.server.max_pending_requests", PENDING_REQUESTS),
        ("grpc.server.max_pending_requests_hard_limit", PENDING_REQUESTS),
    ]


class GrpcServer:
    """The app served over gRPC on ``settings.host:settings.port``; start once, stop once.

    Attributes:
        settings: the worker's settings (``redis_url`` already resolved).
        services: full names of the services the app registered (set by :meth:`start`).
    """

    def __init__(self, settings: Settings, *, app_factory: AppFactory) -> None:
        self.settings = settings
        self.services: list[str] = []
        self._app_factory = app_factory
        self._app: App | None = None
        self._server: grpc.aio.Server | None = None
        self._health: health_aio.HealthServicer | None = None

    async def start(self) -> None:
        """Start the app, register everything, bind and start serving; raise if any step fails (after cleaning up)."""
        from occ.api.interceptors import MetricsInterceptor

        factory = self._app_factory
        settings = self.settings
        self._server = grpc.aio.server(options=server_options(settings), interceptors=[MetricsInterceptor()])
        try:
            app = factory(settings)
            await app.start()
            self._app = app
            self.services = list(app.add_to_server(self._server))
            self._health = health_aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
            reflection.enable_server_reflection([*self.services, HEALTH_SERVICE, reflection.SERVICE_NAME], self._server)
            address = grpc_address(settings.host, settings.port)
            try:
                self._server.add_insecure_port(address)
            except RuntimeError as error:
                raise OSError(f"cannot listen on {address}: {error}") from None
            await self._server.start()
            for name in ("", *self.services):
                await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        except BaseException:
            await self.stop()
            raise
        log.info("listening", extra={"address": address, "services": self.services})

    async def stop(self) -> None:
        """Health NOT_SERVING, stop accepting calls, let in-flight ones finish within ``grace_s``, close the app."""
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        server, self._server = self._server, None
        if server is not None:
            await server.stop(self.settings.grace_s)
        app, self._app = self._app, None
        if app is not None:
            await app.close()
