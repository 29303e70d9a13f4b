"""Every Admin call authenticated and authorised, and audited: the interceptor in front of ``occ.v1.Admin``.

Who is calling:

- a bearer token, metadata ``authorization: Bearer occ_…``, looked up by its SHA-256 in the token file
  (``occ.api.tokens``); its holder is ``token:<name>`` with the token's role;
- otherwise a verified client certificate (mutual TLS), whose DNS name or common name ``admin_client_roles`` maps to a
  role; its holder is ``certificate:<name>``.

No credentials, or a token that is unknown or revoked, is UNAUTHENTICATED; a caller whose role may not call the
method (``occ.api.roles``), or a certificate with no role, is PERMISSION_DENIED; either way the servicer never runs.
The caller is handed to the servicer in :data:`CALLER` (read it with :func:`caller`), which records it as the actor
of every money movement; the servicer refuses to run without one, so Admin served without this interceptor fails
closed. Every call, refused or not, is one line of the audit log (``occ.api.audit``).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import msgspec
from grpc.aio import AbortError

from occ.api import roles
from occ.api.audit import AuditLog
from occ.api.errors import abort, grpc_status
from occ.api.tls import peer_identities
from occ.api.tokens import TOKENS_FILE, TokenTable
from occ.core.errors import OccError, PermissionDenied, Unauthenticated
from occ.settings import Settings, client_roles

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/occ.v1.Admin/"
AUDIT_FILE = "audit.jsonl"
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


class Identity(msgspec.Struct, frozen=True):
    """An authenticated Admin caller.

    Attributes:
        name: the token's name, or the certificate name that matched.
        role: viewer, operator, finance or admin.
        via: ``token`` or ``certificate``.
    """

    name: str
    role: str
    via: str

    @property
    def actor(self) -> str:
        """How the caller is recorded on events, ledger rows, xDRs and audit lines: ``token:alice``."""
        return f"{self.via}:{self.name}"


CALLER: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("occ_admin_caller", default=None)


def caller() -> Identity:
    """The caller of the Admin call being served; Unauthenticated when none was established (fail closed)."""
    identity = CALLER.get()
    if identity is None:
        raise Unauthenticated("authorization", "Admin calls need credentials (served without authentication)")
    return identity


class Authenticator:
    """Finds the caller of a call from its metadata and its TLS peer."""

    def __init__(self, tokens: TokenTable, certificate_roles: dict[str, str]) -> None:
        self.tokens, self.certificate_roles = tokens, certificate_roles

    def identify(self, metadata: Sequence[tuple[str, Any]], auth_context: dict[str, list[bytes]]) -> Identity:
        """The caller, or raise Unauthenticated / PermissionDenied (a certificate without a role)."""
        header = [value for key, value in metadata if key == "authorization"]
        if header:
            scheme, _, token = str(header[0]).partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("authorization", "must be 'Bearer <token>'")
            record = self.tokens.find(token.strip())
            if record is None:
                raise Unauthenticated("authorization", "unknown or revoked token")
            return Identity(name=record.name, role=record.role, via="token")
        names = peer_identities(auth_context)
        for name in names:
            role = self.certificate_roles.get(name)
            if role is not None:
                return Identity(name=name, role=role, via="certificate")
        if names:
            raise PermissionDenied("", f"client certificate {names[0][:80]!r} has no Admin role (admin_client_roles)")
        raise Unauthenticated("authorization", "a bearer token (authorization: Bearer …) or a client certificate "
                                               "is required")  # fmt: skip


class AdminAuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates, authorises and audits the unary methods of ``occ.v1.Admin``; other services pass untouched.

    An Admin method that is not unary is refused (no such method exists; a new one must be wrapped here first).
    """

    def __init__(self, authenticator: Authenticator, audit: AuditLog | None) -> None:
        self.authenticator, self.audit = authenticator, audit
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> AdminAuthInterceptor:
        """Tokens from ``admin_tokens_file``, certificate roles from ``admin_client_roles``, the audit log."""
        data_dir = Path(settings.data_dir)
        tokens = TokenTable(Path(settings.admin_tokens_file or data_dir / TOKENS_FILE))
        audit = AuditLog(Path(settings.audit_log or data_dir / AUDIT_FILE))
        return cls(Authenticator(tokens, client_roles(settings.admin_client_roles)), audit)

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(ADMIN_PREFIX):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._guarded(method.removeprefix(ADMIN_PREFIX), handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _guarded(self, name: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary
        record = self.audit.record if self.audit is not None else lambda **_: None

        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            peer = context.peer()
            identity: Identity | None = None
            try:
                if inner is None:
                    raise PermissionDenied("", f"{name} is not a unary method: refused")
                identity = self.authenticator.identify(context.invocation_metadata() or (), context.auth_context())
                if not roles.allowed(name, identity.role):
                    raise PermissionDenied("", f"role {identity.role} may not call {name}")
            except OccError as error:
                status = grpc_status(error)
                record(method=name, outcome=status.name if status else "UNKNOWN", peer=peer,
                       actor=identity.actor if identity else "", role=identity.role if identity else "",
                       request=request, detail=str(error))  # fmt: skip
                await abort(context, error)
                raise AssertionError("unreachable: abort raises") from None
            reset = CALLER.set(identity)
            answer, outcome = None, "UNKNOWN"
            try:
                answer = await inner(request, context)
                outcome = (context.code() or grpc.StatusCode.OK).name
                return answer
            except AbortError:
                outcome = (context.code() or grpc.StatusCode.UNKNOWN).name
                raise
            finally:
                CALLER.reset(reset)
                record(method=name, outcome=outcome, peer=peer, actor=identity.actor, role=identity.role,
                       request=request, answer=answer, detail=context.details() or "")  # fmt: skip

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
