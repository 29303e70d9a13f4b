"""Loading and validating tariff directories: every problem named by file, line and column; all or nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLE_TARIFF

from rating_engine import TariffError, compile_tariff, load_tariff
from rating_engine.load import TariffIssue


@pytest.fixture
def tariff_dir(tmp_path: Path) -> Path:
    """A writable copy of the example tariff."""
    return Path(shutil.copytree(EXAMPLE_TARIFF, tmp_path / "tariff"))


def edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def issues_of(directory: Path) -> list[TariffIssue]:
    with pytest.raises(TariffError) as failed:
        load_tariff(directory)
    return failed.value.issues


def line_of(directory: Path, name: str, text: str) -> int:
    return next(n for n, line in enumerate((directory / name).read_text().splitlines(), 1) if text in line)


def test_example_tariff_loads(tariff_dir):
    tariff = load_tariff(tariff_dir)
    assert (tariff.name, tariff.currency, tariff.timezone, tariff.country_code) == (
        "OCC example tariff",
        "EUR",
        "Europe/London",
        "44",
    )
    assert tariff.prefixes["4490"] == "UK_PREMIUM"
    assert tariff.rates["STANDARD"].connect_fee_micros == 200_000
    assert [s.start for s in tariff.rates["STANDARD"].intervals] == [0, 60]
    assert tariff.plans == ["retail", "wholesale"]


def test_bad_ledger_code_is_named_by_file_line_and_column(tariff_dir):
    edit(tariff_dir, "groups.csv", "EU,400000002", "EU,4000-02")
    assert issues_of(tariff_dir) == [
        TariffIssue(
            "groups.csv",
            line_of(tariff_dir, "groups.csv", "4000-02"),
            "ledger_code",
            "'4000-02' is not a ledger code (1 to 15 digits, no leading zero)",
        )
    ]  # and only that: the prefixes and rate-plan rows naming EU are not reported as naming an unknown group


def test_every_problem_is_reported_at_once(tariff_dir):
    edit(tariff_dir, "destinations.csv", "33,EU", "33,NOWHERE")
    edit(tariff_dir, "destinations.csv", "49,EU", "4x9,EU")
    edit(tariff_dir, "rates.csv", "MOBILE,0.05", "MOBILE,0.0500001")
    edit(tariff_dir, "rate_intervals.csv", "SMS,0,0.05,1,1", "SMS,0,0.05,0,1")
    found = {(i.file, i.column, i.message) for i in issues_of(tariff_dir)}
    assert ("destinations.csv", "group", "unknown group 'NOWHERE' (not in groups.csv)") in found
    assert ("destinations.csv", "prefix", "'4x9' is not a prefix of 1 to 18 digits") in found
    assert (
        "rates.csv",
        "connect_fee",
        "'0.0500001' is not a decimal amount with at most 6 decimals (e.g. 0.05)",
    ) in found
    assert ("rate_intervals.csv", "per", "0 is outside 1 … 1000000000000") in found


def test_duplicate_prefix_names_the_first_line(tariff_dir):
    with (tariff_dir / "destinations.csv").open("a") as handle:
        handle.write("447,UK_FIXED\n")
    [issue] = issues_of(tariff_dir)
    assert issue.column == "prefix"
    assert issue.message == f"duplicate prefix 447 (first on line {line_of(tariff_dir, 'destinations.csv', '447,')})"


def test_rate_must_start_at_zero_and_have_steps(tariff_dir):
    edit(tariff_dir, "rate_intervals.csv", "OFFPEAK,0,", "OFFPEAK,5,")
    edit(tariff_dir, "rate_intervals.csv", "SMS,0,0.05,1,1\n", "")
    messages = {i.message for i in issues_of(tariff_dir)}
    assert "rate 'OFFPEAK' must have a step starting at 0" in messages
    assert "rate 'SMS' has no steps in rate_intervals.csv" in messages


def test_band_windows_must_not_overlap_or_leave_gaps(tariff_dir):
    edit(tariff_dir, "bands.csv", "PEAK,Mon-Fri,08:00,18:00", "PEAK,Mon-Fri,07:00,18:00")
    [issue] = issues_of(tariff_dir)
    assert (issue.file, issue.column) == ("bands.csv", "from")
    assert issue.message.startswith("overlaps the window on line") and "Mon 07:00" in issue.message

    edit(tariff_dir, "bands.csv", "PEAK,Mon-Fri,07:00,18:00", "PEAK,Mon-Fri,09:00,18:00")
    [issue] = issues_of(tariff_dir)
    assert issue.message == "Mon 08:00 to Mon 09:00 is in no band; bands must cover the whole week"


def test_wildcard_group_needs_a_ledger_code(tariff_dir):
    edit(tariff_dir, "rate_plans.csv", "retail,data,*,*,DATA,400000005", "retail,data,*,*,DATA,")
    [issue] = issues_of(tariff_dir)
    assert (issue.file, issue.column) == ("rate_plans.csv", "ledger_code")


def test_rate_plan_rows_must_be_unique(tariff_dir):
    with (tariff_dir / "rate_plans.csv").open("a") as handle:
        handle.write("retail,voice,UK_MOBILE,*,OFFPEAK,\n")
    [issue] = issues_of(tariff_dir)
    assert "already binds voice/UK_MOBILE/*" in issue.message


def test_missing_file_and_missing_column(tariff_dir):
    (tariff_dir / "rates.csv").unlink()
    edit(tariff_dir, "destinations.csv", "prefix,group", "prefix,grp")
    found = {(i.file, i.line, i.column, i.message) for i in issues_of(tariff_dir)}
    assert ("rates.csv", 0, "", "file is missing") in found
    assert ("destinations.csv", 1, "group", "required column is missing from the header") in found
    assert ("destinations.csv", 1, "grp", "unknown column; expected prefix, group") in found


def test_unknown_time_zone_and_currency(tariff_dir):
    (tariff_dir / "tariff.csv").write_text("name,currency,timezone\nx,euro,Mars/Olympus\n")
    found = {(i.column, i.message) for i in issues_of(tariff_dir)}
    assert ("currency", "'euro' is not an ISO 4217 code such as EUR") in found
    assert ("timezone", "'Mars/Olympus' is not an IANA time zone such as Europe/London") in found


def test_error_message_lists_the_issues(tariff_dir):
    edit(tariff_dir, "groups.csv", "EU,400000002", "EU,x")
    with pytest.raises(TariffError, match=r"groups.csv:\d+ \[ledger_code\]: 'x' is not a ledger code"):
        load_tariff(tariff_dir)


def test_bands_file_is_optional(tariff_dir):
    (tariff_dir / "bands.csv").unlink()
    (tariff_dir / "rate_plans.csv").write_text("plan,service,group,band,rate\nretail,voice,UK_FIXED,*,STANDARD\n")
    tariff = load_tariff(tariff_dir)
    assert [w.band for w in tariff.bands] == ["ALL"]


def test_same_files_same_hash_and_row_order_does_not_matter(tariff_dir):
    first = compile_tariff(load_tariff(EXAMPLE_TARIFF)).hash
    assert compile_tariff(load_tariff(EXAMPLE_TARIFF)).hash == first
    lines = (tariff_dir / "destinations.csv").read_text().splitlines()
    (tariff_dir / "destinations.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    assert compile_tariff(load_tariff(tariff_dir)).hash == first
    edit(tariff_dir, "rate_intervals.csv", "MOBILE,0,0.12", "MOBILE,0,0.13")
    assert compile_tariff(load_tariff(tariff_dir)).hash != first
