"""One worker's gRPC listeners: the Charging listener and the Admin listener, each with gRPC health,
reflection (a setting; v1 and v1alpha), the metrics interceptor, and TLS when configured; Admin calls pass the
authentication interceptor; health follows the store
(:mod:`occ.api.health`).

::

    server = GrpcServer(settings, app_factory=App)   # occ.server passes occ.app.App
    await server.start()     # app.start(); Admin on admin_listen, then Charging on host:port; health SERVING
    ...
    await server.stop()      # health NOT_SERVING, in-flight calls get grace_s, app.close()

The Admin listener (``admin_listen``, default 127.0.0.1:50052) serves ``occ.v1.Admin`` only; the Charging listener
serves ``occ.v1.Charging``, and Admin as well when ``admin_on_charging_port`` says so. Either way every Admin call is
authenticated and authorised by :class:`~occ.api.auth.AdminAuthInterceptor`. Reflection is on for a listener on a
loopback address unless ``reflection`` says otherwise. With ``tls_cert_file`` both listeners speak TLS only
(``occ.api.tls``: the certificate is read again when its files change).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from occ.api.health import StoreWatch
from occ.api.reflection import enable_server_reflection
from occ.settings import Settings, is_loopback, split_host_port

log = logging.getLogger(__name__)

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
UPLOAD_HEADROOM_BYTES = 1 << 20  # an Admin message may be a tariff upload plus this much of everything else


class App(Protocol):
    """What the server needs of the application (``occ.app.App``)."""

    async def start(self) -> None:
        """Connect to Redis, load what is needed, start background tasks."""

    def add_charging(self, server: grpc.aio.Server) -> list[str]:
        """Register the Charging servicer on ``server``; return the full names of the services registered."""

    def add_admin(self, server: grpc.aio.Server) -> list[str]:
        """Register the Admin servicer on ``server``; return the full names of the services registered."""

    async def ping(self) -> None:
        """Raise if the store the services need cannot be reached (health turns NOT_SERVING meanwhile)."""

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


def admin_server_options(settings: Settings) -> list[tuple[str, int]]:
    """As :func:`server_options`, with messages large enough for a tariff upload (``tariff_upload_max_bytes``)."""
    largest = max(settings.max_message_bytes, settings.tariff_upload_max_bytes + UPLOAD_HEADROOM_BYTES)
    options = dict(server_options(settings))
    options["grpc.max_receive_message_length"] = largest
    return list(options.items())


def reflection_on(settings: Settings, host: str) -> bool:
    """Reflection for a listener on ``host``: ``on``, ``off``, or (``auto``) only on a loopback address."""
    return settings.reflection == "on" or (settings.reflection == "auto" and is_loopback(host))


class GrpcServer:
    """The app served over gRPC: Charging on ``settings.host:settings.port``, Admin on ``settings.admin_listen``.

    Start once, stop once.

    Attributes:
        settings: the worker's settings (``redis_url`` and ``data_dir`` already resolved).
        services: full names of the services on the Charging listener (set by :meth:`start`).
        admin_services: full names of the services on the Admin listener (empty without one).
    """

    def __init__(self, settings: Settings, *, app_factory: AppFactory) -> None:
        self.settings = settings
        self.services: list[str] = []
        self.admin_services: list[str] = []
        self._app_factory = app_factory
        self._app: App | None = None
        self._servers: list[tuple[grpc.aio.Server, health_aio.HealthServicer, list[str]]] = []
        self._watch: StoreWatch | None = None
        self._guard = None

    async def start(self) -> None:
        """Start the app, register everything, bind and start serving; raise if any step fails (after cleaning up)."""
        from occ.api.auth import AdminAuthInterceptor
        from occ.api.interceptors import server_interceptors

        settings = self.settings
        try:
            app = self._app_factory(settings)
            await app.start()
            self._app = app
            self._guard = guard = AdminAuthInterceptor.from_settings(settings)
            if settings.admin_listen:  # first, so that "listening" (Charging) means Admin is up too
                host, port = split_host_port(settings.admin_listen)
                server = grpc.aio.server(options=admin_server_options(settings),
                                         interceptors=[*server_interceptors(), guard])  # fmt: skip
                self.admin_services = list(app.add_admin(server))
                await self._listen(server, self.admin_services, host, port, settings.admin_client_auth, "admin")
            server = grpc.aio.server(options=server_options(settings), interceptors=[*server_interceptors(), guard])
            services = list(app.add_charging(server))
            if settings.admin_on_charging_port:
                services += app.add_admin(server)
            self.services = services
            await self._listen(server, services, settings.host, settings.port, settings.tls_client_auth, "")
            self._watch = StoreWatch([(health, ["", *names]) for _, health, names in self._servers], app.ping,
                                     interval_s=settings.health_interval_s)  # fmt: skip
            self._watch.start()
        except BaseException:
            await self.stop()
            raise

    async def _listen(
        self, server: grpc.aio.Server, services: list[str], host: str, port: int, client_auth: str, kind: str
    ) -> None:
        """Add health and reflection to ``server``, bind host:port (TLS when configured) and start it."""
        from occ.api.tls import listener_credentials

        health = health_aio.HealthServicer()
        self._servers.append((server, health, services))
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflected = reflection_on(self.settings, host)
        if reflected:
            enable_server_reflection([*services, HEALTH_SERVICE], server)  # v1 and v1alpha
        address = grpc_address(host, port)
        credentials = listener_credentials(self.settings, client_auth=client_auth)
        try:
            if credentials is None:
                server.add_insecure_port(address)
            else:
                server.add_secure_port(address, credentials)
        except RuntimeError as error:
            raise OSError(f"cannot listen on {address}: {error}") from None
        await server.start()
        for name in ("", *services):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(f"{kind} listening".strip(), extra={"address": address, "services": services,
                 "tls": credentials is not None, "client_auth": client_auth, "reflection": reflected})  # fmt: skip

    async def stop(self) -> None:
        """Health NOT_SERVING, stop accepting calls, let in-flight ones finish within ``grace_s``, close the app."""
        watch, self._watch = self._watch, None
        if watch is not None:
            await watch.close()
        servers, self._servers = self._servers, []
        for _, health, _ in servers:
            await health.enter_graceful_shutdown()
        await asyncio.gather(*(server.stop(self.settings.grace_s) for server, _, _ in servers))
        app, self._app = self._app, None
        if app is not None:
            await app.close()
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.close()
