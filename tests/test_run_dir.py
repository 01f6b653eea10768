"""The run directory's records: the manifest reads every format written so far, refuses newer ones,
and round-trips; scores carry their format version and a newer one is refused."""

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from budgeteval.errors import UserError
from budgeteval.generation.config import RunConfig
from budgeteval.rundir.layout import scores_path
from budgeteval.rundir.manifest import (
    MANIFEST_FORMAT_VERSION,
    Manifest,
    ModesSection,
    ScoringSection,
    TaskEntry,
    open_run,
    read_manifest,
    write_manifest,
)
from budgeteval.rundir.scores import SCORE_COLUMNS, SCORES_FORMAT_VERSION, read_scores, scores_schema, write_scores

CASES = Path(__file__).parent / "cases"


@pytest.mark.parametrize("name", ["manifest_format1_run.json", "manifest_format1_import.json"])
def test_a_format_1_manifest_from_before_the_record_still_reads(tmp_path, name):
    data = json.loads((CASES / name).read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    manifest = read_manifest(tmp_path)
    assert manifest.format == 1
    assert manifest.kind == data["budgeteval_manifest"]
    assert manifest.model == data["config"]["model"]
    assert list(manifest.tasks) == list(data["tasks"])
    assert manifest.config.budgets == tuple(data["config"]["budgets"])
    assert manifest.scoring.budgets == tuple(data["scoring"]["budgets"])
    assert manifest.think_end == data["think_end"]
    assert manifest.generation == data["generation"]
    # Written again, every section keeps its content (plus the current format number).
    write_manifest(tmp_path, manifest)
    again = json.loads((tmp_path / "manifest.json").read_text())
    assert again["format"] == MANIFEST_FORMAT_VERSION
    for section in ("config", "generation", "think_end", "packages", "hardware", "scoring", "engine", "modes"):
        assert _keeps(again.get(section), data.get(section)), section
    for task, entry in data["tasks"].items():
        assert {key: again["tasks"][task][key] for key in entry} == entry


def _keeps(new, old) -> bool:
    """`new` holds every key of `old` with its value (options added since may appear with their defaults)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return all(key in new and _keeps(new[key], value) for key, value in old.items())
    return new == old


def test_a_run_manifest_lists_modes_and_its_config_round_trips():
    data = json.loads((CASES / "manifest_format1_run.json").read_text())
    manifest = Manifest.from_json(data)
    assert manifest.run_modes == ("cutoff", "forced")
    assert _keeps(manifest.config.to_dict(), data["config"])
    assert RunConfig.from_dict(manifest.config.to_dict()) == manifest.config


def test_manifest_round_trip(tmp_path):
    manifest = Manifest(
        kind="run", config=RunConfig(model="org/m", tasks=("math500",), out=str(tmp_path), budgets=(16, 32),
                                     task_options=(("math500", "a", "1"),), data_files=(("math500", "x.jsonl"),)),
        tasks={"math500": TaskEntry(scorer="math", version=2, num_problems=3, data_sha256="ab")},
        generation={"seed": 0}, created="now", think_end="</think>",
        modes=ModesSection(modes=("cutoff", "forced"), force_string="x", answer_tokens=8),
        scoring=ScoringSection(budgets=(16, 32), modes=("cutoff",), ks=(1, 2), bootstrap=10),
        engine={"dtype": "float32"}, packages={"budgeteval": "0"}, hardware={"cpu_count": 2})
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    first = (tmp_path / "manifest.json").read_bytes()
    write_manifest(tmp_path, read_manifest(tmp_path))
    assert (tmp_path / "manifest.json").read_bytes() == first


@pytest.mark.parametrize("content, fragment", [
    ({"format": MANIFEST_FORMAT_VERSION + 1}, "newer than this budgeteval reads"),
    ([], "does not hold a JSON object"),
    ({"format": "two"}, "no budgeteval wrote"),
    ({"tasks": {"math500": "math"}}, "malformed"),
])
def test_a_manifest_it_cannot_read_is_refused_in_one_sentence(tmp_path, content, fragment):
    (tmp_path / "manifest.json").write_text(json.dumps(content))
    with pytest.raises(UserError, match=fragment):
        read_manifest(tmp_path)


def test_open_run_refuses_a_changed_fingerprint_and_accepts_an_added_mode(tmp_path):
    assert open_run(tmp_path / "r", {"seed": 0}, overwrite=False) is None
    write_manifest(tmp_path / "r", Manifest(kind="run", config=RunConfig(model="m", tasks=(), out=""), tasks={},
                                            generation={"seed": 0}))
    assert open_run(tmp_path / "r", {"seed": 0, "forced": {"answer_tokens": 8}}, overwrite=False) is not None
    with pytest.raises(UserError, match="seed was 0, now 1"):
        open_run(tmp_path / "r", {"seed": 1}, overwrite=False)
    assert open_run(tmp_path / "r", {"seed": 1}, overwrite=True) is None
    assert not (tmp_path / "r" / "manifest.json").exists()


def _scores() -> pd.DataFrame:
    return pd.DataFrame({
        "task": ["t", "t"], "problem_id": ["b", "a"], "sample_idx": pd.array([0, 0], dtype="int32"),
        "budget": [8, 8], "mode": ["cutoff", "cutoff"], "num_tokens": [3, 8], "finished": [True, False],
        "extracted": pd.array(["1", None], dtype="string"), "correct": [True, False], "timed_out": [False, False]})


def test_scores_carry_their_schema_and_format_version(tmp_path):
    write_manifest(tmp_path, Manifest(kind="test", config=RunConfig(model="m", tasks=("t",), out=""), tasks={}))
    write_scores(tmp_path, _scores())
    table = pq.read_table(scores_path(tmp_path))
    assert table.column_names == list(SCORE_COLUMNS)
    assert table.schema.metadata[b"budgeteval_scores_format"] == str(SCORES_FORMAT_VERSION).encode()
    assert table.schema.field("sample_idx").type == pa.int32()
    assert table.schema.remove_metadata().equals(scores_schema().remove_metadata())
    assert read_scores(tmp_path)["problem_id"].tolist() == ["a", "b"]


def test_scores_from_before_the_version_key_read_and_newer_ones_are_refused(tmp_path):
    write_manifest(tmp_path, Manifest(kind="test", config=RunConfig(model="m", tasks=("t",), out=""), tasks={}))
    old = pa.Table.from_pandas(_scores(), preserve_index=False)
    pq.write_table(old, scores_path(tmp_path))
    assert len(read_scores(tmp_path)) == 2
    before_split = read_scores(tmp_path)  # a file from before format 3: the token split reads as null
    assert before_split[["thinking_tokens", "answer_tokens", "cut_thinking"]].isna().all().all()
    assert str(before_split["thinking_tokens"].dtype) == "Int64" and str(before_split["cut_thinking"].dtype) == "boolean"
    newer = old.replace_schema_metadata({b"budgeteval_scores_format": str(SCORES_FORMAT_VERSION + 1).encode()})
    pq.write_table(newer, scores_path(tmp_path))
    with pytest.raises(UserError, match="newer than this budgeteval reads"):
        read_scores(tmp_path)
    scores_path(tmp_path).write_bytes(b"not parquet")
    with pytest.raises(UserError, match="Cannot read"):
        read_scores(tmp_path)
