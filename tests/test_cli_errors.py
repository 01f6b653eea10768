"""Every user mistake ends with one clear sentence on stderr, exit status 2, and no traceback.

The mistakes are a case table (`tests/cases/bad_inputs.jsonl`): the command line, files to write
first, run directories to copy in, and the fragments the one error line must hold. The table runs
the CLI in-process (one interpreter for ~50 cases); a few cases also run as real processes.
"""

import json
import shutil
from pathlib import Path

import pytest
from cli_checks import assert_user_error, budgeteval, budgeteval_in_process
from conftest import shared_path

pytestmark = [pytest.mark.shared]

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "bad_inputs.jsonl").read_text().splitlines()
         if line.strip()]


def _import(folder: Path, task: str, samples: int) -> Path:
    """A run directory imported from two problems x `samples` samples (no model needed)."""
    rows = [{"pid": f"p{p}", "gold": str(p + 1), "out": f"The answer is \\boxed{{{p + 1 if s % 2 else 0}}}."}
            for p in range(2) for s in range(samples)]
    source = folder / f"{task}.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = folder / task
    result = budgeteval("import", source, "--task", task, "--tokenizer", shared_path("tokenizers", "qwen2.5"),
                        "--field", "problem_id=pid", "--field", "response=out", "--field", "reference=gold",
                        "--budgets", "8,64", "--out", out, "--quiet", "--bootstrap", "0")
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def imported_runs(tmp_path_factory):
    """Imported run directories by task: math500 (4 samples per problem) and gsm8k (2)."""
    folder = tmp_path_factory.mktemp("import")
    return {"math500": _import(folder, "math500", 4), "gsm8k": _import(folder, "gsm8k", 2)}


@pytest.fixture(scope="module")
def places():
    """Placeholder -> path of the shared files the cases name."""
    return {"{qwen3}": str(shared_path("tokenizers", "qwen3")), "{qwen25}": str(shared_path("tokenizers", "qwen2.5")),
            "{aime25}": str(shared_path("data", "aime2025.jsonl")),
            "{lcb_no_tests}": str(shared_path("data", "livecodebench_v6_new_no_tests.jsonl"))}


def _fill(text: str, places: dict) -> str:
    for placeholder, value in places.items():
        text = text.replace(placeholder, value)
    return text


def _prepare(case: dict, tmp_path: Path, places: dict, imported_runs: dict) -> list[str]:
    """Copy the case's runs and write its files under tmp_path; return its command line."""
    places = {**places, "{tmp}": str(tmp_path)}
    for name, task in case.get("copy", {}).items():
        shutil.copytree(imported_runs[task], tmp_path / name)
    for name, content in case.get("files", {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    case["expect"] = [_fill(fragment, places) for fragment in case["expect"]]
    return [_fill(arg, places) for arg in case["argv"]]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_gives_one_sentence(case, tmp_path, places, imported_runs):
    case = json.loads(json.dumps(case))
    argv = _prepare(case, tmp_path, places, imported_runs)
    assert_user_error(budgeteval_in_process(*argv), *case["expect"])


@pytest.mark.parametrize("case_id", ["temperature-negative-hf", "manifest-holds-list", "import-null-sample-idx"])
def test_a_real_process_prints_the_same_sentence(case_id, tmp_path, places, imported_runs):
    case = json.loads(json.dumps(next(case for case in CASES if case["id"] == case_id)))
    argv = _prepare(case, tmp_path, places, imported_runs)
    assert_user_error(budgeteval(*argv), *case["expect"])


def test_report_and_rescore_work_on_import(imported_runs, tmp_path):
    run = shutil.copytree(imported_runs["math500"], tmp_path / "run")
    report = budgeteval("report", run, "--k", "1,4", "--format", "csv")
    assert report.returncode == 0, report.stderr
    assert "mean" in report.stdout and "pass" in report.stdout
    rescore = budgeteval("score", run, "--budgets", "4,16", "--quiet")
    assert rescore.returncode == 0, rescore.stderr
    import pandas as pd

    assert sorted(pd.read_parquet(run / "scores.parquet").budget.unique()) == [4, 16]
