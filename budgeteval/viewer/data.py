"""What the viewer shows, as plain JSON-ready dicts: the index (small) and one payload per problem (large).

The index holds the overview tables (the numbers of `metrics.csv`, formatted as `budgeteval
report` formats them), the comparison table for several runs, and one summary per problem (fraction
correct per budget and mode, outcome flags, group values) — never a response text. Each problem's
payload holds its question, reference and every sample of every run: the response decoded from the
stored token ids (as scoring decodes them), the character offset of every budget's cut (the length
of the decoded prefix `ids[:B]`, from the run's own saved tokenizer), the end-of-thinking markers,
and each budget's verdict with its thinking/answer tokens and whether the budget found it still
thinking (the scores' `thinking_tokens`, `answer_tokens`, `cut_thinking`: null, shown n/a, in runs
scored before they were recorded); forced mode adds the forcing string and the stored answer,
conditioned mode each budget's own response. Everything comes from the run directories; nothing is
re-scored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget
from budgeteval.report.cells import UNKNOWN, comparison_cells, curve_cells, percent, percent_with_stderr, tokens
from budgeteval.report.runs import scored_think_end
from budgeteval.rundir.layout import tokenizer_dir
from budgeteval.rundir.problems import group_columns_of, read_problem_frame
from budgeteval.rundir.store import CONDITIONED, CONTINUATIONS, GENERATIONS, read_task, task_dir
from budgeteval.scoring.metrics import ACCURACY_METRICS, normalise_metrics
from budgeteval.tasks.prompts import response_is_thinking

INDEX_FORMAT_VERSION = 1
"""Format of the viewer's index payload (the page checks it)."""

TITLE_CHARS = 200
"""Characters of a question kept in the index (the full question is in the problem's payload)."""

MAX_GROUP_VALUES = 100
"""An extra problem column with more distinct values than this is not offered as a group filter."""

CODE_VERDICTS = ("passed", "wrong_answer", "runtime_error", "time_limit", "memory_limit", "sandbox_error")
"""Program verdicts the code scorer writes before the program hash in `extracted` (`<verdict>:<hash>`)."""

_DECODE_BATCH = 256


@dataclass(frozen=True)
class RunFacts:
    """What the viewer needs from a run's manifest (the one place that reads manifest keys)."""

    think_end: str | None
    """End-of-thinking marker the run was scored with (None: plain answers)."""
    scorers: dict
    """Task name -> scorer name."""


def run_facts(run) -> RunFacts:
    """The manifest facts of `run` (a `budgeteval.report.runs.Run`)."""
    manifest = run.manifest  # a `budgeteval.rundir.manifest.Manifest`
    scorers = {task: entry.scorer for task, entry in manifest.tasks.items()}
    return RunFacts(think_end=scored_think_end(manifest), scorers=scorers)


@dataclass(frozen=True)
class ProblemEntry:
    """One problem of the site: its summary for the index and its payload for its own file."""

    summary: dict
    """Index entry: key, task, problem_id, title, groups, file, and per run the grid cells and flags."""
    payload: dict
    """The problem's file: question, reference, groups and every sample of every run."""


# --- problems and groups -----------------------------------------------------------------------------


def group_columns(frame: pd.DataFrame) -> list[str]:
    """Extra problem columns usable as groups: scalar values, at most `MAX_GROUP_VALUES` distinct."""
    groups = []
    for column in group_columns_of(frame.columns):
        values = frame[column]
        if values.map(lambda v: isinstance(v, (str, int, float, bool)) or v is None).all() and \
                values.nunique(dropna=True) <= MAX_GROUP_VALUES:
            groups.append(str(column))
    return groups


def _group_value(value):
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


# --- the index -----------------------------------------------------------------------------------------


def overview_tables(run) -> list[dict]:
    """The report table of `run` per task, from `metrics.csv`: one row per budget x mode, cells as `report` writes them."""
    metrics = normalise_metrics(run.metrics)
    thinking = bool(run_facts(run).think_end)
    tables = []
    for task, task_metrics in metrics.groupby("task", sort=True):
        ks = sorted({int(k) for k in task_metrics["k"].dropna()})
        columns = [(metric, k, f"{metric}@{k}") for metric in ACCURACY_METRICS for k in ks]
        columns += [("length_mean", None, "tokens mean"), ("length_median", None, "tokens median"),
                    ("truncation_rate", None, "truncated %")]
        if thinking:  # as `budgeteval report` shows them for a run with an end-of-thinking marker
            columns += [("thinking_mean", None, "thinking"), ("answer_mean", None, "answer"),
                        ("cut_thinking_rate", None, "cut thinking %")]
        lookup = {(str(r.mode), int(r.budget), str(r.metric), None if pd.isna(r.k) else int(r.k)): (r.value, r.stderr)
                  for r in task_metrics.itertuples(index=False)}
        rows = []
        for budget, mode in sorted({(int(b), str(m)) for b, m in zip(task_metrics["budget"], task_metrics["mode"])}):
            cells = []
            for metric, k, _ in columns:
                value, stderr = lookup.get((mode, budget, metric, k), (float("nan"), float("nan")))
                if metric in ("length_mean", "length_median"):
                    text = tokens(value)
                elif metric in ("thinking_mean", "answer_mean"):
                    text = UNKNOWN if pd.isna(value) else tokens(value)  # scored before the split: n/a
                elif metric in ("truncation_rate", "cut_thinking_rate"):
                    text = percent(value, UNKNOWN)  # NaN: unknown (an import, or scored before the split)
                else:
                    text = percent_with_stderr(value, stderr)
                cells.append({"metric": metric, "k": k, "value": _number(value), "text": text})
            rows.append({"budget": budget, "budget_text": format_budget(budget), "mode": mode, "cells": cells})
        tables.append({"task": str(task), "header": ["budget", "mode"] + [label for _, _, label in columns],
                       "rows": rows})
    return tables


def comparison_tables(runs: Sequence, baseline: str | None, k: int | None) -> dict | None:
    """The `budgeteval compare` tables of several runs (None for one run), cells as `compare` writes them."""
    from budgeteval.report.compare import compare_runs

    if len(runs) < 2:
        return None
    comparison = compare_runs(runs, baseline=baseline, k=k)
    table = [{"task": row["task"], "mode": row["mode"], "budget": int(row["budget"]),
              "cells": [format_budget(int(row["budget"])), row["mode"], row["run"], *comparison_cells(row)]}
             for row in comparison.table.to_dict("records")]
    summary = [{"task": row["task"], "cells": [row["mode"], row["run"], *curve_cells(row)]}
               for row in comparison.summary.to_dict("records")]
    kk = comparison.k
    return {"baseline": comparison.baseline, "k": kk,
            "header": ["budget", "mode", "run", f"mean@{kk}", f"pass@{kk}", "length", "AES"],
            "summary_header": ["mode", "run", "AUC", f"best mean@{kk}", "reach 95%"],
            "table": table, "summary": summary}


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


# --- problems: summaries and payloads ------------------------------------------------------------------


def problem_entries(runs: Sequence, file_name) -> Iterator[ProblemEntry]:
    """Every problem of every run (task order, then the problems file's order), one at a time.

    `file_name(key)` names the problem's payload file (relative to the site). Runs are read one
    task at a time, so memory holds one task's generations per run, not the whole run.
    """
    facts = [run_facts(run) for run in runs]
    tokenizers: dict = {}
    tasks = list(dict.fromkeys(task for run in runs for task in _scored_tasks(run)))
    key = 0
    for task in tasks:
        readers = [_TaskReader(run, fact, task, tokenizers) if task in _scored_tasks(run) else None
                   for run, fact in zip(runs, facts)]
        budgets = sorted({b for reader in readers if reader for b in reader.budgets})
        problem_ids = list(dict.fromkeys(pid for reader in readers if reader for pid in reader.problem_ids))
        for problem_id in problem_ids:
            views = [reader.problem(problem_id) if reader and reader.has(problem_id) else None for reader in readers]
            info = next(reader.problem_info(problem_id) for reader in readers if reader and reader.has(problem_id))
            file = file_name(key)
            summary = {"key": key, "task": task, "problem_id": problem_id,
                       "title": info["question"][:TITLE_CHARS], "groups": info["groups"], "file": file,
                       "runs": [None if view is None else _grid_cells(view, budgets) for view in views]}
            payload = {"key": key, "task": task, "problem_id": problem_id, "question": info["question"],
                       "reference": info["reference"], "groups": info["groups"], "budgets": budgets,
                       "runs": [None if view is None else view["payload"] for view in views]}
            yield ProblemEntry(summary=summary, payload=payload)
            key += 1


def task_budgets(runs: Sequence) -> dict:
    """Task -> the budgets any run scored it at (the grid's columns)."""
    budgets = defaultdict(set)
    for run in runs:
        for task, values in run.scores.groupby("task")["budget"]:
            budgets[str(task)] |= {int(b) for b in values.unique()}
    return {task: sorted(values) for task, values in budgets.items()}


def task_groups(runs: Sequence) -> dict:
    """Task -> group column -> its distinct values (sorted), over every run's problems file."""
    groups: dict = {}
    for run in runs:
        for task in _scored_tasks(run):
            frame = read_problem_frame(Path(run.path), task, missing_ok=True)
            for column in group_columns(frame):
                values = {_group_value(v) for v in frame[column]} - {None}
                groups.setdefault(task, {}).setdefault(column, set()).update(values)
    return {task: {column: sorted(values, key=lambda v: (str(type(v)), v)) for column, values in columns.items()}
            for task, columns in groups.items()}


def _scored_tasks(run) -> list[str]:
    return sorted(str(task) for task in run.scores["task"].unique())


def _grid_cells(view: dict, budgets: Sequence[int]) -> dict:
    """mode -> correct counts, sample counts (aligned with `budgets`) and outcome flags of one run's problem."""
    cells = {}
    for mode, by_budget in view["counts"].items():
        cells[mode] = {"c": [by_budget.get(b, (None, None))[0] for b in budgets],
                       "n": [by_budget.get(b, (None, None))[1] for b in budgets],
                       "flags": view["flags"][mode]}
    return cells


class _TaskReader:
    """One run's rows of one task: scores by problem, generations by problem, decoded on demand."""

    def __init__(self, run, facts: RunFacts, task: str, tokenizers: dict):
        self.run, self.facts, self.task = run, facts, task
        scores = run.scores[run.scores["task"] == task]
        self.has_answer_source = "answer_source" in scores.columns
        self.code = facts.scorers.get(task) == "code"
        self.budgets = sorted(int(b) for b in scores["budget"].unique())
        self.scores = {str(pid): frame for pid, frame in scores.groupby("problem_id", sort=False)}
        problems = read_problem_frame(Path(run.path), task, missing_ok=True)
        self.groups = group_columns(problems)
        self.problems = {row["problem_id"]: row for row in problems.to_dict("records")}
        self.generations = _rows_by_problem(run.path, task, GENERATIONS,
                                            ["problem_id", "sample_idx", "prompt", "token_ids", "finish_reason"])
        self.continuations = _rows_by_problem(run.path, task, CONTINUATIONS,
                                              ["problem_id", "sample_idx", "budget", "continued", "force_token_ids",
                                               "force_string", "token_ids", "finish_reason"])
        self.conditioned = _rows_by_problem(run.path, task, CONDITIONED,
                                            ["problem_id", "sample_idx", "budget", "prompt", "token_ids",
                                             "finish_reason"])
        ordered = [pid for pid in self.problems if pid in self.scores]
        self.problem_ids = ordered + [pid for pid in self.scores if pid not in self.problems]
        needed = self.generations or self.conditioned
        self.tokenizer = _saved_tokenizer(tokenizer_dir(Path(run.path)), tokenizers) if needed else None

    def has(self, problem_id: str) -> bool:
        return problem_id in self.scores

    def problem_info(self, problem_id: str) -> dict:
        row = self.problems.get(problem_id, {})
        return {"question": str(row.get("question") or ""), "reference": str(row.get("reference") or ""),
                "groups": {column: _group_value(row.get(column)) for column in self.groups}}

    def problem(self, problem_id: str) -> dict:
        """The problem's grid counts, outcome flags and payload (its samples with texts and verdicts)."""
        scores = self.scores[problem_id]
        think_end = self.facts.think_end
        samples = {}
        base_rows = self.generations.get(problem_id, [])
        texts = self._decode([row["token_ids"] for row in base_rows])
        cut_requests = [(position, budget) for position, row in enumerate(base_rows)
                        for budget in self.budgets if budget < len(row["token_ids"])]
        prefixes = self._decode([base_rows[position]["token_ids"][:budget] for position, budget in cut_requests])
        cuts = defaultdict(dict)
        for (position, budget), prefix in zip(cut_requests, prefixes):
            cuts[position][budget] = cut_offset(texts[position], prefix)
        for position, row in enumerate(base_rows):
            text = texts[position]
            thinking = response_is_thinking(row["prompt"], think_end)
            samples[int(row["sample_idx"])] = {
                "sample_idx": int(row["sample_idx"]), "prompt": row["prompt"], "text": text,
                "num_tokens": len(row["token_ids"]), "finish_reason": row["finish_reason"], "thinking": thinking,
                "think_end": marker_spans(text, think_end),
                "cuts": {str(budget): offset for budget, offset in sorted(cuts[position].items())},
                "verdicts": {}, "forced": {}, "conditioned": {},
            }
        self._add_continuations(problem_id, samples)
        self._add_conditioned(problem_id, samples)
        for row in scores.sort_values(["mode", "budget", "sample_idx"], kind="stable").to_dict("records"):
            sample = samples.setdefault(int(row["sample_idx"]), _empty_sample(int(row["sample_idx"])))
            sample["verdicts"].setdefault(row["mode"], {})[str(int(row["budget"]))] = self._verdict(row)
        counts, flags = _outcomes(scores)
        ordered = [samples[index] for index in sorted(samples)]
        prompts = {sample["prompt"] for sample in ordered}
        payload = {"label": self.run.label, "think_end": think_end, "code": self.code,
                   "answer_source": self.has_answer_source,
                   "prompt": prompts.pop() if len(prompts) == 1 else None, "samples": ordered}
        if payload["prompt"] is not None:
            for sample in ordered:
                del sample["prompt"]
        return {"counts": counts, "flags": flags, "payload": payload}

    def _verdict(self, row: dict) -> dict:
        extracted = row["extracted"]
        extracted = None if extracted is None or pd.isna(extracted) else str(extracted)
        finished = None if pd.isna(row["finished"]) else bool(row["finished"])  # None: unknown (an import)
        verdict = {"num_tokens": int(row["num_tokens"]), "finished": finished,
                   "extracted": extracted, "correct": bool(row["correct"]), "timed_out": bool(row["timed_out"]),
                   "thinking_tokens": _optional(row.get("thinking_tokens"), int),
                   "answer_tokens": _optional(row.get("answer_tokens"), int),
                   "cut_thinking": _optional(row.get("cut_thinking"), bool)}
        if self.has_answer_source:
            source = row["answer_source"]
            verdict["answer_source"] = None if source is None or pd.isna(source) else str(source)
        if self.code and extracted and extracted.partition(":")[0] in CODE_VERDICTS:
            verdict["test_verdict"] = extracted.partition(":")[0]
        return verdict

    def _add_continuations(self, problem_id: str, samples: dict) -> None:
        rows = self.continuations.get(problem_id, [])
        force_texts = self._decode([row["force_token_ids"] for row in rows])
        answers = self._decode([row["token_ids"] for row in rows])
        for row, force_text, answer in zip(rows, force_texts, answers):
            sample = samples.setdefault(int(row["sample_idx"]), _empty_sample(int(row["sample_idx"])))
            sample["forced"][str(int(row["budget"]))] = {
                "continued": bool(row["continued"]), "force_string": row["force_string"], "force_text": force_text,
                "text": answer, "num_tokens": len(row["token_ids"]), "finish_reason": row["finish_reason"]}

    def _add_conditioned(self, problem_id: str, samples: dict) -> None:
        rows = self.conditioned.get(problem_id, [])
        texts = self._decode([row["token_ids"] for row in rows])
        for row, text in zip(rows, texts):
            sample = samples.setdefault(int(row["sample_idx"]), _empty_sample(int(row["sample_idx"])))
            sample["conditioned"][str(int(row["budget"]))] = {
                "prompt": row["prompt"], "text": text, "num_tokens": len(row["token_ids"]),
                "finish_reason": row["finish_reason"],
                "thinking": response_is_thinking(row["prompt"], self.facts.think_end),
                "think_end": marker_spans(text, self.facts.think_end)}

    def _decode(self, id_lists: list) -> list[str]:
        """Decode as scoring does (special tokens skipped), so offsets index the text scoring read."""
        if not id_lists:
            return []
        texts = []
        for start in range(0, len(id_lists), _DECODE_BATCH):
            batch = [ids.tolist() if hasattr(ids, "tolist") else list(ids) for ids in id_lists[start:start + _DECODE_BATCH]]
            texts.extend(self.tokenizer.batch_decode(batch, skip_special_tokens=True))
        return texts


def _optional(value, kind):
    """`kind(value)`, or None for a missing value (a column scored before it was recorded)."""
    return None if value is None or pd.isna(value) else kind(value)


def _saved_tokenizer(folder: Path, loaded: dict):
    """The run's saved tokenizer, loaded once per distinct content (runs of one model share it)."""
    import hashlib

    from budgeteval.generation.tokenizer import load_tokenizer

    if not folder.is_dir():
        raise UserError(f"{folder.parent} has no tokenizer/ folder, so its responses cannot be decoded; "
                        f"the run directory is incomplete.")
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    key = digest.hexdigest()
    if key not in loaded:
        loaded[key] = load_tokenizer(str(folder))
    return loaded[key]


def _empty_sample(sample_idx: int) -> dict:
    """A sample with verdicts but no stored base response (conditioned-only runs)."""
    return {"sample_idx": sample_idx, "prompt": None, "text": None, "num_tokens": None, "finish_reason": None,
            "thinking": False, "think_end": [], "cuts": {}, "verdicts": {}, "forced": {}, "conditioned": {}}


def _rows_by_problem(run_dir: Path, task: str, kind, columns: list[str]) -> dict:
    """Rows of one store kind of one task, grouped by problem (token ids as numpy slices)."""
    if not task_dir(run_dir, task, kind).is_dir():
        return {}
    table = read_task(run_dir, task, columns=columns, kind=kind)
    id_columns = {name: _list_column(table, name) for name in columns if name.endswith("token_ids")}
    plain = {name: table.column(name).to_pylist() for name in columns if name not in id_columns}
    rows = defaultdict(list)
    for index in range(table.num_rows):
        row = {name: values[index] for name, values in plain.items()}
        for name, (offsets, values) in id_columns.items():
            row[name] = values[offsets[index]:offsets[index + 1]]
        rows[str(row["problem_id"])].append(row)
    for problem_rows in rows.values():
        problem_rows.sort(key=lambda row: (row["sample_idx"], row.get("budget", 0)))
    return dict(rows)


def _list_column(table, name: str):
    column = table.column(name).combine_chunks()
    return column.offsets.to_numpy(), column.values.to_numpy(zero_copy_only=False)


def cut_offset(text: str, prefix: str) -> int:
    """Character offset in `text` where the decoded prefix `ids[:B]` ends.

    The decoded prefix is a prefix of the whole decoded text except when the cut splits a
    character's bytes (the prefix then ends in U+FFFD): the cut then sits where they part.
    """
    if text.startswith(prefix):
        return len(prefix)
    low, high = 0, min(len(text), len(prefix))
    while low < high:  # longest common prefix, by bisection on slices
        middle = (low + high + 1) // 2
        if text[:middle] == prefix[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def marker_spans(text: str | None, marker: str | None) -> list[list[int]]:
    """[start, end] character spans of every occurrence of the end-of-thinking marker in `text`."""
    if not text or not marker:
        return []
    spans, start = [], text.find(marker)
    while start >= 0:
        spans.append([start, start + len(marker)])
        start = text.find(marker, start + len(marker))
    return spans


def _outcomes(scores: pd.DataFrame) -> tuple[dict, dict]:
    """Per mode: budget -> (correct, samples), and the outcome flags of the problem.

    always: every sample correct at every budget; never: none at any; flips: a sample correct at a
    budget and wrong at a larger one; cut_thinking: a sample still thinking at a budget (the scores'
    `cut_thinking`, `budgeteval.scoring.replay.count_tokens`; never set for scores from before it).
    """
    counts, flags = {}, {}
    for mode, frame in scores.groupby("mode", sort=True):
        per_budget = frame.groupby("budget")["correct"].agg(["sum", "size"])
        counts[mode] = {int(b): (int(r["sum"]), int(r["size"])) for b, r in per_budget.iterrows()}
        mode_flags = []
        if all(c == n for c, n in counts[mode].values()):
            mode_flags.append("always")
        if all(c == 0 for c, _ in counts[mode].values()):
            mode_flags.append("never")
        if _flips(frame):
            mode_flags.append("flips")
        if "cut_thinking" in frame.columns and frame["cut_thinking"].fillna(False).astype(bool).any():
            mode_flags.append("cut_thinking")
        flags[mode] = mode_flags
    return counts, flags


def _flips(frame: pd.DataFrame) -> bool:
    """Whether a sample is correct at a budget and wrong at a larger one (one mode's rows of a problem)."""
    import numpy as np

    matrix = frame.pivot_table(index="sample_idx", columns="budget", values="correct", aggfunc="first")
    correct = matrix.to_numpy()
    if matrix.isna().to_numpy().any():  # budgets missing for some sample: compare the budgets each sample has
        rows = [row[~pd.isna(row)].astype(bool) for row in correct]
    else:
        rows = correct.astype(bool)
    for row in rows:
        # right at position i and not right at every later budget
        later_all_right = np.flip(np.logical_and.accumulate(np.flip(row)))
        if len(row) > 1 and np.any(row[:-1] & ~later_all_right[1:]):
            return True
    return False

