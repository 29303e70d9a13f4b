"""The console's Admin API client: one gRPC channel to the Admin listener, each call made with the signed-in user's
own bearer token, so that the server's roles decide what the user may do and records who did it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from occ.v1 import admin_pb2_grpc

TIMEOUT_S = 10.0


class AdminError(Exception):
    """A refused or failed Admin call: its gRPC status name (``PERMISSION_DENIED`` …) and details."""

    def __init__(self, status: str, details: str) -> None:
        super().__init__(f"{status}: {details}")
        self.status, self.details = status, details


class Admin:
    """``await admin.call("GetAccount", request, token)``: the answer, or :class:`AdminError`."""

    def __init__(self, address: str, *, ca_file: Path | None = None) -> None:
        if ca_file is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
            self.channel = grpc.aio.secure_channel(address, credentials)
        else:
            self.channel = grpc.aio.insecure_channel(address)
        self.stub = admin_pb2_grpc.AdminStub(self.channel)

    async def call(self, method: str, request: Any, token: str) -> Any:
        metadata = (("authorization", f"Bearer {token}"),)
        try:
            return await getattr(self.stub, method)(request, metadata=metadata, timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            raise AdminError(error.code().name, error.details() or "") from None

    async def close(self) -> None:
        await self.channel.close()
