"""The notebook in notebooks/ runs clean on two run directories this test builds from real outputs.

Two runs are imported with `budgeteval import` from the first 8 problems of the real
Qwen2.5-Math generations (samples 0-3 and samples 4-7), then the notebook is executed with
nbclient in a fresh kernel, pointed at them through its environment-variable parameters.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import shared_path
from guards import import_or_need

from budgeteval.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.shared]

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare_runs.ipynb"
PROBLEMS = 8


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    source = shared_path("generations", "qwen25math_math_cot_100.jsonl")
    tokenizer = shared_path("tokenizers", "qwen2.5")
    root = tmp_path_factory.mktemp("notebook")
    runs = {}
    for name, samples in (("first", range(0, 4)), ("second", range(4, 8))):
        rows = [line for line in source.read_text().splitlines()
                if json.loads(line)["problem_idx"] < PROBLEMS and json.loads(line)["sample_idx"] in samples]
        (root / f"{name}.jsonl").write_text("\n".join(rows) + "\n")
        fields = ["problem_id=problem_idx", "sample_idx=sample_idx", "response=response", "reference=gold", "question=question"]
        result = CliRunner().invoke(main, [
            "import", str(root / f"{name}.jsonl"), "--task", "math500", "--tokenizer", str(tokenizer),
            *[arg for field in fields for arg in ("--field", field)], "--budgets", "256,512,1k",
            "--model", f"qwen25math-{name}", "--workers", "1", "--out", str(root / name), "--quiet"])
        assert result.exit_code == 0, result.output
        runs[name] = root / name
    return runs


def test_notebook_runs_clean_and_reproduces_tables_and_figures(two_runs, tmp_path, monkeypatch):
    nbformat = import_or_need("nbformat", "the notebook test needs nbformat (pip install -e '.[dev]')")
    nbclient = import_or_need("nbclient", "the notebook test needs nbclient (pip install -e '.[dev]')")
    monkeypatch.setenv("BUDGETEVAL_RUN_A", str(two_runs["first"]))
    monkeypatch.setenv("BUDGETEVAL_RUN_B", str(two_runs["second"]))
    monkeypatch.setenv("BUDGETEVAL_LABEL_B", "second half")
    monkeypatch.setenv("BUDGETEVAL_FIGURES", str(tmp_path / "figures"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "commit the notebook without outputs"
    # Raises CellExecutionError (with the cell and traceback) if any cell fails.
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    markdown = "\n".join(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert "Baseline: qwen25math-first. mean@4 and pass@4" in markdown
    assert "| 256 | cutoff | second half |" in markdown and "## math500" in markdown
    assert markdown.count("| budget | mode | mean@1 |") == 2  # the report of each run
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "saved 8 files" in text and "problems are solved at different rates" in text
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(
        f"{name}.{fmt}" for name in ("accuracy", "truncation", "length", "length_distribution") for fmt in ("pdf", "png"))
