"""The configuration of one run, as a frozen record the CLI builds and the manifest stores.

Every record has a `validate()` that checks its values against the ranges in `budgeteval.generation.ranges`;
`budgeteval run` (and `runner.run`) call it first, so a bad setting is refused with one sentence
before anything is loaded. Records read back from a manifest are not re-checked: a run made before
a range existed still reports.
"""

import re
from dataclasses import asdict, dataclass, field, fields, replace

from budgeteval.errors import UserError
from budgeteval.generation.backends.base import SamplingConfig
from budgeteval.generation.budgets import DEFAULT_BUDGETS
from budgeteval.generation.ranges import NON_NEGATIVE_INT, POSITIVE, Range, check, check_choice
from budgeteval.tasks.prompts import PromptSettings, check_budget_prompt

DTYPES = ("auto", "bfloat16", "float16", "float32", "half", "float")
"""`--dtype` values every backend understands."""

BACKENDS = ("vllm", "openai", "hf", "ray")
"""Generation backends (`budgeteval.generation.backends`); `import` marks a run made by `budgeteval import`."""

_DEVICE = re.compile(r"^(auto|cpu|mps|(cuda|xpu|npu)(:\d+)?)$")
from budgeteval.generation.shards import Shard

DEFAULT_ANSWER_TOKENS = 512
"""forced and engine modes: answer tokens generated after the thinking ends (A), unless --answer-tokens says otherwise."""


@dataclass(frozen=True)
class EngineOptions:
    """Backend options; each backend reads the ones that apply to it."""

    dtype: str = "auto"
    """Model dtype (`auto`, `bfloat16`, `float16`, `float32`)."""
    tensor_parallel_size: int = 1
    """vLLM: GPUs one model is split across."""
    data_parallel_size: int = 1
    """vLLM: model replicas (ray: engine actors in the pipeline)."""
    max_model_len: int | None = None
    """vLLM: context length (prompt + response)."""
    gpu_memory_utilization: float = 0.9
    """vLLM: fraction of GPU memory to use."""
    enforce_eager: bool = False
    """vLLM: no CUDA graphs / compilation (the CPU build needs it)."""
    base_url: str | None = None
    """openai: server URL, e.g. http://127.0.0.1:8000/v1."""
    extra_base_urls: tuple[str, ...] = ()
    """openai: further servers of the same model (--base-url repeated); requests spread over all of them."""
    api_key_env: str = "OPENAI_API_KEY"
    """openai: environment variable holding the API key (the key itself is never stored)."""
    concurrency: int = 32
    """openai: requests in flight at once (over all servers together)."""
    max_retries: int = 5
    """openai: retries per request, with exponential backoff."""
    request_timeout_s: float = 3600.0
    """openai: seconds before one request is abandoned and retried."""
    device: str = "auto"
    """hf: torch device (`auto` picks CUDA when present, else CPU)."""
    ray_address: str | None = None
    """ray: cluster to connect to (`auto`, `ray://host:10001`, `host:6379`); None starts a local one."""
    reasoning: tuple[str, str] | None = None
    """vllm, ray: (reasoning start string, string forced at the thinking budget) for vLLM's
    `ReasoningConfig`; set by the runner for engine mode (`budgeteval.generation.forcing.reasoning_strings`), None: off."""

    def validate(self) -> None:
        """Raise a `UserError` for the first option outside its range."""
        check_choice("--dtype", self.dtype, DTYPES)
        for name in ("tensor_parallel_size", "data_parallel_size", "max_model_len", "concurrency"):
            check("--" + name.replace("_", "-"), getattr(self, name), POSITIVE)
        check("--max-retries", self.max_retries, NON_NEGATIVE_INT)
        check("--gpu-memory-utilization", self.gpu_memory_utilization, Range(low=0, high=1, low_open=True))
        check("request_timeout_s", self.request_timeout_s, Range(low=0, low_open=True))
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise UserError(f"--device {self.device!r} is not a torch device: use auto, cpu, cuda, cuda:N or mps.")


MODES = ("cutoff", "forced", "conditioned", "engine")
"""Budget modes (docs/design.md, "Budget semantics"); `mode` is a column of every score and metric."""

BUDGET_PROMPT_POSITIONS = ("suffix", "prefix", "system")
"""Where conditioned mode puts the rendered budget instruction."""


@dataclass(frozen=True)
class ModeSettings:
    """Which budget modes a run evaluates and how (recorded in the manifest)."""

    modes: tuple[str, ...] = ("cutoff",)
    """Budget modes to evaluate, from `MODES`."""
    answer_tokens: int = DEFAULT_ANSWER_TOKENS
    """forced, engine: answer tokens generated after the thinking ends (A)."""
    force_string: str | None = None
    """forced, engine: end-of-thinking string + answer cue; None picks the model family's (`budgeteval.generation.forcing`)."""
    budget_prompt: str | None = None
    """conditioned: instruction naming the budget, with a `{budget}` placeholder (L1: "Think for {budget} tokens.")."""
    budget_prompt_position: str = "suffix"
    """conditioned: `suffix` (after the question), `prefix` (before it) or `system` (the system prompt)."""
    conditioned_max_tokens: int | None = None
    """conditioned: token limit of each conditioned generation; None means the sweep's largest budget."""

    def validate(self) -> None:
        """Raise a `UserError` for an unknown mode, a count below 1, or settings of a mode not asked for."""
        unknown = [mode for mode in self.modes if mode not in MODES]
        if unknown or not self.modes:
            raise UserError(f"--modes {','.join(self.modes) or '(empty)'} is not valid: use a comma-separated "
                            f"subset of {', '.join(MODES)}.")
        check("--answer-tokens", self.answer_tokens, POSITIVE)
        check("--conditioned-max-tokens", self.conditioned_max_tokens, POSITIVE)
        check_choice("--budget-prompt-position", self.budget_prompt_position, BUDGET_PROMPT_POSITIONS)
        conditioned = "conditioned" in self.modes
        if conditioned and not self.budget_prompt:
            raise UserError("--modes conditioned needs --budget-prompt, e.g. 'Think for {budget} tokens.'")
        if self.budget_prompt and not conditioned:
            raise UserError("--budget-prompt only applies to conditioned mode: add conditioned to --modes.")
        if self.budget_prompt:
            check_budget_prompt(self.budget_prompt)


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
    """`vllm`, `openai`, `hf` or `ray`."""
    tokenizer: str | None = None
    """Tokenizer id/path; defaults to the model."""
    revision: str | None = None
    """Model revision (branch, tag or commit) on the hub."""
    data_files: tuple[tuple[str, str], ...] = ()
    """(task, local file) overrides of the hub data source."""
    task_options: tuple[tuple[str, str, str], ...] = ()
    """(task, option, value) from `--task-option TASK.KEY=VALUE` (options the task YAML declares)."""
    limit: int | None = None
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
    think_end: str | None = None
    """End-of-thinking marker; None picks the tokenizer's default, '' disables."""
    engine: EngineOptions = field(default_factory=EngineOptions)
    """Backend options."""
    modes: ModeSettings = field(default_factory=ModeSettings)
    """Budget modes (cutoff, forced, conditioned, engine) and their settings."""
    problems_per_shard: int = 64
    """Problems generated per engine call and stored per shard (the resume granularity)."""
    workers: int = 4
    """Scoring worker processes."""
    shard: Shard | None = None
    """Generate only this shard's problems (`--shard I/N`, `budgeteval.generation.shards`); None: all of them."""

    def validate(self) -> None:
        """Check every setting (sampling against the backend's ranges, engine, modes); raise a `UserError`."""
        check_choice("--backend", self.backend, BACKENDS + ("import",))
        if not self.tasks or not all(isinstance(task, str) and task.strip() for task in self.tasks):
            raise UserError("--tasks is empty: name at least one task (see `budgeteval tasks`).")
        check("--n", self.n, POSITIVE)
        check("--limit", self.limit, POSITIVE)
        check("--problems-per-shard", self.problems_per_shard, POSITIVE)
        check("--workers", self.workers, POSITIVE)
        check("--seed", self.seed, Range(integer=True))
        if not self.budgets:
            raise UserError("No budgets given: pass a comma-separated list such as 2k,4k,8k.")
        for budget in self.budgets:
            check("--budgets", budget, Range(low=1, integer=True, note="a token count such as 512 or 2k"))
        self.sampling.validate(self.backend)
        self.engine.validate()
        self.modes.validate()
        if self.backend == "hf" and "engine" in self.modes.modes:
            raise UserError("--modes engine needs an engine with a thinking budget (--backend vllm, ray or openai): "
                            "transformers has none, so use forced mode with --backend hf.")
        if self.backend == "openai" and not self.engine.base_url:
            raise UserError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1.")

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
        if isinstance(values.get("engine"), EngineOptions):
            values["engine"] = replace(values["engine"], extra_base_urls=tuple(values["engine"].extra_base_urls))
        if isinstance(data.get("shard"), dict):
            values["shard"] = Shard(**_known(Shard, data["shard"]))
        if isinstance(values.get("modes"), ModeSettings):
            values["modes"] = ModeSettings(**{**asdict(values["modes"]), "modes": tuple(values["modes"].modes)})
        return cls(**values)


def _known(record: type, data: dict) -> dict:
    """The entries of `data` that name fields of the dataclass `record` (newer keys are ignored)."""
    names = {item.name for item in fields(record)}
    return {key: value for key, value in data.items() if key in names}
