"""Figures of the efficiency analysis (`budgeteval plot ... --kind ...`), in the look of `budgeteval.plots.budget`.

- `pareto`: accuracy vs mean tokens, one point per run x budget, and the Pareto front over all
  points of a task (Kimi k1.5 Fig. 7, LASER);
- `pass_at_k`: pass@k vs k at chosen budgets (default: the smallest and largest of each run);
- `difficulty`: accuracy per difficulty bucket (the baseline's pass rate at its largest budget) vs budget;
- `after_first_correct`: distribution of the tokens after the first correct intermediate answer,
  correct vs incorrect responses (math tasks with stored generations);
- `early_exit`: accuracy vs mean tokens of running to the largest budget and of each early-exit rule.

Each function takes the runs and a `budgeteval.plots.budget.PlotOptions` and returns a Figure; numbers come
from `budgeteval.analysis.efficiency`. Palette, sizes and saving are `budgeteval.plots.style`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from budgeteval.analysis import efficiency
from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget
from budgeteval.plots.style import (
    budget_axis,
    figure_legend,
    figure_style,
    mode_linestyle,
    new_figure,
    run_colours,
    thin_overlapping_tick_labels,
)

ANALYSIS_FIGURES = {
    "pareto": "budgeteval.plots.analysis:pareto_figure",
    "pass_at_k": "budgeteval.plots.analysis:pass_at_k_figure",
    "difficulty": "budgeteval.plots.analysis:difficulty_figure",
    "after_first_correct": "budgeteval.plots.analysis:after_first_correct_figure",
    "early_exit": "budgeteval.plots.analysis:early_exit_figure",
}
"""The analysis figures of `budgeteval plot --kind NAME`: file name -> "module:function(runs, options) -> Figure"."""

_FRONT_COLOUR = "#444444"
_BUDGET_STYLES = ("-", "--", ":", "-.")


def _legend(figure, runs, colours, extra=()) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colours[run.label][0], marker=colours[run.label][1], linestyle="")
               for run in runs]
    labels = [run.label for run in runs]
    for handle, label in extra:
        handles.append(handle)
        labels.append(label)
    figure_legend(figure, handles, labels)


def pareto_figure(runs: Sequence, options=None):
    """Accuracy (% of all samples correct) vs mean tokens: a point per run x budget (x mode), the Pareto front."""
    from matplotlib.lines import Line2D

    points = efficiency.accuracy_vs_tokens(runs)
    colours = run_colours([run.label for run in runs])
    tasks = sorted(points["task"].unique())
    modes = sorted(points["mode"].unique())
    with figure_style():
        figure, axes = new_figure(len(tasks))
        for ax, task in zip(axes, tasks):
            cell = points[points["task"] == task]
            for run in runs:
                colour, marker = colours[run.label]
                for mode in modes:
                    own = cell[(cell["run"] == run.label) & (cell["mode"] == mode)].sort_values("budget")
                    if own.empty:
                        continue
                    ax.plot(own["tokens"], 100 * own["accuracy"], color=colour, marker=marker,
                            linestyle=mode_linestyle(mode), linewidth=0.6, alpha=0.9,
                            label=run.label if len(modes) == 1 else f"{run.label} ({mode})")
            front = cell[cell["pareto"]].sort_values("tokens")
            ax.plot(front["tokens"], 100 * front["accuracy"], color=_FRONT_COLOUR, linestyle="-", linewidth=2.2,
                    alpha=0.35, marker="", drawstyle="steps-post", label="Pareto front", zorder=0)
            ax.set_title(task)
            ax.set_xlabel("mean tokens")
            ax.set_ylabel("accuracy (%)")
            ax.set_xlim(left=0)
            ax.set_ylim(0, 100)
        _legend(figure, runs, colours,
                [(Line2D([], [], color=_FRONT_COLOUR, linewidth=2.2, alpha=0.35), "Pareto front")])
    return figure


def pass_at_k_figure(runs: Sequence, options=None):
    """pass@k (%) vs k: a panel per task, a line per run x budget (line style per budget)."""
    from matplotlib.lines import Line2D

    budgets = tuple(getattr(options, "pass_budgets", ()) or ())
    curves = [efficiency.pass_at_k_curve(run, budgets or None) for run in runs]
    data = pd.concat(curves, ignore_index=True)
    data = data[data["mode"] == ("cutoff" if "cutoff" in set(data["mode"]) else data["mode"].min())]
    colours = run_colours([run.label for run in runs])
    shown = sorted(data["budget"].unique())
    if len(shown) > len(_BUDGET_STYLES):
        raise UserError(f"pass@k is drawn at most at {len(_BUDGET_STYLES)} budgets: pass fewer with --pass-budgets.")
    style = dict(zip(shown, _BUDGET_STYLES))
    tasks = sorted(data["task"].unique())
    with figure_style():
        figure, axes = new_figure(len(tasks))
        for ax, task in zip(axes, tasks):
            for run in runs:
                colour, marker = colours[run.label]
                for budget in shown:
                    line = data[(data["task"] == task) & (data["run"] == run.label) & (data["budget"] == budget)]
                    if line.empty:
                        continue
                    ax.plot(line["k"], 100 * line["pass"], color=colour, marker=marker, linestyle=style[budget],
                            label=f"{run.label} @ {format_budget(int(budget))}")
            ks = sorted(data.loc[data["task"] == task, "k"].unique())
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.minorticks_off()
            ax.set_title(task)
            ax.set_xlabel("k (samples)")
            ax.set_ylabel("pass@k (%)")
            ax.set_ylim(0, 100)
        _legend(figure, runs, colours,
                [(Line2D([], [], color="#444444", linestyle=style[b]), f"budget {format_budget(int(b))}") for b in shown])
        thin_overlapping_tick_labels(figure)
    return figure


def difficulty_figure(runs: Sequence, options=None):
    """Accuracy (%) vs budget per difficulty bucket of the baseline (a panel per task x bucket), a line per run."""
    edges = tuple(getattr(options, "buckets", None) or efficiency.DEFAULT_BUCKET_EDGES)
    baseline = getattr(options, "baseline", None)
    table = efficiency.breakdown(runs, baseline, edges, groups=False)
    mode = "cutoff" if "cutoff" in set(table["mode"]) else sorted(table["mode"].unique())[0]
    table = table[table["mode"] == mode]
    colours = run_colours([run.label for run in runs])
    panels = [(task, bucket) for task in sorted(table["task"].unique()) for bucket in efficiency.bucket_labels(edges)
              if ((table["task"] == task) & (table["bucket"] == bucket)).any()]
    with figure_style():
        figure, axes = new_figure(len(panels))
        for ax, (task, bucket) in zip(axes, panels):
            cell = table[(table["task"] == task) & (table["bucket"] == bucket)]
            for run in runs:
                line = cell[cell["run"] == run.label].sort_values("budget")
                colour, marker = colours[run.label]
                ax.plot(line["budget"], 100 * line["accuracy"], color=colour, marker=marker, label=run.label)
            budget_axis(ax, cell["budget"].unique())
            problems = int(cell["num_problems"].iloc[0])
            several_tasks = len({t for t, _ in panels}) > 1
            ax.set_title(f"{bucket}, {problems} problems" + (f"\n{task}" if several_tasks else ""))
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(0, 100)
        base = baseline or runs[0].label
        _legend(figure, runs, colours)
        figure.suptitle(f"buckets: pass rate of {base} at its largest budget", fontsize=7)
        thin_overlapping_tick_labels(figure)
    return figure


def after_first_correct_figure(runs: Sequence, options=None):
    """Histograms of tokens after the first correct intermediate answer, correct (solid) vs incorrect (dashed)."""
    from matplotlib.lines import Line2D

    frames = {run.label: efficiency.first_correct_positions(run) for run in runs}
    colours = run_colours([run.label for run in runs])
    tasks = sorted({task for frame in frames.values() for task in frame["task"].unique()})
    if not tasks:
        raise UserError("No run has a math task with stored generations: the after_first_correct figure needs one.")
    with figure_style():
        figure, axes = new_figure(len(tasks))
        for ax, task in zip(axes, tasks):
            values = [frame.loc[(frame["task"] == task), "tokens_after_first_correct"].dropna().astype(float)
                      for frame in frames.values()]
            top = max([v.max() for v in values if len(v)] + [1.0])
            bins = np.linspace(0, top, 25)
            for run in runs:
                frame = frames[run.label]
                cell = frame[(frame["task"] == task) & frame["tokens_after_first_correct"].notna()]
                colour = colours[run.label][0]
                for correct, linestyle in ((True, "-"), (False, "--")):
                    after = cell.loc[cell["correct"] == correct, "tokens_after_first_correct"].astype(float)
                    if len(after):
                        ax.hist(after.to_numpy(), bins=bins, histtype="step", color=colour, linestyle=linestyle,
                                linewidth=1.1, label=f"{run.label} ({'correct' if correct else 'incorrect'})")
            budget = int(frames[runs[0].label]["budget"].max()) if len(frames[runs[0].label]) else None
            ax.set_title(f"{task}" + (f" at {format_budget(budget)} tokens" if budget else ""))
            ax.set_xlabel("tokens after the first correct answer")
            ax.set_ylabel("responses")
            ax.set_yscale("symlog", linthresh=1)
        _legend(figure, runs, colours, [(Line2D([], [], color="#444444", linestyle="-"), "correct"),
                                        (Line2D([], [], color="#444444", linestyle="--"), "incorrect")])
    return figure


def early_exit_figure(runs: Sequence, options=None):
    """Accuracy vs mean total tokens of the full forced sweep and of each early-exit rule (a line per run)."""
    windows = tuple(getattr(options, "windows", None) or efficiency.AGREEMENT_WINDOWS)
    summaries = {run.label: efficiency.early_exit_summary(efficiency.early_exit(run, windows))
                 for run in runs if (run.scores["mode"] == "forced").any()}
    if not summaries:
        raise UserError("No run has forced-mode scores: the early_exit figure needs a forced sweep "
                        "(--modes forced --budgets 256:8k:256).")
    colours = run_colours([run.label for run in runs])
    tasks = sorted({task for frame in summaries.values() for task in frame["task"].unique()})
    with figure_style():
        figure, axes = new_figure(len(tasks))
        for ax, task in zip(axes, tasks):
            for run in runs:
                if run.label not in summaries:
                    continue
                frame = summaries[run.label]
                cell = frame[frame["task"] == task]
                colour, marker = colours[run.label]
                ax.plot(cell["total_tokens"], 100 * cell["accuracy"], color=colour, marker=marker, linestyle="-",
                        label=run.label)
                for row in cell.itertuples(index=False):
                    ax.annotate(row.policy, (row.total_tokens, 100 * row.accuracy), textcoords="offset points",
                                xytext=(3, 3), fontsize=6, color=colour)
            ax.set_title(task)
            ax.set_xlabel("mean tokens (with probes)")
            ax.set_ylabel("accuracy (%)")
            ax.set_xlim(left=0)
            ax.set_ylim(0, 100)
        _legend(figure, [run for run in runs if run.label in summaries], colours)
    return figure
