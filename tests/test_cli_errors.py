"""Every user mistake ends with one clear sentence on stderr, exit status 2, and no traceback."""

import json

import pytest

from cli_checks import assert_user_error, budgeteval
from conftest import shared_path


@pytest.fixture(scope="module")
def tokenizer_dir():
    return shared_path("tokenizers", "qwen3")


@pytest.fixture(scope="module")
def small_import(tmp_path_factory):
    """A run directory imported from two problems x four samples (no model needed)."""
    folder = tmp_path_factory.mktemp("import")
    rows = [{"pid": f"p{p}", "gold": str(p + 1), "out": f"The answer is \\boxed{{{p + 1 if s % 2 else 0}}}."}
            for p in range(2) for s in range(4)]
    source = folder / "gens.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = folder / "run"
    result = budgeteval("import", source, "--task", "math500", "--tokenizer", shared_path("tokenizers", "qwen2.5"),
                        "--field", "problem_id=pid", "--field", "response=out", "--field", "reference=gold",
                        "--budgets", "8,64", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_unknown_task(tokenizer_dir, tmp_path):
    assert_user_error(budgeteval("run", "--model", tokenizer_dir, "--tasks", "aime27", "--out", tmp_path / "r"),
                      "Unknown task 'aime27'", "budgeteval tasks")


def test_malformed_yaml(tokenizer_dir, tmp_path):
    task_file = tmp_path / "broken.yaml"
    task_file.write_text("name: broken\ndataset: [unclosed\n")
    assert_user_error(budgeteval("run", "--model", tokenizer_dir, "--tasks", task_file, "--out", tmp_path / "r"),
                      str(task_file), "not valid YAML")


def test_yaml_missing_field(tokenizer_dir, tmp_path):
    task_file = tmp_path / "nofields.yaml"
    task_file.write_text("name: nofields\ndataset: {path: x/y}\nscorer: math\n")
    assert_user_error(budgeteval("run", "--model", tokenizer_dir, "--tasks", task_file, "--out", tmp_path / "r"),
                      "missing the required field 'fields'")


def test_missing_column(tokenizer_dir, tmp_path):
    data = tmp_path / "aime.jsonl"
    data.write_text(json.dumps({"id": "1", "question": "1+1?", "answer": "2"}) + "\n")
    assert_user_error(budgeteval("run", "--model", tokenizer_dir, "--tasks", "aime25", "--data", f"aime25={data}",
                                 "--out", tmp_path / "r"), "no column 'problem'", "fields")


@pytest.mark.parametrize("budget", ["2x", "0", "-4k", ""])
def test_bad_budget(tokenizer_dir, tmp_path, budget):
    assert_user_error(budgeteval("run", "--model", tokenizer_dir, "--tasks", "aime25", "--budgets", budget,
                                 "--out", tmp_path / "r"), "udget")


def test_k_larger_than_n(small_import):
    assert_user_error(budgeteval("report", small_import, "--k", "1,16"), "k=16", "4 samples")


def test_score_budget_beyond_generation(small_import):
    assert_user_error(budgeteval("score", small_import, "--budgets", "1k"), "exceeds")


def test_unreadable_run_directory(tmp_path):
    assert_user_error(budgeteval("report", tmp_path / "missing"), "does not exist")
    (tmp_path / "empty").mkdir()
    assert_user_error(budgeteval("score", tmp_path / "empty"), "not a budgeteval run directory")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    assert_user_error(budgeteval("report", tmp_path / "broken"), "damaged")


def test_bad_data_option(tokenizer_dir, tmp_path):
    assert_user_error(budgeteval("run", "--model", tokenizer_dir, "--tasks", "aime25", "--data", "aime25",
                                 "--out", tmp_path / "r"), "TASK=PATH")


def test_report_and_rescore_work_on_import(small_import):
    report = budgeteval("report", small_import, "--k", "1,4", "--format", "csv")
    assert report.returncode == 0, report.stderr
    assert "mean" in report.stdout and "pass" in report.stdout
    rescore = budgeteval("score", small_import, "--budgets", "4,16", "--quiet")
    assert rescore.returncode == 0, rescore.stderr
    import pandas as pd

    assert sorted(pd.read_parquet(small_import / "scores.parquet").budget.unique()) == [4, 16]
