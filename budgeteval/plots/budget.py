"""Budget-sweep figures of one or more runs, drawn from their files alone (metrics.csv, scores.parquet).

- `accuracy`: mean@k (or pass@k) vs token budget, log2 x axis, one line per run (x mode), bootstrap
  confidence bands, one panel per task;
- `truncation`: share of responses not finished within the budget vs budget;
- `length`: mean response length (tokens counted at the budget) vs budget, with the budget itself
  as the ceiling cutoff mode cannot exceed;
- `length_distribution`: lengths of correct vs incorrect responses at one budget (split violins);
- `tokens` (`--kind tokens`): where the tokens go, mean thinking and answer tokens stacked per budget,
  a panel per task x mode, a bar per run.

Each figure function takes the runs (`budgeteval.report.runs.Run`) and a `PlotOptions` and returns a
`matplotlib.figure.Figure`, so tests and notebooks can inspect its axes, lines and legend;
`save_figures` writes a registry of them to files. Another view (e.g. metrics per training step)
is another registry of such functions passed to `save_figures`. Colours, sizes and saving are
`budgeteval.plots.style`. This module computes no metric: it plots the metrics the runs hold.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from budgeteval.analysis.efficiency import AGREEMENT_WINDOWS, DEFAULT_BUCKET_EDGES
from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget
from budgeteval.plots.style import (
    budget_axis,
    draw_band,
    figure_legend,
    figure_style,
    finish_figure,
    make_out_dir,
    mode_linestyle,
    new_figure,
    parse_formats,
    run_colours,
    save_figure,
    thin_overlapping_tick_labels,
)

BUDGET_FIGURES = {
    "accuracy": "budgeteval.plots.budget:accuracy_figure",
    "truncation": "budgeteval.plots.budget:truncation_figure",
    "length": "budgeteval.plots.budget:length_figure",
    "length_distribution": "budgeteval.plots.budget:length_distribution_figure",
}
"""The figures of `budgeteval plot`: file name -> "module:function(runs, options) -> Figure"."""

TOKEN_FIGURES = {"tokens": "budgeteval.plots.budget:token_split_figure"}
"""`plot --kind tokens`: the stacked thinking/answer length figure."""

ANSWER_ALPHA = 0.35
"""Opacity of the answer part of a stacked bar (the thinking part is the run's full colour)."""



@dataclass(frozen=True)
class PlotOptions:
    """Choices the figure functions share."""

    k: int | None = None
    """Samples per problem behind mean@k/pass@k (None: the largest k every run's metrics have)."""
    accuracy_metric: str = "mean"
    """`mean` (mean@k, the expected accuracy of one sample) or `pass` (pass@k) on the accuracy figure."""
    distribution_budget: int | None = None
    """Budget of the length distribution (None: per task, the largest budget every run has)."""
    pass_budgets: tuple[int, ...] = ()
    """Budgets of the pass@k vs k figure (empty: each run's smallest and largest)."""
    buckets: tuple[float, ...] = DEFAULT_BUCKET_EDGES
    """Edges of the difficulty buckets of the `difficulty` figure."""
    baseline: str | None = None
    """Label of the run whose pass rates define the difficulty buckets (None: the first run)."""
    windows: tuple[int, ...] = AGREEMENT_WINDOWS
    """m values of the early-exit figure ("stop where the last m forced answers agree")."""


def load_figure_function(spec: str) -> Callable:
    """Resolve a registry entry "module:function"."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def budget_figures(runs: Sequence, options: PlotOptions | None = None, **option_values) -> dict:
    """Every figure of `BUDGET_FIGURES` for `runs`, by name (`option_values` build a `PlotOptions`)."""
    from budgeteval.report.compare import check_shared_tasks

    options = options or PlotOptions(**option_values)
    check_shared_tasks(runs)
    return {name: load_figure_function(spec)(runs, options) for name, spec in BUDGET_FIGURES.items()}


def save_figures(runs: Sequence, out_dir: str | os.PathLike, formats: Sequence[str] | str = ("pdf", "png"),
                 options: PlotOptions | None = None, figures: Mapping[str, str] = BUDGET_FIGURES) -> list[Path]:
    """Draw every figure in `figures` for `runs` and save each as `out_dir/<name>.<format>`; returns the paths."""
    from budgeteval.report.compare import check_shared_tasks, check_unique_labels

    formats = parse_formats(formats) if isinstance(formats, str) else parse_formats(",".join(formats))
    options = options or PlotOptions()
    check_unique_labels(runs)
    check_shared_tasks(runs)
    out_dir = make_out_dir(out_dir)
    paths = []
    for name, spec in figures.items():
        figure = load_figure_function(spec)(runs, options)
        paths += [save_figure(figure, out_dir / f"{name}.{fmt}") for fmt in formats]
    return paths


# --- the figures -----------------------------------------------------------------------------------


def accuracy_figure(runs: Sequence, options: PlotOptions = PlotOptions()):
    """mean@k (or pass@k) in percent vs budget: a panel per task, a line per run and mode, CI bands."""
    from budgeteval.report.compare import common_k

    if options.accuracy_metric not in ("mean", "pass"):
        raise UserError(f"Accuracy metric {options.accuracy_metric!r} is not plotted: use mean or pass.")
    k = options.k or common_k(runs)
    frames = [_cells(run, run.metrics_at([k]), options.accuracy_metric, k) for run in runs]
    name = f"{options.accuracy_metric}@{k}"
    return _curve_figure(runs, frames, f"{name} (%)", percent=True)


def truncation_figure(runs: Sequence, options: PlotOptions = PlotOptions()):
    """Percent of responses not finished within the budget vs budget (a panel per task)."""
    frames = [_cells(run, run.metrics, "truncation_rate", None) for run in runs]
    return _curve_figure(runs, frames, "truncated (%)", percent=True)


def length_figure(runs: Sequence, options: PlotOptions = PlotOptions()):
    """Mean tokens at the budget vs budget (a panel per task), with the budget as a dotted ceiling."""
    frames = [_cells(run, run.metrics, "length_mean", None) for run in runs]
    return _curve_figure(runs, frames, "mean length (tokens)", percent=False, ceiling=True)


def length_distribution_figure(runs: Sequence, options: PlotOptions = PlotOptions()):
    """Lengths of correct (left half) and incorrect (right half) responses at one budget, per run and mode."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colours = run_colours([run.label for run in runs])
    scores = {run.label: run.scores for run in runs}
    tasks = _tasks(runs)
    with figure_style():
        figure, axes = new_figure(len(tasks))
        for ax, task in zip(axes, tasks):
            budget = _distribution_budget(task, scores, options.distribution_budget)
            modes = sorted({m for frame in scores.values() for m in frame.loc[frame["task"] == task, "mode"].unique()})
            position, ticks = 0, []
            for mode in modes:
                start = position
                for run in runs:
                    frame = scores[run.label]
                    cell = frame[(frame["task"] == task) & (frame["mode"] == mode) & (frame["budget"] == budget)]
                    if cell.empty:
                        continue
                    colour = colours[run.label][0]
                    for correct, side, alpha in ((True, "low", 0.75), (False, "high", 0.3)):
                        lengths = cell.loc[cell["correct"] == correct, "num_tokens"].astype(float).to_numpy()
                        if len(lengths) == 0:
                            continue
                        if lengths.min() == lengths.max():  # a violin needs spread: draw a median tick instead
                            ax.hlines(lengths[0], position - 0.35 * (side == "low"), position + 0.35 * (side == "high"),
                                      color=colour, linewidth=1.2)
                            continue
                        parts = ax.violinplot([lengths], positions=[position], side=side, widths=0.8,
                                              showmedians=True, showextrema=False)
                        for body in parts["bodies"]:
                            body.set_facecolor(colour)
                            body.set_edgecolor(colour)
                            body.set_alpha(alpha)
                            body.set_linewidth(0.6)
                        parts["cmedians"].set_color(colour)
                        parts["cmedians"].set_linewidth(1.0)
                    position += 1
                if position > start:
                    ticks.append(((start + position - 1) / 2, mode))
                position += 0.5
            ax.set_title(f"{task} at {format_budget(budget)} tokens")
            ax.set_ylabel("tokens")
            ax.set_ylim(bottom=0)
            ax.grid(False, axis="x")
            if len(modes) > 1:
                ax.set_xticks([x for x, _ in ticks], [mode for _, mode in ticks])
            else:
                ax.set_xticks([])
        handles = [Line2D([], [], color=colours[run.label][0], linewidth=4) for run in runs]
        labels = [run.label for run in runs]
        handles += [Patch(facecolor="#777777", alpha=0.75), Patch(facecolor="#777777", alpha=0.3)]
        labels += ["correct (left)", "incorrect (right)"]
        figure_legend(figure, handles, labels)
        thin_overlapping_tick_labels(figure)
    return figure


def token_split_figure(runs: Sequence, options: PlotOptions = PlotOptions()):
    """Mean thinking tokens (solid) with mean answer tokens stacked on top (light), per budget: a panel per
    task x mode, one bar per run at each budget; together the bar is the mean length at that budget."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    frames = []
    for run in runs:
        split = run.metrics[run.metrics["metric"].isin(["thinking_mean", "answer_mean"])]
        if split.empty:
            raise UserError(f"Run {run.path} has no thinking/answer token split (scored before it was recorded): "
                            f"re-run `budgeteval score {run.path}` to add it.")
        frames.append(split.pivot_table(index=["task", "mode", "budget"], columns="metric", values="value")
                      .reset_index().assign(run=run.label))
    data = pd.concat(frames, ignore_index=True)
    colours = run_colours([run.label for run in runs])
    panels = sorted({(str(t), str(m)) for t, m in zip(data["task"], data["mode"])})
    modes = {mode for _, mode in panels}
    width = 0.8 / len(runs)
    with figure_style():
        figure, axes = new_figure(len(panels))
        for ax, (task, mode) in zip(axes, panels):
            panel = data[(data["task"] == task) & (data["mode"] == mode)]
            budgets = sorted(int(b) for b in panel["budget"].unique())
            slot = {budget: index for index, budget in enumerate(budgets)}
            for position, run in enumerate(runs):
                bars = panel[panel["run"] == run.label].sort_values("budget")
                if bars.empty:
                    continue
                x = [slot[int(b)] - 0.4 + width * (position + 0.5) for b in bars["budget"]]
                colour = colours[run.label][0]
                thinking = bars["thinking_mean"].fillna(0).to_numpy()
                ax.bar(x, thinking, width, color=colour, linewidth=0)
                ax.bar(x, bars["answer_mean"].fillna(0).to_numpy(), width, bottom=thinking, color=colour,
                       alpha=ANSWER_ALPHA, linewidth=0)
            ax.set_xticks(range(len(budgets)), [format_budget(b) for b in budgets])
            ax.set_xlabel("token budget")
            ax.set_ylabel("mean tokens")
            ax.grid(False, axis="x")
            ax.set_axisbelow(True)  # grid lines behind the bars
            ax.set_title(task if len(modes) == 1 else f"{task}, {mode}")
        handles = [Line2D([], [], color=colours[run.label][0], linewidth=4) for run in runs] if len(runs) > 1 else []
        labels = [run.label for run in runs] if len(runs) > 1 else []
        handles += [Patch(facecolor="#555555", linewidth=0), Patch(facecolor="#555555", alpha=ANSWER_ALPHA, linewidth=0)]
        labels += ["thinking", "answer"]
        figure_legend(figure, handles, labels)
        thin_overlapping_tick_labels(figure)
    return figure


# --- shared drawing --------------------------------------------------------------------------------


def _cells(run, metrics: pd.DataFrame, metric: str, k: int | None) -> pd.DataFrame:
    """task, mode, budget, value, ci_low, ci_high of one metric of `run`."""
    chosen = metrics[metrics["metric"] == metric]
    chosen = chosen[(chosen["k"] == k).fillna(False)] if k is not None else chosen[chosen["k"].isna()]
    if chosen.empty:
        raise UserError(f"Run {run.path} has no {metric} metrics{f' at k={k}' if k else ''}: re-run `budgeteval score` on it.")
    return chosen[["task", "mode", "budget", "value", "ci_low", "ci_high"]].assign(run=run.label)


def _tasks(runs: Sequence) -> list[str]:
    return sorted({task for run in runs for task in run.tasks})


def _curve_figure(runs: Sequence, frames: list[pd.DataFrame], ylabel: str, percent: bool, ceiling: bool = False):
    """Lines of value vs budget per run x mode in a panel per task, with bands where intervals exist."""
    from matplotlib.lines import Line2D

    colours = run_colours([run.label for run in runs])
    data = pd.concat(frames, ignore_index=True)
    scale = 100.0 if percent else 1.0
    modes = sorted(data["mode"].unique())
    tasks = sorted(data["task"].unique())
    any_band = False
    with figure_style():
        figure, axes = new_figure(len(tasks))
        for ax, task in zip(axes, tasks):
            task_data = data[data["task"] == task]
            for run in runs:
                colour, marker = colours[run.label]
                for mode in modes:
                    line = task_data[(task_data["run"] == run.label) & (task_data["mode"] == mode)].sort_values("budget")
                    if line.empty:
                        continue
                    x = line["budget"].to_numpy()
                    ax.plot(x, scale * line["value"].to_numpy(), color=colour, marker=marker,
                            linestyle=mode_linestyle(mode), label=_line_label(run.label, mode, len(modes)))
                    if draw_band(ax, x, line, scale, colour):
                        any_band = True
            budget_axis(ax, task_data["budget"].unique())
            ax.set_title(task)
            ax.set_ylabel(ylabel)
            low, high = ax.get_ylim()
            if percent:
                ax.set_ylim(max(low, 0.0), min(high, 100.0))
            else:
                ax.set_ylim(bottom=0)
            if ceiling:
                budgets = sorted(task_data["budget"].unique())
                top = ax.get_ylim()[1]
                ax.plot(budgets, budgets, color="#888888", linestyle=(0, (1, 1.5)), linewidth=0.9, marker="",
                        label="budget")
                ax.set_ylim(0, top)
        handles, labels = [], []
        for run in runs:
            colour, marker = colours[run.label]
            handles.append(Line2D([], [], color=colour, marker=marker, linestyle="-"))
            labels.append(run.label)
        if len(modes) > 1:
            for mode in modes:
                handles.append(Line2D([], [], color="#444444", linestyle=mode_linestyle(mode)))
                labels.append(mode)
        if ceiling:
            handles.append(Line2D([], [], color="#888888", linestyle=(0, (1, 1.5)), linewidth=0.9))
            labels.append("budget")
        finish_figure(figure, handles, labels, any_band)
    return figure


def _line_label(label: str, mode: str, num_modes: int) -> str:
    return label if num_modes == 1 else f"{label} ({mode})"


def _distribution_budget(task: str, scores: Mapping[str, pd.DataFrame], budget: int | None) -> int:
    """The requested budget, or the largest budget every run has for `task`."""
    per_run = [set(frame.loc[frame["task"] == task, "budget"].astype(int)) for frame in scores.values()]
    per_run = [budgets for budgets in per_run if budgets]
    shared = set.intersection(*per_run) if per_run else set()
    if budget is not None:
        if budget not in shared:
            have = ", ".join(format_budget(b) for b in sorted(shared)) or "none"
            raise UserError(f"Budget {format_budget(budget)} is not scored in every run for task {task} (shared: {have}).")
        return budget
    if not shared:
        raise UserError(f"The runs share no budget for task {task}: score them at a common budget to compare lengths.")
    return max(shared)

