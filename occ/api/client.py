"""How a client reaches OCC: a channel, with TLS when a CA (or a client certificate) is given, that sends a bearer
token on every unary call. Used by the ``occ`` commands (sync), the load harness and the tests (asyncio).

::

    with sync_channel("127.0.0.1:50052", ClientTls(), token="occ_…") as channel:   # plaintext, token attached
        AdminStub(channel).GetAccount(...)
    async with aio_channel("ocs.example.com:50052", ClientTls(ca=Path("ca.pem")), token=token) as channel: ...
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import grpc


class ClientTls(NamedTuple):
    """TLS for a client channel; all empty (the default) means plaintext.

    Attributes:
        ca: PEM CA certificates that sign the server's certificate (empty with ``enabled``: the system's roots).
        cert, key: the client's PEM certificate chain and key, for mutual TLS.
        server_name: the name to check the server's certificate against, when it is not the host dialled.
        enabled: TLS even without ``ca`` (the system's roots).
    """

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str = ""
    enabled: bool = False

    @property
    def on(self) -> bool:
        return self.enabled or self.ca is not None or self.cert is not None

    def credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials from the files (OSError names a file that cannot be read)."""
        if (self.cert is None) != (self.key is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes() if self.ca else None,
            private_key=self.key.read_bytes() if self.key else None,
            certificate_chain=self.cert.read_bytes() if self.cert else None,
        )

    def options(self) -> list[tuple[str, Any]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


PLAINTEXT = ClientTls()


def bearer(token: str) -> tuple[str, str]:
    """The metadata pair that carries an Admin token."""
    return ("authorization", f"Bearer {token}")


class AioBearerToken(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every unary call of an asyncio channel."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[override]
        details = client_call_details
        metadata = grpc.aio.Metadata(*(details.metadata or ()), bearer(self.token))
        return await continuation(details._replace(metadata=metadata), request)


class _SyncDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


class SyncBearerToken(grpc.UnaryUnaryClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every unary call of a sync channel."""

    def __init__(self, token: str) -> None:
        self.token = token

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[override]
        details = _SyncDetails(
            client_call_details.method,
            client_call_details.timeout,
            [*(client_call_details.metadata or ()), bearer(self.token)],
            client_call_details.credentials,
            getattr(client_call_details, "wait_for_ready", None),
            getattr(client_call_details, "compression", None),
        )
        return continuation(details, request)


def sync_channel(target: str, tls: ClientTls = PLAINTEXT, *, token: str = "") -> grpc.Channel:
    """A sync channel to ``target`` (TLS as ``tls`` says), sending ``token`` on unary calls when given."""
    if tls.on:
        channel = grpc.secure_channel(target, tls.credentials(), options=tls.options())
    else:
        channel = grpc.insecure_channel(target)
    return grpc.intercept_channel(channel, SyncBearerToken(token)) if token else channel


def aio_channel(
    target: str, tls: ClientTls = PLAINTEXT, *, token: str = "", options: Sequence[tuple[str, Any]] = ()
) -> grpc.aio.Channel:
    """An asyncio channel to ``target`` (TLS as ``tls`` says), sending ``token`` on unary calls when given."""
    interceptors = [AioBearerToken(token)] if token else None
    if tls.on:
        return grpc.aio.secure_channel(target, tls.credentials(), options=[*options, *tls.options()],
                                       interceptors=interceptors)  # fmt: skip
    return grpc.aio.insecure_channel(target, options=list(options), interceptors=interceptors)
