"""What a tariff holds, in a few numbers and names, and what changes from one tariff to another: the summary the
console shows before a new tariff is published (``occ.v1.TariffInfo`` carries the same fields)."""

from __future__ import annotations

from collections import Counter

import msgspec

from rating_engine.compile import CompiledTariff


class TariffSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A tariff at a glance.

    Attributes:
        tariff_hash: the compiled tariff's content hash.
        name, currency, timezone: as in ``tariff.csv``.
        plans: the rate plans, in order.
        group_prefixes: destination group → how many prefixes lead to it.
        rate_names: the rates, sorted.
        bands: the time band names, in order of first appearance.
    """

    tariff_hash: str
    name: str
    currency: str
    timezone: str
    plans: tuple[str, ...]
    group_prefixes: dict[str, int]
    rate_names: tuple[str, ...]
    bands: tuple[str, ...]

    @property
    def prefixes(self) -> int:
        return sum(self.group_prefixes.values())


def summarize(compiled: CompiledTariff) -> TariffSummary:
    tariff = compiled.tariff
    counts = Counter(tariff.prefixes.values())
    return TariffSummary(
        tariff_hash=compiled.hash,
        name=tariff.name,
        currency=tariff.currency,
        timezone=tariff.timezone,
        plans=tuple(compiled.plan_names),
        group_prefixes={group: counts.get(group, 0) for group in sorted(tariff.groups)},
        rate_names=tuple(sorted(tariff.rates)),
        bands=tuple(tariff.band_names),
    )


def changes(old: TariffSummary, new: TariffSummary) -> list[str]:
    """What differs from ``old`` to ``new``, one sentence each; empty when they are the same tariff."""
    if old.tariff_hash == new.tariff_hash:
        return []
    found = [f"{label} {getattr(old, field)!r} → {getattr(new, field)!r}"
             for field, label in (("name", "name"), ("currency", "currency"), ("timezone", "time zone"))
             if getattr(old, field) != getattr(new, field)]  # fmt: skip
    for label, before, after in (
        ("plan", old.plans, new.plans),
        ("destination group", old.group_prefixes, new.group_prefixes),
        ("rate", old.rate_names, new.rate_names),
        ("time band", old.bands, new.bands),
    ):
        added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
        found += [f"{label} added: {', '.join(added)}"] if added else []
        found += [f"{label} removed: {', '.join(removed)}"] if removed else []
    for group in sorted(set(old.group_prefixes) & set(new.group_prefixes)):
        before, after = old.group_prefixes[group], new.group_prefixes[group]
        if before != after:
            found.append(f"destination group {group}: {before} → {after} prefixes")
    if old.prefixes != new.prefixes:
        found.append(f"prefixes in all: {old.prefixes} → {new.prefixes}")
    if len(found) == 0:
        found.append("prices, prefixes or plan rows changed (the same names and counts, another content hash)")
    return found
