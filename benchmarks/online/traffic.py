"""The softswitch's traffic model, pure and seeded: arrivals, call durations, destinations, when to come back.

Nothing here does I/O or asyncio, so the model is unit-tested on its own (``tests/benchmarks/test_traffic.py``).

- Arrivals are a Poisson process: exponential gaps with mean 1/rate, drawn from a seeded ``random.Random``.
- Call durations (simulated seconds) are exponential around a mean holding time, at least 1 s and capped — the
  classic telephony model (Erlang's), which gives the long tail of calls that need several updates.
- Destinations are drawn from the prefixes of the tariff that the plan prices for voice, completed with random
  digits to a full international number, so every call rates (and the mix of destinations follows the tariff).
- ``next_step`` is the switch's rule for a running call: report and ask for more before the grant (or its validity
  time) runs out, end the call when it hangs up inside the grant, and obey a final-unit indication.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rating_engine.load import load_tariff
from rating_engine.tariff import Service

NUMBER_DIGITS = 12  # digits after the "+" of a drawn called number (prefix included)


def poisson_arrivals(rate_per_s: float, rng: random.Random) -> Iterator[float]:
    """Arrival offsets (seconds from 0, increasing, unbounded) of a Poisson process at ``rate_per_s``."""
    if rate_per_s <= 0:
        raise ValueError(f"rate must be positive, got {rate_per_s}")
    at_s = 0.0
    while True:
        at_s += rng.expovariate(rate_per_s)
        yield at_s


def call_duration_s(rng: random.Random, mean_s: float, max_s: int) -> int:
    """A call's holding time in whole simulated seconds: exponential with mean ``mean_s``, in [1, ``max_s``]."""
    return max(1, min(max_s, round(rng.expovariate(1.0 / mean_s))))


@dataclass(frozen=True)
class Destinations:
    """The voice prefixes one plan of a tariff prices; ``draw`` completes one to a called number.

    Attributes:
        prefixes: the priced prefixes (digits, no "+"), sorted.
    """

    prefixes: tuple[str, ...]

    @classmethod
    def from_tariff(cls, directory: str | Path, plan: str) -> Destinations:
        tariff = load_tariff(directory)
        groups = {b.group for b in tariff.bindings if b.plan == plan and b.service == Service.VOICE}
        if not groups:
            raise ValueError(f"plan {plan!r} of the tariff in {directory} prices no voice destination")
        priced = sorted(p for p, group in tariff.prefixes.items() if "*" in groups or group in groups)
        if not priced:
            raise ValueError(f"plan {plan!r} of the tariff in {directory} has no voice prefix")
        return cls(tuple(priced))

    def draw(self, rng: random.Random) -> str:
        prefix = rng.choice(self.prefixes)
        rest = max(NUMBER_DIGITS - len(prefix), 1)
        return f"+{prefix}{rng.randrange(10 ** (rest - 1), 10**rest)}"


@dataclass(frozen=True)
class Step:
    """The switch's next request for a running call.

    Attributes:
        kind: ``update`` (report usage, ask for more) or ``end`` (the call is over: report the last usage).
        after_s: simulated seconds from the last report until it is sent; also the usage it reports.
    """

    kind: str
    after_s: int


def next_step(*, remaining_s: int, granted_s: int, validity_s: int, final: bool, guard_s: int) -> Step:
    """When to come back, and with what, given the call's remaining duration and the last answer.

    The current grant may be used for ``min(granted_s, validity_s)`` seconds. A call that hangs up within that
    window ends then; one that goes on reports and asks for more ``guard_s`` before the window closes (at most half
    the window early, at least one second after the last report); after a final-unit indication there is no more
    credit, so the call is cut off when the grant is used up. No grant at all ends the call at once.
    """
    window_s = min(granted_s, validity_s) if validity_s > 0 else granted_s
    if window_s <= 0:
        return Step("end", 0)
    if final:
        return Step("end", min(remaining_s, granted_s))
    if remaining_s <= window_s:
        return Step("end", max(remaining_s, 0))
    return Step("update", max(1, window_s - min(guard_s, window_s // 2)))
