"""Read and validate a tariff directory of CSV files into a ``Tariff``.

Every problem found is reported as a ``TariffIssue`` naming the file, line, column and what is wrong; all of them
are collected and raised together as one ``TariffError``, so a tariff is either loaded whole or not at all. The file
format is documented in ``docs/tariffs.md``.
"""

from __future__ import annotations

import csv
import re
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import msgspec

from rating_engine.money import parse_micros
from rating_engine.tariff import (
    ANY,
    MAX_USAGE,
    WEEK_MINUTES,
    BandWindow,
    Binding,
    DestinationGroup,
    Rate,
    RateInterval,
    Service,
    Tariff,
)

_INT64_SAFE = 2**62
MAX_ISSUES = 200
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_LEDGER_CODE = re.compile(r"^[1-9]\d{0,14}$")
T = TypeVar("T")


class TariffIssue(msgspec.Struct, frozen=True):
    """One validation problem.

    Attributes:
        file: the CSV file's name.
        line: 1-based line number (0 when the problem is about the file as a whole).
        column: the column's header name ("" when not about one column).
        message: what is wrong.
    """

    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "") + (f" [{self.column}]" if self.column else "")
        return f"{where}: {self.message}"


class TariffError(Exception):
    """A tariff directory failed validation; ``issues`` lists every problem found."""

    def __init__(self, issues: list[TariffIssue]) -> None:
        self.issues = issues
        shown = "\n".join(f"  {issue}" for issue in issues[:20])
        more = f"\n  … and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(f"tariff has {len(issues)} problem(s):\n{shown}{more}")


class _Row:
    """One CSV data row with its line number and a way to report issues on its cells."""

    __slots__ = ("cells", "line", "table")

    def __init__(self, table: _Table, line: int, cells: dict[str, str]) -> None:
        self.table, self.line, self.cells = table, line, cells

    def __getitem__(self, column: str) -> str:
        return self.cells.get(column, "")

    def issue(self, column: str, message: str) -> None:
        self.table.report(self.line, column, message)

    def parse(self, column: str, parser: Callable[[str], T]) -> T | None:
        """Apply ``parser`` to a cell; on ``ValueError`` report it against the cell and return ``None``."""
        try:
            return parser(self[column])
        except ValueError as exc:
            self.issue(column, str(exc))
            return None


class _Table:
    """Reads one CSV file of the tariff directory and collects the issues found in it."""

    def __init__(self, directory: Path, name: str, issues: list[TariffIssue]) -> None:
        self.path, self.name, self.issues = directory / name, name, issues
        self.unreadable = False  # set when the file could not be read to its end

    def report(self, line: int, column: str, message: str) -> None:
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(TariffIssue(self.name, line, column, message))
        elif len(self.issues) == MAX_ISSUES:
            self.issues.append(TariffIssue(self.name, 0, "", "too many problems; stopped reporting"))

    def rows(self, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Iterator[_Row]:
        """Yield the data rows; blank lines and lines whose first cell starts with ``#`` are skipped."""
        if not self.path.is_file():
            self.report(0, "", "file is missing")
            return
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            try:
                yield from self._rows(reader, required, optional)
            except (UnicodeDecodeError, csv.Error) as exc:  # bytes that are not UTF-8, a quote left open …
                self.unreadable = True
                self.report(reader.line_num + 1, "", f"cannot be read as UTF-8 CSV: {exc}")

    def _rows(self, reader, required: tuple[str, ...], optional: tuple[str, ...]) -> Iterator[_Row]:
        header: list[str] | None = None
        for cells in reader:
            if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in cells]
                repeated = sorted({c for c in header if header.count(c) > 1})
                missing = [c for c in required if c not in header]
                unknown = [c for c in header if c not in required and c not in optional]
                for column in repeated:
                    self.report(reader.line_num, column, "column appears more than once in the header")
                for column in missing:
                    self.report(reader.line_num, column, "required column is missing from the header")
                for column in unknown:
                    expected = ", ".join(required + optional)
                    self.report(reader.line_num, column, f"unknown column; expected {expected}")
                if missing or repeated:
                    return
                continue
            if len(cells) > len(header):
                self.report(reader.line_num, "", f"{len(cells)} cells but the header has {len(header)} columns")
                continue
            yield _Row(self, reader.line_num, {h: c.strip() for h, c in zip(header, cells, strict=False)})
        if header is None:
            self.report(0, "", "file has no header row")


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit():
            raise ValueError(f"{text!r} is not a whole number")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low} … {high}")
        return value

    return parse


def _amount(text: str) -> int:
    micros = parse_micros(text)
    if micros < 0:
        raise ValueError(f"{text!r} is negative")
    if micros >= 2**50:
        raise ValueError(f"{text!r} is too large")
    return micros


def _ledger_code(text: str) -> int:
    if not _LEDGER_CODE.match(text):
        raise ValueError(f"{text!r} is not a ledger code (1 to 15 digits, no leading zero)")
    return int(text)


def _prefix(text: str) -> str:
    digits = text[1:] if text.startswith("+") else text
    if not digits.isascii() or not digits.isdigit() or not 1 <= len(digits) <= 18:
        raise ValueError(f"{text!r} is not a prefix of 1 to 18 digits")
    if digits.startswith("00"):  # numbers lose their 00 before matching, so such a prefix could never match
        raise ValueError(f"{text!r} starts with 00: write prefixes in international format ({digits[2:] or '…'})")
    return digits


def _days(text: str) -> tuple[int, ...]:
    if text.strip() == ANY:
        return tuple(range(7))
    days: set[int] = set()
    for token in text.replace("+", " ").replace("/", " ").split():
        first, _, last = token.lower().partition("-")
        if first[:3] not in DAY_NAMES or (last and last[:3] not in DAY_NAMES):
            raise ValueError(f"{token!r} is not a day or range of days (e.g. Mon-Fri, Sat Sun, *)")
        lo = DAY_NAMES.index(first[:3])
        hi = DAY_NAMES.index(last[:3]) if last else lo
        days.update((lo + i) % 7 for i in range((hi - lo) % 7 + 1))
    if not days:
        raise ValueError("no days given (e.g. Mon-Fri, Sat Sun, *)")
    return tuple(sorted(days))


def _minute_of_day(text: str) -> int:
    match = _TIME.match(text)
    if not match or int(match[2]) >= 60 or int(match[1]) * 60 + int(match[2]) > 1440:
        raise ValueError(f"{text!r} is not a time of day HH:MM between 00:00 and 24:00")
    return int(match[1]) * 60 + int(match[2])


def _read_meta(directory: Path, issues: list[TariffIssue]) -> tuple[str, str, str, str]:
    table = _Table(directory, "tariff.csv", issues)
    rows = list(table.rows(("name", "currency", "timezone"), ("country_code",)))
    if len(rows) != 1:
        if rows or table.path.is_file():
            table.report(rows[1].line if len(rows) > 1 else 0, "", f"needs exactly one data row, found {len(rows)}")
        return "", "", "UTC", ""
    row = rows[0]
    if not row["name"]:
        row.issue("name", "is empty")
    if not _CURRENCY.match(row["currency"]):
        row.issue("currency", f"{row['currency']!r} is not an ISO 4217 code such as EUR")
    try:
        zoneinfo.ZoneInfo(row["timezone"])
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        row.issue("timezone", f"{row['timezone']!r} is not an IANA time zone such as Europe/London")
    code = row["country_code"]
    if code and not (code.isascii() and code.isdigit() and len(code) <= 3 and not code.startswith("0")):
        row.issue("country_code", f"{row['country_code']!r} is not a country calling code of 1 to 3 digits")
    return row["name"], row["currency"], row["timezone"], row["country_code"]


def _read_groups(directory: Path, issues: list[TariffIssue]) -> tuple[dict[str, DestinationGroup], set[str] | None]:
    """The valid groups, and the names of all groups defined (references to a group with errors are not errors);
    ``None`` for the names when the file could not be read whole, so that references to it are not judged."""
    groups: dict[str, DestinationGroup] = {}
    first_line: dict[str, int] = {}
    table = _Table(directory, "groups.csv", issues)
    for row in table.rows(("group", "ledger_code", "category"), ("description",)):
        name = row["group"]
        if not name or name == ANY:
            row.issue("group", f"{name!r} is not a usable group name")
            continue
        if name in first_line:
            row.issue("group", f"duplicate group {name!r} (first on line {first_line[name]})")
            continue
        first_line[name] = row.line
        ledger_code = row.parse("ledger_code", _ledger_code)
        if not row["category"]:
            row.issue("category", "is empty")
        if ledger_code is not None:
            groups[name] = DestinationGroup(name, ledger_code, row["category"], row["description"])
    return groups, None if table.unreadable else set(first_line)


def _read_prefixes(directory: Path, issues: list[TariffIssue], group_names: set[str] | None) -> dict[str, str]:
    prefixes: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for row in _Table(directory, "destinations.csv", issues).rows(("prefix", "group")):
        prefix = row.parse("prefix", _prefix)
        group = row["group"]
        if group_names is not None and group not in group_names:
            row.issue("group", f"unknown group {group!r} (not in groups.csv)")
        if prefix is None:
            continue
        if prefix in first_line:
            row.issue("prefix", f"duplicate prefix {prefix} (first on line {first_line[prefix]})")
            continue
        first_line[prefix] = row.line
        prefixes[prefix] = group
    return prefixes


def _read_rates(directory: Path, issues: list[TariffIssue]) -> dict[str, Rate]:
    headers: dict[str, tuple[int, int, int | None]] = {}
    header_line: dict[str, int] = {}
    rates_table = _Table(directory, "rates.csv", issues)
    for row in rates_table.rows(("rate", "connect_fee"), ("min_charge", "max_cost")):
        name = row["rate"]
        if not name:
            row.issue("rate", "is empty")
            continue
        if name in header_line:
            row.issue("rate", f"duplicate rate {name!r} (first on line {header_line[name]})")
            continue
        header_line[name] = row.line
        connect_fee = row.parse("connect_fee", _amount)
        min_charge = row.parse("min_charge", _amount) if row["min_charge"] else 0
        max_cost = row.parse("max_cost", _amount) if row["max_cost"] else None
        if min_charge is not None and max_cost is not None and max_cost < min_charge:
            row.issue("max_cost", "is below min_charge")
        elif connect_fee is not None and min_charge is not None:
            headers[name] = (connect_fee, min_charge, max_cost)

    intervals: dict[str, dict[int, RateInterval]] = {}
    interval_line: dict[tuple[str, int], int] = {}
    table = _Table(directory, "rate_intervals.csv", issues)
    for row in table.rows(("rate", "start", "price", "per", "increment")):
        name = row["rate"]
        if name not in header_line:
            row.issue("rate", f"unknown rate {name!r} (not in rates.csv)")
            continue
        start = row.parse("start", _int_in(0, MAX_USAGE))
        price = row.parse("price", _amount)
        per = row.parse("per", _int_in(1, 10**12))
        increment = row.parse("increment", _int_in(1, MAX_USAGE))
        if start is None or price is None or per is None or increment is None:
            continue
        # Rounding can bill up to MAX_USAGE + increment - 1 ≤ 2 × MAX_USAGE: even that, plus a connect fee below 2^50,
        # must stay inside int64.
        if price * per >= _INT64_SAFE or price * 2 * MAX_USAGE // per >= _INT64_SAFE:
            row.issue("price", f"{row['price']} per {per} is too large to rate safely")
            continue
        if (name, start) in interval_line:
            row.issue("start", f"rate {name!r} already has a step at {start} (line {interval_line[name, start]})")
            continue
        interval_line[name, start] = row.line
        intervals.setdefault(name, {})[start] = RateInterval(start, price, per, increment)

    rates: dict[str, Rate] = {}
    for name, (connect_fee, min_charge, max_cost) in headers.items():
        steps = tuple(step for _, step in sorted(intervals.get(name, {}).items()))
        if not steps:
            rates_table.report(header_line[name], "rate", f"rate {name!r} has no steps in rate_intervals.csv")
        elif steps[0].start != 0:
            table.report(interval_line[name, steps[0].start], "start", f"rate {name!r} must have a step starting at 0")
        else:
            rates[name] = Rate(name, connect_fee, min_charge, max_cost, steps)
    return rates


def _read_bands(directory: Path, issues: list[TariffIssue]) -> tuple[BandWindow, ...]:
    table = _Table(directory, "bands.csv", issues)
    if not table.path.exists():
        return (BandWindow("ALL", tuple(range(7)), 0, 1440),)
    windows: list[BandWindow] = []
    owner = [0] * WEEK_MINUTES  # line number of the window covering each minute of the week
    issues_at_start = len(issues)
    for row in table.rows(("band", "days", "from", "to")):
        days = row.parse("days", _days)
        start = row.parse("from", _minute_of_day)
        end = row.parse("to", _minute_of_day)
        if not row["band"] or row["band"] == ANY:
            row.issue("band", f"{row['band']!r} is not a usable band name")
            continue
        if days is None or start is None or end is None:
            continue
        if start >= end:
            row.issue("to", "must be after 'from' (split a window that crosses midnight into two rows)")
            continue
        minutes = [minute for day in days for minute in range(day * 1440 + start, day * 1440 + end)]
        taken = next((minute for minute in minutes if owner[minute]), None)
        if taken is not None:
            row.issue("from", f"overlaps the window on line {owner[taken]} at {_week_time(taken)}")
            continue
        for minute in minutes:
            owner[minute] = row.line
        windows.append(BandWindow(row["band"], days, start, end))
    if 0 in owner and len(issues) == issues_at_start:  # a gap matters only when every row was valid
        gap = owner.index(0)
        end = next((m for m in range(gap, WEEK_MINUTES) if owner[m]), WEEK_MINUTES)
        table.report(0, "", f"{_week_time(gap)} to {_week_time(end)} is in no band; bands must cover the whole week")
    return tuple(windows)


def _week_time(minute: int) -> str:
    day, rest = divmod(minute, 1440)
    return f"{DAY_NAMES[day % 7].title()} {rest // 60:02d}:{rest % 60:02d}"


def _read_bindings(
    directory: Path, issues: list[TariffIssue], groups: set[str] | None, rates: set[str], bands: set[str]
) -> tuple[Binding, ...]:
    bindings: list[Binding] = []
    first_line: dict[tuple[str, Service, str, str], int] = {}
    for row in _Table(directory, "rate_plans.csv", issues).rows(
        ("plan", "service", "group", "band", "rate"), ("ledger_code",)
    ):
        service = row.parse("service", Service.parse)
        ledger_code = row.parse("ledger_code", _ledger_code) if row["ledger_code"] else None
        ok = service is not None and (ledger_code is not None or not row["ledger_code"])
        if not row["plan"]:
            row.issue("plan", "is empty")
            ok = False
        if row["group"] != ANY and groups is not None and row["group"] not in groups:
            row.issue("group", f"unknown group {row['group']!r} (not in groups.csv, and not *)")
            ok = False
        if row["group"] == ANY and not row["ledger_code"]:
            row.issue("ledger_code", "is required when group is * (there is no destination group to take it from)")
            ok = False
        if row["band"] != ANY and row["band"] not in bands:
            row.issue("band", f"unknown band {row['band']!r} (not in bands.csv, and not *)")
            ok = False
        if row["rate"] not in rates:
            row.issue("rate", f"unknown rate {row['rate']!r} (not in rates.csv or has errors)")
            ok = False
        if not ok or service is None:
            continue
        key = (row["plan"], service, row["group"], row["band"])
        if key in first_line:
            row.issue(
                "rate",
                f"plan {key[0]!r} already binds {service.name.lower()}/{key[2]}/{key[3]} on line {first_line[key]}",
            )
            continue
        first_line[key] = row.line
        bindings.append(Binding(row["plan"], service, row["group"], row["band"], row["rate"], ledger_code))
    return tuple(bindings)


def load_tariff(directory: str | Path) -> Tariff:
    """Read and validate the tariff in ``directory``; raise ``TariffError`` listing every problem found."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TariffError([TariffIssue(str(directory), 0, "", "is not a directory")])
    issues: list[TariffIssue] = []
    name, currency, timezone, country_code = _read_meta(directory, issues)
    groups, group_names = _read_groups(directory, issues)
    prefixes = _read_prefixes(directory, issues, group_names)
    rates = _read_rates(directory, issues)
    bands = _read_bands(directory, issues)
    bindings = _read_bindings(directory, issues, group_names, set(rates), {w.band for w in bands})
    if not bindings and not issues:
        issues.append(TariffIssue("rate_plans.csv", 0, "", "has no rows: nothing could be rated"))
    if issues:
        raise TariffError(issues)
    return Tariff(name, currency, timezone, country_code, groups, prefixes, rates, bands, bindings)
