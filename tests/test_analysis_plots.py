"""Tests for budgeteval.plots.analysis and `budgeteval plot --kind`: the figures' matplotlib objects, by hand."""

import pytest
from click.testing import CliRunner
from synthetic_runs import RUN_A, RUN_B, write_run

from budgeteval.cli import main
from budgeteval.errors import UserError
from budgeteval.plots.analysis import (
    ANALYSIS_FIGURES,
    difficulty_figure,
    early_exit_figure,
    pareto_figure,
    pass_at_k_figure,
)
from budgeteval.plots.budget import PlotOptions
from budgeteval.plots.style import OKABE_ITO
from budgeteval.report.runs import load_run


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis-plots")
    return (load_run(write_run(root / "a", "org/base", RUN_A, bootstrap=0)),
            load_run(write_run(root / "b", "org/ours", RUN_B, bootstrap=0)))


def lines(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def legend_texts(figure) -> list[str]:
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


def test_pareto_points_per_run_and_budget_and_the_front(two_runs):
    # A: (250, 25%), (350, 50%), (600, 75%); B: (100, 50%), (100, 100%), (150, 100%): only B at 2k is on the front.
    figure = pareto_figure(list(two_runs))
    ax = figure.axes[0]
    drawn = lines(ax)
    assert list(drawn["base"].get_xdata()) == pytest.approx([250, 350, 600])
    assert list(drawn["base"].get_ydata()) == pytest.approx([25, 50, 75])
    assert list(drawn["ours"].get_xdata()) == pytest.approx([100, 100, 150])
    assert list(drawn["Pareto front"].get_xdata()) == [100] and list(drawn["Pareto front"].get_ydata()) == [100]
    assert drawn["base"].get_color() == OKABE_ITO[0] and drawn["ours"].get_color() == OKABE_ITO[1]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("mean tokens", "accuracy (%)")
    assert legend_texts(figure) == ["base", "ours", "Pareto front"]


def test_pass_at_k_lines_at_the_chosen_budgets(two_runs):
    figure = pass_at_k_figure(list(two_runs))  # default: smallest and largest budgets
    drawn = lines(figure.axes[0])
    assert set(drawn) == {"base @ 1k", "base @ 4k", "ours @ 1k", "ours @ 4k"}
    assert list(drawn["base @ 1k"].get_xdata()) == [1, 2]
    assert list(drawn["base @ 1k"].get_ydata()) == pytest.approx([25, 50])  # p1 1/2 -> pass@2 1; p2 0
    figure = pass_at_k_figure(list(two_runs), PlotOptions(pass_budgets=(2048,)))
    assert set(lines(figure.axes[0])) == {"base @ 2k", "ours @ 2k"}
    with pytest.raises(UserError, match="not scored"):
        pass_at_k_figure(list(two_runs), PlotOptions(pass_budgets=(512,)))


def test_difficulty_panels_are_the_baselines_buckets(bucket_runs):
    figure = difficulty_figure(bucket_runs)
    assert [ax.get_title() for ax in figure.axes] == ["hard [0, 0.5], 3 problems", "easy (0.5, 1], 2 problems"]
    hard = lines(figure.axes[0])
    assert list(hard["base"].get_xdata()) == [200, 400]
    assert list(hard["base"].get_ydata()) == pytest.approx([100 / 12, 25])
    assert list(hard["ours"].get_ydata()) == pytest.approx([100, 100])
    assert "pass rate of base" in figure._suptitle.get_text()


def test_early_exit_figure_points(sweep_run):
    figure = early_exit_figure([sweep_run])
    line = lines(figure.axes[0])["sweep"]
    assert list(line.get_xdata()) == pytest.approx([380, 330, 410, 410])  # full, agree 2, 3, 4
    assert list(line.get_ydata()) == pytest.approx([100, 50, 100, 100])
    assert [text.get_text() for text in figure.axes[0].texts] == ["full", "agree 2", "agree 3", "agree 4"]


def test_plot_kind_writes_the_analysis_figures_and_keeps_the_default(two_runs, tmp_path):
    a, b = two_runs
    result = CliRunner().invoke(main, ["plot", str(a.path), str(b.path), "-o", str(tmp_path / "f"), "--format", "png",
                                       "--kind", "pareto,pass_at_k"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["pareto.png", "pass_at_k.png"]
    default = CliRunner().invoke(main, ["plot", str(a.path), str(b.path), "-o", str(tmp_path / "d"), "--format", "png"])
    assert default.exit_code == 0, default.output
    assert sorted(p.stem for p in (tmp_path / "d").iterdir()) == ["accuracy", "length", "length_distribution",
                                                                  "truncation"]
    wrong = CliRunner().invoke(main, ["plot", str(a.path), "-o", str(tmp_path / "w"), "--kind", "pie"])
    assert wrong.exit_code == 2 and "--kind 'pie'" in wrong.output
    assert set(ANALYSIS_FIGURES) == {"pareto", "pass_at_k", "difficulty", "after_first_correct", "early_exit"}
