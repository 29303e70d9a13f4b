"""The fault suite itself (``python -m benchmarks.chaos``): its quick run finds nothing lost, duplicated or errored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.chaos import table
from benchmarks.faults.trials import Row

REPO = Path(__file__).resolve().parents[2]


def test_the_table_has_one_line_per_trial_with_its_counts():
    text = table([Row(trial="kill -9 x", done=1200, lost=0, duplicated=1, errored=2)])
    assert text.splitlines() == [
        "| trial | done | lost | duplicated | errored |",
        "|---|---:|---:|---:|---:|",
        "| kill -9 x | 1,200 | 0 | 1 | 2 |",
    ]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_quick_fault_suite_is_clean(tmp_path):
    results = tmp_path / "chaos.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.chaos", "--quick", "--results", str(results)],
                          cwd=REPO, capture_output=True, text=True, timeout=540)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(results.read_text())
    assert len(rows) == 5 and all(row["done"] > 0 for row in rows)
    assert all((row["lost"], row["duplicated"], row["errored"]) == (0, 0, 0) for row in rows)
