"""Training-dynamics figure: accuracy and mean length vs training step, one line per token budget.

Reads the per-step table (`metrics_by_step.csv`, `budgeteval.report.steps`) that `budgeteval watch`
(verl) and `BudgetEvalCallback` (TRL) write, and draws, per task, mean@k (or pass@k) in percent
and the mean response length at each budget against the training step: the view in which RL
length compression shows its phases (length adaptation first, reasoning refinement after) that a
single budget hides. Bootstrap bands are drawn where the table has intervals. Colours, sizes and
saving are `budgeteval.plots.style`; this module computes no metric. `budgeteval plot DIR --by step`
writes it as `training_dynamics.<format>`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget
from budgeteval.plots.style import (
    draw_band,
    figure_style,
    finish_figure,
    make_out_dir,
    new_figure,
    parse_formats,
    run_colours,
    save_figure,
)

STEP_FIGURE = "training_dynamics"
"""File name (without format) of the figure `budgeteval plot --by step` writes."""



def step_figure(table: pd.DataFrame, k: int | None = None, accuracy_metric: str = "mean", mode: str = "cutoff"):
    """Per task, a row of two panels, accuracy (%) and mean length (tokens) vs step, a line per budget."""
    from matplotlib.lines import Line2D

    if accuracy_metric not in ("mean", "pass"):
        raise UserError(f"Accuracy metric {accuracy_metric!r} is not plotted: use mean or pass.")
    table = table[table["mode"] == mode]
    if table.empty:
        raise UserError(f"The per-step table has no {mode} metrics to plot.")
    k = _common_k(table, accuracy_metric) if k is None else int(k)
    accuracy = table[(table["metric"] == accuracy_metric) & (table["k"] == k).fillna(False)]
    if accuracy.empty:
        raise UserError(f"The per-step table has no {accuracy_metric}@{k}: pass a --k it holds.")
    length = table[table["metric"] == "length_mean"]
    tasks = sorted(table["task"].unique())
    budgets = sorted(int(b) for b in table["budget"].unique())
    colours = run_colours([format_budget(b) for b in budgets])
    any_band = False
    with figure_style():
        figure, axes = new_figure(2 * len(tasks))
        for row, task in enumerate(tasks):
            panels = ((axes[2 * row], accuracy, 100.0, f"{accuracy_metric}@{k} (%)"),
                      (axes[2 * row + 1], length, 1.0, "mean length (tokens)"))
            for ax, data, scale, ylabel in panels:
                for budget in budgets:
                    colour, marker = colours[format_budget(budget)]
                    line = data[(data["task"] == task) & (data["budget"] == budget)].sort_values("step")
                    if line.empty:
                        continue
                    x = line["step"].to_numpy()
                    ax.plot(x, scale * line["value"].to_numpy(), color=colour, marker=marker,
                            label=format_budget(budget))
                    if draw_band(ax, x, line, scale, colour):
                        any_band = True
                ax.set_title(task)
                ax.set_xlabel("training step")
                ax.set_ylabel(ylabel)
                low, high = ax.get_ylim()
                ax.set_ylim(max(low, 0.0), min(high, 100.0) if scale == 100.0 else high)
        handles = [Line2D([], [], color=colours[format_budget(b)][0], marker=colours[format_budget(b)][1])
                   for b in budgets]
        labels = [f"{format_budget(b)} tokens" for b in budgets]
        finish_figure(figure, handles, labels, any_band)
    return figure


def save_step_figures(folders: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                      formats: Sequence[str] | str = ("pdf", "png"), k: int | None = None) -> list[Path]:
    """Draw the training-dynamics figure of one training log folder into `out_dir`; returns the files."""
    from budgeteval.report.steps import read_step_metrics

    if len(folders) != 1:
        raise UserError(f"--by step plots one training folder at a time, got {len(folders)}.")
    formats = parse_formats(formats) if isinstance(formats, str) else parse_formats(",".join(formats))
    figure = step_figure(read_step_metrics(folders[0]), k=k)
    out_dir = make_out_dir(out_dir)
    return [save_figure(figure, out_dir / f"{STEP_FIGURE}.{fmt}") for fmt in formats]


def _common_k(table: pd.DataFrame, metric: str) -> int:
    """The largest k of `metric` that every task of the table has."""
    per_task = [set(group.loc[group["metric"] == metric, "k"].dropna().astype(int)) for _, group in table.groupby("task")]
    shared = set.intersection(*per_task) if per_task else set()
    if not shared:
        raise UserError(f"The per-step table has no {metric}@k shared by all its tasks.")
    return max(shared)
