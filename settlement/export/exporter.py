"""The exporter: sends the outbox to the ERP middleware until every document is in the ERP exactly once.

::

    async with Exporter(engine, "http://127.0.0.1:8090/soap", on_outcome=billing_hook) as exporter:
        summary = await exporter.run_once()     # everything due now, then return (tests, ``occ export --once``)

    exporter = Exporter(engine, url); await exporter.start(); …; await exporter.close()   # a background loop

Rules (``docs/erp-export.md``):

- **Claim.** A worker takes a PENDING row due now by a conditional UPDATE that increments ``attempts`` (the claim
  token) and leases the row (``next_attempt_ms = now + lease``); a second worker's UPDATE finds the token moved and
  takes another row. Outcomes are written only while the token is still the worker's, so a worker that lost its
  lease (stalled past it) cannot overwrite the newer attempt.
- **Order.** A row waits while an earlier row of the same ``document_ref`` (tenant:invoice_number) is PENDING, or
  is a REJECTED credit note: a replacement invoice never reaches the ERP before the credit note of the revision it
  replaces, nor without it. A credit note of an invoice the ERP REJECTED is not sent (VOID: nothing to credit).
- **Reconcile.** Every attempt after the first asks GetSubmissionStatus before submitting: an earlier attempt
  may have reached the ERP (a timeout, a dropped reply, a worker that died mid-call). Found with the same payload
  hash → ACCEPTED (reconciled); found with another → REJECTED; not found → submit.
- **Outcomes.** ACCEPTED / DUPLICATE record the ERP's document number; a VALIDATION fault or an idempotency
  conflict → REJECTED with the reason (never retried); a transient fault, a timeout, a refused connection → retried
  after ``backoff_s × 2^(attempt−1)`` (capped, minus up to ``jitter`` of it at random). Retries never stop: nothing
  is dropped; ``occ_export_oldest_pending_age_seconds`` is the alarm.
- **Checked before sent.** A document that does not add up (lines that do not multiply out, totals that are not
  the lines' sums; a journal whose debits are not its credits to the cent), whose customer VAT id python-stdnum
  refuses, or that ``verify(connection, invoice_id, document)`` finds problems with (billing's: it does not tie out
  to its invoice) is REJECTED with the reasons, and nothing is sent. One the ERP profile cannot file (no exchange
  rate for its currency) waits, retried, until the settings give it.
- **Linked credit notes.** A credit note goes out only once its invoice (an earlier row of its ``document_ref``) is
  ACCEPTED or DUPLICATE, and carries the ERP's number for it (``baseDocument``).
- **Journals** (JOURNAL_ENTRY, INCOMING_PAYMENT) go the same way, one ``document_ref`` per reference; ``prepare``,
  when given, runs at the start of every round (``occ export`` queues the journals of the money that moved).
- **Billing hook.** ``on_outcome(connection, outcome)`` runs for every final outcome (ACCEPTED, DUPLICATE,
  REJECTED, VOID) inside the transaction that records it, so an invoice's POSTED / POSTING_ERROR state commits with the
  outbox row or not at all (then the row is reconciled again after its lease: the hook must be idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

import msgspec
from sqlalchemy import Connection, Engine, and_, case, exists, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from settlement.export import metrics
from settlement.export.journal import ErpJournal
from settlement.export.outbox import AnyDocument, load, problems_of
from settlement.export.outcomes import (
    Backlog,
    ExporterOptions,
    ExportOutcome,
    ExportSummary,
    JournalVerifyHook,
    OutcomeHook,
    OutcomeState,
    VerifyHook,
)
from settlement.export.profile import ErpProfile
from settlement.export.security import ErpAuth
from settlement.export.soap_client import ErpClient, ErpConflictFault, ErpTransientError, ErpValidationFault
from settlement.store.schema import outbox
from settlement.vocabulary import OutboxState

log = logging.getLogger(__name__)
PENDING, REJECTED = OutboxState.PENDING, OutboxState.REJECTED


class _Claim(msgspec.Struct, frozen=True):
    id: int
    invoice_id: int | None
    idempotency_key: str
    kind: str
    payload: str
    payload_sha256: str
    token: int
    credited_state: str | None = None  # a credit note: the outbox state of the invoice it credits, if queued here
    credited_number: str = ""  # … and the ERP's number for that invoice, once it has one


def _now_ms() -> int:
    return int(time.time() * 1000)


class Exporter:
    """Sends the outbox of ``engine`` to the middleware at ``erp_url``; owns its SOAP client and background loop."""

    def __init__(
        self,
        engine: Engine,
        erp_url: str,
        *,
        options: ExporterOptions | None = None,
        on_outcome: OutcomeHook | None = None,
        on_run: Callable[[ExportSummary], None] | None = None,
        verify: VerifyHook | None = None,
        auth: ErpAuth | None = None,
        profile: ErpProfile | None = None,
        prepare: Callable[[], object] | None = None,
        verify_journal: JournalVerifyHook | None = None,
    ) -> None:
        self.engine = engine
        self.options = options or ExporterOptions()
        self.on_outcome = on_outcome
        self.verify = verify
        self.on_run = on_run
        self.totals = ExportSummary()  # of the background loop's runs
        self.running: ExportSummary | None = None  # the counts of the run in progress (or the last one)
        self.profile = profile or ErpProfile()
        self.prepare = prepare
        self.verify_journal = verify_journal
        self._client = ErpClient(erp_url, timeout_s=self.options.timeout_s, auth=auth, profile=self.profile)
        self._random = random.Random()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> Exporter:
        await self._client.open()
        return self

    async def __aenter__(self) -> Exporter:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the client and run :meth:`run_once` every ``poll_s`` in the background until :meth:`close`."""
        if self._task is not None:
            raise RuntimeError("the exporter is already running")
        await self.open()
        self._stop.clear()
        self._task = asyncio.create_task(self._loop(), name="erp-exporter")

    async def close(self) -> None:
        """Stop the loop: the round in progress may finish its documents for up to ``close_grace_s``, then it is
        cancelled (a row still in flight keeps its lease and is reconciled later); close the client."""
        task, self._task = self._task, None
        self._stop.set()
        try:
            if task is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), self.options.close_grace_s)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # re-raises what crashed the loop
        finally:
            await self._client.close()

    async def run_until(self, stop: asyncio.Event) -> None:
        """:meth:`start`, run until ``stop`` is set (or the loop fails: then raise its error), :meth:`close`."""
        await self.start()
        assert self._task is not None
        waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait((waiter, self._task), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            await self.close()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                summary = await self.run_once()
            except asyncio.CancelledError:  # closed mid-round: what was sent and recorded still counts
                if self.running is not None:
                    self.totals.add(self.running)
                raise
            except SQLAlchemyError as error:  # the store is away: try again next round
                metrics.ERRORS.inc()
                log.warning("export round failed on the SQL store: %s", error)
            else:
                self.totals.add(summary)
                if self.on_run is not None:
                    self.on_run(summary)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.options.poll_s)

    async def run_once(self) -> ExportSummary:
        """Send every document due now (in order per invoice number, each at most once in this run)."""
        if self.prepare is not None:  # e.g. queue the journals of the money that moved since the last round
            await asyncio.to_thread(self.prepare)
        cutoff_ms = _now_ms()  # rows retried in this run are due later than this, so the run ends
        summary = self.running = ExportSummary()
        try:
            async with asyncio.TaskGroup() as workers:  # one failing (the store is away) stops the others
                for _ in range(self.options.concurrency):
                    workers.create_task(self._worker(cutoff_ms, summary))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        backlog = await asyncio.to_thread(self.backlog)
        metrics.PENDING.set(backlog.pending)
        metrics.RETRYING.set(backlog.retrying)
        metrics.OLDEST_PENDING_AGE.set(backlog.oldest_pending_age_s)
        return summary

    async def _worker(self, cutoff_ms: int, summary: ExportSummary) -> None:
        while (claim := await asyncio.to_thread(self._claim, cutoff_ms)) is not None:
            outcome = await self._attempt(claim, summary)
            try:
                recorded = await asyncio.to_thread(self._record, claim, outcome)
            except Exception:  # the hook or the store failed: the row stays leased and is reconciled later
                log.exception("could not record %s of outbox row %d", outcome.state, claim.id)
                metrics.ERRORS.inc()
                continue
            metrics.OUTCOMES.labels(outcome.state.lower() if recorded else "lost_lease").inc()
            if recorded:
                summary.count(outcome)
            else:
                log.warning("outbox row %d was taken over by another worker; dropping attempt %d's outcome",
                            claim.id, claim.token)  # fmt: skip

    # --- SQL (run in threads) -----------------------------------------------------------------------------------

    def _claim(self, cutoff_ms: int) -> _Claim | None:
        earlier = outbox.alias("earlier")
        blocking = exists().where(
            earlier.c.document_ref == outbox.c.document_ref,
            earlier.c.id < outbox.c.id,
            or_(earlier.c.state == PENDING, and_(earlier.c.state == REJECTED, earlier.c.kind == "CREDIT_NOTE")),
        )
        due = (
            select(outbox.c.id, outbox.c.attempts)
            .where(outbox.c.state == PENDING, outbox.c.next_attempt_ms <= cutoff_ms, ~blocking)
            .order_by(outbox.c.id)
            .limit(self.options.concurrency)
        )
        with self.engine.begin() as connection:
            for row_id, attempts in connection.execute(due).all():
                now_ms = _now_ms()
                taken = connection.execute(
                    update(outbox)
                    .where(
                        outbox.c.id == row_id,
                        outbox.c.state == PENDING,
                        outbox.c.attempts == attempts,
                        outbox.c.next_attempt_ms <= cutoff_ms,
                    )
                    .values(attempts=attempts + 1, next_attempt_ms=now_ms + self.options.lease_ms, updated_ms=now_ms)
                ).rowcount
                if taken == 1:
                    row = connection.execute(select(outbox).where(outbox.c.id == row_id)).one()
                    credited = None
                    if row.kind == "CREDIT_NOTE":
                        credited_key = row.idempotency_key.removesuffix(":credit")
                        credited = connection.execute(
                            select(outbox.c.state, outbox.c.erp_document_number)
                            .where(outbox.c.idempotency_key == credited_key)
                        ).first()  # fmt: skip
                    return _Claim(row.id, row.invoice_id, row.idempotency_key, row.kind, row.payload,
                                  row.payload_sha256, row.attempts, *(credited or (None, "")))  # fmt: skip
        return None

    def _record(self, claim: _Claim, outcome: ExportOutcome) -> bool:
        now_ms = _now_ms()
        values: dict[str, object] = {"last_error": outcome.error, "updated_ms": now_ms}
        if outcome.final:
            values.update(state=outcome.state, erp_document_number=outcome.erp_document_number)
        else:
            values["next_attempt_ms"] = now_ms + max(1, self._backoff_ms(claim.token))
        with self.engine.begin() as connection:
            held = connection.execute(
                update(outbox)
                .where(outbox.c.id == claim.id, outbox.c.state == PENDING, outbox.c.attempts == claim.token)
                .values(**values)
            ).rowcount
            if held == 1 and outcome.final and self.on_outcome is not None:
                self.on_outcome(connection, outcome)
        return held == 1

    def _backoff_ms(self, attempts: int) -> int:
        options = self.options
        delay_s = min(options.backoff_cap_s, options.backoff_s * 2 ** min(attempts - 1, 60))
        return int(1000 * delay_s * (1 - options.jitter * self._random.random()))

    def backlog(self) -> Backlog:
        """How much of the outbox is still to send (also the gauges' source)."""
        pending = outbox.c.state == PENDING
        with self.engine.connect() as connection:
            count, tried, oldest, rejected = connection.execute(
                select(
                    func.count().filter(pending),
                    func.count().filter(and_(pending, outbox.c.attempts > 0)),
                    func.min(case((pending, outbox.c.created_ms))),
                    func.count().filter(outbox.c.state == REJECTED),
                )
            ).one()
        age_s = max(0.0, (_now_ms() - oldest) / 1000) if oldest is not None else 0.0
        return Backlog(pending=count, retrying=tried, oldest_pending_age_s=age_s, rejected=rejected)

    # --- SOAP ---------------------------------------------------------------------------------------------------

    async def _attempt(self, claim: _Claim, summary: ExportSummary) -> ExportOutcome:
        def outcome(state: OutcomeState, number: str = "", error: str = "", reconciled: bool = False) -> ExportOutcome:
            return ExportOutcome(
                outbox_id=claim.id, invoice_id=claim.invoice_id, idempotency_key=claim.idempotency_key,
                kind=claim.kind, state=state, erp_document_number=number, attempts=claim.token, error=error,
                reconciled=reconciled,
            )  # fmt: skip

        if claim.kind == "CREDIT_NOTE" and claim.credited_state == REJECTED:
            credited = claim.idempotency_key.removesuffix(":credit")
            return outcome(OutboxState.VOID, error=f"nothing to credit: the ERP rejected {credited}")
        try:
            document = load(claim.payload, claim.kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            return outcome(REJECTED, error=f"unreadable outbox payload: {error}")
        try:
            problems = await self._check(claim, document)
        except Exception as error:  # the store or the hook failed: the document is fine as far as we know
            log.exception("checking outbox row %d failed", claim.id)
            return outcome("RETRYING", error=f"could not check the document: {type(error).__name__}: {error}")
        if problems:
            return outcome(REJECTED, error="not sent, the document does not tie out: " + "; ".join(problems))
        missing = self.profile.missing(document)
        if missing:
            return outcome("RETRYING", error=f"not sent: {missing}")
        try:
            if claim.token > 1:  # an earlier attempt may have reached the ERP
                summary.checked += 1
                found = await self._timed("status", self._client.status(claim.idempotency_key))
                if found.found and found.payload_sha256 == claim.payload_sha256:
                    return outcome(OutboxState.ACCEPTED, found.erp_document_number, reconciled=True)
                if found.found:
                    held = f"{found.erp_document_number} under this key with payload {found.payload_sha256}"
                    return outcome(REJECTED, error=f"idempotency conflict: the ERP holds {held}")
            summary.sent += 1
            reply = await self._timed(
                "submit",
                self._client.submit(
                    document, payload_sha256=claim.payload_sha256, base_erp_document_number=claim.credited_number
                ),
            )
            return outcome(reply.status, reply.erp_document_number)
        except ErpValidationFault as error:
            return outcome(REJECTED, error=f"validation fault: {error}")
        except ErpConflictFault as error:
            return outcome(REJECTED, error=f"idempotency conflict: {error}")
        except ErpTransientError as error:
            return outcome("RETRYING", error=f"{'unknown outcome: ' if error.outcome_unknown else ''}{error}")
        except Exception as error:  # a bug, not the document's fault: keep it and try again later
            log.exception("exporting outbox row %d failed", claim.id)
            return outcome("RETRYING", error=f"unknown outcome: {type(error).__name__}: {error}")

    async def _check(self, claim: _Claim, document: AnyDocument) -> list[str]:
        problems = problems_of(document) + self.profile.problems(document)
        if problems:
            return problems
        if isinstance(document, ErpJournal):
            verify_journal = self.verify_journal
            if verify_journal is None:
                return []
            return await self._in_store(lambda connection: verify_journal(connection, claim.id, document))
        verify, invoice_id = self.verify, claim.invoice_id
        if verify is None or invoice_id is None:
            return []
        return await self._in_store(lambda connection: verify(connection, invoice_id, document))

    async def _in_store(self, check: Callable[[Connection], list[str]]) -> list[str]:
        def run() -> list[str]:
            with self.engine.connect() as connection:
                return check(connection)

        return await asyncio.to_thread(run)

    async def _timed(self, operation: str, call):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = "ok"
        try:
            return await call
        except ErpTransientError as error:
            result = "unknown" if error.outcome_unknown else "transient"
            raise
        except (ErpValidationFault, ErpConflictFault):
            result = "rejected"
            raise
        finally:
            metrics.REQUESTS.labels(operation, result).inc()
            metrics.REQUEST_SECONDS.labels(operation).observe(time.perf_counter() - started)
