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


def text_map(packed: bytes) -> dict[str, str]:
    """A MessagePack map of strings (an entry's fields as ``lua/read.lua`` packs them) as a dict, with bytes that are
    not UTF-8 replaced as the Redis client replaces them (msgspec, which decodes the rest, refuses such text).
    Raises ValueError for anything else."""
    data = memoryview(packed)
    count, at = _header(data, 0, {0xDE: 2, 0xDF: 4}, 0x80)

    def text() -> str:
        nonlocal at
        length, at = _header(data, at, {0xD9: 1, 0xDA: 2, 0xDB: 4}, 0xA0, small_bits=5)
        at += length
        if at > len(data):
            raise ValueError("truncated MessagePack text")
        return bytes(data[at - length : at]).decode(errors="replace")

    fields = {}
    for _ in range(count):
        name = text()
        fields[name] = text()
    return fields


def _header(data: memoryview, at: int, sized: dict[int, int], fix: int, *, small_bits: int = 4) -> tuple[int, int]:
    """(length, position after the header) of the MessagePack map or string header at ``at``."""
    marker = data[at]
    if marker >> small_bits == fix >> small_bits:
        return marker & ((1 << small_bits) - 1), at + 1
    width = sized.get(marker)
    if width is None:
        raise ValueError(f"unexpected MessagePack marker {marker:#x}")
    return int.from_bytes(data[at + 1 : at + 1 + width], "big"), at + 1 + width
