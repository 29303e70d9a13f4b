"""The rows settlement writes: an xDR (billable item), a ledger row (balance change) and an account's row (what the
books know of an account), as frozen Structs.

One definition for everything that makes them: :func:`settlement.entries.book` (stream entries),
``settlement.billing.issue.tax_xdrs`` (the taxation xDRs of a period close) and ``settlement.rerate`` (reversals and
new revisions); :class:`AccountRow` by ``settlement.entries.account_row`` (an ``account`` entry) and the writer
itself (an account first seen in a money entry). They become SQL rows in one place, :mod:`settlement.writer`. Field
names are the column names of ``xdrs``, ``ledger`` and ``accounts`` (``settlement/store/schema.py``), in the same
order; money fields are ``int`` micro-units (``cost = 300834`` is 0.300834), times Unix milliseconds (``*_ms``).

Signs: a ledger row's ``amount`` is the balance change (credit positive); an xDR's ``cost`` is what the customer owes
for the item (a debit of 0.30 is an xDR of cost 0.30; a top-up of 10 is an xDR of cost −10).
"""

from __future__ import annotations

import msgspec

from settlement.vocabulary import AccountStatus, RecordType, XdrStatus


class XdrRow(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One billable item (a row of ``xdrs``).

    Attributes:
        id: ``s<shard>:<entry id>`` for what a stream entry booked (``:tax`` added for a top-up's tax),
            ``tax:<invoice id>:<ledger code>:<rate>`` for a period close's tax, ``<id>:r<n>[:rev]`` for a rerate's.
        period: the UTC month ``YYYY-MM`` of its start (with ``id``, the primary key; the PostgreSQL partition): a
            call belongs to the month it started in, whichever day it was settled.
        account: the account it belongs to.
        kind: ``session``, ``event_charge``, ``event_refund`` (usage), ``topup``, ``payment``, ``adjustment``,
            ``refund`` (money movements), ``topup_tax``, ``tax`` (tax) or ``correction`` (a rerate's reversal).
        record_type: what it is to an invoice (MAIN, PAYMENT, TAX, TEXT).
        session_id: the switch's session id of usage; the idempotency key of a money movement; "" otherwise.
        rating_group: the session's rating group (0 for anything else).
        subscriber: the calling party, else the account.
        calling, called: the parties as the switch gave them ("" when not a call).
        service: ``voice``, ``data``, ``message``, or "" for what is not usage.
        plan: the rate plan it was priced on.
        start_ms, end_ms: when it started and ended (the same instant for anything but a session).
        units: usage units (seconds, octets, messages); over_units: of them, used beyond the grant.
        cost: what the customer owes for it, micro-units (negative: a credit).
        currency: ISO 4217 code.
        dest_group: the destination group it was priced in.
        ledger_code: the G/L code it posts to ("" leaves it RAW_EXCEPTED).
        tariff_hash, rate_id: the tariff and rate that priced it.
        cause: how a session ended (TERMINATE, TIMEOUT, ABORTED), EVENT for a one-shot event, else "".
        description: free text.
        tax_code, tax_rate_ppm, tax_amount: a TAX item's tax code, rate (millionths) and tax (micro-units); None
            otherwise.
        status: where it is in its lifecycle; status_reason: why, when excepted.
        invoice_id: the invoice it is on, once BILLED.
        revision: 0 for an original, n for a rerate's revision n; corrects: the original a revision corrects.
        created_ms: when it was written.
        late_period_start_ms, late_period_end_ms: for an item billed after its own period was invoiced (late), that
            period (``settlement/billing/late.py``); None for an item billed in its own period.
        actor: who caused it through the Admin API (``token:<name>``, ``certificate:<name>``): a money movement, or
            the close of a session an administrator aborted; None for the switch's usage and for what was settled
            before actors existed. A rerate's reversal and revision keep their original's.
    """

    id: str
    period: str
    account: str
    kind: str
    record_type: RecordType
    session_id: str = ""
    rating_group: int = 0
    subscriber: str = ""
    calling: str = ""
    called: str = ""
    service: str = ""
    plan: str = ""
    start_ms: int
    end_ms: int
    units: int = 0
    over_units: int = 0
    cost: int
    currency: str
    dest_group: str = ""
    ledger_code: str = ""
    tariff_hash: str = ""
    rate_id: str = ""
    cause: str = ""
    description: str = ""
    tax_code: str | None = None
    tax_rate_ppm: int | None = None
    tax_amount: int | None = None
    status: XdrStatus
    status_reason: str = ""
    invoice_id: int | None = None
    revision: int = 0
    corrects: str | None = None
    created_ms: int
    late_period_start_ms: int | None = None
    late_period_end_ms: int | None = None
    actor: str | None = None


class LedgerRow(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One balance change (a row of ``ledger``).

    Attributes:
        id: ``s<shard>:<entry id>`` of the stream entry (``:tax`` added for the tax taken from a top-up).
        period: the UTC month ``YYYY-MM`` of ``time_ms``.
        account: whose balance changed.
        time_ms: when the online core changed it.
        kind: the entry's type (``session_charge``, ``event_charge``, ``event_refund``, ``topup``, ``payment``,
            ``adjustment``, ``refund``), or ``topup_tax``.
        amount: the balance change, micro-units (credit positive).
        balance: the balance after it, micro-units.
        currency: ISO 4217 code.
        ledger_code: the G/L code it posts to.
        reference: the idempotency key of a money movement, else the session id (or the event id).
        description: free text.
        xdr_id: the xDR booked with it (None for a session charge, whose session close carries the totals, and for
            a rerate's balance correction, whose correction xDRs already carry the difference).
        actor: who caused it through the Admin API (``token:<name>``, ``certificate:<name>``); None for the switch's
            usage, for a rerate's balance correction, and for what was settled before actors existed.
    """

    id: str
    period: str
    account: str
    time_ms: int
    kind: str
    amount: int
    balance: int | None
    currency: str
    ledger_code: str = ""
    reference: str = ""
    description: str = ""
    xdr_id: str | None = None
    actor: str | None = None


class AccountRow(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An account in the books (a row of ``accounts``): no money, no xDR, only that the account exists and what its
    newest settled ``account`` entry said of its online settings.

    An ``account`` entry (created, updated) gives the whole row, settings and stream position included; an account
    first seen in a money entry (one made before account entries existed, or whose top-up a worker booked before
    another booked its creation) gets a row with its settings None until an ``account`` entry is booked.

    Attributes:
        account: its id.
        currency: ISO 4217 code.
        opening_balance: the balance before its first settled entry, micro-units (0 when its whole stream history
            was settled).
        first_seen_ms: its creation (``created_ms``, else the time of the first entry that registered it).
        plan, credit_limit, status, prepaid_tax_ppm, prepaid_tax_ledger, prepaid_tax_code, created_ms: its online
            settings (credit limit in micro-units, prepaid tax rate in millionths) as its newest settled ``account``
            entry gave them; None until one is settled (``created_ms`` also for an account made before it existed).
        settings_ms, settings_seq: the stream position (entry id ``<ms>-<seq>``) of the entry the settings came
            from: a newer position wins, whatever order workers book in.
    """

    account: str
    currency: str
    opening_balance: int = 0
    first_seen_ms: int
    plan: str | None = None
    credit_limit: int | None = None
    status: AccountStatus | None = None
    prepaid_tax_ppm: int | None = None
    prepaid_tax_ledger: str | None = None
    prepaid_tax_code: str | None = None
    created_ms: int | None = None
    settings_ms: int | None = None
    settings_seq: int | None = None
