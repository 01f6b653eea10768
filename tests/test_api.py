"""The Python API's write side equals the commands it sits under: `evaluate` = `run` + `report`,
`score` = `score`, `import_outputs` = `import` (byte-identical scores.parquet, the same report text);
settings are taken as the CLI takes them, and mistakes are the CLI's sentences."""

import json
import shutil

import pytest
from cli_checks import budgeteval as budgeteval_cli
from cli_checks import budgeteval_in_process
from conftest import shared_path

import budgeteval
from budgeteval import api
from budgeteval.errors import UserError

# --- settings and mistakes (no model, no data) ------------------------------------------------------


def test_the_package_exports_the_write_side():
    for name in ("evaluate", "score", "import_outputs", "analyze", "plot", "load_run", "load_runs", "Run"):
        assert name in budgeteval.__all__
        assert getattr(budgeteval, name) is getattr(api, name)


def test_budgets_are_taken_as_the_cli_takes_them():
    assert api.budgets_of("2k:8k:x2") == (2048, 4096, 8192)
    assert api.budgets_of("16,32") == api.budgets_of([32, 16]) == api.budgets_of(["16", "32"]) == (16, 32)
    assert api.budgets_of(["1k", "2k:4k:1k"]) == (1024, 2048, 3072, 4096)
    with pytest.raises(UserError, match="is not a token count"):
        api.budgets_of("2q")
    with pytest.raises(UserError, match="No budgets given"):
        api.budgets_of([])


def test_an_unknown_keyword_names_the_close_matches():
    with pytest.raises(TypeError) as caught:
        api.run_config("m", "gsm8k", out="x", temprature=0.7)
    message = str(caught.value)
    assert "'temprature'" in message and "did you mean temperature?" in message
    assert message.count("\n") == 0
    with pytest.raises(TypeError, match="it takes"):
        api.run_config("m", "gsm8k", out="x", zzzz=1)
    with pytest.raises(TypeError, match="did you mean budgets"):
        api.run_config("m", "gsm8k", out="x", budget="1k")


def test_a_repeated_data_option_keeps_every_entry_as_the_cli_did():
    pairs = (("gsm8k", "a.jsonl"), ("gsm8k", "b.jsonl"))
    assert api.data_files_of(["gsm8k=a.jsonl", "gsm8k=b.jsonl"]) == pairs
    config = api.run_config("m", "gsm8k", out="x", data=("gsm8k=a.jsonl", "gsm8k=b.jsonl"))
    assert config.data_files == pairs and config.to_dict()["data_files"] == {"gsm8k": "b.jsonl"}


def test_suites_tasks_and_settings_become_the_run_config():
    config = api.run_config("m", ["gsm8k", "aime25,gsm8k"], out="x", budgets="1k:4k:x2", n=4, backend="hf",
                            data={"gsm8k": "g.jsonl"}, temperature=0.7, top_p=0.9, seed=3,
                            tensor_parallel_size=2, task_options={"gsm8k": {"a": "b"}}, shard="1/2",
                            base_url=["http://a/v1", "http://b/v1"])
    assert config.tasks == ("gsm8k", "aime25")
    assert config.budgets == (1024, 2048, 4096) and config.n == 4 and config.seed == 3
    assert config.sampling.temperature == 0.7 and config.sampling.top_p == 0.9
    assert config.engine.tensor_parallel_size == 2
    assert config.engine.base_url == "http://a/v1" and config.engine.extra_base_urls == ("http://b/v1",)
    assert config.data_files == (("gsm8k", "g.jsonl"),) and config.task_options == (("gsm8k", "a", "b"),)
    assert (config.shard.index, config.shard.count) == (1, 2)


def test_mistakes_are_the_cli_sentences():
    with pytest.raises(UserError, match="--modes 'cutof' is not valid"):
        api.run_config("m", "gsm8k", out="x", modes="cutof")
    with pytest.raises(UserError, match="--tasks is empty"):
        api.run_config("m", " , ", out="x")
    with pytest.raises(UserError, match="--k '0' must be"):
        api.parse_ks("0")
    with pytest.raises(UserError, match="exceeds --n 2"):
        api.default_ks(2, "1,4")
    with pytest.raises(UserError, match="--kind 'scatter' is not a figure"):
        api.figure_kinds("budget,scatter")
    with pytest.raises(UserError, match="--data 'gsm8k' must look like TASK=PATH"):
        api.data_files_of(["gsm8k"])
    assert api.default_ks(8) == [1, 8] and api.default_ks(8, 4) == [4]


# --- import_outputs = import ------------------------------------------------------------------------

ROWS = [
    {"pid": "a", "out": "We add: 1 + 1 = 2. The answer is 2.", "gold": "2", "why": "stop"},
    {"pid": "a", "out": "We add: 1 + 1 = 2, and then we", "gold": "2", "why": "length"},
    {"pid": "b", "out": "So it is 5", "gold": "5", "why": "stop"},
    {"pid": "b", "out": "Hmm, 5 or", "gold": "5", "why": "length"},
]


@pytest.mark.shared
def test_import_outputs_equals_the_import_command(tmp_path):
    tokenizer = str(shared_path("tokenizers", "qwen2.5"))
    source = tmp_path / "gen.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    fields = {"problem_id": "pid", "response": "out", "reference": "gold", "finish_reason": "why"}
    result = budgeteval_in_process("import", source, "--task", "math500", "--tokenizer", tokenizer,
                                   *[f"--field={name}={column}" for name, column in fields.items()],
                                   "--budgets", "4,64", "--workers", "1", "--bootstrap", "0", "--out", tmp_path / "cli")
    assert result.returncode == 0, result.stderr[-2000:]
    run = budgeteval.import_outputs(source, task="math500", tokenizer=tokenizer, out=tmp_path / "api", fields=fields,
                                    budgets="4,64", workers=1, bootstrap=0, progress=False)
    assert isinstance(run, budgeteval.Run) and run.path == tmp_path / "api"
    assert (tmp_path / "api" / "scores.parquet").read_bytes() == (tmp_path / "cli" / "scores.parquet").read_bytes()
    assert run.report(fmt="markdown") in result.stdout
    frame = run.report()
    assert set(frame["budget"]) == {4, 64} and "mean@1" not in frame.columns and "metric" in frame.columns
    with pytest.raises(UserError, match="--field maps columns of --format table files"):
        budgeteval.import_outputs(source, task="math500", tokenizer=tokenizer, out=tmp_path / "x", fields=fields,
                                  format="lm-eval")


# --- evaluate = run + report; score = score (the tiny model on the hf backend) ---------------------


@pytest.mark.slow
@pytest.mark.shared
def test_evaluate_and_score_equal_the_commands(tiny_model, tmp_path):
    pytest.importorskip("torch")
    data = shared_path("data", "gsm8k_test.jsonl")
    settings = ["--budgets", "16,32", "--n", "2", "--limit", "3", "--backend", "hf", "--workers", "1",
                "--bootstrap", "0"]
    result = budgeteval_cli("run", "--model", tiny_model, "--tasks", "gsm8k", "--data", f"gsm8k={data}",
                            *settings, "--quiet", "--out", tmp_path / "cli")
    assert result.returncode == 0, result.stderr[-2000:]
    report = budgeteval_cli("report", tmp_path / "cli")
    assert report.returncode == 0, report.stderr[-2000:]

    run = budgeteval.evaluate(str(tiny_model), "gsm8k", data={"gsm8k": str(data)}, budgets="16,32", n=2, limit=3,
                              backend="hf", workers=1, bootstrap=0, progress=False, out=tmp_path / "api")
    assert isinstance(run, budgeteval.Run)
    assert (tmp_path / "api" / "scores.parquet").read_bytes() == (tmp_path / "cli" / "scores.parquet").read_bytes()
    assert run.report(fmt="markdown") + "\n" == report.stdout
    for fmt in ("csv", "json"):
        assert run.report(fmt=fmt) + "\n" == budgeteval_cli("report", tmp_path / "cli", "--format", fmt).stdout

    shutil.copytree(tmp_path / "cli", tmp_path / "cli-rescored")
    rescored_cli = budgeteval_cli("score", tmp_path / "cli-rescored", "--budgets", "8,16", "--workers", "1",
                                  "--bootstrap", "0", "--quiet")
    assert rescored_cli.returncode == 0, rescored_cli.stderr[-2000:]
    rescored = budgeteval.score(run, budgets="8,16", workers=1, bootstrap=0, progress=False)
    assert set(rescored.scores["budget"]) == {8, 16}
    assert ((tmp_path / "api" / "scores.parquet").read_bytes()
            == (tmp_path / "cli-rescored" / "scores.parquet").read_bytes())
    site = rescored.view(tmp_path / "site")
    assert site.name == "index.html" and site.is_file()
