"""Runs as one Hugging Face dataset repository: the folder a push uploads, and the upload.

`build_dataset_folder` writes one config per table — `scores`, `metrics`, `generations` (prompt,
response text and token ids, finish reason, seed; one parquet file per store shard, as the run
stores them), `problems`, and for forced/conditioned/engine runs `continuations`/`conditioned`/`engine` — each
run's files under `data/<table>/<run>/` with a `run` column, the run's manifest and content hash
under `runs/<run>/`, the accuracy figure, and the card
(`budgeteval.publish.card`). Same runs, same bytes. `upload_folder` sends that folder as one
commit to a dataset repository, refusing to change a run of the same name that another push left
there. Not here: the card's text, or any experiment tracker.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from budgeteval.errors import UserError
from budgeteval.publish.layout import (
    CARD_NAME,
    DATA_DIR,
    FIGURE_PATH,
    PUSH_RECORD,
    RUNS_DIR,
    configs_with_files,
    metrics_file,
    problems_file,
    run_files_patterns,
    scores_file,
    store_file,
)


@dataclass(frozen=True)
class PushedRun:
    """One run as a push writes it."""

    name: str
    """Its folder name in the repository (its label, made path-safe) and its `run` column value."""
    path: Path
    """The run directory it was read from."""
    tasks: tuple[str, ...]
    """Tasks included."""
    gated: tuple[str, ...]
    """Tasks included whose authors ask that they not be published in plain text (with --include-gated)."""
    files: tuple[str, ...]
    """Files written for it, relative to the folder (tables and provenance), sorted."""
    content_sha256: str
    """SHA-256 over its table files' paths and bytes: equal for the same run, whatever the push."""


def _types(*pairs):
    import pyarrow as pa

    return [pa.field(name, kind()) for name, kind in pairs]


def _metrics_types():
    import pyarrow as pa

    return _types(("task", pa.string), ("mode", pa.string), ("budget", pa.int64), ("metric", pa.string),
                  ("k", pa.int64), ("value", pa.float64), ("stderr", pa.float64), ("ci_low", pa.float64),
                  ("ci_high", pa.float64))


def _problems_types():
    import pyarrow as pa

    return _types(*((name, pa.string) for name in ("task", "problem_id", "question", "reference", "groups")))


def run_key(label: str) -> str:
    """A label as a folder name: letters, digits, `.`, `_` and `-` kept, any other run of characters one `-`."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")
    if not key:
        raise UserError(f"Run label {label!r} has no letter or digit to name its folder by: label it with RUN=label.")
    return key


def gated_tasks(run) -> list[str]:
    """The run's tasks whose authors ask that their problems not be published in plain text."""
    from budgeteval.tasks.loading import publish_policy

    gated = []
    for name, entry in run.manifest.tasks.items():
        policy = entry.publish or publish_policy(name, entry.yaml, (entry.source or {}).get("path"))
        if policy == "gated":
            gated.append(name)
    return gated


def check_publishable(runs: Sequence, include_gated: bool = False) -> dict[str, list[str]]:
    """Refuse (one sentence) a run that is not scored, or that holds a gated task without `include_gated`;
    returns run label -> its gated tasks. Reads manifests only."""
    from budgeteval.rundir.layout import metrics_paths, scores_path

    gated = {}
    for run in runs:
        if run.manifest.scoring is None or not scores_path(run.path).is_file() \
                or not metrics_paths(run.path)[0].is_file():
            raise UserError(f"Run {run.path} is not scored: run `budgeteval score {run.path}` before pushing it.")
        gated[run.label] = gated_tasks(run)
        if gated[run.label] and not include_gated:
            raise UserError(
                f"Run {run.path} holds {', '.join(gated[run.label])}, whose authors ask that its questions not be "
                f"published in plain text: leave the run out, or pass --include-gated if you have the right to "
                f"publish it (a private repository is still a copy).")
    keys = [run_key(run.label) for run in runs]
    for key in keys:
        if keys.count(key) > 1:
            raise UserError(f"Two runs would be pushed as {key!r}: label them apart with RUN=label.")
    return gated


def build_dataset_folder(runs: Sequence, out: str | os.PathLike, *, repo_id: str | None = None,
                         include_gated: bool = False, license: str = "other",
                         other_runs: Sequence[str] = (), remote_files: Sequence[str] = ()) -> list[PushedRun]:
    """Write the dataset folder of `runs` (loaded `Run`s) at `out`, replacing a folder an earlier push
    wrote there; returns what was written per run. `repo_id` names the repository in the card's
    loading examples; `other_runs`: runs the repository already holds, listed in the card;
    `remote_files`: the repository's files (its configs stay in the card)."""
    from budgeteval.atomic import replace_dir

    gated = check_publishable(runs, include_gated)
    out = Path(out)
    # The folder is replaced whole: only an empty one, or one an earlier push wrote, may be.
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not any(out.glob(f"{RUNS_DIR}/*/{PUSH_RECORD}")))):
        raise UserError(f"--local {out} exists and is not a dataset folder a push wrote: name a new or empty folder.")
    pushed: list[PushedRun] = []

    def write(folder: Path) -> None:
        score_columns = _score_columns(runs)
        for run in runs:
            pushed.append(_write_run(folder, run, gated[run.label], score_columns))
        figure = _write_figure(folder, runs)
        from budgeteval.publish.card import dataset_card

        configs = configs_with_files([*remote_files, *(path for run in pushed for path in run.files)])
        card = dataset_card(runs, pushed, repo_id=repo_id, license=license, figure=figure, other_runs=other_runs,
                            configs=configs)
        (folder / CARD_NAME).write_text(card, encoding="utf-8")

    replace_dir(out, write)
    return pushed


def _score_columns(runs: Sequence) -> list[str]:
    """Every scores column any of the runs has, in first-seen order (one schema across the config)."""
    columns: list[str] = []
    for run in runs:
        columns += [column for column in run.scores.columns if column not in columns]
    return columns


def _arrow_table(frame, name: str, types=None):
    """`frame` (pandas or arrow) with `run` = `name` first; a column `types` names gets that arrow type,
    so an all-null column keeps its type and every run's file of a config has one schema."""
    import pyarrow as pa

    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(None)
    for field in (types or ()):
        if field.name in table.column_names:
            index = table.column_names.index(field.name)
            table = table.set_column(index, field.name, table.column(index).cast(field.type))
    return table.add_column(0, "run", pa.array([name] * table.num_rows, pa.string()))


def _write_run(folder: Path, run, gated: list[str], score_columns: list[str]) -> PushedRun:
    import pyarrow.parquet as pq

    from budgeteval.rundir.layout import manifest_path
    from budgeteval.rundir.problems import read_problem_frame
    from budgeteval.rundir.scores import scores_schema
    from budgeteval.rundir.store import CONDITIONED, CONTINUATIONS, ENGINE, GENERATIONS, shard_paths

    name = run_key(run.label)
    files: list[str] = []

    def table_file(relative: str, frame, types=None) -> None:
        import pyarrow.parquet as pq

        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_arrow_table(frame, name, types), folder / relative)
        files.append(relative)

    table_file(scores_file(name), run.scores.reindex(columns=score_columns), scores_schema())
    table_file(metrics_file(name), run.metrics, _metrics_types())
    for task in run.tasks:
        problems = read_problem_frame(run.path, task, missing_ok=True)
        table_file(problems_file(name, task), problem_rows(problems, task), _problems_types())
    for kind in (GENERATIONS, CONTINUATIONS, CONDITIONED, ENGINE):
        for task in sorted(run.tasks):
            # One file per store shard: a shard holds whole problems, so the files stay as large as the store's.
            for shard in shard_paths(run.path, task, kind):
                table_file(store_file(kind.folder, name, task, shard.name), pq.read_table(shard))
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode() + b"\0" + hashlib.sha256((folder / relative).read_bytes()).digest())
    record = PushedRun(name=name, path=Path(run.path), tasks=tuple(run.tasks), gated=tuple(gated),
                       files=tuple(sorted(files)), content_sha256=digest.hexdigest())
    provenance = folder / RUNS_DIR / name
    provenance.mkdir(parents=True, exist_ok=True)
    (provenance / "manifest.json").write_bytes(manifest_path(run.path).read_bytes())
    (provenance / PUSH_RECORD).write_text(json.dumps({
        "run": name, "label": run.label, "model": run.model, "tasks": list(record.tasks),
        "gated_tasks_included": list(record.gated), "content_sha256": record.content_sha256,
        "files": list(record.files)}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


def problem_rows(problems, task: str):
    """A task's problems as the `problems` config holds them: task, problem_id, question, reference,
    and its groups as one JSON object (tasks declare different groups; a config has one schema)."""
    import pandas as pd

    base = ["problem_id", "question", "reference"]
    group_names = [column for column in problems.columns if column not in base]
    groups = [json.dumps({name: row[name] for name in group_names if row[name] is not None and row[name] == row[name]},
                         sort_keys=True, ensure_ascii=False) for _, row in problems.iterrows()]
    frame = pd.DataFrame({"task": [task] * len(problems)})
    for column in base:
        frame[column] = [None if value is None else str(value) for value in problems[column]] if column in problems \
            else [None] * len(problems)
    frame["groups"] = groups
    return frame


def _write_figure(folder: Path, runs: Sequence) -> str | None:
    """The accuracy figure of the runs (None when they share no task to draw)."""
    from budgeteval.plots.budget import PlotOptions, accuracy_figure
    from budgeteval.plots.style import save_figure

    try:
        figure = accuracy_figure(list(runs), PlotOptions())
    except UserError:
        return None
    save_figure(figure, folder / FIGURE_PATH)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return FIGURE_PATH


# ---- the upload ----------------------------------------------------------------------------------


def remote_run_hashes(api, repo_id: str, revision: str | None, files: Sequence[str] | None = None) \
        -> dict[str, str | None]:
    """Runs the repository holds (at `revision`; `files`: its file list, when already listed) -> their
    content hash (None when unreadable)."""
    if files is None:
        files = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
    hashes: dict[str, str | None] = {}
    for path in files:
        parts = path.split("/")
        if len(parts) >= 3 and parts[0] == DATA_DIR:
            hashes.setdefault(parts[2], None)
        if len(parts) == 3 and parts[0] == RUNS_DIR and parts[2] == PUSH_RECORD:
            local = api.hf_hub_download(repo_id, path, repo_type="dataset", revision=revision)
            try:
                hashes[parts[1]] = json.loads(Path(local).read_text(encoding="utf-8")).get("content_sha256")
            except (OSError, ValueError):
                hashes[parts[1]] = None
    return hashes


def conflicting_runs(pushed: Sequence[PushedRun], remote: dict[str, str | None]) -> list[str]:
    """Runs of this push that the repository holds under the same name with other content."""
    return [run.name for run in pushed if run.name in remote and remote[run.name] != run.content_sha256]


def upload_folder(folder: str | os.PathLike, repo_id: str, *, pushed: Sequence[PushedRun], private: bool = False,
                  revision: str | None = None, replace: bool = False, api=None) -> str:
    """Send the dataset folder a push wrote to the dataset repository `repo_id` as one commit; returns its URL.

    The repository (and the branch `revision`) is created when missing (`private` applies then).
    A run the repository holds under the same name with other content is refused, unless `replace`,
    which deletes that run's old files in the same commit. Files of other runs stay as they are.
    `api`: a `huggingface_hub.HfApi` (the default one reads HF_TOKEN or the saved login).
    """
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    names = [run.name for run in pushed]
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        conflicts = conflicting_runs(pushed, remote_run_hashes(api, repo_id, revision))
        if conflicts and not replace:
            raise UserError(f"{repo_id} already holds run {conflicts[0]!r} with other content: push it under "
                            f"another label (RUN=label), or pass --replace to overwrite that run's files.")
        deleted = [pattern for name in conflicts for pattern in run_files_patterns(name)]
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset", revision=revision,
                                 commit_message=f"budgeteval push: {', '.join(names)}",
                                 delete_patterns=deleted or None)
    except UserError:
        raise
    except Exception as error:  # the hub client's errors: authentication, network, offline mode, permissions
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"Pushing to the dataset repository {repo_id} failed ({reason}): check HF_TOKEN or "
                        f"`hf auth login`, your rights on the repository, and that HF_HUB_OFFLINE is not set.") from None
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/datasets/{repo_id}")


def push_runs(runs: Sequence, repo_id: str | None, *, local: str | os.PathLike | None = None, private: bool = False,
              revision: str | None = None, include_gated: bool = False, replace: bool = False,
              license: str = "other", api=None) -> tuple[Path, list[PushedRun], str | None]:
    """`budgeteval push`: write the dataset folder (at `local`, else a temporary one) and upload it
    unless `local` is given; returns the folder, the runs written and the commit URL (None: not uploaded)."""
    import tempfile

    if not runs:
        raise UserError("push needs at least one run directory.")
    if local is None and not repo_id:
        raise UserError("push needs --repo ORG/NAME (the dataset repository), or --local DIR to write the folder only.")
    if repo_id is not None and not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo_id):
        raise UserError(f"--repo {repo_id!r} is not a repository id: write it as ORG/NAME, e.g. my-org/qwen3-budgets.")
    check_publishable(runs, include_gated)
    if local is not None:
        pushed = build_dataset_folder(runs, local, repo_id=repo_id, include_gated=include_gated, license=license)
        return Path(local), pushed, None
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        files = api.list_repo_files(repo_id, repo_type="dataset", revision=revision) \
            if _repo_exists(api, repo_id) else []
        remote = remote_run_hashes(api, repo_id, revision, files)
    except Exception:  # no repository or no such branch yet: nothing to list; the upload says what else fails
        files, remote = [], {}
    own = {run_key(run.label) for run in runs}
    with tempfile.TemporaryDirectory(prefix="budgeteval-push-") as temporary:
        folder = Path(temporary) / "dataset"
        pushed = build_dataset_folder(runs, folder, repo_id=repo_id, include_gated=include_gated, license=license,
                                      other_runs=sorted(set(remote) - own), remote_files=files)
        url = upload_folder(folder, repo_id, pushed=pushed, private=private, revision=revision, replace=replace,
                            api=api)
    return folder, pushed, url


def _repo_exists(api, repo_id: str) -> bool:
    return bool(api.repo_exists(repo_id, repo_type="dataset"))
