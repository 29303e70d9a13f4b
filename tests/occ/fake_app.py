"""A throwaway app for the server tests: it registers no service, so only health and reflection are served."""

from __future__ import annotations

import grpc

from occ.settings import Settings


class EmptyApp:
    """Satisfies ``occ.api.server.App``; records that it was started and closed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    def add_to_server(self, server: grpc.aio.Server) -> list[str]:
        return []

    async def close(self) -> None:
        self.closed = True


class FailingApp(EmptyApp):
    """An app whose start-up fails, as when Redis is unreachable: the worker exits 1."""

    async def start(self) -> None:
        raise ConnectionError("cannot reach Redis (on purpose)")
