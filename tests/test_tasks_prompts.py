"""Task YAML loading (every built-in task on its local data), prompt rendering, thinking markers."""

import pytest
from conftest import shared_path

from budgeteval.errors import UserError
from budgeteval.tasks.loading import builtin_task_paths, load_problems, load_task, problems_hash
from budgeteval.tasks.prompts import PromptSettings, default_think_end, prompt_closes_thinking, render_prompt

pytestmark = [pytest.mark.shared]

LOCAL_FILES = {"aime24": ("aime2024.jsonl", 30), "aime25": ("aime2025.jsonl", 30),
               "math500": ("math500.jsonl", 500), "gsm8k": ("gsm8k_test.jsonl", 1319)}


def test_builtin_tasks_are_installed():
    assert set(LOCAL_FILES) <= set(builtin_task_paths())


@pytest.mark.parametrize("name", sorted(LOCAL_FILES))
def test_builtin_task_loads_local_copy(name):
    file_name, size = LOCAL_FILES[name]
    task = load_task(name, {name: str(shared_path("data", file_name))})
    problems = load_problems(task)
    assert len(problems) == size == task.size
    assert len({p.problem_id for p in problems}) == size
    assert all(p.question and p.reference for p in problems)
    assert problems_hash(problems) == problems_hash(load_problems(task))
    assert len(load_problems(task, limit=3)) == 3


def test_gsm8k_ids_are_row_indices_and_references_keep_the_solution():
    task = load_task("gsm8k", {"gsm8k": str(shared_path("data", "gsm8k_test.jsonl"))})
    problems = load_problems(task, limit=2)
    assert [p.problem_id for p in problems] == ["0", "1"]
    assert problems[0].reference.rstrip().endswith("#### 18")


def test_user_task_yaml(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text('{"qid": "a", "q": "What is 2+2?", "gold": "4", "hint": "add"}\n')
    task_file = tmp_path / "mine.yaml"
    task_file.write_text(
        "name: mine\nversion: 3\ndataset: {path: me/mine, split: test}\n"
        "fields: {problem_id: qid, question: q, reference: gold}\n"
        "prompt: {template: '{question} Hint: {hint}.', system: Be brief.}\nscorer: math\n")
    task = load_task(str(task_file), {"mine": str(data)})
    assert (task.name, task.version, task.system_prompt) == ("mine", 3, "Be brief.")
    problem = load_problems(task)[0]
    text = render_prompt(task, problem, None, PromptSettings(chat_template=False))
    assert text == "Be brief.\n\nWhat is 2+2? Hint: add."


def test_newer_task_format_is_refused(tmp_path):
    task_file = tmp_path / "future.yaml"
    task_file.write_text("format: 99\nname: f\ndataset: {path: x}\nfields: {question: q, reference: a}\nscorer: math\n")
    with pytest.raises(UserError, match="upgrade budgeteval"):
        load_task(str(task_file))


def test_unknown_scorer_is_refused(tmp_path):
    task_file = tmp_path / "bad.yaml"
    task_file.write_text("name: f\ndataset: {path: x}\nfields: {question: q, reference: a}\nscorer: vibes\n")
    with pytest.raises(UserError, match="scorer 'vibes'"):
        load_task(str(task_file))


@pytest.fixture(scope="module")
def qwen3_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(shared_path("tokenizers", "qwen3")))


def test_chat_prompt_and_thinking_switch(qwen3_tokenizer):
    task = load_task("aime25", {"aime25": str(shared_path("data", "aime2025.jsonl"))})
    problem = load_problems(task, limit=1)[0]
    thinking = render_prompt(task, problem, qwen3_tokenizer, PromptSettings())
    assert thinking.startswith("<|im_start|>user\n") and thinking.endswith("<|im_start|>assistant\n")
    assert "\\boxed{}" in thinking and problem.question in thinking
    plain = render_prompt(task, problem, qwen3_tokenizer, PromptSettings(enable_thinking=False))
    think_end = default_think_end(qwen3_tokenizer)
    assert think_end == "</think>"
    assert not prompt_closes_thinking(thinking, think_end)
    assert prompt_closes_thinking(plain, think_end)
    system = render_prompt(task, problem, qwen3_tokenizer, PromptSettings(system_prompt="Be terse."))
    assert system.startswith("<|im_start|>system\nBe terse.<|im_end|>")


def test_think_end_defaults_per_tokenizer():
    from transformers import AutoTokenizer

    assert default_think_end(AutoTokenizer.from_pretrained(str(shared_path("tokenizers", "deepseek-r1-distill-qwen")))) == "</think>"
    assert default_think_end(AutoTokenizer.from_pretrained(str(shared_path("tokenizers", "qwen2.5")))) is None
