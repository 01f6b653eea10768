"""The tables of `budgeteval analyze`: the analyses of `budgeteval.analysis.efficiency` over runs, as markdown, LaTeX or CSV.

`analyze_runs` computes every analysis the runs' files allow (the trace analysis needs stored
generations, a tokenizer and a math task; early exit needs forced-mode scores and is asked for)
into an `Analysis`; `Analysis.format` writes them. Markdown and LaTeX hold every table; CSV is one
tidy table (`--table`). Definitions of the numbers are in `budgeteval.analysis.efficiency`; cells are
written with `budgeteval.report.cells`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from budgeteval.analysis import efficiency
from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget
from budgeteval.report.cells import (
    EMPTY,
    escape_latex,
    escape_markdown,
    length_change,
    markdown_row,
    number,
    percent,
    signed_points,
    tokens,
)
from budgeteval.report.profile import SOLVED_FRACTION
from budgeteval.rundir.layout import tokenizer_dir
from budgeteval.rundir.problems import natural_key
from budgeteval.rundir.store import store_dir

ANALYSIS_FORMATS = ("markdown", "latex", "csv")
ANALYSIS_TABLES = ("profile", "gains", "buckets", "trace", "early_exit")
"""Tables of an `Analysis`, in the order they are printed."""


@dataclass(frozen=True)
class Analysis:
    """Every analysis of a set of runs against a baseline (frames of `budgeteval.analysis.efficiency`, a `run` column added)."""

    runs: tuple[str, ...]
    """Run labels, the baseline first."""
    baseline: str
    """Label of the baseline run (difficulty buckets come from its pass rates only)."""
    edges: tuple[float, ...]
    """Edges of the difficulty buckets."""
    profile: pd.DataFrame
    """`problem_profile` of every run (long), with `run`."""
    gains: pd.DataFrame
    """`gains_and_losses` vs the baseline (empty for a single run)."""
    buckets: pd.DataFrame
    """`breakdown` by difficulty bucket and declared group."""
    positions: pd.DataFrame | None = None
    """`first_correct_positions` of the runs that have them, with `run` (None: not computed)."""
    trace: pd.DataFrame | None = None
    """`trace_summary` of `positions`, with `run`."""
    exits: pd.DataFrame | None = None
    """`early_exit` per response, with `run` (None: not asked for)."""
    early_exit: pd.DataFrame | None = None
    """`early_exit_summary`, with `run`."""
    notes: tuple[str, ...] = ()
    """Why an analysis was skipped for a run (printed under the tables)."""

    def table(self, name: str) -> pd.DataFrame:
        """One table by name (`ANALYSIS_TABLES`): the profile table is `profile_summary` per run."""
        if name not in ANALYSIS_TABLES:
            raise UserError(f"Unknown analysis table {name!r}: choose one of {', '.join(ANALYSIS_TABLES)}.")
        if name == "profile":
            return pd.concat([efficiency.profile_summary(frame.drop(columns="run")).assign(run=label)
                              for label, frame in self.profile.groupby("run", sort=False)], ignore_index=True)
        frame = getattr(self, name)
        if frame is None:
            raise UserError(f"The {name} table was not computed for these runs"
                            + (" (pass --early-exit and a run with forced-mode scores)." if name == "early_exit"
                               else " (it needs stored generations, the run's tokenizer/ and a math task)."))
        return frame

    def available(self) -> list[str]:
        """Names of the tables this analysis holds."""
        return [name for name in ANALYSIS_TABLES
                if not (name == "gains" and len(self.runs) < 2) and getattr(self, name) is not None]

    def format(self, fmt: str = "markdown", tables: Sequence[str] | None = None) -> str:
        """The tables (default: all available) as markdown or LaTeX, or one of them as CSV."""
        if fmt not in ANALYSIS_FORMATS:
            raise UserError(f"Unknown analysis format {fmt!r}: choose one of {', '.join(ANALYSIS_FORMATS)}.")
        names = list(tables) if tables else self.available()
        for name in names:
            self.table(name)  # refuses an unknown or uncomputed table
        if fmt == "csv":
            if len(names) != 1:
                raise UserError(f"CSV holds one table: pass --table with one of {', '.join(self.available())}.")
            return self.table(names[0]).to_csv(index=False, lineterminator="\n",
                                                float_format=lambda x: repr(float(x)))
        latex = fmt == "latex"
        blocks = [_WRITERS[name](self, latex) for name in names]
        if self.notes:
            blocks.append("\n".join(("% " if latex else "- ") + note for note in self.notes))
        return "\n\n".join(blocks) + "\n"


def analyze_runs(runs: Sequence, baseline: str | None = None,
                 edges: Sequence[float] = efficiency.DEFAULT_BUCKET_EDGES, groups: bool = True,
                 trace: bool | None = None, early_exit: bool = False,
                 windows: Sequence[int] = efficiency.AGREEMENT_WINDOWS, workers: int = 2) -> Analysis:
    """Run every analysis over `runs` (`budgeteval.report.runs.Run`) against `baseline` (default: the first).

    `trace`: None computes first-correct positions where a run allows (generations, tokenizer/, a
    math task) and notes where not; True requires them; False skips them. `early_exit` simulates
    the early-exit rule for every m in `windows` on each run with forced-mode scores (required of
    at least one run).
    """
    base, others = efficiency.split_baseline(runs, baseline)
    ordered = [base, *others]
    notes: list[str] = []
    profile = pd.concat([efficiency.problem_profile(run).assign(run=run.label) for run in ordered], ignore_index=True)
    gains = efficiency.gains_and_losses(ordered, base.label) if others else efficiency.gains_and_losses([base])
    buckets = efficiency.breakdown(ordered, base.label, edges, groups)
    positions = summary = None
    if trace is not False:
        frames = []
        for run in ordered:
            reason = _trace_unavailable(run)
            if reason:
                if trace:
                    raise UserError(f"First-correct positions of {run.path}: {reason}.")
                notes.append(f"{run.label}: no first-correct analysis ({reason}).")
                continue
            frames.append(efficiency.first_correct_positions(run, workers=workers).assign(run=run.label))
        if frames:
            positions = pd.concat(frames, ignore_index=True)
            summary = pd.concat([efficiency.trace_summary(frame).assign(run=label)
                                 for label, frame in positions.groupby("run", sort=False)], ignore_index=True)
    exits = exit_summary = None
    if early_exit:
        frames = []
        for run in ordered:
            if (run.scores["mode"] == "forced").any():
                frames.append(efficiency.early_exit(run, windows).assign(run=run.label))
            else:
                notes.append(f"{run.label}: no early-exit simulation (no forced-mode scores).")
        if not frames:
            raise UserError("--early-exit needs a run scored in forced mode over a ladder of budgets, e.g. "
                            "`budgeteval run ... --modes forced --budgets 256:8k:256`.")
        exits = pd.concat(frames, ignore_index=True)
        exit_summary = pd.concat([efficiency.early_exit_summary(frame).assign(run=label)
                                  for label, frame in exits.groupby("run", sort=False)], ignore_index=True)
    return Analysis(runs=tuple(run.label for run in ordered), baseline=base.label, edges=tuple(edges),
                    profile=profile, gains=gains, buckets=buckets, positions=positions, trace=summary,
                    exits=exits, early_exit=exit_summary, notes=tuple(notes))


def _trace_unavailable(run) -> str | None:
    """Why first-correct positions cannot be computed for `run`, or None when they can."""
    if not any(efficiency.task_scorer(run, task) in efficiency.TRACE_SCORERS for task in run.tasks):
        return f"no task scored by {', '.join(efficiency.TRACE_SCORERS)}"
    if not store_dir(run.path).is_dir():
        return "no generations/ stored"
    if not tokenizer_dir(run.path).is_dir():
        return "no tokenizer/ stored"
    if not (run.scores["mode"] == "cutoff").any():
        return "no cutoff-mode scores"
    return None


# --- writers ------------------------------------------------------------------------------------


def _grid(header: list[str], rows: list[list[str]], latex: bool, align: str) -> str:
    """A markdown table or a booktabs tabular of already formatted cells (`align`: one l/r per column)."""
    if latex:
        def escape(cell: str) -> str:  # a cell already written as LaTeX math stays as it is
            return cell if cell.startswith("$") and cell.endswith("$") else escape_latex(cell)

        body = [" & ".join(escape(cell) for cell in row) + r" \\" for row in rows]
        return "\n".join([rf"\begin{{tabular}}{{{align}}}", r"\toprule",
                          " & ".join(escape(cell) for cell in header) + r" \\", r"\midrule", *body,
                          r"\bottomrule", r"\end{tabular}"])
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [markdown_row(header), markdown_row(rule)]
    lines += [markdown_row([escape_markdown(cell) for cell in row]) for row in rows]
    return "\n".join(lines)


def _heading(text: str, latex: bool) -> str:
    return f"% {text}" if latex else f"## {text}"


def _caption(text: str, latex: bool) -> str:
    return "\n".join("% " + line for line in text.splitlines()) if latex else text


def _signed(value) -> str:
    """A delta in points after its cell, ` (+1.2)`; nothing on the baseline's rows."""
    return "" if pd.isna(value) else f" ({signed_points(value)})"


def _change(value, latex: bool) -> str:
    """A length change after its cell: ` (↓40.3%)`; in LaTeX ` (-40.3%)`, no arrow (`_grid` escapes the cell)."""
    if pd.isna(value):
        return ""
    return f" ({signed_points(value)}%)" if latex else f" ({length_change(value)})"


def _profile(result: Analysis, latex: bool) -> str:
    blocks = [_heading("Per-problem budget profile", latex),
              _caption(f"Pass rate = correct samples / samples of the problem at each budget; solved = at least "
                       f"{SOLVED_FRACTION:g} of its samples correct; solved from = smallest budget from which "
                       f"it stays solved at every larger budget (— : not solved at the largest); lost = solved at a "
                       f"smaller budget but not at the largest.", latex)]
    for (run, task, mode), frame in result.profile.groupby(["run", "task", "mode"], sort=False):
        budgets = sorted(frame["budget"].unique())
        cells = frame.assign(cell=frame["num_correct"].astype(str) + "/" + frame["num_samples"].astype(str))
        wide = cells.pivot_table(index="problem_id", columns="budget", values="cell", aggfunc="first")
        per_problem = frame.groupby("problem_id")[["solved_from", "lost"]].first()
        rows = []
        for problem_id in sorted(wide.index, key=natural_key):
            solved_from = per_problem.loc[problem_id, "solved_from"]
            rows.append([str(problem_id), *[str(wide.loc[problem_id, b]) for b in budgets],
                         EMPTY if pd.isna(solved_from) else format_budget(int(solved_from)),
                         "lost" if per_problem.loc[problem_id, "lost"] else ""])
        largest = frame[frame["budget"] == budgets[-1]]
        lost = sorted(per_problem.index[per_problem["lost"]], key=natural_key)
        blocks += [_heading(f"{run}: {task} ({mode})", latex),
                   _caption(f"Solved at the largest budget ({format_budget(int(budgets[-1]))}): "
                            f"{int(largest['solved'].sum())} of {len(largest)} problems; lost: {len(lost)}"
                            + (f" ({', '.join(lost)})" if lost else "") + ".", latex),
                   _grid(["problem", *[format_budget(int(b)) for b in budgets], "solved from", "lost"], rows, latex,
                         "l" + "r" * (len(budgets) + 1) + "l")]
    return "\n\n".join(blocks)


def _gains(result: Analysis, latex: bool) -> str:
    rows = [[format_budget(int(r.budget)), r.mode, r.run, str(r.gained), str(r.lost), f"{r.net:+d}",
             r.gained_ids or EMPTY, r.lost_ids or EMPTY] for r in result.gains.itertuples(index=False)]
    by_task = []
    for task in sorted(result.gains["task"].unique()):
        chosen = [row for row, r in zip(rows, result.gains.itertuples(index=False)) if r.task == task]
        by_task += [_heading(f"{task}", latex), _grid(["budget", "mode", "run", "gained", "lost", "net", "gained ids",
                                                       "lost ids"], chosen, latex, "rllrrrll")]
    return "\n\n".join([_heading(f"Problems gained and lost vs {result.baseline}", latex),
                        _caption(f"Per budget: problems the run solves (at least {SOLVED_FRACTION:g} of its "
                                 f"samples correct) and the baseline {result.baseline} does not (gained), and the "
                                 f"reverse (lost).", latex), *by_task])


def _buckets(result: Analysis, latex: bool) -> str:
    labels = efficiency.bucket_labels(result.edges)
    blocks = [_heading("Accuracy, length and truncation by difficulty and problem group", latex),
              _caption(f"Difficulty buckets ({', '.join(labels)}) are the pass rate of the baseline "
                       f"{result.baseline} alone at its largest budget (its cutoff mode when it has one), so every "
                       f"run is compared on the same problems. Accuracy = mean over the bucket's problems of the "
                       f"fraction of samples correct, in percent, (±points) vs the baseline; length = mean tokens at "
                       f"the budget, (↓/↑ %) vs the baseline; truncated = percent of samples not finished within the "
                       f"budget, (±points). Other groupings are the groups the task declares.", latex)]
    for (task, mode, grouping), frame in result.buckets.groupby(["task", "mode", "grouping"], sort=False):
        rows = [[r.bucket, format_budget(int(r.budget)), r.run, str(r.num_problems),
                 percent(r.accuracy) + _signed(r.accuracy_delta), tokens(r.length) + _change(r.length_change, latex),
                 percent(r.truncation) + _signed(r.truncation_delta)] for r in frame.itertuples(index=False)]
        blocks += [_heading(f"{task} ({mode}) by {grouping}", latex),
                   _grid([grouping if grouping != "difficulty" else "bucket", "budget", "run", "problems", "accuracy",
                          "length", "truncated"], rows, latex, "lrlrrrr")]
    return "\n\n".join(blocks)


def _trace(result: Analysis, latex: bool) -> str:
    sources = "correct_from_fallback" in result.trace.columns  # answer sources recorded by the scoring
    rows = [[r.run, r.task, format_budget(int(r.budget)), str(r.responses), percent(r.accuracy),
             percent(r.with_correct_answer), tokens(r.tokens_to_first_correct), tokens(r.tokens_after_first_correct),
             percent(r.after_share), f"{r.outcome_efficiency:.3f}", number(r.correct_efficiency, 3)]
            + ([percent(r.correct_from_fallback)] if sources else [])
            for r in result.trace.itertuples(index=False)]
    return "\n\n".join([
        _heading("Where tokens go inside a trace", latex),
        _caption("Each response's intermediate answers (every \\boxed{} and final-answer statement, thinking "
                 "included) are judged alone by the task's scorer; the first correct one's end is located in tokens "
                 "from the stored ids. with correct = percent of responses with a correct intermediate answer; "
                 "to first / after = mean tokens up to / after it (responses with one); after % = tokens after it as "
                 "a percent of those responses' tokens; ξ_O = outcome efficiency (1/N) Σ σ_i T̂_i/T_i over all "
                 "N responses (Chen et al. 2024, arXiv:2412.21187); correct eff. = mean T̂/T over correct responses; "
                 "fallback % (when answer sources are recorded) = correct responses read by the whole-text fallback.",
                 latex),
        _grid(["run", "task", "budget", "responses", "accuracy", "with correct", "to first", "after", "after %",
               r"$\xi_O$" if latex else "ξ_O", "correct eff."] + (["fallback %"] if sources else []), rows, latex,
              "llrrrrrrrrr" + ("r" if sources else ""))])


def _early_exit(result: Analysis, latex: bool) -> str:
    rows = [[r.run, r.task, r.policy, str(r.responses), percent(r.accuracy) + _signed(r.accuracy_delta if
             r.policy != "full" else float("nan")), tokens(r.tokens), tokens(r.probe_tokens),
             tokens(r.total_tokens), percent(r.saving), percent(r.stopped_early)]
            for r in result.early_exit.itertuples(index=False)]
    return "\n\n".join([
        _heading("Early exit on agreeing forced answers", latex),
        _caption("Probes = the forced-mode budgets. agree m: stop at the first probe where the last m forced answers "
                 "are equal (or where the response had finished on its own), else at the largest budget (full; "
                 "Dynasor, Fu et al. 2024, arXiv:2412.20993). accuracy in percent, (±points) vs full; tokens = mean "
                 "tokens of the stopping response (thinking + forced answer); probes = mean tokens of earlier probes' "
                 "forced answers; saving = 1 − total / full tokens, in percent; early = percent stopped before the "
                 "largest budget.", latex),
        _grid(["run", "task", "policy", "responses", "accuracy", "tokens", "probes", "total", "saving", "early"], rows,
              latex, "lllrrrrrrr")])


_WRITERS = {"profile": _profile, "gains": _gains, "buckets": _buckets, "trace": _trace, "early_exit": _early_exit}
