"""Sharded runs: `run --shard I/N` on the tiny model (transformers backend), `merge` of the shards gives
the single run's bytes, and every broken set of shards is refused with one sentence."""

import json
import shutil
from dataclasses import replace

import pytest
from cli_checks import assert_user_error, budgeteval
from sweep_checks import assert_token_split, sweep_config

from budgeteval.errors import UserError
from budgeteval.generation.config import EngineOptions, ModeSettings
from budgeteval.generation.shards import Shard, parse_shard, shard_of
from budgeteval.ingest.merge import merge_runs
from budgeteval.rundir.scores import read_scores
from budgeteval.sweep.runner import run

pytestmark = [pytest.mark.slow, pytest.mark.shared]

LIMIT = 11  # the first 11 AIME 2025 problems put 5, 1 and 5 problems in shards 0, 1, 2 of 3
MODES = ModeSettings(modes=("cutoff", "forced"), answer_tokens=4)


@pytest.fixture(scope="module")
def sweep(tiny_model, aime25_file, tmp_path_factory):
    """A single run and its three shards (all three budget modes), each run once for the module."""
    root = tmp_path_factory.mktemp("shards")
    config = sweep_config(tiny_model, root / "single", (8, 16), aime25_file, backend="hf", n=2, limit=LIMIT,
                          engine=EngineOptions(dtype="float32", device="cpu"), modes=MODES)
    single = run(config, progress=False, bootstrap=200)
    shards = [run(replace(config, out=str(root / f"shard{index}"), shard=Shard(index, 3)), progress=False,
                  bootstrap=200) for index in range(3)]
    return config, single, shards, root


def test_merged_shards_equal_the_single_run_byte_for_byte(sweep, tmp_path):
    config, single, shards, _ = sweep
    sizes = [len(json.loads((shard / "manifest.json").read_text())["shard"]["problem_ids"]["aime25"]) for shard in shards]
    assert sizes == [LIMIT] * 3
    generated = [len(list((shard / "generations" / "aime25").glob("part-*.parquet"))) for shard in shards]
    assert all(generated), "every shard should hold some problems of the sweep"
    merged = merge_runs(list(reversed(shards)), tmp_path / "merged", workers=2, progress=False)  # order is free
    for name in ("scores.parquet", "metrics.csv"):
        assert (merged / name).read_bytes() == (single / name).read_bytes(), name
    assert_token_split(read_scores(merged))  # merged runs score through the same path: the split is there
    manifest = json.loads((merged / "manifest.json").read_text())
    assert manifest["generation"] == json.loads((single / "manifest.json").read_text())["generation"]
    assert "shard" not in manifest and [item["shard"] for item in manifest["merged"]["shards"]] == ["0/3", "1/3", "2/3"]
    # The merged directory is an ordinary run for every other command.
    report = budgeteval("report", merged, "--format", "csv")
    assert report.returncode == 0 and "forced" in report.stdout
    compared = budgeteval("compare", f"{single}=single", f"{merged}=merged")
    assert compared.returncode == 0, compared.stderr
    rescored = budgeteval("score", merged, "--budgets", "8", "--quiet")
    assert rescored.returncode == 0, rescored.stderr


def test_merge_refuses_a_missing_or_doubled_shard(sweep, tmp_path):
    _, _, shards, _ = sweep
    with pytest.raises(UserError, match=r"^Shard 1/3 is missing \(2 of 3 shards given: 0, 2\)"):
        merge_runs([shards[0], shards[2]], tmp_path / "out", progress=False)
    copy = tmp_path / "shard1-copy"
    shutil.copytree(shards[1], copy)
    with pytest.raises(UserError, match=r"^Shard 1/3 is given twice \(.*shard1 and .*shard1-copy\)"):
        merge_runs([shards[0], shards[1], copy, shards[2]], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists(), "a refused merge writes nothing"


def test_merge_refuses_a_shard_with_another_seed_and_an_unfinished_one(sweep, tmp_path):
    config, _, shards, _ = sweep
    other_seed = run(replace(config, out=str(tmp_path / "seed1"), shard=Shard(1, 3), seed=1), progress=False)
    result = budgeteval("merge", shards[0], other_seed, shards[2], "--out", tmp_path / "out")
    assert_user_error(result, "Shard 1/3", "seed1", "seed was 0, now 1", "only --shard changed")
    unfinished = tmp_path / "shard2-unfinished"
    shutil.copytree(shards[2], unfinished)
    sorted((unfinished / "continuations" / "aime25").glob("part-*.parquet"))[-1].unlink()
    with pytest.raises(UserError, match=r"^Shard 2/3 \(.*\) is incomplete: its continuations store of task aime25"):
        merge_runs([shards[0], shards[1], unfinished], tmp_path / "out", progress=False)


def test_merge_refuses_a_run_that_is_not_a_shard_and_resume_keeps_the_shard(sweep, tmp_path):
    config, single, shards, root = sweep
    result = budgeteval("merge", single, shards[1], "--out", tmp_path / "out")
    assert_user_error(result, "is not a shard (it was run without --shard)")
    # Re-running a shard's command resumes it (nothing to do); the same directory as another shard is refused.
    with pytest.raises(UserError, match=r"shard.index was 0, now 1"):
        run(replace(config, out=str(root / "shard0"), shard=Shard(1, 3)), progress=False)


def test_partition_depends_only_on_task_and_problem_id():
    ids = [f"p{index}" for index in range(200)]
    shards = [shard_of("aime25", problem_id, 4) for problem_id in ids]
    assert shards == [shard_of("aime25", problem_id, 4) for problem_id in ids]  # any order, any subset
    assert set(shards) == {0, 1, 2, 3} and min(shards.count(index) for index in range(4)) > 30
    assert [shard_of("gsm8k", problem_id, 4) for problem_id in ids] != shards  # tasks split independently
    assert parse_shard("3/8") == Shard(3, 8) and str(Shard(3, 8)) == "3/8"
    for text in ("8/8", "-1/4", "1", "a/b", "0/0"):
        with pytest.raises(UserError, match=r"--shard .* must be I/N with 0 <= I < N"):
            parse_shard(text)
