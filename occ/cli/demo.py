"""``occ demo``: check the example tariff and rate a handful of typical calls with it, as a readable table."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

import rating_engine
from occ.cli.tariff import TARIFF_DIR, echo_summary, load
from rating_engine import CallBatch, Service, normalize_number, rate_batch
from rating_engine.money import format_micros

VOICE, DATA, MESSAGE = Service.VOICE, Service.DATA, Service.MESSAGE
CALLS = (  # (called, service, start, usage); 2026-01-05 is a Monday, and London is on UTC in January
    ("+44 20 7946 0000", VOICE, "2026-01-05T09:00:00Z", 61),  # peak: 0.20 + 0.10 + 1 s at 0.05/min = 0.300834
    ("+44 20 7946 0000", VOICE, "2026-01-05T09:00:00Z", 120),  # 0.20 + 0.10 + 60 s at 0.05/min = 0.350000
    ("+44 20 7946 0000", VOICE, "2026-01-05T17:59:00Z", 120),  # 60 s peak, then 60 s off-peak
    ("+44 909 879 0000", VOICE, "2026-01-05T09:00:00Z", 600),  # premium: 10 min at 1.00, capped at 5.00
    ("", DATA, "2026-01-05T09:00:00Z", 1500),  # billed as 2 KiB at 2.00/MiB
    ("+44 7700 900123", MESSAGE, "2026-01-05T09:00:00Z", 1),
    ("+881 6 1234 5678", VOICE, "2026-01-05T09:00:00Z", 60),  # satellite: not sold on the retail plan
    ("+999 123 4567", VOICE, "2026-01-05T09:00:00Z", 60),  # no such destination
)
HEADER = ("called", "service", "start (UTC)", "usage", "group", "ledger code", "rate", "cost or failure")


def example_tariff_dir() -> Path:
    """The repository's ``examples/tariff`` (found next to the installed packages), else ``./examples/tariff``."""
    beside_package = Path(rating_engine.__file__).resolve().parent.parent / "examples" / "tariff"
    return beside_package if beside_package.is_dir() else Path("examples", "tariff")


@click.command()
@click.option("--tariff", "tariff_dir", type=TARIFF_DIR, help="Tariff directory  [default: examples/tariff]")
def demo(tariff_dir: Path | None) -> None:
    """Check a tariff and rate a few example calls with it."""
    directory = tariff_dir or example_tariff_dir()
    if not directory.is_dir():
        raise click.UsageError(f"no example tariff at {directory}; give one with --tariff DIR")
    loaded = load(directory)
    echo_summary(loaded)
    compiled = loaded.compiled
    plans = compiled.plan_names
    plan = "retail" if "retail" in plans else plans[0]
    starts = [int(datetime.fromisoformat(start).timestamp()) for _, _, start, _ in CALLS]
    batch = CallBatch.of(
        compiled,
        plans=[plan] * len(CALLS),
        services=[int(service) for _, service, _, _ in CALLS],
        destinations=[normalize_number(called, compiled.tariff.country_code) if called else "" for called, *_ in CALLS],
        starts=starts,
        usages=[usage for *_, usage in CALLS],
    )
    rated = rate_batch(compiled, batch)
    lines = [HEADER]
    for i, (called, service, start, usage) in enumerate(CALLS):
        unit = service.unit if usage != 1 else service.unit.rstrip("s")
        if rated.failure[i]:
            outcome, ledger_code = f"failed: {rated.reason(i, batch)}", ""
        else:
            outcome = f"{format_micros(int(rated.cost_micros[i]))} {compiled.tariff.currency}"
            ledger_code = str(rated.ledger_code[i])
        when = start.replace("T", " ").removesuffix("Z")
        lines.append(
            (called or "-", service.name.lower(), when, f"{usage} {unit}", rated.group_name(i) or "-", ledger_code,
             rated.rate_name(i), outcome)
        )  # fmt: skip
    widths = [max(len(line[k]) for line in lines) for k in range(len(HEADER) - 1)]
    click.echo(f"\nRating {len(CALLS)} example calls on plan {plan!r}:\n")
    for line in lines:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
        )
    click.echo("\nThe gRPC server (occ serve) arrives with the online core.")
