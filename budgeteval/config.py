"""The configuration of one run, as a frozen record the CLI builds and the manifest stores."""

from dataclasses import asdict, dataclass, field, fields
from typing import Optional

from budgeteval.backends.base import SamplingConfig
from budgeteval.budgets import DEFAULT_BUDGETS
from budgeteval.prompts import PromptSettings

DEFAULT_ANSWER_TOKENS = 512
"""forced mode: answer tokens a forced continuation may generate (A), unless --answer-tokens says otherwise."""


@dataclass(frozen=True)
class EngineOptions:
    """Backend options; each backend reads the ones that apply to it."""

    dtype: str = "auto"
    """Model dtype (`auto`, `bfloat16`, `float16`, `float32`)."""
    tensor_parallel_size: int = 1
    """vLLM: GPUs one model is split across."""
    data_parallel_size: int = 1
    """vLLM: model replicas."""
    max_model_len: Optional[int] = None
    """vLLM: context length (prompt + response)."""
    gpu_memory_utilization: float = 0.9
    """vLLM: fraction of GPU memory to use."""
    enforce_eager: bool = False
    """vLLM: no CUDA graphs / compilation (the CPU build needs it)."""
    base_url: Optional[str] = None
    """openai: server URL, e.g. http://127.0.0.1:8000/v1."""
    api_key_env: str = "OPENAI_API_KEY"
    """openai: environment variable holding the API key (the key itself is never stored)."""
    concurrency: int = 32
    """openai: requests in flight at once."""
    max_retries: int = 5
    """openai: retries per request, with exponential backoff."""
    request_timeout_s: float = 3600.0
    """openai: seconds before one request is abandoned and retried."""
    device: str = "auto"
    """hf: torch device (`auto` picks CUDA when present, else CPU)."""


MODES = ("cutoff", "forced", "conditioned")
"""Budget modes (DESIGN.md, "Budget semantics"); `mode` is a column of every score and metric."""

BUDGET_PROMPT_POSITIONS = ("suffix", "prefix", "system")
"""Where conditioned mode puts the rendered budget instruction."""


@dataclass(frozen=True)
class ModeSettings:
    """Which budget modes a run evaluates and how (recorded in the manifest)."""

    modes: tuple[str, ...] = ("cutoff",)
    """Budget modes to evaluate, from `MODES`."""
    answer_tokens: int = DEFAULT_ANSWER_TOKENS
    """forced: answer tokens a forced continuation may generate (A)."""
    force_string: Optional[str] = None
    """forced: end-of-thinking string + answer cue; None picks the model family's (`budgeteval.forcing`)."""
    budget_prompt: Optional[str] = None
    """conditioned: instruction naming the budget, with a `{budget}` placeholder (L1: "Think for {budget} tokens.")."""
    budget_prompt_position: str = "suffix"
    """conditioned: `suffix` (after the question), `prefix` (before it) or `system` (the system prompt)."""
    conditioned_max_tokens: Optional[int] = None
    """conditioned: token limit of each conditioned generation; None means the sweep's largest budget."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; stored in the manifest."""

    model: str
    """Hugging Face id or local checkpoint path."""
    tasks: tuple[str, ...]
    """Built-in task names or YAML paths."""
    out: str
    """Run directory."""
    backend: str = "vllm"
    """`vllm`, `openai` or `hf`."""
    tokenizer: Optional[str] = None
    """Tokenizer id/path; defaults to the model."""
    revision: Optional[str] = None
    """Model revision (branch, tag or commit) on the hub."""
    data_files: tuple[tuple[str, str], ...] = ()
    """(task, local file) overrides of the hub data source."""
    task_options: tuple[tuple[str, str, str], ...] = ()
    """(task, option, value) from `--task-option TASK.KEY=VALUE` (options the task YAML declares)."""
    limit: Optional[int] = None
    """Evaluate only the first `limit` problems of each task."""
    n: int = 1
    """Samples per problem."""
    budgets: tuple[int, ...] = DEFAULT_BUDGETS
    """Token budgets to replay; generation uses the largest."""
    seed: int = 0
    """Run seed; per-request seeds derive from it, the task and the problem id."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Sampling settings."""
    prompt: PromptSettings = field(default_factory=PromptSettings)
    """Chat template, system prompt, thinking switch."""
    think_end: Optional[str] = None
    """End-of-thinking marker; None picks the tokenizer's default, '' disables."""
    engine: EngineOptions = field(default_factory=EngineOptions)
    """Backend options."""
    modes: ModeSettings = field(default_factory=ModeSettings)
    """Budget modes (cutoff, forced, conditioned) and their settings."""
    problems_per_shard: int = 64
    """Problems generated per engine call and stored per shard (the resume granularity)."""
    workers: int = 4
    """Scoring worker processes."""

    @property
    def max_budget(self) -> int:
        """The largest budget: what every response is generated with."""
        return max(self.budgets)

    def to_dict(self) -> dict:
        """Plain-JSON form for the manifest."""
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        data["budgets"] = list(self.budgets)
        data["data_files"] = {task: path for task, path in self.data_files}
        data["task_options"] = {task: {key: value for t, key, value in self.task_options if t == task}
                                for task, _, _ in self.task_options}
        data["modes"]["modes"] = list(self.modes.modes)
        return data

    @classmethod
    def from_dict(cls, data: dict, tasks: tuple[str, ...] = ()) -> "RunConfig":
        """The inverse of `to_dict` (a manifest's `config` section); missing keys take their defaults.

        `tasks` fills in the task names when the section does not list them.
        """
        values = _known(cls, data)
        values.setdefault("model", "")
        values.setdefault("out", "")
        values["tasks"] = tuple(data.get("tasks") or tasks)
        for name in ("budgets",):
            if name in values:
                values[name] = tuple(int(value) for value in values[name])
        if isinstance(data.get("data_files"), dict):
            values["data_files"] = tuple((str(task), str(path)) for task, path in data["data_files"].items())
        if isinstance(data.get("task_options"), dict):
            values["task_options"] = tuple((str(task), str(key), str(value))
                                           for task, options in data["task_options"].items()
                                           for key, value in options.items())
        for name, record in (("sampling", SamplingConfig), ("prompt", PromptSettings), ("engine", EngineOptions),
                             ("modes", ModeSettings)):
            if isinstance(data.get(name), dict):
                values[name] = record(**_known(record, data[name]))
        if isinstance(values.get("modes"), ModeSettings):
            values["modes"] = ModeSettings(**{**asdict(values["modes"]), "modes": tuple(values["modes"].modes)})
        return cls(**values)


def _known(record: type, data: dict) -> dict:
    """The entries of `data` that name fields of the dataclass `record` (newer keys are ignored)."""
    names = {item.name for item in fields(record)}
    return {key: value for key, value in data.items() if key in names}
