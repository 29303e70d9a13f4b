"""Benchmark of the rating core: vectorised vs scalar rating, and tariff load + compile.

Run with ``.venv/bin/python benchmarks/bench_rating.py`` (``--help`` for the options). In one run it

1. generates a realistic tariff (50,000 nested prefixes, ~2,000 destination groups, step rates, three time bands in
   Europe/London, two plans, data and message rows) as CSV files in a temporary directory,
2. generates 1,000,000 calls (90 % voice, 7 % data, 3 % messages) spread over March 2026, which includes the
   switch to summer time on 29 March,
3. times ``CallBatch.of`` + ``rate_batch`` over all calls, and ``rate_batch`` alone (best of 3),
4. times the scalar oracle ``rate_call`` on a sample of the same calls and checks both paths agree on each of them
   (and, untimed, on every call priced in more than one part: band edges and the summer-time change),
5. times ``load_tariff`` + ``compile_tariff`` of a 170,000-prefix tariff against plain ``csv.reader`` of its files,

prints a summary with the targets, and writes the figures to ``benchmarks/results/rating.json``. The exit status is
non-zero only when the scalar and vectorised paths disagree; missed targets are information.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import gc
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Rate the working tree's rating_engine, whatever the environment has installed (running a script puts only
# benchmarks/ on the path, and a stale editable install may map rating_engine to a namespace package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rating_engine import (
    Call,
    CallBatch,
    RatingFailed,
    Service,
    compile_tariff,
    load_tariff,
    rate_batch,
    rate_call,
)
from rating_engine.compile import utc_offsets

RESULTS = Path(__file__).resolve().parent / "results" / "rating.json"
PLANS = ("retail", "business")
NATIONAL, INTERNATIONAL, PREMIUM = 400000001, 400000002, 400000003
MESSAGE_LEDGER, DATA_LEDGER = 400000004, 400000005
HOME = "44"
MAX_PREFIX_DIGITS = 9
MONTH_START = calendar.timegm((2026, 3, 1, 0, 0, 0))  # March 2026: Europe/London goes to BST on 29 March
MONTH_DAYS = 31
TARGET_RECORDS_PER_S = 5_000_000
TARGET_RATIO = 20
TARGET_LOAD_S = 2.0

_T0 = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {message}", flush=True)


# --------------------------------------------------------------------------------------------------------------------
# Tariff generation


@dataclass
class GeneratedTariff:
    directory: Path
    prefixes: list[str]
    unassigned: list[str]  # country-code ranges no prefix covers: numbers under them are unknown destinations
    groups: int
    rates: int
    bindings: int
    length_counts: dict[int, int] = field(default_factory=dict)
    nested: int = 0  # prefixes that have a shorter prefix of the tariff above them


def _country_codes(rnd: random.Random) -> tuple[list[str], list[str]]:
    """A prefix-free set of country codes (1 to 3 digits, like the ITU plan) and the unassigned 3-digit codes."""
    candidates = [f"{a}{b}" for a in "2345689" for b in "0123456789" if f"{a}{b}" != HOME]
    rnd.shuffle(candidates)
    two_digit, split = [HOME, *candidates[:40]], candidates[40:]
    codes, unassigned = ["1", "7", *two_digit], []
    for zone in split:
        children = [f"{zone}{d}" for d in "0123456789"]
        rnd.shuffle(children)
        keep = rnd.randint(3, 8)
        codes += children[:keep]
        unassigned += children[keep:]
    return sorted(codes), sorted(unassigned)


_LENGTH_WEIGHTS = {2: 1, 3: 2, 4: 5, 5: 10, 6: 16, 7: 18, 8: 12, 9: 6}


def _country_prefixes(rnd: random.Random, code: str, count: int) -> list[tuple[str, str]]:
    """``count`` prefixes under ``code`` (the code itself first), as (prefix, parent), nested like a numbering plan.

    Each new prefix extends a random shorter prefix already present (area code → exchange → number range), so the
    deeper ones override the group of the range around them and longest-prefix match matters.
    """
    lengths = [n for n in _LENGTH_WEIGHTS if len(code) < n <= MAX_PREFIX_DIGITS]
    weights = [_LENGTH_WEIGHTS[n] for n in lengths]
    nodes, seen = [(code, "")], {code}
    while len(nodes) < count:
        target = rnd.choices(lengths, weights)[0]
        parent = code
        for _ in range(4):
            candidate = nodes[rnd.randrange(len(nodes))][0]
            if len(candidate) < target:
                parent = candidate
                break
        prefix = parent + "".join(rnd.choice("0123456789") for _ in range(target - len(parent)))
        if prefix not in seen:
            seen.add(prefix)
            nodes.append((prefix, parent))
    return nodes


def _money(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _rate_rows(rnd: random.Random, name: str, per_minute: int) -> tuple[list[str], list[list[str]]]:
    """One step rate around ``per_minute`` micro-units a minute: its rates.csv row and rate_intervals.csv rows."""
    connect = 0 if rnd.random() < 0.5 else rnd.randint(5_000, 250_000)
    minimum = rnd.randint(50_000, 500_000) if rnd.random() < 0.08 else 0
    maximum = minimum + rnd.randint(1_000_000, 20_000_000) if rnd.random() < 0.05 else None
    price = max(1, round(per_minute * rnd.lognormvariate(0, 0.3)))
    shape = rnd.random()
    if shape < 0.55:
        steps = [(0, price, rnd.choice((1, 30, 60)))]
    elif shape < 0.9:
        steps = [(0, price * 3 // 2, 60), (60, price, rnd.choice((1, 30)))]
    else:
        steps = [(0, price * 3 // 2, 60), (60, price, 30), (600, price * 4 // 5, 1)]
    header = [name, _money(connect), _money(minimum) if minimum else "", _money(maximum) if maximum else ""]
    return header, [[name, str(start), _money(p), "60", str(inc)] for start, p, inc in steps]


def generate_tariff(directory: Path, prefix_count: int, group_count: int, seed: int) -> GeneratedTariff:
    """Write a tariff with ``prefix_count`` prefixes and about ``group_count`` groups as CSV files in ``directory``."""
    rnd = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    codes, unassigned = _country_codes(rnd)
    # Prefix counts per country: the home country and a few big ones hold most of the numbering plan.
    weights = {code: rnd.lognormvariate(0, 1.2) for code in codes}
    weights[HOME] = sum(weights.values()) * 0.1
    total_weight = sum(weights.values())
    counts = {code: max(3, round(prefix_count * w / total_weight)) for code, w in weights.items()}
    counts[max(counts, key=counts.get)] += prefix_count - sum(counts.values())

    groups: list[list[str]] = []  # groups.csv rows
    destinations: list[list[str]] = []
    all_prefixes: list[str] = []
    for code in codes:
        n_groups = max(1, min(counts[code] - 1, round(group_count * counts[code] / prefix_count)))
        names, categories = [], []
        for i in range(n_groups):
            kinds = ("mobile", "fixed", "premium", "special")
            category = "fixed" if i == 0 else rnd.choices(kinds, (60, 25, 10, 5))[0]
            names.append(f"C{code}_{category.upper()}_{i}")
            categories.append(category)
            ledger = PREMIUM if category == "premium" else NATIONAL if code == HOME else INTERNATIONAL
            scope = "national" if code == HOME else f"country code {code}"
            groups.append([names[-1], str(ledger), category, f"{category} numbers, {scope}"])
        group_of: dict[str, int] = {}
        for j, (prefix, parent) in enumerate(_country_prefixes(rnd, code, counts[code])):
            if not parent:
                g = 0  # the country code itself: its fixed network
            elif j <= n_groups - 1:
                g = j  # give every group at least one range
            elif parent != code and rnd.random() < 0.5:
                g = group_of[parent]  # a sub-range of the same network
            else:
                g = rnd.randrange(n_groups)
            group_of[prefix] = g
            destinations.append([prefix, names[g]])
            all_prefixes.append(prefix)

    # Rates: per group and plan, a peak and an off-peak (any band) rate; prices by category and distance.
    base_price = {"fixed": 15_000, "mobile": 60_000, "premium": 900_000, "special": 120_000}
    rates: list[list[str]] = []
    intervals: list[list[str]] = []
    plan_rows: list[list[str]] = []
    for name, _ledger, category, _ in groups:
        base = base_price[category] * (1 if name.startswith(f"C{HOME}_") else 4)
        for plan, discount in zip(PLANS, (1.0, 0.7), strict=True):
            for band, factor in (("PEAK", 1.0), ("*", 0.6)):
                rate_name = f"{name}:{plan}:{'peak' if band == 'PEAK' else 'any'}"
                header, steps = _rate_rows(rnd, rate_name, round(base * discount * factor))
                rates.append(header)
                intervals += steps
                plan_rows.append([plan, "voice", name, band, rate_name, ""])
    extra_rates = [
        # name, connect fee, price, per, increment: data per MiB in 1 KiB increments, messages each
        ("DATA_RETAIL", 0, 2_000_000, 1_048_576, 1024),
        ("DATA_BUSINESS_PEAK", 0, 1_500_000, 1_048_576, 1024),
        ("DATA_BUSINESS", 0, 900_000, 1_048_576, 10_240),
        ("SMS_RETAIL", 0, 50_000, 1, 1),
        ("SMS_BUSINESS", 0, 35_000, 1, 1),
    ]
    for name, connect, price, per, increment in extra_rates:
        rates.append([name, _money(connect), "", ""])
        intervals.append([name, "0", _money(price), str(per), str(increment)])
    plan_rows += [
        ["retail", "data", "*", "*", "DATA_RETAIL", str(DATA_LEDGER)],
        ["retail", "message", "*", "*", "SMS_RETAIL", str(MESSAGE_LEDGER)],
        ["business", "data", "*", "PEAK", "DATA_BUSINESS_PEAK", str(DATA_LEDGER)],
        ["business", "data", "*", "*", "DATA_BUSINESS", str(DATA_LEDGER)],
        ["business", "message", "*", "*", "SMS_BUSINESS", str(MESSAGE_LEDGER)],
    ]

    def write(name: str, header: list[str], rows: list[list[str]]) -> None:
        with (directory / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    write("tariff.csv", ["name", "currency", "timezone", "country_code"], [["Benchmark", "EUR", "Europe/London", HOME]])
    write("groups.csv", ["group", "ledger_code", "category", "description"], groups)
    write("destinations.csv", ["prefix", "group"], destinations)
    write("rates.csv", ["rate", "connect_fee", "min_charge", "max_cost"], rates)
    write("rate_intervals.csv", ["rate", "start", "price", "per", "increment"], intervals)
    bands = [
        ["PEAK", "Mon-Fri", "08:00", "18:00"],
        ["OFFPEAK", "Mon-Fri", "00:00", "08:00"],
        ["OFFPEAK", "Mon-Fri", "18:00", "24:00"],
        ["WEEKEND", "Sat Sun", "00:00", "24:00"],
    ]
    write("bands.csv", ["band", "days", "from", "to"], bands)
    write("rate_plans.csv", ["plan", "service", "group", "band", "rate", "ledger_code"], plan_rows)

    prefix_set = set(all_prefixes)
    nested = sum(any(p[:n] in prefix_set for n in range(1, len(p))) for p in all_prefixes)
    return GeneratedTariff(
        directory=directory,
        prefixes=all_prefixes,
        unassigned=unassigned,
        groups=len(groups),
        rates=len(rates),
        bindings=len(plan_rows),
        length_counts=dict(sorted(Counter(map(len, all_prefixes)).items())),
        nested=nested,
    )


# --------------------------------------------------------------------------------------------------------------------
# Call generation


@dataclass
class Calls:
    plans: np.ndarray  # str
    services: np.ndarray  # int64 Service values
    destinations: np.ndarray  # str, normalised digits, "" for data sessions
    starts: np.ndarray  # int64 Unix seconds
    usages: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.usages)


def _numbers(rng: np.random.Generator, heads: list[str], count: int) -> np.ndarray:
    """``count`` numbers of 10 to 12 digits, each starting with a random one of ``heads``."""
    width = 12
    head_bytes = np.array(heads, dtype=f"S{width}").view(np.uint8).reshape(len(heads), width)
    head_length = np.fromiter(map(len, heads), dtype=np.int64, count=len(heads))
    chosen = rng.integers(0, len(heads), count)
    digits = rng.integers(ord("0"), ord("9") + 1, size=(count, width), dtype=np.uint8)
    columns = np.arange(width)
    digits = np.where(columns < head_length[chosen][:, None], head_bytes[chosen], digits)
    length = np.maximum(rng.integers(10, width + 1, count), head_length[chosen] + 1)
    digits[columns >= length[:, None]] = 0
    return np.ascontiguousarray(digits).view(f"S{width}").ravel().astype(f"U{width}")


def generate_calls(rng: np.random.Generator, n: int, tariff: GeneratedTariff) -> Calls:
    services = rng.choice(3, size=n, p=[0.90, 0.07, 0.03]).astype(np.int64)
    plans = np.array(PLANS)[rng.choice(2, size=n, p=[0.7, 0.3])]

    # Voice: lognormal, median 100 s (mean about 2.5 min), capped at 2 h, 3 % zero-length (unanswered).
    voice = np.minimum(np.maximum(np.rint(rng.lognormal(np.log(100), 0.9, n)), 1), 7200).astype(np.int64)
    voice[rng.random(n) < 0.03] = 0
    data = np.minimum(np.rint(rng.lognormal(np.log(2_000_000), 1.5, n)), 10**10).astype(np.int64)  # octets
    messages = rng.choice(np.array([1, 2, 3], dtype=np.int64), size=n, p=[0.9, 0.08, 0.02])  # multi-part SMS
    usages = np.select([services == Service.VOICE, services == Service.DATA], [voice, data], messages)

    # Start times: any day of March 2026, busy hours weighted (UTC ≈ London time, which is UTC+1 from 29 March).
    hourly = np.array([1, 1, 1, 1, 1, 2, 4, 7, 10, 11, 11, 11, 10, 10, 10, 10, 10, 9, 8, 7, 6, 5, 3, 2], dtype=float)
    hour = rng.choice(24, size=n, p=hourly / hourly.sum())
    starts = MONTH_START + rng.integers(0, MONTH_DAYS, n) * 86400 + hour * 3600 + rng.integers(0, 3600, n)

    # Called numbers: prefixes of the tariff with digits appended; ~1 % under country codes nobody holds.
    destinations = _numbers(rng, tariff.prefixes, n)
    unknown = rng.random(n) < 0.01
    destinations[unknown] = _numbers(rng, tariff.unassigned, int(unknown.sum()))
    destinations[services == Service.DATA] = ""
    return Calls(plans, services, destinations, starts.astype(np.int64), usages)


# --------------------------------------------------------------------------------------------------------------------
# Measurement helpers


def best_of(repeat: int, action: Callable[[], object]) -> tuple[float, object]:
    """Smallest wall time of ``repeat`` runs of ``action`` and the result of the last run."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def read_csv_rows(directory: Path) -> int:
    rows = 0
    for path in sorted(directory.glob("*.csv")):
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows += len(list(csv.reader(handle)))
    return rows


def band_crossings(compiled, calls: Calls) -> np.ndarray:
    """Mask of the voice calls that cross a time-band edge or a UTC-offset change (priced in more than one part)."""
    voice = (calls.services == Service.VOICE) & (calls.usages > 0)
    start, usage = calls.starts, calls.usages
    change = np.searchsorted(compiled.utc_change_at, start, side="right")
    week_second = (start + compiled.utc_offset[change - 1] + 3 * 86400) % (7 * 86400)
    segment = np.searchsorted(compiled.band_bounds, week_second, side="right") - 1
    to_edge = compiled.band_until[segment] - week_second
    next_change = np.append(compiled.utc_change_at, 2**62)[change]
    return voice & ((usage > to_edge) | (start + usage > next_change))


def time_encode_from_lists(compiled, calls: Calls, repeat: int) -> float:
    """Best time of ``CallBatch.of`` from Python lists, as a server that collected calls one by one would have them."""
    lists = {
        "plans": calls.plans.tolist(),
        "services": calls.services.tolist(),
        "destinations": calls.destinations.tolist(),
        "starts": calls.starts.tolist(),
        "usages": calls.usages.tolist(),
    }
    seconds, _ = best_of(repeat, lambda: CallBatch.of(compiled, **lists))
    return seconds


def scalar_call(calls: Calls, i: int) -> Call:
    return Call(
        str(calls.plans[i]),
        Service(int(calls.services[i])),
        str(calls.destinations[i]),
        int(calls.starts[i]),
        int(calls.usages[i]),
    )


Answer = tuple[int, int, str, int, str]  # failure, cost, group, ledger code, rate


def run_scalar(tariff, scalar_calls: list[Call]) -> list[Answer]:
    answers = []
    for call in scalar_calls:
        try:
            r = rate_call(tariff, call)
            answers.append((0, r.cost_micros, r.group, r.ledger_code, r.rate))
        except RatingFailed as failed:
            answers.append((int(failed.failure), 0, "", 0, ""))
    return answers


def compare(rated, index: np.ndarray, scalar_calls: list[Call], answers: list[Answer]) -> tuple[int, int, list[str]]:
    """Mismatches between the vectorised results at ``index`` and the scalar answers: in cost (or failure), in any
    field, and a few examples."""
    cost_mismatches, mismatches, examples = 0, 0, []
    for i, call, expected in zip(index.tolist(), scalar_calls, answers, strict=True):
        failure = int(rated.failure[i])
        if failure:
            got = (failure, 0, "", 0, "")
        else:
            got = (0, int(rated.cost_micros[i]), rated.group_name(i), int(rated.ledger_code[i]), rated.rate_name(i))
        cost_mismatches += got[:2] != expected[:2]
        if got != expected:
            mismatches += 1
            if len(examples) < 5:
                examples.append(f"{call!r}: scalar {expected}, vectorised {got}")
    return cost_mismatches, mismatches, examples


def machine_info() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


# --------------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls to rate (default 1,000,000)")
    parser.add_argument("--prefixes", type=int, default=50_000, help="prefixes of the rated tariff (default 50,000)")
    parser.add_argument("--groups", type=int, default=2_000, help="destination groups (default 2,000)")
    parser.add_argument("--scalar-sample", type=int, default=20_000, help="calls rated by rate_call (default 20,000)")
    parser.add_argument(
        "--load-prefixes", type=int, default=170_000, help="prefixes of the load+compile tariff (default 170,000)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the best is reported (default 3)")
    parser.add_argument("--seed", type=int, default=20260329)
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)

    info = machine_info()
    progress(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, NumPy {info['numpy']}")
    results: dict[str, object] = {"machine": info, "parameters": {k: str(v) for k, v in vars(args).items()}}

    with tempfile.TemporaryDirectory(prefix="bench_rating_") as temp:
        temp_dir = Path(temp)

        # 1. The rated tariff.
        progress(f"generating a {args.prefixes:,}-prefix tariff …")
        generated = generate_tariff(temp_dir / "tariff", args.prefixes, args.groups, args.seed)
        progress(
            f"  {len(generated.prefixes):,} prefixes ({generated.nested:,} nested under a shorter one), "
            f"{generated.groups:,} groups, {generated.rates:,} rates, {generated.bindings:,} plan rows; "
            f"prefix lengths {generated.length_counts}"
        )
        started = time.perf_counter()
        tariff = load_tariff(generated.directory)
        loaded = time.perf_counter()
        compiled = compile_tariff(tariff)
        progress(
            f"  loaded in {loaded - started:.2f} s, compiled in {time.perf_counter() - loaded:.2f} s "
            f"({len(compiled.prefix_bounds):,} key segments, {compiled.steps} steps max)"
        )

        # 2. The calls.
        progress(f"generating {args.calls:,} calls …")
        rng = np.random.default_rng(args.seed)
        calls = generate_calls(rng, args.calls, generated)
        n = len(calls)
        service_share = {s.name.lower(): round(float((calls.services == s).mean()), 4) for s in Service}
        crossing_mask = band_crossings(compiled, calls)
        crossing = int(crossing_mask.sum())
        voice_count = int((calls.services == Service.VOICE).sum())
        progress(
            f"  services {service_share}; zero-length voice {((calls.usages == 0) & (calls.services == 0)).sum():,}; "
            f"voice calls crossing a band edge or UTC-offset change {crossing:,} of {voice_count:,}"
        )
        results["workload"] = {
            "prefixes": len(generated.prefixes),
            "nested_prefixes": generated.nested,
            "groups": generated.groups,
            "rates": generated.rates,
            "plan_rows": generated.bindings,
            "calls": n,
            "service_share": service_share,
            "voice_calls_crossing_band_or_dst": crossing,
        }

        # 3. Vectorised path.
        progress(f"vectorised: CallBatch.of + rate_batch over {n:,} calls, best of {args.repeat} …")

        def encode() -> CallBatch:
            return CallBatch.of(
                compiled,
                plans=calls.plans,
                services=calls.services,
                destinations=calls.destinations,
                starts=calls.starts,
                usages=calls.usages,
            )

        encode_rate_s = encode_s = rate_s = float("inf")
        batch, rated = None, None
        for rep in range(args.repeat):
            gc.collect()
            t0 = time.perf_counter()
            batch = encode()
            t1 = time.perf_counter()
            rated = rate_batch(compiled, batch)
            t2 = time.perf_counter()
            encode_s, rate_s, encode_rate_s = min(encode_s, t1 - t0), min(rate_s, t2 - t1), min(encode_rate_s, t2 - t0)
            progress(f"  run {rep + 1}: encode {t1 - t0:.3f} s + rate {t2 - t1:.3f} s = {t2 - t0:.3f} s")
        assert batch is not None and rated is not None
        codes, counts = np.unique(rated.failure, return_counts=True)
        failures = dict(zip(codes.tolist(), counts.tolist(), strict=True))
        progress(f"  failures by code {failures}")
        vector_rps = n / encode_rate_s
        rate_only_rps = n / rate_s

        # Encoding from Python lists, as a server that collected calls one by one would hand them over (information).
        encode_lists_s = time_encode_from_lists(compiled, calls, args.repeat)
        lists_rps = n / (encode_lists_s + rate_s)
        progress(f"  encode from Python lists instead of arrays: {encode_lists_s:.3f} s")

        # 4. Scalar path on a sample, and agreement with the vectorised results.
        sample_size = min(args.scalar_sample, n)
        sample = np.sort(rng.choice(n, size=sample_size, replace=False))
        scalar_calls = [scalar_call(calls, i) for i in sample.tolist()]
        progress(f"scalar: rate_call on {sample_size:,} of the calls, best of {args.repeat} …")
        rate_call(tariff, scalar_calls[0])  # builds the scalar path's per-tariff lookups once

        scalar_s, scalar_answers = best_of(args.repeat, lambda: run_scalar(tariff, scalar_calls))
        scalar_rps = sample_size / scalar_s
        cost_mismatches, mismatches, examples = compare(rated, sample, scalar_calls, scalar_answers)
        progress(f"  {scalar_rps:,.0f} records/s; mismatches: {cost_mismatches} in cost, {mismatches} in any field")

        # Extra check (untimed): every call priced in more than one part (band edge or summer-time change).
        crossing_index = np.flatnonzero(crossing_mask)
        crossing_calls = [scalar_call(calls, int(i)) for i in crossing_index.tolist()]
        crossing_cost_mismatches, crossing_mismatches, crossing_examples = compare(
            rated, crossing_index, crossing_calls, run_scalar(tariff, crossing_calls)
        )
        progress(
            f"  all {len(crossing_index):,} multi-part voice calls: mismatches {crossing_cost_mismatches} in cost, "
            f"{crossing_mismatches} in any field"
        )
        for example in examples + crossing_examples:
            progress(f"  mismatch: {example}")
        del batch, rated

        # 5. Load + compile of a big tariff, against plain csv.reader of the same files.
        progress(f"generating a {args.load_prefixes:,}-prefix tariff for load + compile …")
        big = generate_tariff(temp_dir / "big", args.load_prefixes, args.groups, args.seed + 1)
        csv_bytes = sum(p.stat().st_size for p in big.directory.glob("*.csv"))
        progress(f"  {len(big.prefixes):,} prefixes, {big.rates:,} rates, {csv_bytes / 1e6:.1f} MB of CSV")
        utc_offsets.cache_clear()
        started = time.perf_counter()
        utc_offsets("Europe/London")
        zone_table_s = time.perf_counter() - started

        load_s = compile_s = load_compile_s = float("inf")
        for rep in range(args.repeat):
            utc_offsets.cache_clear()  # measure a cold start: the zone table is built in compile_tariff
            gc.collect()
            t0 = time.perf_counter()
            big_tariff = load_tariff(big.directory)
            t1 = time.perf_counter()
            compile_tariff(big_tariff)
            t2 = time.perf_counter()
            load_s, compile_s, load_compile_s = (
                min(load_s, t1 - t0),
                min(compile_s, t2 - t1),
                min(load_compile_s, t2 - t0),
            )
            progress(f"  run {rep + 1}: load {t1 - t0:.3f} s + compile {t2 - t1:.3f} s = {t2 - t0:.3f} s")
            del big_tariff
        csv_s, csv_rows = best_of(args.repeat, lambda: read_csv_rows(big.directory))
        progress(f"  csv.reader of all {csv_rows:,} rows: {csv_s:.3f} s; zone table alone {zone_table_s:.3f} s")

    results["vectorised"] = {
        "calls": n,
        "encode_s": encode_s,
        "rate_s": rate_s,
        "encode_rate_s": encode_rate_s,
        "encode_rate_records_per_s": vector_rps,
        "rate_only_records_per_s": rate_only_rps,
        "encode_from_lists_s": encode_lists_s,
        "encode_from_lists_rate_records_per_s": lists_rps,
        "failures_by_code": {str(k): v for k, v in sorted(failures.items())},
    }
    results["scalar"] = {
        "calls": sample_size,
        "seconds": scalar_s,
        "records_per_s": scalar_rps,
        "cost_mismatches": cost_mismatches,
        "field_mismatches": mismatches,
        "multi_part_calls_checked": len(crossing_index),
        "multi_part_cost_mismatches": crossing_cost_mismatches,
        "multi_part_field_mismatches": crossing_mismatches,
    }
    results["ratio_vectorised_to_scalar"] = vector_rps / scalar_rps
    results["ratio_rate_only_to_scalar"] = rate_only_rps / scalar_rps
    results["load"] = {
        "prefixes": len(big.prefixes),
        "csv_bytes": csv_bytes,
        "csv_rows": csv_rows,
        "load_s": load_s,
        "compile_s": compile_s,
        "load_compile_s": load_compile_s,
        "zone_table_s": zone_table_s,
        "csv_reader_s": csv_s,
        "ratio_load_compile_to_csv": load_compile_s / csv_s,
    }

    def status(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    table = [
        ("metric", "value", "target", "status"),
        (
            f"vectorised encode+rate ({n:,} calls)",
            f"{vector_rps:,.0f} rec/s",
            f"≥ {TARGET_RECORDS_PER_S:,} rec/s",
            status(vector_rps >= TARGET_RECORDS_PER_S),
        ),
        (
            "vectorised rate_batch alone",
            f"{rate_only_rps:,.0f} rec/s",
            f"≥ {TARGET_RECORDS_PER_S:,} rec/s",
            status(rate_only_rps >= TARGET_RECORDS_PER_S),
        ),
        ("  encode (CallBatch.of) / rate", f"{encode_s:.3f} s / {rate_s:.3f} s", "", ""),
        ("vectorised encode+rate, Python-list input", f"{lists_rps:,.0f} rec/s", "", ""),
        (f"scalar rate_call ({sample_size:,} calls)", f"{scalar_rps:,.0f} rec/s", "", ""),
        (
            "vectorised / scalar (encode+rate)",
            f"{vector_rps / scalar_rps:,.1f}×",
            f"≥ {TARGET_RATIO}×",
            status(vector_rps / scalar_rps >= TARGET_RATIO),
        ),
        ("vectorised / scalar (rate alone)", f"{rate_only_rps / scalar_rps:,.1f}×", "", ""),
        (
            f"scalar vs vectorised cost mismatches ({sample_size:,})",
            f"{cost_mismatches}",
            "0",
            status(cost_mismatches == 0),
        ),
        ("  mismatches in any field (group, ledger, rate)", f"{mismatches}", "0", status(mismatches == 0)),
        (
            f"  all {len(crossing_index):,} multi-part calls: cost / any field",
            f"{crossing_cost_mismatches} / {crossing_mismatches}",
            "0",
            status(crossing_mismatches == 0 and crossing_cost_mismatches == 0),
        ),
        (
            f"load+compile {len(big.prefixes):,} prefixes",
            f"{load_compile_s:.3f} s",
            f"< {TARGET_LOAD_S:g} s",
            status(load_compile_s < TARGET_LOAD_S),
        ),
        ("  load_tariff / compile_tariff", f"{load_s:.3f} s / {compile_s:.3f} s", "", ""),
        ("raw csv.reader of the same files", f"{csv_s:.3f} s", "", ""),
        ("load+compile / raw CSV read", f"{load_compile_s / csv_s:,.1f}×", "", ""),
    ]
    widths = [max(len(row[c]) for row in table) for c in range(4)]
    print()
    print(f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, NumPy {info['numpy']}")
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))
    results["targets"] = {
        "vectorised_records_per_s": {"target": TARGET_RECORDS_PER_S, "pass": vector_rps >= TARGET_RECORDS_PER_S},
        "rate_only_records_per_s": {"target": TARGET_RECORDS_PER_S, "pass": rate_only_rps >= TARGET_RECORDS_PER_S},
        "ratio_to_scalar": {"target": TARGET_RATIO, "pass": vector_rps / scalar_rps >= TARGET_RATIO},
        "load_compile_s": {"target": TARGET_LOAD_S, "pass": load_compile_s < TARGET_LOAD_S},
        "scalar_agreement": {"target": 0, "pass": mismatches == 0 and cost_mismatches == 0},
        "multi_part_agreement": {"target": 0, "pass": crossing_mismatches == 0 and crossing_cost_mismatches == 0},
    }
    results["total_s"] = time.perf_counter() - _T0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nResults written to {args.output} (run took {results['total_s']:.1f} s)")
    return 1 if mismatches or cost_mismatches or crossing_mismatches or crossing_cost_mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
