"""``rating_engine.summary``: a tariff at a glance, and what changes between two."""

from __future__ import annotations

from pathlib import Path

from rating_engine import compile_tariff, load_tariff
from rating_engine.summary import changes, summarize

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tariff"


def test_the_summary_counts_the_example_tariff():
    compiled = compile_tariff(load_tariff(EXAMPLE))
    summary = summarize(compiled)
    assert summary.tariff_hash == compiled.hash and summary.currency == "EUR"
    assert summary.prefixes == len(compiled.tariff.prefixes) and set(summary.plans) == set(compiled.plan_names)


def test_changes_name_what_differs(tmp_path):
    old = summarize(compile_tariff(load_tariff(EXAMPLE)))
    new_dir = tmp_path / "tariff"
    new_dir.mkdir()
    for path in EXAMPLE.iterdir():
        (new_dir / path.name).write_bytes(path.read_bytes())
    destinations = (new_dir / "destinations.csv").read_text().splitlines()
    kept = [line for line in destinations if not line.startswith("4491,")]  # a premium prefix goes
    (new_dir / "destinations.csv").write_text("\n".join(kept) + "\n")
    new = summarize(compile_tariff(load_tariff(new_dir)))
    found = changes(old, new)
    assert "destination group UK_PREMIUM: 2 → 1 prefixes" in found or any("UK_PREMIUM" in line for line in found), found
    assert any(line.startswith("prefixes in all: ") for line in found), found
    assert changes(old, old) == []
