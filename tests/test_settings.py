"""Settings are checked once, by the config records' `validate()`: a case table of ranges per backend.

Every out-of-range value raises a `UserError` naming the flag, the value and the allowed range,
before a tokenizer, dataset or engine is touched (the records are plain dataclasses); every edge
value inside the range is accepted. `compare`/`plot` name the tasks not every run has.
"""

import pandas as pd
import pytest
from cli_checks import budgeteval_in_process
from synthetic_runs import samples, write_run

from budgeteval.errors import UserError
from budgeteval.generation.backends.base import SamplingConfig
from budgeteval.generation.config import EngineOptions, ModeSettings, RunConfig

# (backend, field, value, fragment of the allowed range the message states)
REFUSED = [
    # Below every backend's range: SamplingConfig's own check answers, with the widest range.
    *[(backend, "temperature", value, "at least 0") for backend in ("vllm", "openai", "hf")
      for value in (-1.0, -0.01, float("nan"))],
    ("vllm", "temperature", 2.5, "[0, 2]"),
    ("openai", "temperature", 2.01, "[0, 2]"),
    *[(backend, "top_p", value, "(0, 1]") for backend in ("vllm", "openai", "hf") for value in (0.0, -0.5, 1.5)],
    *[(backend, "top_k", value, "at least -1") for backend in ("vllm", "openai", "hf") for value in (-2, -100)],
    *[(backend, "top_k", 2.5, "an integer") for backend in ("vllm", "openai", "hf")],
    *[(backend, "min_p", value, "[0, 1]") for backend in ("vllm", "openai", "hf") for value in (-0.1, 1.5)],
]

ACCEPTED = [
    *[(backend, "temperature", value) for backend in ("vllm", "openai", "hf") for value in (0.0, 0.6, 2.0)],
    ("hf", "temperature", 5.0),
    *[(backend, "top_p", value) for backend in ("vllm", "openai", "hf") for value in (1e-6, 1.0)],
    *[(backend, "top_k", value) for backend in ("vllm", "openai", "hf") for value in (-1, 0, 1, 50)],
    *[(backend, "min_p", value) for backend in ("vllm", "openai", "hf") for value in (0.0, 1.0)],
]


def _config(backend: str, **sampling) -> RunConfig:
    engine = EngineOptions(base_url="http://127.0.0.1:9/v1") if backend == "openai" else EngineOptions()
    base = {"temperature": 0.6, "top_p": 0.95, "top_k": -1, "min_p": 0.0}
    # SamplingConfig.validate checks the widest ranges first, then the backend's own.
    config = RunConfig(model="m", tasks=("aime25",), out="o", backend=backend,
                       sampling=SamplingConfig(**{**base, **sampling}), engine=engine)
    config.validate()
    return config


@pytest.mark.parametrize("backend,field,value,range_text", REFUSED,
                         ids=[f"{b}-{f}={v}" for b, f, v, _ in REFUSED])
def test_out_of_range_sampling_is_refused_with_flag_value_and_range(backend, field, value, range_text):
    with pytest.raises(UserError) as refused:
        _config(backend, **{field: value})
    message = str(refused.value)
    assert message.startswith(f"--{field.replace('_', '-')} {value!r}"), message
    assert range_text in message and message.count(".") >= 1 and "\n" not in message


@pytest.mark.parametrize("backend,field,value", ACCEPTED, ids=[f"{b}-{f}={v}" for b, f, v in ACCEPTED])
def test_values_inside_the_range_are_accepted(backend, field, value):
    assert getattr(_config(backend, **{field: value}).sampling, field) == value


@pytest.mark.parametrize("build,fragments", [
    (lambda: RunConfig(model="m", tasks=("t",), out="o", n=0), ["--n 0", "at least 1"]),
    (lambda: RunConfig(model="m", tasks=("t",), out="o", budgets=()), ["No budgets"]),
    (lambda: RunConfig(model="m", tasks=("t",), out="o", budgets=(0, 8)), ["--budgets 0"]),
    (lambda: RunConfig(model="m", tasks=(), out="o"), ["--tasks is empty"]),
    (lambda: RunConfig(model="m", tasks=("t",), out="o", backend="tgi"), ["--backend 'tgi'", "vllm"]),
    (lambda: RunConfig(model="m", tasks=("t",), out="o", limit=0), ["--limit 0"]),
    (lambda: RunConfig(model="m", tasks=("t",), out="o", workers=0), ["--workers 0"]),
    (lambda: EngineOptions(tensor_parallel_size=0), ["--tensor-parallel-size 0"]),
    (lambda: EngineOptions(max_model_len=-5), ["--max-model-len -5"]),
    (lambda: EngineOptions(gpu_memory_utilization=0.0), ["--gpu-memory-utilization 0.0", "(0, 1]"]),
    (lambda: EngineOptions(concurrency=0), ["--concurrency 0"]),
    (lambda: EngineOptions(max_retries=-1), ["--max-retries -1", "at least 0"]),
    (lambda: EngineOptions(dtype="int4"), ["--dtype 'int4'"]),
    (lambda: EngineOptions(device="gpu0"), ["--device 'gpu0'"]),
    (lambda: ModeSettings(modes=("cutof",)), ["--modes cutof"]),
    (lambda: ModeSettings(modes=()), ["--modes (empty)"]),
    (lambda: ModeSettings(answer_tokens=0), ["--answer-tokens 0"]),
    (lambda: ModeSettings(modes=("conditioned",)), ["--budget-prompt"]),
    (lambda: ModeSettings(budget_prompt="Think for {budget} tokens."), ["only applies to conditioned mode"]),
    (lambda: ModeSettings(budget_prompt_position="middle"), ["--budget-prompt-position 'middle'", "suffix"]),
], ids=lambda value: value[0] if isinstance(value, list) else None)
def test_other_settings_are_checked_in_their_record(build, fragments):
    with pytest.raises(UserError) as refused:
        build().validate()
    for fragment in fragments:
        assert fragment in str(refused.value), str(refused.value)


def test_compare_and_plot_name_tasks_not_every_run_has(tmp_path):
    cells = {8: {"p0": samples(True, 4, False, 8)}}
    base = write_run(tmp_path / "base", "base", cells, task="math500")
    write_run(tmp_path / "ours", "ours", cells, task="math500")
    both = write_run(tmp_path / "both", "both", cells, task="gsm8k",
                     extra_scores=pd.read_parquet(base / "scores.parquet"))
    result = budgeteval_in_process("compare", base, both)
    assert result.returncode == 0, result.stderr
    assert "note: task gsm8k is only in both" in result.stderr and "tasks in every run: math500" in result.stderr
    result = budgeteval_in_process("plot", tmp_path / "ours", both, "-o", tmp_path / "figs", "--format", "png")
    assert result.returncode == 0, result.stderr
    assert "note: task gsm8k is only in both" in result.stderr


def test_a_manifest_with_a_value_now_out_of_range_still_reads():
    """Records read back are not re-checked: a run made before a range existed still reports."""
    config = RunConfig(model="m", tasks=("t",), out="o", backend="hf", sampling=SamplingConfig(temperature=-1.0))
    assert RunConfig.from_dict(config.to_dict()).sampling.temperature == -1.0
    with pytest.raises(UserError, match="--temperature -1.0"):
        config.validate()
