"""lm-eval tasks in a budget sweep, and lm-eval / lighteval output imported, with the real lm-eval.

The lm-eval task is `gsm8k_cot_local`: a YAML that includes lm-eval's own `gsm8k_cot` and reads
../shared/data/gsm8k_test.jsonl through `dataset_path: json` (written at test time, since the shared
path and lm-eval's install path are only known then).
"""

import json
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from cli_checks import assert_user_error, budgeteval
from conftest import shared_path
from guards import import_or_need

from budgeteval.errors import UserError

pytestmark = [pytest.mark.lmeval, pytest.mark.shared]

lm_eval = import_or_need("lm_eval", "the lm-eval extra is not installed")

TASK = "gsm8k_cot_local"
NAME = f"lm-eval:{TASK}"


@pytest.fixture(scope="module")
def include(tmp_path_factory) -> Path:
    """A folder with the test's lm-eval YAMLs: gsm8k_cot on the shared file, and a multiple-choice task."""
    data = shared_path("data", "gsm8k_test.jsonl")
    builtin = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k-cot.yaml"
    folder = tmp_path_factory.mktemp("lm_eval_tasks")
    (folder / f"{TASK}.yaml").write_text(
        f"include: {builtin}\ntask: {TASK}\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n", encoding="utf-8")
    (folder / "gsm8k_choice_local.yaml").write_text(
        f"task: gsm8k_choice_local\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
        f"test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{{{question}}}}'\ndoc_to_target: 0\n"
        f"doc_to_choice: ['a', 'b']\n", encoding="utf-8")
    return folder


def _lm_eval_task(include: Path, name: str = TASK):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(include), include_defaults=False).load([name])["tasks"][name]


def test_non_generate_until_task_gets_one_sentence(include):
    result = budgeteval("run", "--model", "unused", "--tasks", "lm-eval:gsm8k_choice_local", "--lm-eval-include",
                        include, "--out", include / "never")
    assert_user_error(result, "multiple_choice task", "generate_until")


def test_listing_has_generate_until_tasks_only(include):
    from budgeteval.tasks.lm_eval import generate_until_tasks

    names = [name for name, _ in generate_until_tasks(str(include), defaults=False)]
    assert names == [TASK]


@pytest.fixture
def compiled_templates_kept(monkeypatch):
    """lm-eval compiles a task's Jinja template on every render (`doc_to_target` in each
    `process_results` call, ~10 ms); keeping the compiled templates renders the same strings 25x faster,
    which the 21k renders below need to stay a short test."""
    from functools import lru_cache

    from lm_eval import utils

    monkeypatch.setattr(utils.env, "from_string", lru_cache(maxsize=None)(utils.env.from_string))


def test_verdicts_equal_lm_eval_pipeline_on_real_responses(include, compiled_templates_kept):
    """5276 real GSM8K solutions: budgeteval's lmeval scorer vs lm-eval's own pipeline, both filters."""
    from lm_eval.models.utils import postprocess_generated_text

    from budgeteval.scoring.scorers.base import ScoreItem
    from budgeteval.scoring.scorers.lmeval import score_batch
    from budgeteval.tasks.lm_eval import problem_reference
    from budgeteval.tasks.loading import load_problems, load_task

    solutions = pd.read_json(shared_path("generations", "gsm8k_openai_example_solutions.jsonl"), lines=True)
    # lm-eval's pipeline: the task's instances, the responses as lm-eval's HF model would return them
    # (cut at the stop strings), its filters, process_results per filter.
    task = _lm_eval_task(include)
    task.set_config(key="num_fewshot", value=0)  # the verdicts do not read the prompt; fewer renders
    task.build_all_requests()
    until = task.config.generation_kwargs["until"]
    expected = {}
    for model, rows in solutions.groupby("model"):
        responses = dict(zip(rows.problem_idx, rows.response))
        for instance in task.instances:
            instance.resps = [postprocess_generated_text(responses[instance.doc_id], until, None)]
            instance.filtered_resps = {}
        task.apply_filters()
        for instance in task.instances:
            for filter_name, filtered in instance.filtered_resps.items():
                value = task.process_results(instance.doc, [filtered])["exact_match"]
                expected[(model, instance.doc_id, filter_name)] = bool(value)

    agreement = {}
    problems = load_problems(load_task(NAME, task_options={NAME: {"include": str(include)}}))
    for filter_name in ("strict-match", "flexible-extract"):
        bt_task = load_task(NAME, task_options={NAME: {"include": str(include),
                                                       "metric": f"exact_match,{filter_name}"}})
        references = {problem.problem_id: problem_reference(bt_task.lm_eval, "lmeval", int(problem.problem_id),
                                                            problem.prompt_fields["lm_eval_doc"], None)
                      for problem in problems}
        items = [ScoreItem(str(row.problem_idx), references[str(row.problem_idx)], row.response)
                 for row in solutions.itertuples()]
        verdicts = score_batch(items)
        same = [verdict.correct == expected[(row.model, row.problem_idx, filter_name)]
                for row, verdict in zip(solutions.itertuples(), verdicts)]
        agreement[filter_name] = (sum(same), len(same), sum(verdict.correct for verdict in verdicts))
    print("lm-eval verdict agreement (agree, total, correct):", agreement)
    for filter_name, (agree, total, _correct) in agreement.items():
        assert total == 5276 and agree == total, (filter_name, agree, total)
    assert 0 < agreement["flexible-extract"][2] < 5276, "both right and wrong answers are compared"


def test_changed_task_config_refuses_to_score(include):
    from budgeteval.scoring.scorers.base import ScoreItem
    from budgeteval.scoring.scorers.lmeval import score_batch
    from budgeteval.tasks.lm_eval import problem_reference, spec_from_reference

    task = _lm_eval_task(include)
    reference = json.loads(problem_reference(
        spec_from_reference({"lm_eval": {**_spec_fields(include), "config_sha256": "0" * 64}}), "lmeval", 0,
        dict(task.eval_docs[0]), "18"))
    with pytest.raises(UserError, match="has changed since the run was made"):
        score_batch([ScoreItem("0", json.dumps(reference), "The answer is 18.")])


def _spec_fields(include: Path) -> dict:
    from budgeteval.tasks.loading import load_task

    return asdict(load_task(NAME, task_options={NAME: {"include": str(include)}}).lm_eval)


def _hflm_chat_template(tokenizer):
    """lm-eval's own HFLM.apply_chat_template, bound to a stand-in holding just the tokenizer."""
    from lm_eval.models.huggingface import HFLM

    lm = SimpleNamespace(tokenizer=tokenizer, chat_template_args={})
    return lambda history, add_generation_prompt=True: HFLM.apply_chat_template(lm, history, add_generation_prompt)


@pytest.mark.slow
def test_budget_sweep_on_tiny_model(tiny_model, include, tmp_path):
    from transformers import AutoTokenizer

    from budgeteval.generation.backends.base import SamplingConfig
    from budgeteval.generation.config import RunConfig
    from budgeteval.report.runs import load_run
    from budgeteval.sweep.runner import run

    options = ((NAME, "include", str(include)), (NAME, "num_fewshot", "1"))
    config = RunConfig(model=str(tiny_model), tasks=(NAME,), out=str(tmp_path / "run"), backend="hf", limit=2, n=2,
                       budgets=(4, 12), task_options=options, sampling=SamplingConfig(temperature=1.0, top_p=1.0),
                       workers=1)
    run(config, progress=False, bootstrap=0)
    result = load_run(tmp_path / "run")
    entry = result.manifest.generation["tasks"][NAME]
    assert entry["lm_eval"]["num_fewshot"] == 1 and len(entry["lm_eval"]["config_sha256"]) == 64
    assert result.manifest.tasks[NAME].lm_eval["lm_eval_version"] == lm_eval_version()
    assert sorted(result.problems.problem_id) == ["0", "1"], "problem ids are lm-eval's doc_id"
    scores = result.scores
    assert len(scores) == 2 * 2 * 2 and set(scores.budget) == {4, 12}

    # The prompts are lm-eval's: its own instances with --apply_chat_template (few-shot as turns).
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    task = _lm_eval_task(include)
    task.set_config(key="num_fewshot", value=1)
    task.set_fewshot_seed(seed=1234)
    task.build_all_requests(limit=2, apply_chat_template=True, fewshot_as_multiturn=True,
                            chat_template=_hflm_chat_template(tokenizer))
    stored = result.generations.drop_duplicates("problem_id").set_index("problem_id").prompt
    assert {str(i.doc_id): i.arguments[0] for i in task.instances} == stored.to_dict()
    assert (result.generations.max_tokens == 12).all()

    # A changed task config (num_fewshot) refuses to resume.
    changed = replace(config, task_options=((NAME, "include", str(include)), (NAME, "num_fewshot", "0")))
    with pytest.raises(UserError, match="different configuration"):
        run(changed, progress=False, bootstrap=0)


@pytest.mark.slow
def test_builtin_task_on_local_data(tiny_model, tmp_path, monkeypatch):
    """`--tasks lm-eval:gsm8k_cot --data lm-eval:gsm8k_cot=PATH`: lm-eval's own built-in task (its prompt,
    few-shot examples and filters) on a local copy of its test split, through a wrapper YAML."""
    from budgeteval.generation.backends.base import SamplingConfig
    from budgeteval.generation.config import RunConfig
    from budgeteval.report.runs import load_run
    from budgeteval.sweep.runner import run
    from budgeteval.tasks.lm_eval import load_lm_eval_task

    monkeypatch.setenv("BUDGETEVAL_CACHE", str(tmp_path / "cache"))
    data = shared_path("data", "gsm8k_test.jsonl")
    name = "lm-eval:gsm8k_cot"
    config = RunConfig(model=str(tiny_model), tasks=(name,), out=str(tmp_path / "run"), backend="hf", limit=2, n=1,
                       budgets=(4, 8), data_files=((name, str(data)),), sampling=SamplingConfig(temperature=1.0, top_p=1.0),
                       workers=1)
    run(config, progress=False, bootstrap=0)
    result = load_run(tmp_path / "run")
    spec = result.manifest.tasks[name].lm_eval
    wrapper = Path(spec["yaml"])
    assert wrapper.parent.parent == tmp_path / "cache" / "lm-eval-data" and wrapper.name == "gsm8k_cot.yaml"
    assert str(data.resolve()) in wrapper.read_text() and "gsm8k-cot.yaml" in wrapper.read_text()
    assert spec["num_fewshot"] == 8, "the built-in task's own few-shot setting"
    first_question = json.loads(data.read_text().splitlines()[0])["question"]
    prompts = result.generations.drop_duplicates("problem_id").set_index("problem_id").prompt
    assert sorted(prompts.index) == ["0", "1"] and first_question in prompts["0"]
    assert "There are 15 trees in the grove" in prompts["0"], "gsm8k_cot's own few-shot examples"
    assert len(result.scores) == 2 * 1 * 2

    # The same command finds the same YAML: resuming is a no-op, not a changed config.
    run(config, progress=False, bootstrap=0)
    for bad, says in ((tmp_path / "missing.jsonl", "no such file"), (tmp_path / "notes.txt", "reads .jsonl")):
        if bad.suffix == ".txt":
            bad.write_text("x")
        with pytest.raises(UserError, match=says):
            load_lm_eval_task(name, {}, str(bad))


def lm_eval_version() -> str:
    from importlib import metadata

    return metadata.version("lm-eval")


def test_import_lm_eval_log_samples(tiny_model, include, tmp_path):
    """Really run lm-eval (its hf backend on the tiny model), write --log_samples as its CLI does, import."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from budgeteval.ingest.harness import import_harness_file
    from budgeteval.rundir.store import read_task
    from budgeteval.scoring.evaluate import evaluate_run, read_scores

    tracker = EvaluationTracker(output_path=str(tmp_path / "lm_eval_out"))
    results = simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_model},dtype=float32", tasks=[TASK], num_fewshot=0, limit=3,
        gen_kwargs={"max_gen_toks": 12, "do_sample": True, "temperature": 1.0}, apply_chat_template=True,
        fewshot_as_multiturn=True, log_samples=True, evaluation_tracker=tracker, device="cpu", batch_size=3,
        task_manager=TaskManager(include_path=str(include), include_defaults=False))
    samples = results.pop("samples")  # as lm-eval's CLI (`lm_eval run --log_samples`) saves them
    tracker.save_results_aggregated(results=results, samples=samples)
    tracker.save_results_samples(task_name=TASK, samples=samples[TASK])
    (samples_file,) = (tmp_path / "lm_eval_out").rglob(f"samples_{TASK}_*.jsonl")

    out = tmp_path / "imported"
    import_harness_file(samples_file, "lm-eval", NAME, str(tiny_model), out, budgets=(4, 12), think_end="",
                        task_options=((NAME, "include", str(include)),))
    evaluate_run(out, workers=1, progress=False, bootstrap=0)
    logged = [json.loads(line) for line in samples_file.read_text().splitlines()]
    logged = {str(row["doc_id"]): row for row in logged if row["filter"] == "strict-match"}
    stored = read_task(out, NAME).to_pandas().set_index("problem_id")
    assert sorted(stored.index) == ["0", "1", "2"]
    for problem_id, row in logged.items():
        assert stored.text[problem_id] == row["resps"][0][0]
        cut = len(stored.token_ids[problem_id]) >= 12
        assert (stored.finish_reason[problem_id] == "length") == cut
    scores = read_scores(out)
    at_limit = scores[scores.budget == 12].set_index("problem_id")
    for problem_id, row in logged.items():
        assert bool(at_limit.correct[problem_id]) == bool(row["exact_match"]), problem_id


def test_import_lighteval_details(tmp_path):
    """lighteval cannot install beside budgeteval (see docs/lm-eval-and-import.md): a details parquet in its 0.13 schema."""
    import datasets

    from budgeteval.ingest.harness import import_harness_file
    from budgeteval.scoring.evaluate import evaluate_run, read_scores

    solutions = pd.read_json(shared_path("generations", "gsm8k_openai_example_solutions.jsonl"), lines=True)
    rows = solutions[(solutions.model == "175b_verification") & (solutions.problem_idx < 6)]
    tokenizer = str(shared_path("tokenizers", "qwen3"))
    from transformers import AutoTokenizer

    encode = AutoTokenizer.from_pretrained(tokenizer)
    lengths = {str(row.problem_idx): len(encode(row.response)["input_ids"]) for row in rows.itertuples()}
    # A recorded limit that some responses reach and some do not.
    limit = sorted(lengths.values())[len(lengths) // 2]
    details = [{
        "doc": {"query": row.question, "choices": [row.gold_final_line.removeprefix("A: ")], "gold_index": 0,
                "instruction": None, "specific": None, "unconditioned_query": None, "original_query": None,
                "id": str(row.problem_idx), "task_name": "gsm8k", "fewshot_samples": [], "sampling_methods": [],
                "fewshot_sorting_class": None, "generation_size": limit, "stop_sequences": ["Question="],
                "use_logits": False, "num_samples": 1, "generation_grammar": None},
        "model_response": {"input": row.question, "input_tokens": [], "text": [row.response], "output_tokens": [],
                           "text_post_processed": None, "reasonings": [], "logprobs": [], "argmax_logits_eq_gold": [],
                           "logits": None, "unconditioned_logprobs": None, "truncated_tokens_count": 0,
                           "padded_tokens_count": 0},
        "metric": {"extractive_match": float(row.repo_correct)},
    } for row in rows.itertuples()]
    path = tmp_path / "details_gsm8k_2026-01-01T00-00-00.parquet"
    datasets.Dataset.from_list(details).to_parquet(str(path))

    out = tmp_path / "imported"
    import_harness_file(path, "lighteval", "gsm8k", tokenizer, out, budgets=(limit // 2, limit), think_end="")
    evaluate_run(out, workers=1, progress=False, bootstrap=0)
    scores = read_scores(out)
    top = scores[scores.budget == limit].set_index("problem_id")
    assert sorted(top.index) == sorted(str(i) for i in range(6))
    assert {pid for pid, n in lengths.items() if n >= limit} == set(top.index[~top.finished]), \
        "a response reaching the recorded generation_size counts as cut"
    assert any(n < limit for n in lengths.values()) and any(n >= limit for n in lengths.values())
