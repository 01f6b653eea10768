"""The vLLM CPU build's engine options: float32 for `auto` on CPUs without native bf16."""

import pytest

from budgeteval.generation.backends import vllm_backend
from budgeteval.generation.backends.vllm_backend import cpu_engine_options, cpu_has_native_bf16
from budgeteval.generation.config import EngineOptions

pytestmark = [pytest.mark.vllm]

CASES = [
    # machine, cpuinfo flags, native bf16?
    ("x86_64", {"avx2", "fma", "avx512f"}, False),
    ("x86_64", {"avx2", "avx512f", "avx512_bf16"}, True),
    ("x86_64", {"avx2", "amx_bf16", "amx_tile"}, True),
    ("AMD64", {"avx2"}, False),
    ("aarch64", {"fp", "asimd", "sve"}, False),
    ("aarch64", {"fp", "asimd", "bf16"}, True),
    ("x86_64", set(), None),  # no /proc/cpuinfo: vLLM decides
    ("riscv64", {"rv64imafdc"}, None),
]


@pytest.mark.parametrize("machine, flags, expected", CASES)
def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, machine, flags, expected):
    monkeypatch.setattr(vllm_backend.platform, "machine", lambda: machine)
    monkeypatch.setattr(vllm_backend, "_cpu_flags", lambda: flags)
    assert cpu_has_native_bf16() is expected


@pytest.mark.parametrize("native, requested, expected", [
    (False, "auto", "float32"), (True, "auto", "auto"), (None, "auto", "auto"), (False, "bfloat16", "bfloat16"),
])
def test_auto_dtype_is_float32_without_native_bf16_and_dtype_overrides(monkeypatch, native, requested, expected):
    monkeypatch.setattr(vllm_backend, "cpu_has_native_bf16", lambda: native)
    options = cpu_engine_options(EngineOptions(dtype=requested))
    assert options.dtype == expected and options.enforce_eager

