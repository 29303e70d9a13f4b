"""Edge cases of the rating core found by an adversarial review against docs/tariffs.md (each failed before its fix).

Expected values are worked out by hand from the written rules, not taken from either rating path, because a mistake
shared by the scalar oracle and the vectorised rater is invisible to the property tests. The last test pins a
content-hash rule nothing else checks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLE_TARIFF, at

from rating_engine import (
    Call,
    CallBatch,
    Service,
    Tariff,
    TariffError,
    compile_tariff,
    load_tariff,
    normalize_number,
    rate_batch,
    rate_call,
)
from rating_engine.tariff import BandWindow, Binding, DestinationGroup, Rate, RateInterval


@pytest.fixture
def tariff_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE_TARIFF, tmp_path / "tariff"))


def issues_of(directory: Path):
    """The issues of a tariff that must not load; any other exception (a traceback) fails the test."""
    with pytest.raises(TariffError) as failed:
        load_tariff(directory)
    return failed.value.issues


# --- loader robustness: "every problem is reported with its file, line and column" -------------------------------


def test_non_utf8_file_is_a_tariff_issue_not_a_crash(tariff_dir):
    # A spreadsheet exported as Latin-1 ("Europé" = b"Europ\xe9"). docs/tariffs.md: every problem is reported with
    # its file; the loader must raise TariffError naming groups.csv, not leak a UnicodeDecodeError traceback
    # (which is what `occ tariff check` then prints).
    path = tariff_dir / "groups.csv"
    path.write_bytes(path.read_bytes().replace(b"European Union", b"Europ\xe9"))
    issues = issues_of(tariff_dir)
    assert [issue.file for issue in issues] == ["groups.csv"]


def test_unbalanced_quote_in_a_large_file_is_a_tariff_issue_not_a_crash(tariff_dir):
    # One stray '"' at the start of a cell in a destinations list of realistic size: the csv module reads the rest of
    # the file as one cell and raises csv.Error("field larger than field limit (131072)"), which escapes load_tariff.
    rows = "".join(f"44{n:06d},UK_FIXED\n" for n in range(20_000))
    (tariff_dir / "destinations.csv").write_text('prefix,group\n"33,EU\n' + rows)
    issues = issues_of(tariff_dir)
    assert any(issue.file == "destinations.csv" for issue in issues)


def test_duplicate_header_column_is_reported(tariff_dir):
    # Header "rate,connect_fee,connect_fee,…": which cell is the connect fee is ambiguous. Today the loader silently
    # keeps the LAST one, so STANDARD connects for 0.90 instead of 0.20. A repeated column must be an issue.
    (tariff_dir / "rates.csv").write_text(
        "rate,connect_fee,min_charge,max_cost,connect_fee\n"
        "STANDARD,0.20,,,0.90\nOFFPEAK,0,,,0\nMOBILE,0.05,,,0.05\nPREMIUM,0,0.50,5.00,0\n"
        "INTERNATIONAL,0.10,,,0.10\nWHOLESALE,0,,,0\nDATA,0,,,0\nSMS,0,,,0\n"
    )
    issues = issues_of(tariff_dir)
    assert any(issue.file == "rates.csv" and issue.column == "connect_fee" for issue in issues)


def test_bands_file_with_only_a_header_leaves_the_whole_week_uncovered(tariff_dir):
    # docs/tariffs.md: "Together the rows must cover every minute of the week exactly once: … a gap is an error".
    # A bands.csv with a header and no rows covers nothing, yet it loads with zero bands (the gap check runs only
    # `if windows`), `occ tariff check` prints "bands: 0", and rating any call then dies with an IndexError in
    # rate_batch (AssertionError in the scalar oracle).
    (tariff_dir / "bands.csv").write_text("band,days,from,to\n")
    (tariff_dir / "rate_plans.csv").write_text(
        "plan,service,group,band,rate,ledger_code\nretail,voice,*,*,OFFPEAK,400000001\n"
    )
    issues = issues_of(tariff_dir)
    assert any(issue.file == "bands.csv" and "in no band" in issue.message for issue in issues)


def test_prefix_written_with_00_is_rejected_or_normalised(tariff_dir):
    # docs/tariffs.md: a prefix is "1 to 18 digits in international format, without + or 00". The loader strips a
    # '+', but accepts '0033' as is; normalised numbers never start with 00 (rule 2 strips it), so this prefix can
    # never match and every French number fails "no destination prefix matches 33…". It must be an issue (or be
    # normalised like '+33').
    path = tariff_dir / "destinations.csv"
    path.write_text(path.read_text().replace("33,EU", "0033,EU"))
    try:
        tariff = load_tariff(tariff_dir)
    except TariffError as failed:
        assert any(issue.file == "destinations.csv" and issue.column == "prefix" for issue in failed.issues)
    else:
        assert "0033" not in tariff.prefixes and tariff.prefixes.get("33") == "EU"


def test_country_code_must_be_ascii_digits(tariff_dir):
    # '４４' (full-width digits) passes `str.isdigit()`, so the loader accepts it; normalize_number then turns every
    # national number into '４４…' and rejects it ("contains '４'"): every 0… call of the tariff fails. A country
    # calling code is 1 to 3 ASCII digits.
    path = tariff_dir / "tariff.csv"
    path.write_text(path.read_text().replace("Europe/London,44", "Europe/London,４４"))
    try:
        tariff = load_tariff(tariff_dir)
    except TariffError as failed:
        assert any(issue.column == "country_code" for issue in failed.issues)
    else:  # accepted: then it must at least work
        assert normalize_number("020 7946 0000", tariff.country_code) == "442079460000"


# --- pricing ----------------------------------------------------------------------------------------------------


def _am_pm_tariff(zone: str) -> Tariff:
    """Band X = every day 17:00–18:00 local at 0.000001 per 1 s (per-second, exact); Y = the rest, free."""
    windows = (
        BandWindow("Y", tuple(range(7)), 0, 17 * 60),
        BandWindow("X", tuple(range(7)), 17 * 60, 18 * 60),
        BandWindow("Y", tuple(range(7)), 18 * 60, 1440),
    )
    rates = {
        "X": Rate("X", 0, 0, None, (RateInterval(0, 1, 1, 1),)),
        "Y": Rate("Y", 0, 0, None, (RateInterval(0, 0, 1, 1),)),
    }
    return Tariff(
        "t",
        "EUR",
        zone,
        "",
        {"G": DestinationGroup("G", 400000001, "local")},
        {"44": "G"},
        rates,
        windows,
        (Binding("p", Service.VOICE, "G", "X", "X"), Binding("p", Service.VOICE, "G", "Y", "Y")),
    )


def test_voice_call_started_in_2099_follows_dst_in_2100():
    # docs/tariffs.md: calls start in 2000 … 2099 and may last 10^7 s (≈115 days); rule 2 splits a voice call where
    # the tariff's zone changes its UTC offset. A call from 2099-12-31 23:00 UTC for 10^7 s ends 2100-04-26
    # 16:46:40 UTC = 17:46:40 BST (London springs forward Sunday 2100-03-28). Cost = seconds spent in 17:00–18:00
    # local: the full windows of 1 Jan … 25 Apr 2100 (31 + 28 + 31 + 25 = 115 days × 3600 s = 414,000 s) plus
    # 17:00–17:46:40 BST on 26 Apr (2,800 s) = 416,800 micro-units.
    # compile.utc_offsets only tabulates changes before 2100-01-01, so the vectorised rater reads all of 2100 as GMT
    # and gives 414,000; the scalar oracle (zoneinfo) gives 416,800.
    tariff = _am_pm_tariff("Europe/London")
    call = Call("p", Service.VOICE, "44", at("2099-12-31T23:00:00"), 10**7)
    compiled = compile_tariff(tariff)
    batch = CallBatch.from_calls(compiled, [call])
    assert rate_call(tariff, call).cost_micros == 416_800
    assert rate_batch(compiled, batch).result(0, batch).cost_micros == 416_800


def test_validated_tariff_cannot_overflow_int64(tariff_dir):
    # The loader's guard (price × MAX_USAGE ÷ per < 2^62) forgets that rounding to the increment can bill up to
    # MAX_USAGE + increment - 1 units, and that the connect fee (< 2^50) is added after. This tariff passes it:
    # 4.611686 per octet (4,611,686 × 10^12 < 2^62), increment 999,999,999,999, connect fee 100,000.
    # 10^12 octets bill 2 increments = 1,999,999,999,998 octets: 4,611,686 × 1,999,999,999,998 = 9,223,371,999,990,
    # 776,628 micro-units, + 100,000,000,000 connect fee = 9,223,372,099,990,776,628 > 2^63 - 1. The vectorised rater
    # wraps to a negative sum, which max(…, min_charge 0) turns into a FREE call (cost 0). The loader must reject
    # the step as "too large to rate safely", or the rater must return the exact price.
    (tariff_dir / "rates.csv").write_text("rate,connect_fee\nHUGE,100000\n")
    (tariff_dir / "rate_intervals.csv").write_text("rate,start,price,per,increment\nHUGE,0,4.611686,1,999999999999\n")
    (tariff_dir / "rate_plans.csv").write_text(
        "plan,service,group,band,rate,ledger_code\nbulk,data,*,*,HUGE,400000005\n"
    )
    try:
        tariff = load_tariff(tariff_dir)
    except TariffError as failed:
        assert any(issue.file == "rate_intervals.csv" for issue in failed.issues)
        return
    compiled = compile_tariff(tariff)
    call = Call("bulk", Service.DATA, "", at("2026-01-05T09:00:00"), 10**12)
    batch = CallBatch.from_calls(compiled, [call])
    expected = 100_000_000_000 + 4_611_686 * 1_999_999_999_998
    assert rate_call(tariff, call).cost_micros == expected
    assert rate_batch(compiled, batch).result(0, batch).cost_micros == expected


# --- passing: a documented rule with no test --------------------------------------------------------------------


def test_equivalent_spellings_give_the_same_content_hash(tariff_dir, tmp_path):
    # Passing test. docs/tariffs.md: the hash is of the *parsed* content: '0.10' = '0.1' (micro-units), '+44' = '44'
    # (prefix), 'Mon-Fri' = 'Mon Tue Wed Thu Fri', and header case / cell padding do not matter.
    reference = compile_tariff(load_tariff(EXAMPLE_TARIFF)).hash
    intervals = tariff_dir / "rate_intervals.csv"
    intervals.write_text(intervals.read_text().replace("STANDARD,0,0.10,60,60", "STANDARD , 0 ,0.1,60,60"))
    destinations = tariff_dir / "destinations.csv"
    destinations.write_text(destinations.read_text().replace("prefix,group\n44,", "PREFIX,Group\n+44,"))
    bands = tariff_dir / "bands.csv"
    bands.write_text(bands.read_text().replace("PEAK,Mon-Fri,", "PEAK,Mon Tue Wed Thu Fri,"))
    assert compile_tariff(load_tariff(tariff_dir)).hash == reference
