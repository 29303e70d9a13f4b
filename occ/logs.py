"""Logging for the server: stdlib ``logging`` to stderr, one JSON object per line or plain text.

JSON lines carry ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``msg``, every ``extra={...}``
field of the call, the fields given to :func:`configure` (e.g. ``worker``) and ``exc`` (the traceback) when there
is one. Plain text puts the extra fields after the message as ``key=value``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


def _timestamp(created: float) -> str:
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; values JSON cannot encode are written as ``str(value)``.

    Attributes:
        fields: added to every record (before the record's own extras, which win on a clash).
    """

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **self.fields,
            **_extras(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2026-01-05T09:00:00.123Z INFO occ.server: listening address=127.0.0.1:50051``."""

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        extras = {**self.fields, **_extras(record)}
        text = f"{_timestamp(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        if extras:
            text += " " + " ".join(f"{key}={value}" for key, value in extras.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


def configure(
    level: str | int = "INFO",
    json: bool = True,
    *,
    fields: Mapping[str, Any] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send all logging to ``stream`` (default stderr) at ``level``, as JSON lines or text; replaces earlier set-up.

    ``fields`` go on every line (a worker passes ``{"worker": 2}``). The chatty ``grpc`` and ``asyncio`` loggers
    stay at WARNING unless ``level`` is DEBUG.
    """
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(fields) if json else TextFormatter(fields))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)  # not closed: it may belong to someone else (a test runner)
    root.addHandler(handler)
    root.setLevel(numeric)
    for noisy in ("grpc", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING)
