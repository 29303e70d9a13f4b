"""Decoding Redis stream replies as redis-py hands them over raw (hiredis, RESP2 or RESP3): the settlement drain's
reading helpers, kept apart from its control flow."""

from __future__ import annotations

from typing import Any


def raw_reply(response: Any, **_options: Any) -> Any:
    """A response callback that leaves the reply as the parser gave it (no per-entry Python objects built)."""
    return response


def streams_of(reply: Any) -> Any:
    """XREADGROUP's ``stream → entries`` (a map under RESP3, a list of pairs under RESP2, None when empty)."""
    if not reply:
        return ()
    return reply.items() if isinstance(reply, dict) else reply


def fields_of(flat: list[str]) -> dict[str, str]:
    """An entry's ``[field, value, field, value, …]`` as a dict."""
    pairs = iter(flat)
    return dict(zip(pairs, pairs, strict=True))


def id_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id ``<ms>-<seq>`` as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
