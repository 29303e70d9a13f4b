"""The audit log of the Admin API: one JSON line per call, appended to a file (``<data_dir>/audit.jsonl``, mode 0600).

A line says when, who (``actor`` ``token:<name>`` or ``certificate:<name>``, its role, the peer address), what
(the method and the request's fields: the account, the amount, the idempotency key …; uploaded files by size only)
and the outcome (the gRPC status name, and for a change its answer: transaction id, duplicate, tariff hash). Refused
calls (UNAUTHENTICATED, PERMISSION_DENIED) are written too. Each line is one ``write`` to a file opened with
``O_APPEND``, so the workers of one server share the file without mixing lines. A line that cannot be written is
logged as an error; the call's outcome does not change (it has already happened).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import msgspec
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

log = logging.getLogger(__name__)

MAX_TEXT = 200  # characters of a string field kept in a line
ANSWERS_KEPT = frozenset({"Transact", "AbortSession", "LoadTariff"})  # methods whose answer goes in the line too
_encode = msgspec.json.Encoder().encode


def summary(message: Message) -> dict[str, Any]:
    """The fields set in ``message``: enums by name, strings cut to :data:`MAX_TEXT`, bytes as their size."""
    found: dict[str, Any] = {}
    for field, value in message.ListFields():
        found[field.name] = _value(field, value)
    return found


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return {str(key)[:MAX_TEXT]: _scalar(field.message_type.fields_by_name["value"], item)
                for key, item in value.items()}  # fmt: skip
    if _is_repeated(field):
        return [_scalar(field, item) for item in value]
    return _scalar(field, value)


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 7 offers is_repeated; older releases only the label
    repeated = getattr(field, "is_repeated", None)
    return bool(repeated) if repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return summary(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        named = field.enum_type.values_by_number.get(value)
        return named.name if named is not None else value
    if field.type == FieldDescriptor.TYPE_BYTES:
        return f"{len(value)} bytes"
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return value


class AuditLog:
    """Appends audit lines to ``path`` (created mode 0600 at the first line, its directory too if missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor = -1

    def _write(self, line: bytes) -> None:
        if self._descriptor < 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self._descriptor, line)

    def record(
        self,
        *,
        method: str,
        outcome: str,
        peer: str,
        actor: str = "",
        role: str = "",
        request: Message | None = None,
        answer: Message | None = None,
        detail: str = "",
    ) -> None:
        """Write one line; never raises (a failure is logged)."""
        line: dict[str, Any] = {"time_ms": int(time.time() * 1000), "actor": actor, "role": role, "peer": peer,
                                "method": method, "outcome": outcome}  # fmt: skip
        try:
            if request is not None:
                line["request"] = summary(request)
            if answer is not None and method in ANSWERS_KEPT:
                line["answer"] = summary(answer)
            if detail:
                line["detail"] = detail[:MAX_TEXT]
            self._write(_encode(line) + b"\n")
        except Exception as error:  # an audit line must never turn a call that happened into an error
            log.error("cannot write the audit log", extra={"path": str(self.path), "error": str(error)})

    def close(self) -> None:
        if self._descriptor >= 0:
            os.close(self._descriptor)
            self._descriptor = -1
