"""Session closes booked in bulk: the fast path of :func:`settlement.entries.book` for the entry that dominates a
backlog (one ``session_close`` per call and rating group).

msgspec decodes the entry's fields straight into :class:`Close`, a struct whose annotations carry every rule
``entries.book`` checks for a close (required fields, integer ranges, text lengths, the vocabularies), in C; the
xDR is then built from it with no per-field Python call. The reference, ``entries.book``, stays the oracle: an
entry this path does not take whole (another type, a field it would reject, an integer not written in canonical
form such as ``05`` or ``5.0``, which msgspec and the reference read differently) goes to it, so a malformed entry
gets the reference's exact :class:`~settlement.entries.Malformed` message and both paths book the same rows
(``tests/settlement/test_close_entries.py`` checks that property on generated entries).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from rating_engine.money import MAX_EXACT_MICROS
from settlement.entries import LATEST_MS, MAX_TEXT, billable_status, period_of
from settlement.records import XdrRow
from settlement.vocabulary import RecordType, XdrStatus

DAY_MS = 86_400_000

Micros = Annotated[int, msgspec.Meta(ge=-MAX_EXACT_MICROS, le=MAX_EXACT_MICROS)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_EXACT_MICROS)]


def _text(limit: int) -> object:
    return Annotated[str, msgspec.Meta(max_length=limit)]


class Close(msgspec.Struct, frozen=True, gc=False):
    """A ``session_close`` entry as ``docs/events.md`` defines it, validated on decoding (field names are the
    entry's; the rules those of ``entries.book``)."""

    type: Literal["session_close"]
    account: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT["account"])]
    currency: Annotated[str, msgspec.Meta(pattern="\\A[A-Z]{3}\\Z")]
    amount: Literal[0]
    balance: Micros
    time_ms: Annotated[int, msgspec.Meta(ge=0, le=LATEST_MS)]
    session_id: Annotated[str, msgspec.Meta(min_length=1)]
    rg: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    units: Annotated[int, msgspec.Meta(ge=0, le=10**12)]
    cost: Count
    over: Count
    cause: Literal["TERMINATE", "TIMEOUT", "ABORTED"]
    service: Literal["voice", "data", "message"]
    start_s: Annotated[int, msgspec.Meta(ge=0, le=LATEST_MS // 1000)] | None = None
    ledger: _text(MAX_TEXT["ledger"]) = ""  # type: ignore[valid-type]
    tariff: _text(MAX_TEXT["tariff"]) = ""  # type: ignore[valid-type]
    actor: _text(MAX_TEXT["actor"]) = ""  # type: ignore[valid-type]
    calling: str = ""
    called: str = ""
    group: str = ""
    rate: str = ""
    plan: str = ""
    description: str = ""

    def canonical(self, texts: IntegerTexts) -> bool:
        """Whether every integer of the entry was written as ``str(int)`` writes it (the only form taken here)."""
        return texts.amount == "0" and (
            f"{self.balance} {self.time_ms} {self.rg} {self.units} {self.cost} {self.over} {self.start_s}"
            == f"{texts.balance} {texts.time_ms} {texts.rg} {texts.units} {texts.cost} {texts.over} {texts.start_s}"
        )


class IntegerTexts(msgspec.Struct, frozen=True, gc=False):
    """The integer fields of a close as written, to check that :class:`Close` read them as the reference would."""

    amount: str
    balance: str
    time_ms: str
    rg: str
    units: str
    cost: str
    over: str
    start_s: str | None = None


_close = msgspec.msgpack.Decoder(Close, strict=False).decode  # strict=False: integers written as text are read
_texts = msgspec.msgpack.Decoder(IntegerTexts).decode
_periods: dict[int, str] = {}  # UTC day → its month, for the days seen (a backlog spans few)
_statuses: dict[str, tuple[XdrStatus, str]] = {}  # ledger code → billable_status, for the codes seen
MAX_CACHED = 10_000


def _remember(cache: dict[Any, Any], key: object, value: Any) -> Any:
    if len(cache) > MAX_CACHED:
        cache.clear()
    cache[key] = value
    return value


def close_xdr(key: str, entry: bytes | msgspec.Raw, now_ms: int) -> XdrRow | None:
    """The xDR of a well-formed ``session_close`` entry (its fields as a MessagePack map, as ``lua/read.lua``
    returns them) whose identity is ``key``, or None when the entry is anything else (the caller then books it with
    ``entries.book``, which names what is wrong)."""
    try:
        close = _close(entry)
        if not close.canonical(_texts(entry)):
            return None
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    start_ms = close.start_s * 1000 if close.start_s is not None else close.time_ms
    day = start_ms // DAY_MS
    period = _periods.get(day) or _remember(_periods, day, period_of(start_ms))
    status, reason = _statuses.get(close.ledger) or _remember(_statuses, close.ledger, billable_status(close.ledger))
    return XdrRow(
        id=key,
        period=period,
        account=close.account,
        kind="session",
        record_type=RecordType.MAIN,
        session_id=close.session_id,
        rating_group=close.rg,
        subscriber=close.calling or close.account,
        calling=close.calling,
        called=close.called,
        service=close.service,
        plan=close.plan,
        start_ms=start_ms,
        end_ms=close.time_ms,
        units=close.units,
        over_units=close.over,
        cost=close.cost,
        currency=close.currency,
        dest_group=close.group,
        ledger_code=close.ledger,
        tariff_hash=close.tariff,
        rate_id=close.rate,
        cause=close.cause,
        description=close.description,
        status=status,
        status_reason=reason,
        created_ms=now_ms,
        actor=close.actor or None,
    )
