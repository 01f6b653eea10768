"""The Python API on top of every stage: run a sweep, re-score, import, and read runs back.

The write side (`evaluate`, `score`, `import_outputs`) takes the same settings as the `run`,
`score` and `import` commands, named as the CLI's options in snake case, and returns a `Run`; the
CLI commands are thin layers over these functions. Errors are the CLI's `UserError` sentences; an
unknown keyword is one `TypeError` sentence naming the close matches.

`budgeteval.report.runs.Run` reads a run directory's files; this `Run` adds what needs the later
stages (report tables, analysis, figures, the viewer). `budgeteval.load_run` returns this class.
"""

from __future__ import annotations

import difflib
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from budgeteval.errors import UserError
from budgeteval.generation.budgets import DEFAULT_BUDGETS, format_budget, parse_budget, parse_budgets
from budgeteval.report import runs

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from budgeteval.analysis.tables import Analysis

DEFAULT_BUDGETS_TEXT = ",".join(format_budget(budget) for budget in DEFAULT_BUDGETS)
"""The default sweep as the CLI writes it: 2k,4k,8k,16k,32k."""

REPORT_FORMATS = ("frame", "markdown", "csv", "json")
"""What `Run.report` returns: the long metrics table as a pandas frame, or the `report` command's text."""

FIGURE_KINDS = ("budget", "tokens", "pareto", "pass_at_k", "difficulty", "after_first_correct", "early_exit")
"""Figure kinds of `plot` (`--kind`): budget is the four budget-sweep figures, tokens the stacked
thinking/answer lengths, the rest analysis figures."""

RUN_SETTINGS: dict[str, Any] = {
    "temperature": 0.6, "top_p": 0.95, "top_k": -1, "min_p": 0.0, "seed": 0,
    "task_options": (), "lm_eval_include": None, "tokenizer": None, "revision": None,
    "chat_template": True, "system_prompt": None, "enable_thinking": None, "think_end": None,
    "dtype": "auto", "tensor_parallel_size": 1, "data_parallel_size": 1, "max_model_len": None,
    "gpu_memory_utilization": 0.9, "enforce_eager": False, "base_url": None, "api_key_env": "OPENAI_API_KEY",
    "concurrency": 32, "max_retries": 5, "device": "auto", "ray_address": None,
    "answer_tokens": 512, "force_string": None, "budget_prompt": None, "budget_prompt_position": "suffix",
    "conditioned_max_tokens": None, "shard": None, "problems_per_shard": 64, "workers": 4,
    "overwrite": False, "strict": False, "answer_policy": "strict", "verdict_cache": None,
    "bootstrap": 1000, "bootstrap_seed": 0, "progress": True, "log": None,
}
"""Every keyword `evaluate` takes besides its named parameters, with its default (the `run` command's)."""

EVALUATE_PARAMETERS = ("model", "tasks", "out", "budgets", "n", "backend", "data", "limit", "modes")
"""The named parameters of `evaluate` (close matches for a misspelt keyword)."""


class Run(runs.Run):
    """One run directory, its label, its files as pandas frames, its report, analysis, figures and viewer."""

    def report(self, k: int | Sequence[int] | str | None = None, by: str | None = None,
               fmt: str = "frame") -> pd.DataFrame | str:
        """The `report` command's table: per task x budget x mode, mean@k, pass@k, maj@k, length, truncation.

        `k`: k values (an int, a list, or "1,8"; default: 1 and n). `by`: a group the tasks declare
        (e.g. level), as `report --by`. `fmt`: "frame" (the long metrics table as a pandas frame, the
        csv text read back), or "markdown", "csv", "json" (exactly the text `budgeteval report` prints).
        """
        return report(self.path, k=k, by=by, fmt=fmt)

    def analyze(self, *others: runs.Run, **options: Any) -> Analysis:
        """Analyses of this run (the baseline unless `baseline=` says otherwise) and `others`; see `analyze`."""
        return analyze([self, *others], **options)

    def figures(self, *others: runs.Run, **options: Any) -> dict[str, Figure]:
        """The budget-sweep figures of this run (and `others`), by name (see `budgeteval.plots.budget.budget_figures`)."""
        from budgeteval.plots.budget import budget_figures

        return budget_figures([self, *others], **options)

    def plot(self, out_dir: str | os.PathLike, *others: runs.Run, **options: Any) -> list[Path]:
        """Save figures of this run (and `others`) into `out_dir`, as `budgeteval plot`; see `plot`."""
        return plot([self, *others], out_dir, **options)

    def view(self, out_dir: str | os.PathLike, *others: runs.Run, baseline: str | None = None,
             k: int | None = None) -> Path:
        """Write the viewer site of this run (and `others`, side by side) into `out_dir`; returns its index.html."""
        from budgeteval.viewer import build_site

        loaded = [self, *others]
        return build_site(loaded, Path(out_dir), baseline=_baseline(loaded, baseline), k=k)

    def push(self, repo: str | None = None, *others: runs.Run, **options: Any) -> Push:
        """Publish this run (and `others`) as one Hugging Face dataset repository; see `push`."""
        return push([self, *others], repo, **options)

    def log(self, to: str, project: str, name: str | None = None) -> list[str]:
        """Log this run to W&B or Trackio as one tracker run; see `log`."""
        return log([self], to=to, project=project, name=name)


def report(run_dir: str | os.PathLike, k=None, by: str | None = None, fmt: str = "frame") -> pd.DataFrame | str:
    """The report of the run directory `run_dir` (see `Run.report`), read from its files alone."""
    if fmt not in REPORT_FORMATS:
        raise UserError(f"Unknown report format {fmt!r}: choose one of {', '.join(REPORT_FORMATS)}.")
    ks = parse_ks(k)
    text_format = "csv" if fmt == "frame" else fmt
    if by:
        from budgeteval.report.groups import format_group_report

        text = format_group_report(Path(run_dir), by, ks, text_format)
    else:
        from budgeteval.report.tables import report_run

        text = report_run(Path(run_dir), ks, text_format)
    if fmt != "frame":
        return text
    import pandas as pd

    return pd.read_csv(io.StringIO(text))


def load_run(path: str | os.PathLike, label: str | None = None) -> Run:
    """Open the run directory at `path` (a `UserError` if it is not one), labelled `label` or by default."""
    return runs.load_run(path, label, kind=Run)


def load_runs(arguments: Sequence[str]) -> list[Run]:
    """Load the runs named on a command line (`RUN` or `RUN=label`), refusing two runs with one label."""
    return runs.load_runs(arguments, kind=Run)


# ---- settings as the CLI takes them --------------------------------------------------------------


def check_keywords(function: str, given: Iterable[str], known: Iterable[str], named: Iterable[str] = ()) -> None:
    """Refuse a keyword `function` does not take, in one sentence naming the close matches among
    `known` and its `named` parameters."""
    known = sorted(known)
    candidates = sorted({*known, *named})
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.75)
            hint = (f"did you mean {' or '.join(close)}?" if close
                    else f"it takes {', '.join(known)}.")
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}: {hint}")


def _items(value, what: str) -> list[str]:
    """A comma-separated string or a sequence of strings/ints -> stripped non-empty strings."""
    if value is None:
        return []
    if isinstance(value, (str, int)):
        value = [value]
    try:
        parts = [str(part) for item in value for part in str(item).split(",")]
    except TypeError:
        raise UserError(f"{what} {value!r} must be a string or a list of strings.") from None
    return [part.strip() for part in parts if part.strip()]


def budgets_of(value) -> tuple[int, ...]:
    """Budgets as the CLI takes them ("2k,8k", "2k:32k:x2") or a list of ints or strings; sorted, unique."""
    if isinstance(value, (list, tuple)) and all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        if not value:
            raise UserError("No budgets given: pass a comma-separated list such as 2k,4k,8k.")
        for item in value:
            if item <= 0:
                raise UserError(f"Budget {item!r} must be a positive number of tokens (for example 2k or 512).")
        return tuple(sorted(set(value)))
    return parse_budgets(",".join(_items(value, "budgets")))


def expand_task_names(tasks) -> tuple[str, ...]:
    """`--tasks` as a string or list: names, suites (replaced by their tasks), YAML paths, lm-eval:NAME."""
    from budgeteval.tasks.suites import expand_tasks

    names = expand_tasks(_items(tasks, "tasks"))
    if not names:
        raise UserError("--tasks is empty: name at least one task (see `budgeteval tasks`).")
    return names


def modes_of(value) -> tuple[str, ...]:
    """`--modes` as a string ("cutoff,forced") or a list, checked against the budget modes."""
    from budgeteval.generation.config import MODES

    modes = tuple(dict.fromkeys(_items(value, "modes")))
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes:
        text = value if isinstance(value, str) else ",".join(map(str, value or ()))
        raise UserError(f"--modes {text!r} is not valid: use a comma-separated subset of {', '.join(MODES)}.")
    return modes


def parse_ks(value) -> list[int] | None:
    """`--k` as "1,8", an int or a list; None stays None (the default: 1 and n)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else ",".join(map(str, [value] if isinstance(value, int) else value))
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--k {text!r} must be a comma-separated list of positive integers, e.g. 1,8.") from None
    if not ks or ks[0] < 1:
        raise UserError(f"--k {text!r} must be a comma-separated list of positive integers, e.g. 1,8.")
    return ks


def default_ks(n: int, k=None) -> list[int]:
    """The k values a report of a run with `n` samples shows: `k` if given (checked against n), else 1 and n."""
    from budgeteval.scoring.metrics import check_ks, report_ks

    ks = parse_ks(k) or report_ks(n)
    check_ks(ks, n)
    return ks


def data_files_of(data) -> tuple[tuple[str, str], ...]:
    """`--data` as a dict task -> path, or TASK=PATH strings -> (task, path) pairs, every one kept in
    order as the CLI keeps a repeated `--data` (where a task is named twice, its last file is read)."""
    if data is None:
        return ()
    if isinstance(data, Mapping):
        return tuple((str(task), str(path)) for task, path in data.items())
    pairs = []
    for value in ([data] if isinstance(data, str) else data):
        task, sep, path = str(value).partition("=")
        if not sep or not task or not path:
            raise UserError(f"--data {value!r} must look like TASK=PATH, e.g. math500=data/math500.jsonl.")
        pairs.append((task, path))
    return tuple(pairs)


def task_options_of(options, tasks: Sequence[str], include: str | os.PathLike | None) -> tuple[tuple[str, str, str], ...]:
    """`--task-option` as TASK.KEY=VALUE strings or a dict {task: {key: value}}, with `--lm-eval-include`."""
    from budgeteval.tasks.loading import parse_task_option

    if isinstance(options, Mapping):
        triples = tuple((str(task), str(key), str(value)) for task, values in options.items()
                        for key, value in values.items())
    else:
        triples = tuple(parse_task_option(value) for value in ([options] if isinstance(options, str) else options or ()))
    if include is None:
        return triples
    from budgeteval.tasks.lm_eval import with_include

    return with_include(triples, tasks, str(include))


def _single_budget(value, option: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    try:
        return parse_budget(value)
    except UserError as error:
        raise UserError(f"{option}: {error}") from None


def _baseline(loaded: Sequence[runs.Run], baseline: str | None) -> str | None:
    return None if baseline is None else runs.resolve_label(loaded, baseline)


def _as_runs(items) -> list[Run]:
    """Runs, paths or RUN=label strings -> loaded runs."""
    if isinstance(items, (runs.Run, str, os.PathLike)):
        items = [items]
    loaded = [item if isinstance(item, runs.Run) else None for item in items]
    texts = [str(item) for item in items if not isinstance(item, runs.Run)]
    others = iter(load_runs(texts) if texts else [])
    return [item if item is not None else next(others) for item in loaded]


# ---- the write side ------------------------------------------------------------------------------


def run_config(model: str, tasks, *, out, budgets=DEFAULT_BUDGETS_TEXT, n: int = 1, backend: str = "vllm",
               data=None, limit: int | None = None, modes="cutoff", **settings):
    """The `RunConfig` (checked) that `evaluate` runs with these settings (see `evaluate`)."""
    from budgeteval.generation.backends.base import SamplingConfig
    from budgeteval.generation.config import EngineOptions, ModeSettings, RunConfig
    from budgeteval.generation.shards import parse_shard
    from budgeteval.tasks.prompts import PromptSettings

    check_keywords("evaluate", settings, RUN_SETTINGS, EVALUATE_PARAMETERS)
    s = {**RUN_SETTINGS, **settings}
    task_names = expand_task_names(tasks)
    base_urls = _items(s["base_url"], "base_url")
    shard = s["shard"]
    if isinstance(shard, str):
        shard = parse_shard(shard)
    config = RunConfig(
        model=str(model), tasks=task_names, out=str(out), backend=backend, tokenizer=s["tokenizer"],
        revision=s["revision"], data_files=data_files_of(data),
        task_options=task_options_of(s["task_options"], task_names, s["lm_eval_include"]),
        limit=limit, n=n, budgets=budgets_of(budgets), seed=s["seed"],
        sampling=SamplingConfig(temperature=s["temperature"], top_p=s["top_p"], top_k=s["top_k"], min_p=s["min_p"]),
        prompt=PromptSettings(chat_template=s["chat_template"], system_prompt=s["system_prompt"],
                              enable_thinking=s["enable_thinking"]),
        think_end=s["think_end"],
        engine=EngineOptions(
            dtype=s["dtype"], tensor_parallel_size=s["tensor_parallel_size"],
            data_parallel_size=s["data_parallel_size"], max_model_len=s["max_model_len"],
            gpu_memory_utilization=s["gpu_memory_utilization"], enforce_eager=s["enforce_eager"],
            base_url=(base_urls or [None])[0], extra_base_urls=tuple(base_urls[1:]),
            api_key_env=s["api_key_env"], concurrency=s["concurrency"], max_retries=s["max_retries"],
            device=s["device"], ray_address=s["ray_address"]),
        modes=ModeSettings(
            modes=modes_of(modes), answer_tokens=s["answer_tokens"], force_string=s["force_string"],
            budget_prompt=s["budget_prompt"], budget_prompt_position=s["budget_prompt_position"],
            conditioned_max_tokens=_single_budget(s["conditioned_max_tokens"], "--conditioned-max-tokens")),
        problems_per_shard=s["problems_per_shard"], workers=s["workers"], shard=shard,
    )
    config.validate()
    return config


def evaluate(model: str, tasks, *, out, budgets=DEFAULT_BUDGETS_TEXT, n: int = 1, backend: str = "vllm",
             data=None, limit: int | None = None, modes="cutoff", **settings) -> Run:
    """Run (or resume) a budget sweep, as `budgeteval run`, and return the finished `Run`.

    `tasks`: names, suites, YAML paths or `lm-eval:NAME`, as a comma-separated string or a list.
    `budgets`: as the CLI takes them ("2k,4k", "2k:32k:x2") or a list of ints or strings. `data`: a
    dict task -> local file. Every other `run` option is a keyword named as the CLI's option in
    snake case (`temperature=`, `top_p=`, `seed=`, `answer_policy=`, `tensor_parallel_size=`,
    `task_options=`, `base_url=` (a string or a list), ...; `RUN_SETTINGS` lists them with their
    defaults), plus `progress=` (progress bars; default True) and `log=` ("wandb:PROJECT" or
    "trackio:PROJECT": log the scored run to that tracker, as `budgeteval log`).

        run = budgeteval.evaluate("Qwen/Qwen3-1.7B", "gsm8k", out="runs/qwen", budgets="2k:16k:x2", n=4)
        print(run.report(fmt="markdown"))
    """
    from budgeteval.sweep.runner import run

    config = run_config(model, tasks, out=out, budgets=budgets, n=n, backend=backend, data=data, limit=limit,
                        modes=modes, **settings)
    s = {**RUN_SETTINGS, **settings}
    destination = log_destination(s["log"])  # a bad --log before the model loads
    verdict_cache = None if s["verdict_cache"] is None else Path(s["verdict_cache"])
    run_dir = run(config, overwrite=s["overwrite"], progress=s["progress"], bootstrap=s["bootstrap"],
                  bootstrap_seed=s["bootstrap_seed"], answer_policy=s["answer_policy"], strict=s["strict"],
                  verdict_cache=verdict_cache)
    return _logged(load_run(run_dir), destination)


def score(run_or_path, *, budgets=None, modes=None, answer_policy: str | None = None, workers: int = 4,
          verdict_cache=None, bootstrap: int = 1000, bootstrap_seed: int = 0, progress: bool = True,
          log: str | None = None) -> Run:
    """Re-score a saved run (no model needed), as `budgeteval score`, and return it read afresh.

    `budgets`/`modes`: default the run's own; `answer_policy`: default the one it was last scored with.
    `log`: "wandb:PROJECT" or "trackio:PROJECT" logs the scored run there, as `budgeteval log`.

        run = budgeteval.score("runs/qwen", budgets="1k,3k", answer_policy="lenient")
    """
    from budgeteval.scoring.evaluate import evaluate_run

    path = Path(run_or_path.path if isinstance(run_or_path, runs.Run) else run_or_path)
    label = run_or_path.label if isinstance(run_or_path, runs.Run) else None
    destination = log_destination(log)
    evaluate_run(path, budgets=None if budgets is None else budgets_of(budgets), workers=workers,
                 progress=progress, modes=None if modes is None else modes_of(modes), bootstrap=bootstrap,
                 bootstrap_seed=bootstrap_seed, answer_policy=answer_policy,
                 verdict_cache=None if verdict_cache is None else Path(verdict_cache))
    return _logged(load_run(path, label), destination)


IMPORT_FORMATS = ("table", "lm-eval", "lighteval")
"""`import --format`: one row per sample, lm-eval's --log_samples file, lighteval's details parquet."""


def import_outputs(path, *, task: str, tokenizer: str, out, fields=None, format: str = "table",
                   budgets=DEFAULT_BUDGETS_TEXT, max_tokens: int | None = None, cut_tolerance: float = 0.02,
                   model: str | None = None, data=None, task_options=None, think_end: str | None = None,
                   lm_eval_include=None, workers: int = 4, overwrite: bool = False, answer_policy: str = "strict",
                   verdict_cache=None, bootstrap: int = 1000, bootstrap_seed: int = 0,
                   unfinished_text: str = "cut", progress: bool = True) -> Run:
    """Make a run directory from existing generations and score it, as `budgeteval import`; returns the `Run`.

    `fields`: a dict NAME -> COLUMN or NAME=COLUMN strings (table files only). `format`: table,
    lm-eval or lighteval. `unfinished_text`: cut or unknown, as `import --unfinished-text`.

        run = budgeteval.import_outputs("outputs.jsonl", task="gsm8k", tokenizer="Qwen/Qwen3-1.7B",
                                        out="runs/imported", fields={"response": "output"}, max_tokens=32768)
    """
    from budgeteval.generation.budgets import check_max_tokens
    from budgeteval.ingest.generations import import_generations, parse_field_map
    from budgeteval.rundir.lock import lock_run
    from budgeteval.scoring.evaluate import evaluate_run

    if format not in IMPORT_FORMATS:
        raise UserError(f"--format {format!r} is not a format: use {', '.join(IMPORT_FORMATS)}.")
    budgets = budgets_of(budgets)
    check_max_tokens(max_tokens, budgets)
    out = Path(out)
    options = task_options_of(task_options, (task,), lm_eval_include)
    if isinstance(fields, Mapping):
        fields = [f"{name}={column}" for name, column in fields.items()]
    fields = [fields] if isinstance(fields, str) else list(fields or ())
    if format != "table" and fields:
        raise UserError(f"--field maps columns of --format table files; --format {format} reads its own.")
    field_map = parse_field_map(fields)
    common = dict(model=model, max_tokens=max_tokens, data_files=dict(data_files_of(data)), think_end=think_end,
                  overwrite=overwrite, task_options=options, cut_tolerance=cut_tolerance,
                  unfinished_text=unfinished_text)
    with lock_run(out, "import"):  # one lock over the import and its scoring
        if format != "table":
            from budgeteval.ingest.harness import import_harness_file

            run_dir = import_harness_file(Path(path), format, task, tokenizer, out, budgets, **common)
        else:
            run_dir = import_generations(Path(path), task, tokenizer, out, field_map, budgets, **common)
        evaluate_run(run_dir, budgets=budgets, workers=workers, progress=progress, bootstrap=bootstrap,
                     bootstrap_seed=bootstrap_seed, answer_policy=answer_policy,
                     verdict_cache=None if verdict_cache is None else Path(verdict_cache))
    return load_run(run_dir)


# ---- the read side over several runs -------------------------------------------------------------


def analyze(runs_or_paths, *, baseline: str | None = None, tables=None, buckets="0,0.5,1", trace: bool | None = None,
            early_exit: bool = False, agree=(2, 3, 4), workers: int = 2) -> Analysis:
    """Per-problem profiles, gains and losses, difficulty buckets, first-correct positions, early exit,
    as `budgeteval analyze`; `.format(fmt, tables)` gives its text. `tables` (a list or "gains,buckets")
    only decides what is computed: trace when asked for, early_exit when named."""
    from budgeteval.analysis.efficiency import parse_bucket_edges
    from budgeteval.analysis.tables import analyze_runs

    loaded = _as_runs(runs_or_paths)
    names = _items(tables, "tables") or None
    if names and "trace" not in names and trace is None:
        trace = False  # not asked for: skip the scoring it needs
    if names and "early_exit" in names:
        early_exit = True
    text = agree if isinstance(agree, str) else ",".join(map(str, agree))
    try:
        windows = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        windows = []
    if not windows or windows[0] < 1:
        raise UserError(f"--agree {text!r} must be a comma-separated list of positive integers, e.g. 2,3,4.")
    edges = parse_bucket_edges(buckets if isinstance(buckets, str) else ",".join(map(str, buckets)))
    return analyze_runs(loaded, baseline=_baseline(loaded, baseline), edges=edges, trace=trace,
                        early_exit=early_exit, windows=windows, workers=workers)


def compare_modes(run_or_path, modes="forced,engine", *, bootstrap: int = 1000, seed: int = 0):
    """Two budget modes of one run compared per task x budget, as `budgeteval compare RUN --modes A,B`:
    answer agreement, each mode's accuracy and B - A with a paired bootstrap interval
    (`budgeteval.report.modes.ModeComparison`; `.table` is a frame, `.format("markdown")` the text)."""
    from budgeteval.report.modes import compare_run_modes

    loaded = _as_runs(run_or_path)
    if len(loaded) != 1:
        raise UserError(f"compare_modes compares two modes of one run; it was given {len(loaded)} runs.")
    return compare_run_modes(loaded[0].path, modes_of(modes), bootstrap=bootstrap, seed=seed)


def figure_kinds(kinds="budget") -> dict[str, str]:
    """`--kind` as a string ("budget,pareto") or list -> the figures to draw, by name."""
    from budgeteval.plots.analysis import ANALYSIS_FIGURES
    from budgeteval.plots.budget import BUDGET_FIGURES, TOKEN_FIGURES

    figures: dict[str, str] = {}
    for kind in _items(kinds, "kind"):
        if kind == "budget":
            figures.update(BUDGET_FIGURES)
        elif kind in TOKEN_FIGURES:
            figures[kind] = TOKEN_FIGURES[kind]
        elif kind in ANALYSIS_FIGURES:
            figures[kind] = ANALYSIS_FIGURES[kind]
        else:
            raise UserError(f"--kind {kind!r} is not a figure: use budget, {', '.join(TOKEN_FIGURES)}, "
                            f"{', '.join(ANALYSIS_FIGURES)}.")
    if not figures:
        raise UserError("--kind is empty: name at least one figure, e.g. budget or pareto.")
    return figures


def plot(runs_or_paths, out_dir, *, formats="pdf,png", k: int | None = None, by: str = "budget", kind="budget",
         pass_budgets=None, buckets="0,0.5,1", baseline: str | None = None) -> list[Path]:
    """Draw figures of runs into `out_dir`, as `budgeteval plot`; returns the files written.

    `by="step"`: the training-dynamics figure of a folder `budgeteval watch` wrote. `kind`: budget
    and/or analysis figures (`FIGURE_KINDS`)."""
    if by == "step":
        from budgeteval.plots.steps import save_step_figures

        folders = [runs_or_paths] if isinstance(runs_or_paths, (str, os.PathLike)) else list(runs_or_paths)
        return save_step_figures(folders, out_dir, formats, k=k)
    if by != "budget":
        raise UserError(f"--by {by!r} is not an x axis: use budget or step.")
    from budgeteval.analysis.efficiency import parse_bucket_edges
    from budgeteval.plots.budget import PlotOptions, save_figures

    figures = figure_kinds(kind)
    loaded = _as_runs(runs_or_paths)
    options = PlotOptions(k=k, pass_budgets=tuple(budgets_of(pass_budgets)) if pass_budgets is not None else (),
                          buckets=parse_bucket_edges(buckets if isinstance(buckets, str) else ",".join(map(str, buckets))),
                          baseline=_baseline(loaded, baseline))
    return save_figures(loaded, out_dir, formats, options=options, figures=figures)


# ---- publishing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    """What `push` wrote and where it went."""

    folder: Path | None
    """The dataset folder (`local`); None after an upload (it was a temporary folder)."""
    runs: tuple[str, ...]
    """The runs' names in the repository (their folders under data/<table>/ and their `run` values)."""
    url: str | None
    """The commit's URL on the Hub; None when only the folder was written."""


def push(runs_or_paths, repo: str | None = None, *, local=None, private: bool = False, revision: str | None = None,
         include_gated: bool = False, replace: bool = False, license: str = "other") -> Push:
    """Publish scored runs as one Hugging Face dataset repository, as `budgeteval push`.

    `repo`: ORG/NAME. `local`: write the dataset folder there and upload nothing (the repository
    then only names the loading examples of the card). `private`: for a repository created by this
    push. `revision`: a branch (created when missing). `include_gated`: publish a task whose authors
    ask that it not be posted in plain text (GPQA), if you have the right to. `replace`: overwrite a
    run of the same name the repository holds with other content (else refused). `license`: the
    card's license id (default: other).

        budgeteval.push(["runs/base", "runs/ours"], "my-org/qwen3-budgets")
    """
    from budgeteval.publish.hub import push_runs

    loaded = _as_runs(runs_or_paths)
    folder, pushed, url = push_runs(loaded, repo, local=local, private=private, revision=revision,
                                    include_gated=include_gated, replace=replace, license=license)
    return Push(folder=folder if local is not None else None, runs=tuple(run.name for run in pushed), url=url)


def log_destination(value):
    """`--log` as "wandb:PROJECT" or "trackio:PROJECT" (None: no logging), its tracker checked installed."""
    if value is None:
        return None
    from budgeteval.publish.trackers import check_destination, parse_destination

    return check_destination(parse_destination(value))


def log(runs_or_paths, *, to: str, project: str, name: str | None = None) -> list[str]:
    """Log scored runs to W&B (`to="wandb"`) or Trackio (`to="trackio"`), one tracker run each, as
    `budgeteval log`; returns the tracker runs' names. Offline modes are the trackers' own
    (`WANDB_MODE=offline`; Trackio writes its local store unless a Space is configured).

        budgeteval.log("runs/qwen", to="wandb", project="budgets")
    """
    from budgeteval.publish.trackers import Destination, log_runs

    loaded = _as_runs(runs_or_paths)
    return log_runs(loaded, Destination(to, project, name))


def _logged(run: Run, destination) -> Run:
    if destination is not None:
        from budgeteval.publish.trackers import log_run

        log_run(run, destination)
    return run
