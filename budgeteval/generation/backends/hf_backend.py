"""Generation with transformers `generate` (small models, CPU or one GPU).

Each sample is its own seeded `generate` call (seed = request seed + sample index, as vLLM
does for its child requests), so a sample never depends on what it was batched with and its
first B tokens equal a `max_new_tokens=B` run. Slow by design; use vLLM for real sweeps.
"""

from collections.abc import Sequence

from budgeteval.generation.backends.base import GenerationRequest, LoadsModel, SampleOutput, SamplingConfig
from budgeteval.generation.config import EngineOptions
from budgeteval.generation.seeds import sample_seed

_DTYPES = {"auto": "auto", "float32": "float32", "float": "float32", "bfloat16": "bfloat16", "float16": "float16",
           "half": "float16"}


class HFBackend(LoadsModel):
    """Generate with a transformers causal LM, one seeded call per sample."""

    name = "hf"

    def __init__(self, model: str, tokenizer: str, options: EngineOptions, revision: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.options = options
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.model = AutoModelForCausalLM.from_pretrained(
            model, revision=revision, dtype=_DTYPES.get(options.dtype, options.dtype)).to(device)
        self.model.eval()
        self._read_eos_ids()

    @classmethod
    def from_model(cls, model, tokenizer) -> "HFBackend":
        """Generate with a model already in memory (a trainer's policy, `budgeteval.train`); loads nothing.

        The caller owns the model: it stays on its device and in whatever train/eval mode the caller set.
        """
        backend = cls.__new__(cls)
        backend.model, backend.tokenizer, backend.device = model, tokenizer, model.device
        backend.options = EngineOptions(device=str(model.device))
        backend._read_eos_ids()
        return backend

    def _read_eos_ids(self) -> None:
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        if not self.eos_ids and self.tokenizer.eos_token_id is not None:
            self.eos_ids = {self.tokenizer.eos_token_id}

    def _sample(self, prompt_ids, seed: int, max_tokens: int, sampling: SamplingConfig) -> SampleOutput:
        import torch

        input_ids = torch.tensor([list(prompt_ids)], device=self.device)
        greedy = sampling.temperature <= 0
        settings = {"do_sample": False} if greedy else {
            "do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "top_k": sampling.top_k if sampling.top_k > 0 else 0, "min_p": sampling.min_p or None}
        torch.manual_seed(seed)
        with torch.no_grad():
            output = self.model.generate(
                input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_tokens,
                eos_token_id=sorted(self.eos_ids), pad_token_id=self.tokenizer.pad_token_id or sorted(self.eos_ids)[0],
                **settings)
        token_ids = tuple(int(token) for token in output[0, input_ids.shape[1]:].tolist())
        stopped = bool(token_ids) and token_ids[-1] in self.eos_ids
        return SampleOutput(
            token_ids=token_ids,
            text=self.tokenizer.decode(token_ids, skip_special_tokens=True),
            finish_reason="stop" if stopped else "length",
        )

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> list[list[SampleOutput]]:
        return [
            [self._sample(request.prompt_token_ids, sample_seed(request.seed, index), request.max_tokens, sampling)
             for index in range(request.n)]
            for request in requests
        ]

    def describe(self) -> dict:
        import torch
        import transformers

        return {"engine": "transformers", "transformers_version": transformers.__version__,
                "torch_version": torch.__version__, "device": self.device, "dtype": str(self.model.dtype)}

    def close(self) -> None:
        del self.model
