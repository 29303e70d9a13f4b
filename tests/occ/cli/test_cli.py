"""The ``occ`` command line, run through click's CliRunner on real files and the shipped example tariff."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from occ.cli import main
from occ.cli.rate import atomic_output
from rating_engine import compile_tariff, load_tariff

EXAMPLE_TARIFF = Path(__file__).resolve().parents[3] / "examples" / "tariff"
CDR_HEADER = "id,Plan,Service,called,start,usage,note\n"


def run(*args: str | Path):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def rate_file(tmp_path: Path, body: str, *options: str) -> tuple[object, Path]:
    source, output = tmp_path / "cdr.csv", tmp_path / "rated.csv"
    source.write_text(body, encoding="utf-8")
    return run("rate", "--tariff", EXAMPLE_TARIFF, source, "-o", output, *options), output


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_tariff_check_prints_a_summary():
    result = run("tariff", "check", EXAMPLE_TARIFF)
    assert result.exit_code == 0, result.output
    summary = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert summary["name"].strip() == "OCC example tariff"
    assert summary["currency"].strip() == "EUR"
    assert summary["timezone"].strip() == "Europe/London"
    counts = ("prefixes", "destination groups", "rates", "rate steps", "bands", "band windows", "plans")
    assert [int(summary[label]) for label in counts] == [11, 6, 8, 10, 3, 4, 2]
    assert int(summary["rate-plan rows"]) == 9
    assert summary["content hash"].strip() == compile_tariff(load_tariff(EXAMPLE_TARIFF)).hash
    assert "ms" in summary["load / compile"]


def test_tariff_check_names_file_line_and_column_of_each_problem(tmp_path):
    broken = tmp_path / "tariff"
    shutil.copytree(EXAMPLE_TARIFF, broken)
    groups = broken / "groups.csv"
    groups.write_text(groups.read_text().replace("UK_FIXED,400000001", "UK_FIXED,40000000x"))
    result = run("tariff", "check", broken)
    assert result.exit_code == 1
    assert "groups.csv:2 [ledger_code]: '40000000x' is not a ledger code" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"{len(result.stderr.splitlines()) - 1} problem(s) in ")
    assert result.stdout == ""


def test_tariff_check_of_a_missing_directory_is_a_usage_error(tmp_path):
    result = run("tariff", "check", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_rate_prices_each_row_and_keeps_the_input_columns(tmp_path):
    result, output = rate_file(
        tmp_path,
        CDR_HEADER
        + "1,retail,voice,+44 20 7946 0000,2026-01-05T09:00:00Z,61,fixed peak\n"
        + "2,retail,voice,12a,2026-01-05T09:00:00Z,61,bad number\n"
        + "3,retail,voice,+999 1234,2026-01-05T10:00:00+01:00,61,nowhere\n"
        + "4,retail,data,,1767603600,1500,data by Unix seconds\n"
        + "5,retail,voice,020 7946 0000,2026-01-05T09:00:00,1.5,naive start and fractional usage\n",
    )
    assert result.exit_code == 0, result.output
    rows = read_rows(output)
    assert list(rows[0])[:7] == ["id", "Plan", "Service", "called", "start", "usage", "note"]
    assert [row["note"] for row in rows] == [
        "fixed peak",
        "bad number",
        "nowhere",
        "data by Unix seconds",
        "naive start and fractional usage",
    ]
    fixed, bad_number, unknown, data, bad_cells = rows
    assert {k: fixed[k] for k in list(fixed)[7:]} == {
        "destination": "442079460000",
        "group": "UK_FIXED",
        "ledger_code": "400000001",
        "rate_id": "STANDARD",
        "cost_micros": "300834",
        "cost": "0.300834",
        "error": "",
    }
    assert bad_number["error"].startswith("called: number '12a' contains 'a'")
    assert bad_number["cost"] == bad_number["cost_micros"] == ""
    assert unknown["error"] == "no destination prefix matches 9991234"
    assert unknown["cost"] == ""
    assert (data["rate_id"], data["cost_micros"], data["error"]) == ("DATA", "3907", "")
    assert "start: '2026-01-05T09:00:00' has no UTC offset" in bad_cells["error"]
    assert "usage: '1.5' is not a whole number" in bad_cells["error"]
    assert "5 rows: 2 rated, 3 failed" in result.stderr


def test_rate_takes_the_plan_from_the_option_when_there_is_no_plan_column(tmp_path):
    body = "service,called,start,usage\nvoice,+44 20 7946 0000,2026-01-05T09:00:00Z,120\n"
    result, output = rate_file(tmp_path, body, "--plan", "retail", "--batch-size", "1")
    assert result.exit_code == 0, result.output
    assert read_rows(output)[0]["cost"] == "0.350000"


def test_rate_trims_the_plan_cell_like_the_others(tmp_path):
    body = "plan,service,called,start,usage\n retail ,voice,+44 20 7946 0000,2026-01-05T09:00:00Z,61\n"
    result, output = rate_file(tmp_path, body)
    assert result.exit_code == 0, result.output
    assert (read_rows(output)[0]["cost_micros"], read_rows(output)[0]["error"]) == ("300834", "")


@pytest.mark.parametrize(
    ("body", "options", "named"),
    [
        ("plan,service,called,start\nretail,voice,1,1\n", (), "usage"),
        ("service,called,start,usage\nvoice,1,1,1\n", (), "plan"),
    ],
)
def test_rate_without_a_required_column_writes_nothing(tmp_path, body, options, named):
    result, output = rate_file(tmp_path, body, *options)
    assert result.exit_code == 1
    assert f"no column {named}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdr.csv"]
    assert not output.exists()


def test_atomic_output_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "rated.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output(target) as handle:
        handle.write("half a file")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rated.csv"]


def test_demo_rates_the_example_calls():
    result = run("demo")
    assert result.exit_code == 0, result.output
    assert "0.300834 EUR" in result.stdout
    assert "0.350000 EUR" in result.stdout
    assert "no destination prefix matches" in result.stdout
    assert result.stdout.rstrip().endswith("The gRPC server (occ serve) arrives with the online core.")
