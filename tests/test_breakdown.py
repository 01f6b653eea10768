"""`report --by GROUP`: per-group metrics on a hand-checked run, and a real suite run on the tiny model."""

import io
import json

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import shared_path
from synthetic_runs import samples, write_run

from budgeteval.cli import main
from budgeteval.rundir.problems import read_problems, write_problems

pytestmark = [pytest.mark.shared]

# level 1: p1 (both right), p2 (second right); level 2: p3 (both wrong).
CELLS = {1024: {"p1": samples(True, 100, True, 200), "p2": samples(False, 300, True, 100),
                "p3": samples(False, 1024, False, 1024)}}
LEVELS = {"p1": 1, "p2": 1, "p3": 2}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def grouped_run(tmp_path):
    run_dir = write_run(tmp_path / "run", "m", CELLS, task="math500", bootstrap=0)
    write_problems(run_dir, "math500", [{"problem_id": pid, "question": "q", "reference": "1", "level": level}
                                        for pid, level in LEVELS.items()])
    return run_dir


def test_by_level_computes_metrics_over_each_subset(grouped_run):
    result = invoke("report", grouped_run, "--by", "level", "--k", "1,2", "--format", "csv")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.output))
    value = {(row.group_value, row.metric, None if pd.isna(row.k) else int(row.k)): row.value
             for row in table.itertuples()}
    assert value[(1, "mean", 1)] == 0.5 and value[(1, "mean", 2)] == 0.75 and value[(1, "pass", 2)] == 1.0
    assert value[(2, "mean", 2)] == 0.0 and value[(2, "truncation_rate", None)] == 1.0
    assert set(table["problems"]) == {2, 1} and set(table["group"]) == {"level"}


def test_by_level_markdown_has_one_table_per_value_in_order(grouped_run):
    result = invoke("report", grouped_run, "--by", "level")
    assert result.exit_code == 0, result.output
    first = result.output.index("## math500: level = 1 (2 problems)")
    assert first < result.output.index("## math500: level = 2 (1 problem)")
    assert json.loads(invoke("report", grouped_run, "--by", "level", "--format", "json").output)[0]["group"] == "level"


def test_unknown_group_names_the_available_ones(grouped_run):
    result = invoke("report", grouped_run, "--by", "subject")
    assert result.exit_code == 2
    assert "no task" in result.output and "its groups: level" in result.output


def test_run_predating_groups_says_so(tmp_path):
    run_dir = write_run(tmp_path / "old", "m", CELLS, task="math500", bootstrap=0)
    write_problems(run_dir, "math500", [{"problem_id": pid, "question": "q", "reference": "1"} for pid in LEVELS])
    result = invoke("report", run_dir, "--by", "level")
    assert result.exit_code == 2 and "predates them" in result.output


@pytest.mark.slow
def test_deepscaler_suite_runs_end_to_end_on_the_tiny_model(tiny_model, tmp_path):
    files = {"aime24": "aime2024.jsonl", "amc23": "amc23.jsonl", "math500": "math500.jsonl",
             "minerva_math": "minerva_math.jsonl", "olympiadbench": "olympiadbench.jsonl"}
    data = [arg for task, name in files.items() for arg in ("--data", f"{task}={shared_path('data', name)}")]
    out = tmp_path / "run"
    result = invoke("run", "--model", tiny_model, "--tasks", "deepscaler", "--backend", "hf", "--limit", 2,
                    "--n", 1, "--budgets", 16, "--workers", 2, "--out", out, "--quiet", *data)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["tasks"]) == list(files)
    scores = pd.read_parquet(out / "scores.parquet")
    assert sorted(scores.groupby("task").size().items()) == sorted((task, 2) for task in files)
    math500 = read_problems(out, "math500")
    assert [row["level"] for row in math500.values()] == ["2", "5"]  # the first two rows of MATH-500
    assert {row["subfield"] for row in read_problems(out, "olympiadbench").values()} <= {
        "Algebra", "Combinatorics", "Geometry", "Number Theory"}
    report = invoke("report", out, "--by", "level")
    assert report.exit_code == 0, report.output
    assert "## math500: level = 2 (1 problem)" in report.output and "## math500: level = 5 (1 problem)" in report.output
    assert "aime24" not in report.output  # tasks without the group are left out
