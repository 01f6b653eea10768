"""`budgeteval push` (a Hugging Face dataset folder, its card, the upload up to the Hub client) and
`budgeteval log` / `--log` (W&B offline runs and Trackio's local store, read back with their own formats).

No test reaches the Hub: `push --local` writes the folder `datasets` then loads, and the upload runs
against a recording stand-in for `huggingface_hub.HfApi`. The tracker tests run the CLI in a child
process with the tracker's local settings, so neither tracker's state or background service outlives it.
"""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from guards import import_or_need
from huggingface_hub import HfApi  # a dependency of datasets, which budgeteval needs
from synthetic_runs import write_run

from budgeteval.cli import main
from budgeteval.errors import UserError
from budgeteval.generation.config import RunConfig
from budgeteval.rundir.manifest import ScoringSection, TaskEntry, read_manifest, write_manifest
from budgeteval.rundir.problems import write_problems
from budgeteval.rundir.store import GenerationRecord, write_shard

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("scores", "metrics", "generations", "problems")


def write_full_run(run_dir: Path, model: str, task: str = "t", shards: int = 2, gated: bool = False) -> Path:
    """A scored run with everything a push publishes: manifest, scores, metrics, problems (with a group),
    and generations in `shards` store shards (one problem each)."""
    problems = [f"p{index}" for index in range(shards)]
    cells = {budget: {pid: [(index % 2 == 0, 100 + 10 * index), (False, budget)] for index, pid in enumerate(problems)}
             for budget in (128, 256)}
    write_run(run_dir, model, cells, task=task, bootstrap=0)
    manifest = read_manifest(run_dir)
    entry = TaskEntry(scorer="math", version=1, source={"path": "org/data", "name": None, "split": "test"},
                      num_problems=len(problems), data_sha256="ab" * 32, publish="gated" if gated else None)
    write_manifest(run_dir, manifest.replace(
        kind="run", created="2026-01-02T03:04:05+00:00", tasks={task: entry},
        config=RunConfig(model=model, tasks=(task,), out=str(run_dir), budgets=(128, 256), n=2),
        scoring=ScoringSection(budgets=(128, 256), modes=("cutoff",), ks=(1, 2), answer_policy="strict"),
        packages={"budgeteval": "0.1.0", "datasets": "5.2.0"}))
    write_problems(run_dir, task, [{"problem_id": pid, "question": f"What is {index} + 1?", "reference": str(index + 1),
                                    "level": f"L{index}"} for index, pid in enumerate(problems)])
    for index, pid in enumerate(problems):
        write_shard(run_dir, task, [GenerationRecord(
            task=task, problem_id=pid, sample_idx=sample, prompt=f"What is {index} + 1?", prompt_num_tokens=7,
            token_ids=tuple(range(5 + sample)), text=f"The answer is {index + 1}.", finish_reason="stop",
            seed=1000 + index, max_tokens=256, model=model, backend="hf") for sample in range(2)])
    return run_dir


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory):
    from budgeteval.api import load_run

    root = tmp_path_factory.mktemp("publish")
    return [load_run(write_full_run(root / "base", "org/base-model")),
            load_run(write_full_run(root / "ours", "org/our-model"), label="ours")]


@pytest.fixture(scope="module")
def pushed(full_runs, tmp_path_factory):
    """`push --local` of both runs (license mit), as the `Push` it returns."""
    from budgeteval.api import push

    return push(full_runs, "my-org/budgets", local=tmp_path_factory.mktemp("pushed") / "ds", license="mit")


def folder_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _nulls_as_none(frame):
    return frame.astype(object).where(frame.notna(), None)


def test_push_local_writes_one_config_per_table_that_datasets_loads_and_equals_the_runs(full_runs, pushed, tmp_path):
    datasets = import_or_need("datasets", "datasets is not installed")

    result = pushed
    assert result.url is None and result.runs == ("base-model", "ours")
    folder = result.folder
    loaded = {name: datasets.load_dataset(str(folder), name, split="train", cache_dir=str(tmp_path / "cache")).to_pandas()
              for name in TABLES}
    for run, key in zip(full_runs, result.runs):
        def own(frame, key=key):
            return frame[frame["run"] == key].drop(columns="run").reset_index(drop=True)

        # An all-null column reads as None from datasets and as <NA> from a nullable pandas dtype.
        pd.testing.assert_frame_equal(_nulls_as_none(own(loaded["scores"]).sort_values(list(run.scores.columns[:5]))
                                                     .reset_index(drop=True)),
                                      _nulls_as_none(run.scores.sort_values(list(run.scores.columns[:5]))
                                                     .reset_index(drop=True)),
                                      check_dtype=False)
        keys = ["task", "mode", "budget", "metric", "k"]
        metrics = own(loaded["metrics"]).astype({"k": "float64"}).sort_values(keys).reset_index(drop=True)
        expected_metrics = run.metrics.astype({"k": "float64"}).sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(metrics, expected_metrics, check_dtype=False)
        generations = own(loaded["generations"]).sort_values(["problem_id", "sample_idx"]).reset_index(drop=True)
        expected = run.generations.sort_values(["problem_id", "sample_idx"]).reset_index(drop=True)
        assert generations["token_ids"].map(list).tolist() == expected["token_ids"].map(list).tolist()
        for column in ("task", "problem_id", "sample_idx", "prompt", "text", "finish_reason", "seed"):
            assert generations[column].tolist() == expected[column].tolist(), column
        problems = own(loaded["problems"]).sort_values("problem_id").reset_index(drop=True)
        assert problems["question"].tolist() == run.problems["question"].tolist()
        assert [json.loads(groups)["level"] for groups in problems["groups"]] == run.problems["level"].tolist()
    # The generations are sharded as the store shards them: one file per store shard.
    assert sorted(p.name for p in (folder / "data/generations/ours/t").iterdir()) == ["part-00000.parquet",
                                                                                     "part-00001.parquet"]


def test_the_card_parses_with_huggingface_hub_and_its_configs_validate(pushed):
    hub = import_or_need("huggingface_hub", "huggingface_hub is not installed")
    from datasets.utils.metadata import MetadataConfigs

    card = hub.DatasetCard.load(pushed.folder / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "mit" and data["base_model"] == ["org/base-model", "org/our-model"]
    assert "budgeteval" in data["tags"]
    configs = MetadataConfigs.from_dataset_card_data(card.data)  # what `datasets` reads; raises when malformed
    assert sorted(configs) == sorted(TABLES)
    text = card.text
    for needle in ("## Run `base-model`", "## Run `ours`", "| answer policy |", "strict", "temperature 0.6",
                   "datasets 5.2.0", "2026-01-02T03:04:05+00:00", "## Comparison with base-model", "### t",
                   "![accuracy vs token budget](figures/accuracy.png)",
                   'load_dataset("my-org/budgets", "generations", split="train")'):
        assert needle in text, needle
    assert (pushed.folder / "figures" / "accuracy.png").is_file()


def test_the_same_runs_give_the_same_folder_bytes(full_runs, pushed, tmp_path):
    from budgeteval.api import push

    push(full_runs, "my-org/budgets", local=tmp_path / "b", license="mit")
    assert folder_bytes(pushed.folder) == folder_bytes(tmp_path / "b")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "README.md").write_text("my notes")
    with pytest.raises(UserError, match="is not a dataset folder a push wrote"):
        push(full_runs, local=tmp_path / "mine")
    assert (tmp_path / "mine" / "README.md").read_text() == "my notes"


def test_push_refuses_an_unscored_run_and_a_gated_task_in_one_sentence(tmp_path):
    from budgeteval.api import load_run, push

    gated = load_run(write_full_run(tmp_path / "gpqa", "org/m", task="gpqa_diamond", gated=True))
    with pytest.raises(UserError, match="ask that its questions not be published in plain text.*--include-gated"):
        push([gated], local=tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    push([gated], local=tmp_path / "ds", include_gated=True)
    result = push([gated], local=tmp_path / "ds", include_gated=True)  # a folder an earlier push wrote is replaced
    record = json.loads((tmp_path / "ds" / "runs" / result.runs[0] / "push.json").read_text())
    assert record["gated_tasks_included"] == ["gpqa_diamond"]
    assert "Included with `--include-gated`" in (tmp_path / "ds" / "README.md").read_text()

    unscored = write_full_run(tmp_path / "unscored", "org/u")
    write_manifest(unscored, read_manifest(unscored).replace(scoring=None))
    result = CliRunner().invoke(main, ["push", str(unscored), "--local", str(tmp_path / "x")])
    assert result.exit_code == 2 and "is not scored: run `budgeteval score" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_gating_comes_from_the_task_yaml_for_runs_that_did_not_record_it(monkeypatch):
    from budgeteval.tasks import loading
    from budgeteval.tasks.loading import load_task_file, publish_policy

    # The task files of this checkout (an editable install elsewhere would list its own).
    monkeypatch.setattr(loading, "builtin_task_paths", lambda: {p.stem: p for p in (ROOT / "tasks").glob("*.yaml")})
    assert load_task_file(loading.builtin_task_paths()["gpqa_diamond"]).publish == "gated"
    assert load_task_file(loading.builtin_task_paths()["math500"]).publish == "open"
    assert publish_policy("gpqa_diamond") == "gated"
    assert publish_policy("math500") == "open"
    # Another task reading GPQA's hub dataset (lm-eval's, a copied YAML) is gated too.
    assert publish_policy("lm-eval:gpqa_main_zeroshot", None, "Idavidrein/gpqa") == "gated"


REAL_HF_API = HfApi
"""The Hub client whose signatures the stand-in checks (the tests replace `huggingface_hub.HfApi`)."""


class RecordingHub:
    """A stand-in for `huggingface_hub.HfApi` recording every call, each checked against the real
    method's signature (so a renamed or misspelt argument fails here as it would on the Hub);
    the repository holds `files`, and `records` maps a file to the local copy a download returns."""

    def __init__(self, files=(), records=None, exists=True):
        self.calls, self.files, self.records, self.exists = [], list(files), dict(records or {}), exists
        self.uploaded = None

    def _called(self, method, *args, **kwargs):
        import inspect

        inspect.signature(getattr(REAL_HF_API, method)).bind(None, *args, **kwargs)  # TypeError when HfApi would refuse
        self.calls.append((method, *args, *kwargs.values()) if method != "upload_folder" else (method, kwargs))

    def repo_exists(self, *args, **kwargs):
        self._called("repo_exists", *args, **kwargs)
        return self.exists

    def create_repo(self, *args, **kwargs):
        self._called("create_repo", *args, **kwargs)

    def create_branch(self, *args, **kwargs):
        self._called("create_branch", *args, **kwargs)

    def list_repo_files(self, *args, **kwargs):
        self._called("list_repo_files", *args, **kwargs)
        return list(self.files)

    def hf_hub_download(self, repo_id, filename, **kwargs):
        self._called("hf_hub_download", repo_id, filename, **kwargs)
        return self.records[filename]

    def upload_folder(self, **arguments):
        self._called("upload_folder", **arguments)
        folder = Path(arguments["folder_path"])
        self.uploaded = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/datasets/{arguments['repo_id']}/commit/1"})()


def test_the_upload_sends_the_push_folder_as_one_commit_to_a_dataset_repo(full_runs, pushed, monkeypatch):
    import huggingface_hub

    from budgeteval.api import push

    hub = RecordingHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *args, **kwargs: hub)
    result = push(full_runs, "my-org/budgets", private=True, revision="sweeps", license="mit")
    assert result.url.endswith("/commit/1") and result.folder is None
    names = [call[0] for call in hub.calls]
    assert names[-1] == "upload_folder" and ("create_repo", "my-org/budgets", "dataset", True, True) in hub.calls
    assert ("create_branch", "my-org/budgets", "dataset", "sweeps", True) in hub.calls
    arguments = hub.calls[-1][1]
    assert arguments["repo_id"] == "my-org/budgets" and arguments["repo_type"] == "dataset"
    assert arguments["revision"] == "sweeps" and arguments["delete_patterns"] is None
    assert arguments["commit_message"] == "budgeteval push: base-model, ours"
    assert hub.uploaded == folder_bytes(pushed.folder)  # the upload is exactly the --local folder


def test_the_upload_refuses_to_overwrite_another_push_of_a_run_with_the_same_name(full_runs, tmp_path, monkeypatch):
    import huggingface_hub

    from budgeteval.api import push

    stale = tmp_path / "push.json"
    stale.write_text(json.dumps({"content_sha256": "0" * 64}))
    remote = ["README.md", "data/scores/ours/scores.parquet", "runs/ours/push.json",
              "data/scores/older/scores.parquet", "data/continuations/older/t/part-00000.parquet", "runs/older/push.json"]
    hub = RecordingHub(remote, {"runs/ours/push.json": str(stale), "runs/older/push.json": str(stale)})
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *args, **kwargs: hub)
    with pytest.raises(UserError, match="already holds run 'ours' with other content.*--replace"):
        push(full_runs[1:], "my-org/budgets")
    assert "upload_folder" not in [call[0] for call in hub.calls]

    push(full_runs[1:], "my-org/budgets", replace=True)
    arguments = hub.calls[-1][1]
    assert arguments["delete_patterns"] == ["data/*/ours/*", "data/*/ours/*/*", "runs/ours/*"]
    card = hub.uploaded["README.md"].decode()
    assert "also holds runs pushed earlier" in card and "`older`" in card  # listed, not touched
    assert "config_name: continuations" in card  # the older run's forced-mode config stays in the card

    # The same content under the same name is no conflict: the commit changes nothing of it.
    same = tmp_path / "same.json"
    record = json.loads(hub.uploaded["runs/ours/push.json"])
    same.write_text(json.dumps({"content_sha256": record["content_sha256"]}))
    hub = RecordingHub(remote, {"runs/ours/push.json": str(same), "runs/older/push.json": str(stale)})
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *args, **kwargs: hub)
    push(full_runs[1:], "my-org/budgets")
    assert hub.calls[-1][1]["delete_patterns"] is None


def test_the_package_exports_push_and_log():
    import budgeteval
    from budgeteval import api

    for name in ("push", "log", "Push"):
        assert name in budgeteval.__all__ and getattr(budgeteval, name) is getattr(api, name)


def test_push_refuses_bad_arguments_before_reading_runs(full_runs):
    from budgeteval.api import push

    with pytest.raises(UserError, match="needs --repo ORG/NAME"):
        push(full_runs)
    with pytest.raises(UserError, match="is not a repository id"):
        push(full_runs, "no-slash")


# ---- trackers ------------------------------------------------------------------------------------


def _cli(args, env_extra, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **env_extra}
    return subprocess.run([sys.executable, "-m", "budgeteval.cli", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120)


def wandb_records(path: Path):
    """The records of a W&B transaction log (`run-<id>.wandb`): a LevelDB-style log of protobuf `Record`s
    (32 KiB blocks, each chunk behind a 7-byte header: checksum, length, type), after a 7-byte file header."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, block, pending = 7, 32768, b""
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if length == 0 and kind == 0:
            break
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _items(items) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


@pytest.mark.slow
def test_log_to_wandb_offline_writes_a_run_whose_history_and_summary_hold_the_metrics(full_runs, tmp_path):
    import_or_need("wandb", "wandb is not installed (the track extra)")
    run = full_runs[0]
    result = _cli(["log", str(run.path), "--to", "wandb", "--project", "budgets"],
                  {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}, tmp_path)
    assert result.returncode == 0, result.stderr
    (log_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    history, summary, config = [], {}, {}
    for record in wandb_records(log_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(_items(record.history.item))
        elif kind == "summary":
            summary.update(_items(record.summary.update))
        elif kind == "run":
            assert record.run.display_name == "base-model" and record.run.project == "budgets"
            config.update(_items(record.run.config.update))
    assert config["budgeteval_run"] == "base-model" and config["config"]["model"] == "org/base-model"
    metrics = run.metrics
    curves = {row["budget"]: row for row in history if "budget" in row}
    assert sorted(curves) == [128, 256]
    for row in metrics.itertuples():
        name = row.metric if pd.isna(row.k) else f"{row.metric}@{int(row.k)}"
        if pd.notna(row.value):
            assert curves[row.budget][f"curves/{row.task}/{row.mode}/{name}"] == pytest.approx(row.value)
    at_largest = metrics[(metrics["budget"] == 256) & (metrics["metric"] == "mean") & (metrics["k"] == 1)]
    assert summary["curves/t/cutoff/mean@1"] == pytest.approx(float(at_largest["value"].iloc[0]))
    assert summary["budget_metrics/_type"] == "table-file" and summary["budget_metrics/nrows"] == len(metrics)
    assert summary["figures/accuracy/_type"] == summary["figures/truncation/_type"] == "image-file"


TRACKIO_READER = """
import json, sys
import trackio
from trackio.sqlite_storage import SQLiteStorage

project = sys.argv[1]
runs = {run.name: {"config": run.config, "logs": SQLiteStorage.get_logs(project, run.name)}
        for run in trackio.Api().runs(project)}
print(json.dumps(runs, default=str))
"""
"""Reads a Trackio project back with Trackio's own API (in a child: Trackio fixes its store's folder at import)."""


def read_trackio(project: str, store: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", TRACKIO_READER, project], env={**os.environ, "TRACKIO_DIR": str(store)},
                            text=True, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_log_to_trackio_writes_a_local_project_read_back_with_trackios_api(full_runs, tmp_path):
    import_or_need("trackio", "trackio is not installed (the track extra)")
    store = tmp_path / "trackio"
    paths = [f"{run.path}={run.label}" for run in full_runs]
    result = _cli(["log", *paths, "--to", "trackio", "--project", "budgets", "--name", "sweep"],
                  {"TRACKIO_DIR": str(store)}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Logged sweep-ours to trackio project budgets" in result.stdout
    runs = read_trackio("budgets", store)
    assert sorted(runs) == ["sweep-base-model", "sweep-ours"]
    for run in full_runs:
        logged = runs[f"sweep-{run.label}"]
        assert logged["config"]["budgeteval_run"] == run.label
        assert logged["config"]["config"]["model"] == run.model
        curves = {entry["step"]: entry for entry in logged["logs"] if any(key.startswith("curves/") for key in entry)}
        assert sorted(curves) == [128, 256]  # the budget is the x axis
        for row in run.metrics.itertuples():
            name = row.metric if pd.isna(row.k) else f"{row.metric}@{int(row.k)}"
            if pd.notna(row.value):
                assert curves[row.budget][f"curves/{row.task}/{row.mode}/{name}"] == pytest.approx(row.value)
        (table,) = [entry["budget_metrics"] for entry in logged["logs"] if "budget_metrics" in entry]
        assert table["_type"] == "trackio.table" and len(table["_value"]) == len(run.metrics)
        assert any("figures/accuracy" in entry for entry in logged["logs"])


STEP_LOGGER = """
import sys
import pandas as pd
from budgeteval.publish.trackers import Destination, StepLogger

logger = StepLogger(Destination("trackio", "training", "grpo"), {"out": "watch"})
for step, value in ((10, 0.25), (20, 0.5)):
    logger(step, pd.DataFrame({"task": ["t", "t"], "mode": ["cutoff", "cutoff"], "budget": [128, 128],
                               "metric": ["mean", "truncation_rate"], "k": pd.array([1, None], dtype="Int64"),
                               "value": [value, 1 - value]}))
logger.close()
"""


@pytest.mark.slow
def test_watch_steps_are_logged_at_their_training_step_under_the_trl_callbacks_keys(tmp_path):
    import_or_need("trackio", "trackio is not installed (the track extra)")
    store = tmp_path / "trackio"
    env = {**os.environ, "TRACKIO_DIR": str(store), "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", STEP_LOGGER], env=env, text=True, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    logs = read_trackio("training", store)["grpo"]["logs"]
    assert [(entry["step"], entry["budget/t/128/mean@1"], entry["budget/t/128/truncation_rate"]) for entry in logs] == [
        (10, 0.25, 0.75), (20, 0.5, 0.5)]


def test_a_bad_log_destination_is_one_sentence_before_any_work(full_runs):
    result = CliRunner().invoke(main, ["score", str(full_runs[0].path), "--log", "tensorboard:p"])
    assert result.exit_code == 2 and "must look like TRACKER:PROJECT" in result.output
    result = CliRunner().invoke(main, ["log", str(full_runs[0].path), "--to", "mlflow", "--project", "p"])
    assert result.exit_code == 2 and "mlflow" in result.output


class RecordingTracker:
    """A tracker run that records what it is given (registered in `TRACKERS` by the tests below)."""

    opened: list = []

    def __init__(self, project, name, config):
        self.project, self.name, self.config, self.calls = project, name, config, []
        RecordingTracker.opened.append(self)

    def log_curves(self, rows):
        self.calls.append(("curves", list(rows)))

    def log_step(self, values, step):
        self.calls.append(("step", step, values))

    def log_table(self, key, frame):
        self.calls.append(("table", key, frame))

    def log_images(self, images):
        self.calls.append(("images", {key: Path(path).read_bytes()[:8] for key, path in images.items()}))

    def finish(self):
        self.calls.append(("finish",))


@pytest.fixture
def recording_tracker(monkeypatch):
    import_or_need("trackio", "trackio is not installed (the track extra)")
    from budgeteval.publish import trackers

    RecordingTracker.opened = []
    monkeypatch.setitem(trackers.TRACKERS, "trackio", "test_publish:RecordingTracker")
    return RecordingTracker


def test_a_logged_run_holds_every_metric_as_a_table_and_as_curves_against_the_budget(full_runs, recording_tracker):
    from budgeteval.api import log

    assert log(full_runs[:1], to="trackio", project="p") == ["base-model"]
    first = recording_tracker.opened[0]
    assert first.project == "p" and first.config["budgeteval_run"] == "base-model"
    assert first.config["tasks"]["t"]["scorer"] == "math"
    kinds = [call[0] for call in first.calls]
    assert kinds == ["curves", "table", "images", "finish"]
    rows = first.calls[0][1]
    assert [row["budget"] for row in rows] == [128, 256]
    metrics = full_runs[0].metrics
    # Every metric row becomes a point: new metrics a scorer adds flow through without code changes.
    assert sum(len(row) - 1 for row in rows) == int(metrics["value"].notna().sum())
    assert len(first.calls[1][2]) == len(metrics)
    images = first.calls[2][1]
    assert set(images) == {"figures/accuracy", "figures/truncation", "figures/length", "figures/length_distribution"}
    assert all(head == b"\x89PNG\r\n\x1a\n" for head in images.values())


def test_score_log_logs_the_rescored_run_after_scoring(full_runs, recording_tracker, monkeypatch):
    from budgeteval.scoring import evaluate

    scored = []
    monkeypatch.setattr(evaluate, "evaluate_run", lambda path, **options: scored.append(path))
    result = CliRunner().invoke(main, ["score", str(full_runs[1].path), "--log", "trackio:p", "--quiet"])
    assert result.exit_code == 0, result.output
    assert scored == [full_runs[1].path]
    (opened,) = recording_tracker.opened
    assert opened.name == "our-model" and opened.calls[-1] == ("finish",)


def test_runs_pushed_together_share_one_schema_even_with_a_column_that_is_all_null(full_runs, tmp_path):
    datasets = import_or_need("datasets", "datasets is not installed")
    from budgeteval.api import load_run, push
    from budgeteval.scoring.evaluate import write_scores

    blank = write_full_run(tmp_path / "blank", "org/blank")
    scores = load_run(blank).scores.assign(extracted=None, finished=None, answer_source=None)
    write_scores(blank, scores)
    push([full_runs[0], load_run(blank)], local=tmp_path / "ds")
    loaded = datasets.load_dataset(str(tmp_path / "ds"), "scores", split="train", cache_dir=str(tmp_path / "cache"))
    frame = loaded.to_pandas()
    assert frame.groupby("run")["extracted"].count().to_dict() == {"base-model": len(full_runs[0].scores), "blank": 0}


def test_the_manifest_records_a_gated_task_and_leaves_open_ones_as_they_were():
    from budgeteval.rundir.manifest import Manifest, task_entry
    from budgeteval.tasks.loading import load_task_file

    gated = task_entry(load_task_file(ROOT / "tasks" / "gpqa_diamond.yaml"), [])
    opened = task_entry(load_task_file(ROOT / "tasks" / "math500.yaml"), [])
    assert (gated.publish, opened.publish) == ("gated", None)
    data = Manifest(kind="test", config=RunConfig(model="m", tasks=("gpqa_diamond", "math500"), out="x"),
                    tasks={"gpqa_diamond": gated, "math500": opened}).to_json()
    assert data["tasks"]["gpqa_diamond"]["publish"] == "gated" and "publish" not in data["tasks"]["math500"]
    assert Manifest.from_json(data).tasks["gpqa_diamond"].publish == "gated"


def test_a_task_yaml_with_an_unknown_publish_value_is_one_sentence(tmp_path):
    from budgeteval.tasks.loading import load_task_file

    text = (ROOT / "tasks" / "gsm8k.yaml").read_text().replace("scorer: gsm8k", "scorer: gsm8k\npublish: secret")
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(UserError, match="'publish' must be one of open, gated, not 'secret'"):
        load_task_file(tmp_path / "t.yaml")


def _push_one_store(run_dir, kind, tmp_path):
    """Push a run holding one mode store; its config is in the card (no other store's is) and loads with
    one row per stored row of the run. Returns (loaded, stored) frames."""
    datasets = import_or_need("datasets", "datasets is not installed")
    from budgeteval.api import load_run, push
    from budgeteval.rundir.store import read_task

    result = push([load_run(run_dir)], local=tmp_path / "ds")
    card = (tmp_path / "ds" / "README.md").read_text()
    assert f"config_name: {kind.folder}" in card and "config_name: conditioned" not in card
    loaded = datasets.load_dataset(str(tmp_path / "ds"), kind.folder, split="train",
                                   cache_dir=str(tmp_path / "cache")).to_pandas()
    stored = read_task(run_dir, "t", kind=kind).to_pandas()
    assert (loaded["run"] == result.runs[0]).all() and len(loaded) == len(stored) == 4
    return loaded, stored


def test_forced_mode_continuations_are_a_config_of_their_own(tmp_path):
    from budgeteval.rundir.store import CONTINUATIONS, ContinuationRecord

    run_dir = write_full_run(tmp_path / "forced", "org/forced")
    for budget in (128, 256):
        write_shard(run_dir, "t", [ContinuationRecord(
            task="t", problem_id=pid, sample_idx=0, budget=budget, continued=True, force_token_ids=(7, 8),
            force_string="</think>", token_ids=(1, 2, 3), text="Final answer: 1", finish_reason="stop", seed=5,
            max_tokens=64) for pid in ("p0", "p1")], kind=CONTINUATIONS)
    loaded, stored = _push_one_store(run_dir, CONTINUATIONS, tmp_path)
    assert loaded["force_token_ids"].map(list).tolist() == stored["force_token_ids"].map(list).tolist()
    assert sorted(p.name for p in (tmp_path / "ds" / "data" / "continuations" / "forced" / "t").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet"]


def test_engine_mode_responses_are_a_config_of_their_own(tmp_path):
    from budgeteval.rundir.store import ENGINE, EngineRecord

    run_dir = write_full_run(tmp_path / "engine", "org/engine")
    write_shard(run_dir, "t", [EngineRecord(
        task="t", problem_id=pid, sample_idx=0, prompt="Q", prompt_num_tokens=1, token_ids=(1, 2, 3), text="</think> 1",
        finish_reason="stop", seed=5, model="org/engine", backend="vllm", max_tokens=64, budget=budget)
        for pid in ("p0", "p1") for budget in (128, 256)], kind=ENGINE)
    loaded, stored = _push_one_store(run_dir, ENGINE, tmp_path)
    assert sorted(loaded["budget"].tolist()) == sorted(stored["budget"].tolist())
    assert loaded["token_ids"].map(list).tolist() == stored["token_ids"].map(list).tolist()
