"""Per-step table and the training-dynamics figure (`budgeteval plot DIR --by step`)."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from budgeteval.cli import main
from budgeteval.errors import UserError
from budgeteval.plots.steps import step_figure
from budgeteval.report.steps import append_step_metrics, read_step_metrics
from budgeteval.scoring.metrics import compute_metrics

STEPS = (0, 50, 100)
BUDGETS = (1024, 4096)


def step_scores(step: int) -> pd.DataFrame:
    """Two problems x 2 samples; accuracy rises and lengths fall with the step, more at the small budget."""
    rows = []
    for budget in BUDGETS:
        for problem in ("a", "b"):
            for sample in (0, 1):
                length = min(budget, 3000 - 10 * step + 100 * sample)
                correct = (sample == 0 and step >= 50) or (budget == 4096 and problem == "a")
                rows.append({"task": "math500", "problem_id": problem, "sample_idx": sample, "budget": budget,
                             "mode": "cutoff", "num_tokens": length, "finished": length < budget,
                             "extracted": str(sample), "correct": correct, "timed_out": False})
    return pd.DataFrame(rows)


@pytest.fixture()
def training_folder(tmp_path):
    for step in reversed(STEPS):  # appended out of order: the table sorts by step
        append_step_metrics(tmp_path, step, compute_metrics(step_scores(step), [1, 2]))
    return tmp_path


def test_table_replaces_a_step_and_is_deterministic(training_folder, tmp_path_factory):
    table = read_step_metrics(training_folder)
    assert list(table.columns)[:2] == ["step", "task"]
    assert table["step"].tolist() == sorted(table["step"].tolist())
    before = (training_folder / "metrics_by_step.csv").read_bytes()
    append_step_metrics(training_folder, 50, compute_metrics(step_scores(50), [1, 2]))
    assert (training_folder / "metrics_by_step.csv").read_bytes() == before
    other = tmp_path_factory.mktemp("again")
    for step in STEPS:
        append_step_metrics(other, step, compute_metrics(step_scores(step), [1, 2]))
    assert (other / "metrics_by_step.csv").read_bytes() == before


def test_figure_has_a_line_per_budget_with_the_table_values(training_folder):
    table = read_step_metrics(training_folder)
    figure = step_figure(table)
    accuracy_ax, length_ax = figure.axes[:2]
    assert accuracy_ax.get_ylabel() == "mean@2 (%)" and length_ax.get_ylabel() == "mean length (tokens)"
    assert [line.get_label() for line in accuracy_ax.get_lines()] == ["1k", "4k"]
    for ax, metric, k, scale in ((accuracy_ax, "mean", 2, 100.0), (length_ax, "length_mean", None, 1.0)):
        for line, budget in zip(ax.get_lines(), BUDGETS):
            cell = table[(table.metric == metric) & (table.budget == budget)]
            if k is not None:
                cell = cell[cell.k == k]
            assert list(line.get_xdata()) == list(STEPS)
            np.testing.assert_allclose(line.get_ydata(), scale * cell.sort_values("step")["value"].to_numpy())
    legend_texts = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend_texts == ["1k tokens", "4k tokens"]
    assert step_figure(table, k=1, accuracy_metric="pass").axes[0].get_ylabel() == "pass@1 (%)"
    with pytest.raises(UserError, match="no mean@8"):
        step_figure(table, k=8)


def test_plot_by_step_cli_writes_the_same_bytes_twice(training_folder, tmp_path):
    command = ["plot", str(training_folder), "--by", "step", "-o", str(tmp_path / "figs"), "--format", "png,svg"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    png = (tmp_path / "figs" / "training_dynamics.png").read_bytes()
    assert CliRunner().invoke(main, command).exit_code == 0
    assert (tmp_path / "figs" / "training_dynamics.png").read_bytes() == png
    assert (tmp_path / "figs" / "training_dynamics.svg").is_file()
    result = CliRunner().invoke(main, ["plot", str(tmp_path / "nothing"), "--by", "step", "-o", str(tmp_path / "f")])
    assert result.exit_code == 2 and "No per-step metrics" in result.output
    result = CliRunner().invoke(main, ["plot", str(training_folder), str(training_folder), "--by", "step", "-o",
                                       str(tmp_path / "f")])
    assert result.exit_code == 2 and "one training folder at a time" in result.output
