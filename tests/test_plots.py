"""Tests for budgeteval.plots.budget and `budgeteval plot`: open the figure objects and check what they show.

Panels, lines (their data), labels, tick labels, legend entries, colours and CI bands are read from
the matplotlib objects; files are checked for existence, format and byte-for-byte determinism.
"""

import matplotlib.colors as mcolors
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.collections import FillBetweenPolyCollection, PolyCollection
from synthetic_runs import RUN_A, RUN_B, samples, write_run

from budgeteval.cli import main
from budgeteval.errors import UserError
from budgeteval.plots.budget import (
    BUDGET_FIGURES,
    TOKEN_FIGURES,
    PlotOptions,
    accuracy_figure,
    budget_figures,
    length_distribution_figure,
    length_figure,
    save_figures,
    token_split_figure,
    truncation_figure,
)
from budgeteval.plots.style import OKABE_ITO, new_figure, run_colours
from budgeteval.report.runs import load_run

# A second task, "u", at the same budgets: one problem always right in A, never in B.
TASK_U = pd.DataFrame([
    {"task": "u", "problem_id": p, "sample_idx": i, "budget": b, "mode": "cutoff", "num_tokens": 64 + i,
     "finished": True, "extracted": "x", "correct": p == "q1", "timed_out": False}
    for b in (1024, 2048, 4096) for p in ("q1", "q2") for i in range(2)
])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    a = write_run(root / "a", "org/base", RUN_A, extra_scores=TASK_U)
    b = write_run(root / "b", "org/ours", RUN_B, extra_scores=TASK_U.assign(correct=False, num_tokens=32))
    return load_run(a), load_run(b)


def legend_texts(figure) -> list[str]:
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


def data_lines(ax) -> dict[str, object]:
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_accuracy_has_a_panel_per_task_a_line_per_run_and_budget_ticks(two_runs):
    base, ours = two_runs
    figure = accuracy_figure([base, ours])
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["t", "u"]
    ax = axes[0]
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1k", "2k", "4k"]
    assert list(ax.get_xticks()) == [1024, 2048, 4096]
    assert ax.get_xlabel() == "token budget" and ax.get_ylabel() == "mean@2 (%)"
    lines = data_lines(ax)
    assert set(lines) == {"base", "ours"}
    assert list(lines["base"].get_xdata()) == [1024, 2048, 4096]
    assert list(lines["base"].get_ydata()) == pytest.approx([25.0, 50.0, 75.0])
    assert list(lines["ours"].get_ydata()) == pytest.approx([50.0, 100.0, 100.0])
    assert list(data_lines(axes[1])["ours"].get_ydata()) == [0.0, 0.0, 0.0]
    assert list(data_lines(axes[1])["base"].get_ydata()) == [50.0, 50.0, 50.0]
    assert legend_texts(figure) == ["base", "ours", "95% bootstrap CI"]
    # One band per run and panel, spanning the bootstrap interval of metrics.csv (A at 1024: 0 to 50%).
    bands = [c for c in ax.collections if isinstance(c, FillBetweenPolyCollection)]
    assert len(bands) == 2
    low_at_1k = min(y for x, y in bands[0].get_paths()[0].vertices if x == 1024)
    high_at_1k = max(y for x, y in bands[0].get_paths()[0].vertices if x == 1024)
    assert (low_at_1k, high_at_1k) == (0.0, 50.0)


def test_each_run_keeps_its_colour_and_marker_in_every_figure(two_runs):
    figures = budget_figures(list(two_runs))
    assert set(figures) == set(BUDGET_FIGURES) == {"accuracy", "truncation", "length", "length_distribution"}
    for name in ("accuracy", "truncation", "length"):
        lines = data_lines(figures[name].axes[0])
        assert mcolors.to_hex(lines["base"].get_color()) == OKABE_ITO[0].lower(), name
        assert mcolors.to_hex(lines["ours"].get_color()) == OKABE_ITO[1].lower(), name
        assert (lines["base"].get_marker(), lines["ours"].get_marker()) == ("o", "s"), name
    violins = [c for c in figures["length_distribution"].axes[0].collections if isinstance(c, PolyCollection)]
    assert {mcolors.to_hex(v.get_facecolor()[0][:3]) for v in violins} == {OKABE_ITO[0].lower(), OKABE_ITO[1].lower()}


def test_truncation_and_length_figures_show_their_metrics(two_runs):
    base, ours = two_runs
    truncation = truncation_figure([base, ours])
    ax = truncation.axes[0]
    assert ax.get_ylabel() == "truncated (%)"
    # A at 1024: a sample is unfinished when wrong and at least as long as the budget: none are.
    assert list(data_lines(ax)["base"].get_ydata()) == [0.0, 0.0, 0.0]
    length = length_figure([base, ours])
    ax = length.axes[0]
    assert ax.get_ylabel() == "mean length (tokens)"
    assert list(data_lines(ax)["base"].get_ydata()) == [250.0, 350.0, 600.0]
    assert list(data_lines(ax)["ours"].get_ydata()) == [100.0, 100.0, 150.0]
    assert list(data_lines(ax)["budget"].get_xdata()) == [1024, 2048, 4096]
    assert legend_texts(length) == ["base", "ours", "budget", "95% bootstrap CI"]


def test_length_distribution_splits_correct_and_incorrect(two_runs):
    base, ours = two_runs
    figure = length_distribution_figure([base, ours])
    ax = figure.axes[0]
    assert ax.get_title() == "t at 4k tokens" and ax.get_ylabel() == "tokens"
    violins = [c for c in ax.collections if isinstance(c, PolyCollection)]
    # base at 4096: correct lengths 100, 200, 1000 (a violin), incorrect only 1100 (a median tick);
    # ours: correct 50, 50, 150, 350 (a violin), no incorrect.
    assert len(violins) == 2
    assert max(y for path in violins[0].get_paths() for _, y in path.vertices) == pytest.approx(1000)
    assert legend_texts(figure) == ["base", "ours", "correct (left)", "incorrect (right)"]
    assert ax.get_xticks().size == 0  # one mode: runs are told apart by colour and legend
    at_2k = length_distribution_figure([base, ours], PlotOptions(distribution_budget=2048))
    assert at_2k.axes[0].get_title() == "t at 2k tokens"
    with pytest.raises(UserError, match="Budget 3000 is not scored in every run"):
        length_distribution_figure([base, ours], PlotOptions(distribution_budget=3000))


def test_modes_get_line_styles_and_legend_entries(tmp_path):
    forced = pd.DataFrame([
        {"task": "t", "problem_id": p, "sample_idx": i, "budget": b, "mode": "forced", "num_tokens": b + 10,
         "finished": True, "extracted": "x", "correct": i == 0, "timed_out": False}
        for b in (1024, 4096) for p in ("p1", "p2") for i in range(2)
    ])
    run = load_run(write_run(tmp_path / "m", "org/modes", RUN_A, extra_scores=forced))
    figure = accuracy_figure([run])
    lines = data_lines(figure.axes[0])
    assert set(lines) == {"modes (cutoff)", "modes (forced)"}
    assert lines["modes (cutoff)"].get_linestyle() == "-" and lines["modes (forced)"].get_linestyle() == "--"
    assert list(lines["modes (forced)"].get_ydata()) == [50.0, 50.0]
    assert legend_texts(figure) == ["modes", "cutoff", "forced", "95% bootstrap CI"]
    distribution = length_distribution_figure([run])
    assert [t.get_text() for t in distribution.axes[0].get_xticklabels()] == ["cutoff", "forced"]


def test_dense_budgets_never_overlap_their_tick_labels(tmp_path):
    budgets = [128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 1024]
    cells = {b: {"p1": samples(True, min(b, 100), False, b), "p2": samples(False, b, True, 90)} for b in budgets}
    run = load_run(write_run(tmp_path / "dense", "org/dense", cells))
    figure = accuracy_figure([run])
    renderer = figure.canvas.get_renderer()
    shown = [t for t in figure.axes[0].get_xticklabels() if t.get_visible() and t.get_text()]
    assert 2 <= len(shown) < len(budgets)
    assert shown[0].get_text() == "128"
    boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda box: box.x0)
    assert all(left.x1 <= right.x0 for left, right in zip(boxes, boxes[1:]))


def test_runs_without_intervals_get_no_bands(tmp_path):
    run = load_run(write_run(tmp_path / "nobands", "org/plain", RUN_B, bootstrap=0))
    figure = accuracy_figure([run])
    assert not [c for c in figure.axes[0].collections if isinstance(c, FillBetweenPolyCollection)]
    assert legend_texts(figure) == ["plain"]


def test_single_column_size_and_too_many_runs():
    figure, axes = new_figure(3)
    assert len(axes) == 3 and len(figure.axes) == 3  # a 2 x 2 grid without its fourth panel
    assert figure.get_figwidth() == pytest.approx(3.25)
    with pytest.raises(UserError, match="9 runs are too many"):
        run_colours([f"r{i}" for i in range(9)])
    with pytest.raises(UserError, match="Two runs share a label"):
        run_colours(["a", "b", "a"])


def test_save_figures_writes_every_format_deterministically(two_runs, tmp_path):
    paths = save_figures(list(two_runs), tmp_path / "one", "pdf,svg,png")
    assert sorted(p.name for p in paths) == sorted(f"{name}.{fmt}" for name in BUDGET_FIGURES for fmt in ("pdf", "svg", "png"))
    again = save_figures(list(two_runs), tmp_path / "two", ["pdf", "svg", "png"])
    for first, second in zip(paths, again):
        assert first.read_bytes() == second.read_bytes(), first.name
    assert (tmp_path / "one" / "accuracy.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (tmp_path / "one" / "accuracy.svg").read_bytes()[:500]
    assert (tmp_path / "one" / "accuracy.png").read_bytes().startswith(b"\x89PNG")
    assert b"<text" in (tmp_path / "one" / "accuracy.svg").read_bytes()  # text stays text in vector output


def test_plot_command(two_runs, tmp_path):
    base, ours = two_runs
    result = CliRunner().invoke(main, ["plot", f"{base.path}=Base", str(ours.path), "-o", str(tmp_path / "figs"),
                                       "--format", "svg"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(f"{n}.svg" for n in BUDGET_FIGURES)
    assert "Base" in (tmp_path / "figs" / "accuracy.svg").read_text()
    for args, message in [(["--format", "jpg"], "--format 'jpg'"), (["--k", "5"], "k=5 exceeds the 2 samples")]:
        result = CliRunner().invoke(main, ["plot", str(base.path), "-o", str(tmp_path / "bad"), *args])
        assert result.exit_code == 2 and message in result.output, result.output


def _with_token_split(run_dir, thinking_share: float):
    """Re-score a synthetic run as if its responses spent `thinking_share` of their tokens thinking."""
    from budgeteval.rundir.scores import read_scores, write_scores
    from budgeteval.scoring.metrics import compute_metrics, write_metrics

    scores = read_scores(run_dir)
    scores["thinking_tokens"] = (scores["num_tokens"] * thinking_share).astype("int64")
    scores["answer_tokens"] = scores["num_tokens"] - scores["thinking_tokens"]
    scores["cut_thinking"] = ~scores["finished"].astype(bool)
    write_scores(run_dir, scores)
    write_metrics(compute_metrics(scores, [1, 2]), run_dir)
    return load_run(run_dir)


def test_tokens_figure_stacks_answer_on_thinking_per_run_and_budget(tmp_path):
    base = _with_token_split(write_run(tmp_path / "a", "org/base", RUN_A), 0.75)
    ours = _with_token_split(write_run(tmp_path / "b", "org/ours", RUN_B), 0.5)
    figure = token_split_figure([base, ours])
    (ax,) = figure.axes
    assert [label.get_text() for label in ax.get_xticklabels()] == ["1k", "2k", "4k"]
    bars = ax.patches  # per run: thinking bars, then answer bars stacked on them
    assert len(bars) == 2 * 2 * 3
    thinking, answer = bars[:3], bars[3:6]
    lengths = base.metrics[base.metrics["metric"] == "length_mean"].sort_values("budget")["value"].tolist()
    for low, high, length in zip(thinking, answer, lengths):
        assert high.get_y() == pytest.approx(low.get_height())  # stacked
        assert low.get_height() + high.get_height() == pytest.approx(length, abs=1)  # together: the mean length
    assert legend_texts(figure) == [base.label, ours.label, "thinking", "answer"]
    result = CliRunner().invoke(main, ["plot", str(base.path), str(ours.path), "--kind", "tokens", "-o",
                                       str(tmp_path / "figs"), "--format", "png"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [f"{name}.png" for name in TOKEN_FIGURES]


def test_tokens_figure_refuses_a_run_scored_before_the_split(two_runs, tmp_path):
    base, _ = two_runs
    with pytest.raises(UserError, match=r"no thinking/answer token split .* re-run `budgeteval score"):
        token_split_figure([base])
    result = CliRunner().invoke(main, ["plot", str(base.path), "--kind", "tokens", "-o", str(tmp_path / "f")])
    assert result.exit_code == 2 and "re-run `budgeteval score" in result.output and "Traceback" not in result.output
