"""Generation as a Ray Data pipeline over a Ray cluster (`--backend ray`, `--ray-address`).

Each engine call becomes a Ray Dataset with one row per problem (its prompt token ids, n, its
own per-request seed, `max_tokens` and the sampling settings), mapped by `map_batches` onto a
fixed pool of actors (`--data-parallel-size` replicas), each holding budgeteval's own vLLM engine
(`vllm_backend.generate_with`, so the samples are exactly `--backend vllm`'s: same
SamplingParams, child seeds, token ids and finish reasons). Results come back per sample with
their token ids; the runner stores each chunk (`--problems-per-shard` problems) as it finishes,
so a killed driver resumes with only the missing problems.

Why not `ray.data.llm` (vLLMEngineProcessorConfig / build_llm_processor): in Ray 2.60 its output
rows carry only the first of a request's n outputs and no finish reason (`vLLMOutputData` has
`generated_tokens` and `generated_text`), and replay needs both; this is the pattern Ray
documents for engines of one's own (a callable class in `map_batches` with an actor pool).

Cost: each call starts its replicas' engines afresh (a Ray Data pipeline owns its actors), so
on a cluster a larger `--problems-per-shard` trades resume granularity for fewer engine starts.
Not here: starting a cluster (`ray start`, KubeRay, SLURM) or autoscaling.
"""

from collections.abc import Sequence
from dataclasses import asdict, replace

from budgeteval.errors import UserError
from budgeteval.generation.backends.base import GenerationRequest, LoadsModel, SampleOutput, SamplingConfig
from budgeteval.generation.config import EngineOptions

_SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p")


class _EngineReplica:
    """One Ray Data actor: a vLLM engine that turns a batch of problem rows into sample rows."""

    def __init__(self, model: str, tokenizer: str, options: EngineOptions, revision: str | None):
        import os

        # The engine core runs inside this actor process, so ending the actor ends the engine
        # (set here rather than as a runtime_env, which would cost a fresh worker process).
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        from budgeteval.generation.backends.vllm_backend import start_engine

        self.llm, _ = start_engine(model, tokenizer, replace(options, data_parallel_size=1), revision)

    def __call__(self, batch):
        import pyarrow as pa

        from budgeteval.generation.backends.vllm_backend import generate_with

        rows = batch.to_pylist()
        out = {"position": [], "sample_idx": [], "token_ids": [], "text": [], "finish_reason": []}
        # Rows carry their own sampling settings; one engine call per distinct setting (one in a run).
        groups: dict[tuple, list[dict]] = {}
        for row in rows:
            groups.setdefault(tuple(row[name] for name in _SAMPLING_FIELDS), []).append(row)
        for values, group in groups.items():
            requests = [GenerationRequest(row["key"], tuple(row["prompt_token_ids"]), row["n"], row["seed"],
                                          row["max_tokens"], row["thinking_budget"]) for row in group]
            outputs = generate_with(self.llm, requests, SamplingConfig(**dict(zip(_SAMPLING_FIELDS, values))))
            for row, samples in zip(group, outputs):
                for sample_idx, sample in enumerate(samples):
                    out["position"].append(row["position"])
                    out["sample_idx"].append(sample_idx)
                    out["token_ids"].append(list(sample.token_ids))
                    out["text"].append(sample.text)
                    out["finish_reason"].append(sample.finish_reason)
        return pa.table({"position": pa.array(out["position"], pa.int64()),
                         "sample_idx": pa.array(out["sample_idx"], pa.int32()),
                         "token_ids": pa.array(out["token_ids"], pa.list_(pa.int32())),
                         "text": pa.array(out["text"], pa.string()),
                         "finish_reason": pa.array(out["finish_reason"], pa.string())})


class RayBackend(LoadsModel):
    """Generate through Ray Data `map_batches` onto actors that each run a vLLM engine."""

    name = "ray"

    def __init__(self, model: str, tokenizer: str, options: EngineOptions, revision: str | None = None):
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError as error:
            raise UserError(f"--backend ray needs Ray Data, which is not installed ({error.name}): "
                            f"pip install -e \".[ray]\" (and .[vllm] or .[cpu] for the engine).") from None

        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.revision = revision
        self.replicas = max(1, options.data_parallel_size)
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=options.ray_address, ignore_reinit_error=True, include_dashboard=False,
                     log_to_driver=False)
        self._gpus_per_replica = options.tensor_parallel_size if ray.cluster_resources().get("GPU", 0) else 0
        self._calls = 0

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> list[list[SampleOutput]]:
        import ray

        if not requests:
            return []
        rows = [{"position": position, "key": request.key, "prompt_token_ids": list(request.prompt_token_ids),
                 "n": request.n, "seed": request.seed, "max_tokens": request.max_tokens,
                 "thinking_budget": request.thinking_budget, **asdict(sampling)}
                for position, request in enumerate(requests)]
        # One batch per replica: vLLM schedules the requests of a batch itself. The blocks are made by
        # from_items in the driver, not by a repartition task: such a task needs a CPU, and replicas that
        # hold every CPU of a small cluster (2 replicas on 2 CPUs) would wait for it forever.
        batch_size = -(-len(rows) // self.replicas)
        dataset = ray.data.from_items(rows, override_num_blocks=self.replicas).map_batches(
            _EngineReplica, fn_constructor_kwargs=dict(model=self.model, tokenizer=self.tokenizer,
                                                       options=self.options, revision=self.revision),
            batch_size=batch_size, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=self.replicas),
            num_cpus=1, num_gpus=self._gpus_per_replica)
        results: list[list[SampleOutput | None]] = [[None] * request.n for request in requests]
        for row in dataset.iter_rows():
            results[row["position"]][row["sample_idx"]] = SampleOutput(
                token_ids=tuple(int(token) for token in row["token_ids"]), text=row["text"],
                finish_reason=row["finish_reason"])
        missing = [requests[position].key for position, samples in enumerate(results) if None in samples]
        if missing:
            raise RuntimeError(f"the Ray pipeline returned no samples for {missing[0]}")
        self._calls += 1
        return results

    def describe(self) -> dict:
        import ray
        import vllm

        return {"engine": "ray", "pipeline": "ray.data map_batches, budgeteval's vLLM engine per actor",
                "ray_version": ray.__version__, "vllm_version": vllm.__version__,
                "ray_address": self.options.ray_address or "local", "replicas": self.replicas,
                "gpus_per_replica": self._gpus_per_replica, "pipelines_run": self._calls,
                "cluster_resources": {key: value for key, value in ray.cluster_resources().items()
                                      if key in ("CPU", "GPU", "memory")},
                **{key: value for key, value in asdict(self.options).items()
                   if key in ("dtype", "max_model_len", "tensor_parallel_size", "gpu_memory_utilization",
                              "enforce_eager")}}

    def close(self) -> None:
        import ray

        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
