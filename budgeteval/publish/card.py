"""The dataset card (`README.md`) of a push: YAML metadata the Hub and `datasets` read, and a body made from the runs.

The metadata names one config per table (`configs:`, with data files covering every run the
repository holds, so `load_dataset(REPO, "scores")` reads them all), the license, tags and the
models as `base_model`. The body says what was evaluated and how (model, tasks, budgets, modes,
answer policy, sampling, versions), shows each run's report table and the accuracy figure, the
comparison when several runs are pushed, and how to load each config. Every value comes from the
run directories (dates from their manifests), so the same runs give the same card.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from budgeteval.errors import UserError
from budgeteval.publish.layout import CONFIG_FILES, RUNS_DIR, TABLE_CONFIGS, scores_file

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
"""A Hugging Face repository id (ORG/NAME)."""

TAGS = ("budgeteval", "evaluation", "reasoning", "token-budget")
"""Tags of every pushed dataset."""

CONFIG_DESCRIPTIONS = {
    "scores": "one row per run x task x problem x sample x budget x mode: tokens counted, finished, extracted "
              "answer, correct",
    "metrics": "one row per run x task x mode x budget x metric (x k): value, standard error, 95% interval",
    "generations": "one row per run x task x problem x sample: the prompt, the response text and token ids, "
                   "finish reason, seed",
    "problems": "one row per run x task x problem: question, reference, and the task's groups as JSON",
    "continuations": "forced mode: one row per run x task x problem x sample x budget: the forcing string's ids "
                     "and the answer generated after it (text, token ids, finish reason, seed)",
    "conditioned": "conditioned mode: one row per run x task x problem x sample x budget: the response to the "
                   "prompt naming the budget (prompt, text, token ids, finish reason, seed)",
    "engine": "engine mode: one row per run x task x problem x sample x budget: the response generated with the "
              "engine's own thinking budget set to the budget (prompt, text, token ids, finish reason, seed)",
}
"""What a row of each config is, for the card."""


def card_metadata(runs: Sequence, license: str = "other", configs: Sequence[str] = TABLE_CONFIGS) -> dict:
    """The card's YAML metadata: `configs` (their data files), license, tags, base models, pretty name."""
    # Only hub ids: an import's --model is a free label, and the Hub links base_model to model pages.
    models = list(dict.fromkeys(run.model for run in runs if HUB_ID.fullmatch(str(run.model or ""))))
    metadata = {
        "configs": [{"config_name": name, "data_files": [{"split": "train", "path": CONFIG_FILES[name]}]}
                    for name in configs],
        "license": license,
        "tags": list(TAGS),
        "pretty_name": "budgeteval: " + ", ".join(run.label for run in runs),
    }
    if models:
        metadata["base_model"] = models
    return metadata


def dataset_card(runs: Sequence, pushed: Sequence, *, repo_id: str | None = None, license: str = "other",
                 figure: str | None = None, other_runs: Sequence[str] = (),
                 configs: Sequence[str] = TABLE_CONFIGS) -> str:
    """The whole `README.md` of a push of `runs` (loaded `Run`s; `pushed`: their `PushedRun`s, in order)."""
    import yaml

    repo = repo_id or "ORG/NAME"
    metadata = yaml.safe_dump(card_metadata(runs, license, configs), sort_keys=False, allow_unicode=True, width=1000)
    lines = [f"---\n{metadata}---", "", f"# {', '.join(run.label for run in runs)}: accuracy vs token budget", "",
             "Budget-sweep evaluation results written by `budgeteval push`: each response generated once at the "
             "largest budget, replayed at every smaller budget exactly "
             "as `max_tokens=B` would have cut it, and scored.", ""]
    lines += ["## Runs", "", "| run | model | tasks | budgets | modes | samples | answer policy | scored from |",
              "| --- | --- | --- | --- | --- | ---: | --- | --- |"]
    for run, record in zip(runs, pushed):
        lines.append(f"| `{record.name}` | {_cell(run.model)} | {', '.join(record.tasks)} | {_budgets(run)} | "
                     f"{', '.join(_modes(run))} | {run.manifest.config.n} | {_policy(run)} | {_origin(run)} |")
    gated = [(record.name, task) for record in pushed for task in record.gated]
    if gated:
        lines += ["", "Included with `--include-gated` (their authors ask that the questions not be posted in plain "
                  "text; do not redistribute): " + ", ".join(f"{task} (run `{name}`)" for name, task in gated) + "."]
    if other_runs:
        lines += ["", "The repository also holds runs pushed earlier, described in their own commits' cards and "
                  f"in `{RUNS_DIR}/<run>/manifest.json`: " + ", ".join(f"`{name}`" for name in other_runs) + "."]
    for run, record in zip(runs, pushed):
        lines += ["", f"## Run `{record.name}`", ""] + _settings(run)
        lines += ["", _report(run)]
    if figure:
        lines += ["", "## Accuracy vs budget", "", f"![accuracy vs token budget]({figure})"]
    comparison = _comparison(runs)
    if comparison:
        lines += ["", f"## Comparison with {runs[0].label}", "", comparison.rstrip()]
    lines += ["", "## Loading", "", "One config per table; every row carries its `run`.", "",
              "| config | a row is |", "| --- | --- |"]
    lines += [f"| `{name}` | {CONFIG_DESCRIPTIONS[name]} |" for name in configs]
    lines += ["", "```python", "from datasets import load_dataset", ""]
    lines += [f'{name} = load_dataset("{repo}", "{name}", split="train")' for name in configs]
    lines += ["```", "", "Or read a run's files directly, e.g. with pandas:", "", "```python", "import pandas as pd", "",
              f'scores = pd.read_parquet("hf://datasets/{repo}/{scores_file(pushed[0].name)}")', "```",
              "", "Each run's full manifest (configuration, data hashes, versions, hardware) is "
              f"`{RUNS_DIR}/<run>/manifest.json`; `{RUNS_DIR}/<run>/push.json` lists its files and their content hash.", ""]
    return "\n".join(lines)


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def _budgets(run) -> str:
    from budgeteval.generation.budgets import format_budget

    return ", ".join(format_budget(budget) for budget in run.manifest.scoring_budgets())


def _modes(run) -> tuple[str, ...]:
    scoring = run.manifest.scoring
    return tuple(scoring.modes) if scoring and scoring.modes else run.manifest.run_modes


def _policy(run) -> str:
    scoring = run.manifest.scoring
    return (scoring.answer_policy if scoring and scoring.answer_policy else "strict (not recorded)")


def _origin(run) -> str:
    return {"run": "generated by `budgeteval run`", "import": "imported outputs"}.get(run.manifest.kind,
                                                                                     run.manifest.kind)


def _settings(run) -> list[str]:
    manifest = run.manifest
    config = manifest.config
    rows = [("model", f"`{manifest.model}`" + (f" (revision {config.revision})" if config.revision else "")),
            ("backend", config.backend)]
    if manifest.kind == "run":
        sampling = config.sampling
        rows.append(("sampling", f"temperature {sampling.temperature}, top-p {sampling.top_p}, top-k {sampling.top_k}, "
                                 f"min-p {sampling.min_p}, seed {config.seed}, {config.n} samples per problem"))
    else:
        rows.append(("sampling", f"as the imported outputs were generated; {config.n} samples per problem"))
    rows.append(("end of thinking", f"`{manifest.think_end}`" if manifest.think_end else "none (plain answers)"))
    for name, entry in manifest.tasks.items():
        source = entry.source or {}
        where = source.get("local_file") or " ".join(str(source[key]) for key in ("path", "name", "split")
                                                      if source.get(key))
        rows.append((f"task {name}", f"v{entry.version}, scorer {entry.scorer}, {entry.num_problems or '?'} problems "
                                     f"from {where or 'unknown'}" +
                     (f", data sha256 {entry.data_sha256[:12]}" if entry.data_sha256 else "")))
    versions = ", ".join(f"{package} {version}" for package, version in sorted(manifest.packages.items()) if version)
    rows.append(("versions", versions or "not recorded"))
    if manifest.created:
        rows.append(("created", manifest.created))
    if manifest.generated_at:
        rows.append(("generated", manifest.generated_at))
    return ["| setting | value |", "| --- | --- |"] + [f"| {key} | {_cell(value)} |" for key, value in rows]


def _report(run) -> str:
    """The `report` command's markdown for the run, its task headings one level down."""
    from budgeteval.report.tables import report_run

    return _demoted(report_run(run.path, None, "markdown"))


def _demoted(text: str) -> str:
    """Markdown with its `## ` headings one level down (they sit under the card's own)."""
    return "\n".join("#" + line if line.startswith("## ") else line for line in text.rstrip().splitlines())


def _comparison(runs: Sequence) -> str | None:
    if len(runs) < 2:
        return None
    from budgeteval.report.compare import compare_runs

    try:
        return _demoted(compare_runs(list(runs)).format("markdown"))
    except UserError:  # the runs share no task
        return None
