"""The verdict cache's own contract: what it keeps, what it never keeps, how its folder behaves."""

import pytest

from budgeteval.errors import UserError
from budgeteval.scoring import verdict_cache
from budgeteval.scoring.scorers.base import ScoreItem, Verdict
from budgeteval.scoring.verdict_cache import VerdictCache, cache_key, compact


def test_verdicts_round_trip_across_instances_and_folders(tmp_path):
    run, shared = tmp_path / "run", tmp_path / "shared"
    view = VerdictCache([run, shared]).view("math/v2/strict")
    view.put(cache_key("1/2", "boxed", "0.5", ""), Verdict("1/2", True, False, "boxed"))
    view.put(cache_key("3", "fallback", "x", "x"), Verdict(None, False, False, "none"))
    view.put(cache_key("3", "boxed", "hang", ""), Verdict("hang", False, True, "boxed"))  # timed out: never kept
    view.flush()
    for folder in (run, shared):
        again = VerdictCache([folder]).view("math/v2/strict")
        assert again.get(cache_key("1/2", "boxed", "0.5", "")) == Verdict("1/2", True, False, "boxed")
        assert again.get(cache_key("1/2", "boxed", "0.5", "")).answer_source == "boxed"
        assert again.get(cache_key("3", "fallback", "x", "x")).answer_source == "none"
        assert again.get(cache_key("3", "boxed", "hang", "")) is None
        # Another namespace (scorer version, policy, library version) sees nothing.
        assert VerdictCache([folder]).view("math/v3/strict").get(cache_key("1/2", "boxed", "0.5", "")) is None


def test_keys_differ_for_any_part_and_compaction_keeps_every_verdict(tmp_path, monkeypatch):
    assert cache_key("a", "b") != cache_key("ab", "") != cache_key("a", "b", None)
    monkeypatch.setattr(verdict_cache, "FLUSH_EVERY", 1)  # one part per verdict
    view = VerdictCache([tmp_path]).view("ns")
    for number in range(verdict_cache.COMPACT_AT + 3):
        view.put(cache_key(number), Verdict(str(number), number % 2 == 0, False, "boxed"))
    assert len(list(tmp_path.glob("part-*.parquet"))) == verdict_cache.COMPACT_AT + 3
    compact(tmp_path)
    assert len(list(tmp_path.glob("part-*.parquet"))) == 1
    reread = VerdictCache([tmp_path]).view("ns")
    assert all(reread.get(cache_key(n)) == Verdict(str(n), n % 2 == 0) for n in range(verdict_cache.COMPACT_AT + 3))


def test_a_killed_verification_is_not_cached(tmp_path):
    from budgeteval.scoring.scorers.math import score_batch

    cache = VerdictCache([tmp_path])
    items = [ScoreItem("p", "4", "so \\boxed{4}", True)]
    # A hard deadline no verification meets: the job is killed, counted wrong, and not remembered.
    killed = score_batch(items, workers=1, hard_timeout_s=0.0, verdict_cache=cache)
    assert killed[0].timed_out and not killed[0].correct and cache.added == 0
    verified = score_batch(items, workers=1, verdict_cache=cache)
    assert verified[0].correct and cache.added == 1
    assert score_batch(items, workers=1, verdict_cache=VerdictCache([tmp_path])) == verified


def test_a_shared_folder_that_is_a_file_is_refused_in_one_sentence(tmp_path):
    path = tmp_path / "cache"
    path.write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        verdict_cache.shared_cache_dir(path)
