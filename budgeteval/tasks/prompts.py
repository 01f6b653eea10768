"""Turn a task's problem into the exact prompt text and token ids every backend receives.

Prompts are rendered here once, with the model's own tokenizer and chat template, so the vLLM,
OpenAI-compatible and transformers backends all see identical prompt token ids.
This module also decides where a model's thinking ends (`think_end`), which replay needs.
"""

from dataclasses import dataclass

from budgeteval.errors import UserError
from budgeteval.tasks.loading import Problem, Task

THINK_END_MARKERS = ("</think>", "<|end_of_thought|>")
"""End-of-thinking markers of known reasoning-model families, tried in order for a default."""

BUDGET_PLACEHOLDERS = ("budget",)
"""Placeholders a budget prompt may hold: `{budget}`, the budget in tokens (e.g. 4096)."""


@dataclass(frozen=True)
class PromptSettings:
    """How a problem becomes a prompt for one model."""

    chat_template: bool = True
    """Wrap the question in the tokenizer's chat template (off for base models)."""
    system_prompt: str | None = None
    """System message; overrides the task's own when set."""
    enable_thinking: bool | None = None
    """Passed to the chat template as `enable_thinking`; None leaves the template's default."""


@dataclass(frozen=True)
class BudgetInstruction:
    """Conditioned mode: the budget named in the prompt (L1's "Think for {budget} tokens.")."""

    template: str
    """Instruction text; `{budget}` is replaced by the budget in tokens (`{{` and `}}` write literal braces)."""
    position: str
    """`suffix`: after the question (joined by a space); `prefix`: before it (a space);
    `system`: appended to the system prompt (a newline), or the system prompt itself."""
    budget: int
    """The budget in tokens."""

    def render(self) -> str:
        """The instruction with the budget filled in."""
        check_budget_prompt(self.template)
        return self.template.format(budget=self.budget)


def check_budget_prompt(template) -> None:
    """Refuse a budget prompt with a placeholder other than `BUDGET_PLACEHOLDERS`: every prompt would
    otherwise say the placeholder literally, and the run would generate for nothing."""
    import string

    if not isinstance(template, str):
        raise UserError(f"--budget-prompt must be text, got {template!r}.")
    allowed = ", ".join("{" + name + "}" for name in BUDGET_PLACEHOLDERS)
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise UserError(f"--budget-prompt {template!r} is not a valid template ({error}): use {allowed} and write "
                        f"a literal brace as {{{{ or }}}}.") from None
    unknown = [name for name in names if name not in BUDGET_PLACEHOLDERS]
    if unknown:
        raise UserError(f"--budget-prompt {template!r} has the placeholder {{{unknown[0]}}}: only {allowed} may "
                        f"appear (write a literal brace as {{{{ or }}}}).")
    try:  # what parse leaves to format: fields nested in a format spec, the spec itself
        template.format(budget=1024)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as error:
        raise UserError(f"--budget-prompt {template!r} cannot be filled ({error!r}): use {allowed} and write a "
                        f"literal brace as {{{{ or }}}}.") from None


def render_prompt(task: Task, problem: Problem, tokenizer, settings: PromptSettings,
                  budget_instruction: BudgetInstruction | None = None) -> str:
    """Return the full prompt text for `problem` (chat template applied when asked).

    With `budget_instruction` (conditioned mode) the budget is rendered into the question or the
    system prompt as the instruction's position says. An lm-eval task's prompts are lm-eval's
    (`budgeteval.tasks.lm_eval.render_lm_eval_prompts`), so they cannot name a budget.
    """
    if task.lm_eval is not None:
        raise UserError(f"Task {task.name} takes its prompt from lm-eval, so conditioned mode cannot put a budget "
                        f"in it: run it with --modes cutoff or forced.")
    try:
        user_text = task.template_for(problem.prompt_fields).format_map({**problem.prompt_fields, "question": problem.question})
    except (KeyError, IndexError, ValueError) as error:
        raise UserError(
            f"Task {task.name}: prompt.template in {task.yaml_path} cannot be filled ({error!r}); "
            f"escape literal braces as {{{{ }}}}."
        ) from None
    system_prompt = settings.system_prompt if settings.system_prompt is not None else task.system_prompt
    if budget_instruction is not None:
        instruction = budget_instruction.render()
        if budget_instruction.position == "suffix":
            user_text = f"{user_text} {instruction}"
        elif budget_instruction.position == "prefix":
            user_text = f"{instruction} {user_text}"
        else:
            system_prompt = f"{system_prompt}\n{instruction}" if system_prompt else instruction
    if not settings.chat_template:
        return f"{system_prompt}\n\n{user_text}" if system_prompt else user_text
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(
            "The model's tokenizer has no chat template: pass --no-chat-template to prompt it as a base model."
        )
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": user_text}
    ]
    extra = {} if settings.enable_thinking is None else {"enable_thinking": settings.enable_thinking}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)


def encode_prompt(tokenizer, prompt_text: str) -> list[int]:
    """Token ids of a rendered prompt (the chat template already holds any special tokens)."""
    return list(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])


def default_think_end(tokenizer) -> str | None:
    """The end-of-thinking marker this tokenizer knows as a single token, or None."""
    vocab = tokenizer.get_vocab()
    for marker in THINK_END_MARKERS:
        if marker in vocab:
            return marker
    return None


def prompt_closes_thinking(prompt_text: str, think_end: str | None) -> bool:
    """True when the prompt itself already ended the thinking block (e.g. enable_thinking=False).

    Qwen3's template writes an empty `<think>\\n\\n</think>\\n\\n` at the end of the prompt when
    thinking is off; the response is then a plain answer and must be scored as one.
    """
    return bool(think_end) and prompt_text.rstrip().endswith(think_end)


def prompt_opens_thinking(prompt_text: str, think_start: str | None, think_end: str | None) -> bool:
    """True when the prompt itself opened a thinking block it did not close (DeepSeek-R1's template
    ends the prompt with `<think>\n`): the response starts inside it, without a start marker of its own."""
    if not think_start:
        return False
    opened = prompt_text.rfind(think_start)
    return opened >= 0 and (not think_end or opened > prompt_text.rfind(think_end))


def response_is_thinking(prompt_text: str, think_end: str | None) -> bool:
    """True when a response to this prompt starts inside a thinking block (its answer follows `think_end`)."""
    return bool(think_end) and not prompt_closes_thinking(prompt_text, think_end)
