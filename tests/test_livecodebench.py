"""The livecodebench task end to end: options, LiveCodeBench's prompt formats, a run through the
runner with a backend whose responses hold known solutions, and `budgeteval import` on the CLI."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import read_cases, shared_path

from budgeteval.errors import UserError
from budgeteval.generation.backends.base import SampleOutput
from budgeteval.generation.config import RunConfig
from budgeteval.scoring.evaluate import read_scores
from budgeteval.scoring.metrics import compute_metrics
from budgeteval.sweep.runner import run
from budgeteval.tasks.loading import load_problems, load_task
from budgeteval.tasks.prompts import PromptSettings, render_prompt

pytestmark = [pytest.mark.sandbox, pytest.mark.shared]

SYSTEM = ("You are an expert Python programmer. You will be given a question (problem specification) and will "
          "generate a correct Python program that matches the specification and passes all tests. You will NOT "
          "return anything except for the program.")


@pytest.fixture(scope="module")
def data_file() -> str:
    return str(shared_path("data", "livecodebench_v5_public_tests.jsonl"))


def lcb(data_file, **options):
    return load_task("livecodebench", {"livecodebench": data_file}, {"livecodebench": options})


def test_date_window_is_the_2408_2502_set(data_file):
    rows = [json.loads(line) for line in open(data_file)]
    problems = load_problems(lcb(data_file, start="2024-08-01", end="2025-02-01"))
    assert len(problems) == 279
    assert {p.problem_id for p in problems} == {r["question_id"] for r in rows if r["in_window_2408_2502"]}


def test_filters_combine_and_limit_applies_after_them(data_file):
    problems = load_problems(lcb(data_file, platform="codeforces", difficulty="easy"))
    assert [p.problem_id for p in problems] == ["1873_A", "1873_B", "1873_D", "1899_A"]
    assert [p.problem_id for p in load_problems(lcb(data_file, end="2023-05-13", platform="atcoder"), limit=2)] == [
        "abc301_a", "abc301_b"]


def test_release_option_chooses_the_hub_files(monkeypatch, data_file):
    import datasets

    calls = []
    real = datasets.load_dataset

    def fake_load_dataset(builder, **kwargs):
        calls.append((builder, kwargs))
        return real("json", data_files=data_file, split="train")

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = load_task("livecodebench", None, {"livecodebench": {"release": "release_v3", "end": "2023-05-07"}})
    assert [p.problem_id for p in load_problems(task)] == ["2777", "2779"]
    assert calls == [("json", {"data_files": [f"hf://datasets/livecodebench/code_generation_lite/test{n}.jsonl"
                                              for n in ("", "2", "3")], "split": "train"})]
    default = load_task("livecodebench")
    assert dict(default.option_values)["release"] == "release_v5" and len(default.source.data_files) == 5


@pytest.mark.parametrize("options, message", [
    ({"relase": "release_v5"}, "has no option 'relase'"),
    ({"release": "release_v9"}, "choose one of release_v1"),
    ({"start": "August 2024"}, "give a date as YYYY-MM-DD"),
])
def test_bad_options_are_one_clear_error(data_file, options, message):
    with pytest.raises(UserError, match=message):
        lcb(data_file, **options)


def test_prompts_follow_livecodebench_formats(data_file):
    problems = {p.problem_id: p for p in load_problems(lcb(data_file, end="2023-05-13"))}
    task = lcb(data_file)
    settings = PromptSettings(chat_template=False)
    stdin_prompt = render_prompt(task, problems["abc301_a"], None, settings)
    assert stdin_prompt == (
        f"{SYSTEM}\n\n### Question:\n{problems['abc301_a'].question}\n\n### Format: Read the inputs from stdin solve "
        "the problem and write the answer to stdout (do not directly test on the sample inputs). Enclose your code "
        "within delimiters as follows.\n```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided format "
        "with backticks)\n\n")
    functional = problems["2777"]
    assert render_prompt(task, functional, None, settings) == (
        f"{SYSTEM}\n\n### Question:\n{functional.question}\n\n### Format: You will use the following starter code to "
        "write the solution to the problem and enclose your code within delimiters.\n```python\n"
        f"{functional.prompt_fields['starter_code']}\n```\n\n### Answer: (use the provided format with backticks)\n\n")


# --- a run through the runner with a backend that answers with known solutions ----------------------


def _solutions() -> dict[str, dict[str, str]]:
    table = {}
    for case in read_cases("livecodebench_solutions.jsonl"):
        table.setdefault(case["problem_id"], {}).setdefault(case["verdict"], case["response"])
    return table


class SolutionBackend:
    """Answers sample 0 of each problem with a correct program and sample 1 with a wrong one, each after
    a thinking block of ~100 tokens (so small budgets cut the thinking and leave no answer)."""

    name = "solutions"

    def __init__(self, tokenizer):
        self.tokenizer, self.solutions = tokenizer, _solutions()

    def _sample(self, text: str, max_tokens: int) -> SampleOutput:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        finish = "stop" if len(ids) <= max_tokens else "length"
        return SampleOutput(tuple(ids[:max_tokens]), text, finish)

    def generate(self, requests, sampling):
        outputs = []
        for request in requests:
            problem_id = request.key.split("/", 1)[1]
            thinking = "<think>\n" + "Let me think about the problem carefully. " * 12 + "\n</think>\n\n"
            answers = [self.solutions[problem_id]["passed"], self.solutions[problem_id]["wrong_answer"]]
            outputs.append([self._sample(thinking + answers[i % 2], request.max_tokens) for i in range(request.n)])
        return outputs

    def describe(self):
        return {"backend": self.name}

    def close(self):
        pass


def test_run_scores_known_solutions_at_every_budget(tmp_path, data_file, sandbox):
    from budgeteval.generation.tokenizer import load_tokenizer

    tokenizer_dir = str(shared_path("tokenizers", "qwen3"))
    config = RunConfig(model="solutions", tokenizer=tokenizer_dir, tasks=("livecodebench",), out=str(tmp_path / "run"),
                       data_files=(("livecodebench", data_file),), task_options=(("livecodebench", "end", "2023-05-07"),),
                       n=2, budgets=(32, 2048), workers=2)
    run_dir = run(config, progress=False, backend=SolutionBackend(load_tokenizer(tokenizer_dir)), bootstrap=0)
    scores = read_scores(run_dir)
    full = scores[scores.budget == 2048].sort_values(["problem_id", "sample_idx"])
    assert list(full.problem_id) == ["2777", "2777", "2779", "2779"]
    assert list(full.correct) == [True, False, True, False]
    assert [value.split(":")[0] for value in full.extracted] == ["passed", "wrong_answer"] * 2
    cut = scores[scores.budget == 32]
    assert not cut.correct.any() and cut.extracted.isna().all() and not cut.finished.any()
    metrics = compute_metrics(scores, [1, 2])
    at_full = metrics[(metrics.budget == 2048) & (metrics["mode"] == "cutoff") & (metrics.k == 2)].set_index("metric").value
    assert at_full["mean"] == 0.5 and at_full["pass"] == 1.0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["task_options"] == {"livecodebench": {"end": "2023-05-07"}}
    assert manifest["tasks"]["livecodebench"]["options"]["release"] == "release_v5"
    assert manifest["generation"]["tasks"]["livecodebench"]["options"]["end"] == "2023-05-07"

    other = RunConfig(**{**config.__dict__, "task_options": (("livecodebench", "end", "2023-05-13"),)})
    with pytest.raises(UserError, match="different configuration"):
        run(other, progress=False, backend=SolutionBackend(load_tokenizer(tokenizer_dir)), bootstrap=0)


# --- the CLI: `budgeteval import` of responses holding known solutions ------------------------------


@pytest.mark.slow
def test_cli_import_scores_stdin_and_functional_solutions(tmp_path, data_file, sandbox):
    pairs = {}  # per problem: a passing response, then a failing one (every problem needs the same n)
    for case in read_cases("livecodebench_solutions.jsonl"):
        if case["verdict"] in ("passed", "wrong_answer", "runtime_error"):
            pair = pairs.setdefault(case["problem_id"], [None, None])
            slot = 0 if case["verdict"] == "passed" else 1
            pair[slot] = pair[slot] or case
    rows = [{"pid": problem_id, "out": "<think>\nshort thought\n</think>\n\n" + case["response"],
             "expect": case["verdict"] == "passed"} for problem_id, pair in pairs.items() for case in pair]
    assert len(rows) == 16
    source = tmp_path / "responses.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "imported"
    result = subprocess.run(
        [sys.executable, "-m", "budgeteval.cli", "import", str(source), "--task", "livecodebench",
         "--tokenizer", str(shared_path("tokenizers", "qwen3")), "--field", "problem_id=pid", "--field", "response=out",
         "--data", f"livecodebench={data_file}", "--task-option", "livecodebench.end=2023-08-21",
         "--budgets", "4,4096", "--workers", "2", "--bootstrap", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| 4k |" in result.stdout or "4096" in result.stdout
    scores = read_scores(out)
    full = scores[scores.budget == 4096].sort_values(["problem_id", "sample_idx"]).reset_index(drop=True)
    expected = pd.DataFrame(rows).assign(sample_idx=lambda f: f.groupby("pid").cumcount())
    merged = full.merge(expected, left_on=["problem_id", "sample_idx"], right_on=["pid", "sample_idx"])
    assert len(merged) == len(rows)
    assert (merged.correct == merged.expect).all(), merged[["problem_id", "sample_idx", "extracted", "expect"]]
    assert not scores[scores.budget == 4].correct.any()
    problems = pd.read_parquet(out / "problems" / "livecodebench.parquet")
    modes = {json.loads(reference)["mode"] for reference in problems.reference}
    assert modes == {"stdin", "functional"}


@pytest.mark.parametrize("option, message", [
    ("livecodebench.bogus=1", "Task livecodebench has no option 'bogus'"),
    ("aime25.start=2024-08-01", "--task-option names task(s) not in --tasks: aime25"),
    ("release=release_v5", "must look like TASK.KEY=VALUE"),
])
def test_cli_task_option_mistakes_are_one_line(tmp_path, option, message):
    result = subprocess.run([sys.executable, "-m", "budgeteval.cli", "run", "--model", "unused", "--tasks", "livecodebench",
                             "--task-option", option, "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
    assert message in result.stderr


def test_a_problem_without_tests_is_skipped_and_counted_or_refused_with_strict(data_file, tmp_path):
    from budgeteval.rundir.manifest import task_entry
    from budgeteval.tasks.loading import load_problem_set

    with_tests = [json.loads(line) for line in open(data_file, encoding="utf-8")][:3]
    without = json.loads(open(shared_path("data", "livecodebench_v6_new_no_tests.jsonl"), encoding="utf-8").readline())
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(row) + "\n" for row in [with_tests[0], without, *with_tests[1:]]))
    task = lcb(str(mixed))
    loaded = load_problem_set(task)
    assert [p.problem_id for p in loaded.problems] == [row["question_id"] for row in with_tests]
    assert [problem_id for problem_id, _ in loaded.skipped] == [without["question_id"]]
    assert "no test cases" in loaded.skipped[0][1]
    assert [p.problem_id for p in load_problem_set(task, limit=2).problems] == [row["question_id"]
                                                                               for row in with_tests[:2]]
    entry = task_entry(task, loaded.problems, loaded.skipped)
    assert entry.num_problems == 3 and entry.num_skipped == 1 and list(entry.skipped) == [without["question_id"]]
    with pytest.raises(UserError, match=f"Problem {without['question_id']} has no test cases.*--strict"):
        load_problem_set(task, strict=True)
