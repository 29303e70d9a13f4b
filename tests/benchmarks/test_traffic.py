"""The softswitch's traffic model: Poisson arrivals, call durations, destinations and grant-driven scheduling."""

from __future__ import annotations

import itertools
import random
import statistics
from pathlib import Path

import pytest

from benchmarks.online.traffic import Destinations, Step, call_duration_s, next_step, poisson_arrivals
from rating_engine.load import load_tariff

TARIFF = Path(__file__).resolve().parents[2] / "examples" / "tariff"


def test_poisson_arrivals_come_at_the_asked_rate_with_exponential_gaps() -> None:
    offsets = list(itertools.takewhile(lambda at_s: at_s < 100.0, poisson_arrivals(200.0, random.Random(7))))
    assert 200 * 100 * 0.97 < len(offsets) < 200 * 100 * 1.03  # 20,000 expected, sd ≈ 141
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert all(gap > 0 for gap in gaps)
    # An exponential distribution's standard deviation equals its mean (a fixed-interval generator's would be 0).
    assert statistics.stdev(gaps) == pytest.approx(statistics.mean(gaps), rel=0.05)


def test_poisson_arrivals_are_reproducible_from_the_seed() -> None:
    first = list(itertools.islice(poisson_arrivals(50.0, random.Random(3)), 100))
    assert first == list(itertools.islice(poisson_arrivals(50.0, random.Random(3)), 100))
    assert first != list(itertools.islice(poisson_arrivals(50.0, random.Random(4)), 100))
    with pytest.raises(ValueError, match="rate must be positive"):
        next(poisson_arrivals(0.0, random.Random(1)))


def test_call_durations_have_the_mean_asked_within_their_bounds() -> None:
    rng = random.Random(11)
    durations = [call_duration_s(rng, 90.0, 600) for _ in range(20_000)]
    assert min(durations) >= 1 and max(durations) <= 600
    assert statistics.mean(durations) == pytest.approx(90.0, rel=0.05)


def test_destinations_are_the_plans_priced_voice_prefixes() -> None:
    destinations = Destinations.from_tariff(TARIFF, "retail")
    tariff = load_tariff(TARIFF)
    assert "8816" not in destinations.prefixes  # SATELLITE: not sold on the retail plan
    assert set(destinations.prefixes) == {p for p, group in tariff.prefixes.items() if group != "SATELLITE"}
    rng = random.Random(5)
    for number in (destinations.draw(rng) for _ in range(200)):
        assert number.startswith("+") and number[1:].isdigit() and len(number) == 13
        assert any(number[1:].startswith(prefix) for prefix in destinations.prefixes)
    assert Destinations.from_tariff(TARIFF, "wholesale").prefixes == tuple(sorted(tariff.prefixes))
    with pytest.raises(ValueError, match="prices no voice destination"):
        Destinations.from_tariff(TARIFF, "no-such-plan")


@pytest.mark.parametrize(
    ("remaining_s", "granted_s", "validity_s", "final", "expected"),
    [
        (200, 60, 60, False, Step("update", 55)),  # report 5 s before the grant runs out
        (200, 60, 30, False, Step("update", 25)),  # the validity time is shorter than the grant: it rules
        (40, 60, 60, False, Step("end", 40)),  # hangs up within the grant: no update, just the end
        (60, 60, 60, False, Step("end", 60)),
        (200, 6, 60, False, Step("update", 3)),  # a small grant: at most half of it early
        (200, 1, 60, False, Step("update", 1)),  # never sooner than a second after the last report
        (200, 30, 60, True, Step("end", 30)),  # final units: cut off when they are used up
        (10, 30, 60, True, Step("end", 10)),
        (200, 0, 60, False, Step("end", 0)),  # no grant at all: end at once
        (200, 60, 0, False, Step("update", 55)),  # no validity time given: the grant alone
    ],
)
def test_next_step_reports_before_the_grant_runs_out(remaining_s, granted_s, validity_s, final, expected) -> None:
    assert next_step(remaining_s=remaining_s, granted_s=granted_s, validity_s=validity_s, final=final, guard_s=5) == (
        expected
    )
