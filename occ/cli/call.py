"""``occ call``: one voice call through a running server, as a switch would drive it, with simulated time.

Authorize (the longest call credit covers), then StartSession asking for ``--step`` seconds, an UpdateSession each
time a grant is used up (reporting it and asking for the next), and EndSession with the last stretch. Nothing
sleeps unless ``--real-time``: the call's seconds are simulated, so a one-hour call runs in a moment. Each step
prints the grant, the usage and cost so far and the balance after it.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import click
from google.protobuf.timestamp_pb2 import Timestamp

from occ.cli.accounts import TIMEOUT_S, Stubs, connect
from occ.cli.connection import Target, charging_options
from occ.v1 import charging_pb2 as pb
from rating_engine.money import format_micros


def _time(value: str | None) -> int:
    """Unix seconds of an ISO-8601 time with offset (``2026-01-05T09:00:00Z``), or now."""
    if value is None:
        return int(datetime.now().timestamp())
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time such as 2026-01-05T09:00:00Z") from None
    if moment.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no UTC offset (add Z or +01:00)")
    return int(moment.timestamp())


class Call:
    """The requests of one session; ``send`` prints each answer's line."""

    def __init__(self, stubs: Stubs, *, account_id: str, called: str, rating_group: int, start_s: int) -> None:
        self.stubs, self.account_id, self.called, self.rating_group = stubs, account_id, called, rating_group
        self.start_s, self.session_id, self.number = start_s, f"call-{uuid.uuid4().hex[:12]}", 0

    def send(self, kind: str, *, used: int, requested: int, elapsed_s: int) -> pb.QuotaAnswer:
        quota = pb.QuotaRequest(
            rating_group=self.rating_group, service=pb.VOICE, requested_units=requested, used_units=used
        )
        request = pb.SessionRequest(
            session_id=self.session_id,
            request_number=self.number,
            subscriber=self.account_id,
            event_time=Timestamp(seconds=self.start_s + elapsed_s),
            called_party=self.called,
            quotas=[quota],
        )
        method = {"start": self.stubs.charging.StartSession, "update": self.stubs.charging.UpdateSession}
        answer = method.get(kind, self.stubs.charging.EndSession)(request, timeout=TIMEOUT_S)
        self.number += 1
        item = answer.quotas[0] if answer.quotas else pb.QuotaAnswer()
        final = "  (final units)" if item.final_unit.action == pb.TERMINATE else ""
        click.echo(
            f"{kind:<7} {self.number - 1:>3}  {pb.ResultCode.Name(answer.result_code):<24}"
            f" granted {item.granted_units:>5} s  used {item.used_units_total:>6} s"
            f"  cost {format_micros(answer.cost_micros)}  balance {format_micros(answer.balance_micros)}"
            f" {answer.currency}{final}"
        )
        if answer.result_code != pb.SUCCESS and answer.reason:
            click.echo(f"        {answer.reason}")
        return item


def _grant(auth: pb.AuthorizeAnswer) -> str:
    """`` up to N s for COST CUR (GROUP)``; nothing when there is no account to speak of (no currency: 5030)."""
    if not auth.currency:
        return ""
    group = f" ({auth.destination_group})" if auth.destination_group else ""
    return f" up to {auth.max_units} s for {format_micros(auth.cost_micros)} {auth.currency}{group}"


@click.command()
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("called")
@click.option("--seconds", type=click.IntRange(min=1), required=True, help="How long the caller talks.")
@click.option("--rating-group", type=click.IntRange(0, 2**32 - 1), default=100, show_default=True)
@click.option("--step", type=click.IntRange(min=1), default=30, show_default=True, help="Seconds asked for per grant.")
@click.option("--at", "at", default=None, help="When the call starts, ISO-8601 with offset.  [default: now]")
@click.option("--real-time", is_flag=True,
              help="Wait out each stretch before reporting it: the session stays open as the call.")  # fmt: skip
@charging_options
def call(account_id: str, called: str, seconds: int, rating_group: int, step: int, at: str | None, real_time: bool,
         target: Target) -> None:  # fmt: skip
    """Simulate a voice call of ACCOUNT to CALLED lasting --seconds: authorize, start, update per step, end.

    Without --real-time the whole call is sent at once (its times are still those of a call of --seconds); with it,
    each update comes when its stretch has been talked, as a switch sends them (a session to watch on the console).
    Exits with status 1 when the call is refused (authorization or start not SUCCESS).
    """
    start_s = _time(at)
    with connect(target) as stubs:
        authorize = pb.AuthorizeRequest(
            subscriber=account_id, event_time=Timestamp(seconds=start_s), called_party=called, service=pb.VOICE
        )
        auth = stubs.charging.Authorize(authorize, timeout=TIMEOUT_S)
        click.echo(f"{'authorize':<13}{pb.ResultCode.Name(auth.result_code):<24}{_grant(auth)}".rstrip())
        if auth.result_code != pb.SUCCESS:
            raise click.ClickException(f"call refused: {auth.reason}")

        session = Call(stubs, account_id=account_id, called=called, rating_group=rating_group, start_s=start_s)
        grant = session.send("start", used=0, requested=step, elapsed_s=0)
        if grant.granted_units == 0:
            raise click.ClickException("call refused: nothing was granted")
        talked = 0
        while True:
            stretch = min(grant.granted_units, seconds - talked)
            if real_time:
                time.sleep(stretch)
            talked += stretch
            if talked == seconds or grant.granted_units == 0 or grant.final_unit.action == pb.TERMINATE:
                session.send("end", used=stretch, requested=0, elapsed_s=talked)
                break
            grant = session.send("update", used=stretch, requested=step, elapsed_s=talked)
    click.echo(
        f"call of {talked} s" + (f" (cut off: the caller wanted {seconds} s)" if talked < seconds else "") + " ended"
    )
