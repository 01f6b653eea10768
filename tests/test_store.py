"""The parquet generation store: append-only shards, format versioning, duplicate detection."""

import pyarrow.parquet as pq
import pytest

from budgeteval.errors import UserError
from budgeteval.rundir.store import GenerationRecord, read_task, stored_problem_ids, stored_tasks, task_dir, write_shard


def record(problem_id: str, sample_idx: int, ids=(1, 2, 3)) -> GenerationRecord:
    return GenerationRecord(task="t", problem_id=problem_id, sample_idx=sample_idx, prompt="p", prompt_num_tokens=1,
                            token_ids=tuple(ids), text="x", finish_reason="stop", seed=7, max_tokens=8, model="m",
                            backend="hf")


def test_shards_append_and_read_back(tmp_path):
    first = write_shard(tmp_path, "t", [record("a", 0), record("a", 1)])
    second = write_shard(tmp_path, "t", [record("b", 0, ids=(5,) * 40000)])
    assert [first.name, second.name] == ["part-00000.parquet", "part-00001.parquet"]
    table = read_task(tmp_path, "t")
    assert table.num_rows == 3
    assert table.column("token_ids").to_pylist()[2] == [5] * 40000
    assert stored_problem_ids(tmp_path, "t") == {"a", "b"}
    assert stored_tasks(tmp_path) == ["t"]
    assert pq.read_schema(first).field("token_ids").type.value_type.bit_width == 32


def test_leftover_temp_file_is_ignored(tmp_path):
    write_shard(tmp_path, "t", [record("a", 0)])
    (task_dir(tmp_path, "t") / ".part-00001.parquet.abc.tmp").write_bytes(b"half a file")
    assert read_task(tmp_path, "t").num_rows == 1


def test_duplicates_are_detected(tmp_path):
    write_shard(tmp_path, "t", [record("a", 0)])
    write_shard(tmp_path, "t", [record("a", 0)])
    with pytest.raises(UserError, match="duplicate"):
        read_task(tmp_path, "t")


def test_newer_store_format_is_refused(tmp_path):
    path = write_shard(tmp_path, "t", [record("a", 0)])
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({"budgeteval_store_format": "99"}), path)
    with pytest.raises(UserError, match="newer budgeteval"):
        read_task(tmp_path, "t")


def test_empty_task_reads_as_empty(tmp_path):
    assert read_task(tmp_path, "none").num_rows == 0
    assert stored_problem_ids(tmp_path, "none") == set()
