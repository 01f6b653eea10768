"""Build a tiny random-weight Qwen3 checkpoint on the real Qwen3 tokenizer, for tests.

Hidden 128, 2 layers, 2 heads of 64 (a head size vLLM's CPU kernels accept): it loads in
vLLM, transformers and vLLM's OpenAI server in seconds, and it uses the real chat template and
`<think>` / `</think>` token ids. Its text is random; tests check plumbing, not quality.
"""

from pathlib import Path

EOS_ROW_SCALE = 0.1


def build_tiny_qwen3(tokenizer_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny model + tokenizer into `out_dir` (idempotent) and return it."""
    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists():
        return out_dir
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = Qwen3Config(
        vocab_size=151936,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=151643,
        eos_token_id=151645,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        # Random weights give a near-uniform next-token distribution, so <|im_end|> would almost
        # never be sampled and no response would finish. A large random output row for it makes
        # responses end anywhere from 1 to 60+ tokens: tests see both `stop` and `length` endings.
        model.lm_head.weight[config.eos_token_id] = torch.randn(config.hidden_size) * EOS_ROW_SCALE
    model.save_pretrained(out_dir, safe_serialization=True)
    GenerationConfig(eos_token_id=[151645, 151643], bos_token_id=151643).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


THINK_LOGIT = 14.0
"""Logit of `<think>` right after the generation prompt in `build_tiny_thinker` (others are about 0-2 over
a 152k vocabulary, so the model opens its thinking block itself in about half of the samples)."""


def build_tiny_thinker(tokenizer_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """The tiny Qwen3 of `build_tiny_qwen3`, made to write `<think>` itself as its first token.

    Qwen3's template leaves the thinking block for the model to open, which a random model never
    does; engine mode counts the thinking budget from that start marker. The `<think>` output row is
    set along the final hidden state at the end of a chat prompt (less the prompt's mean, so other
    positions score it low): most samples then open the block first and rarely again.
    """
    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists():
        return out_dir
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_tiny_qwen3(tokenizer_dir, out_dir, seed)
    model = AutoModelForCausalLM.from_pretrained(str(out_dir), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Find x."}], add_generation_prompt=True,
                                           tokenize=False)
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        hidden = model(ids, output_hidden_states=True).hidden_states[-1][0]
        direction = hidden[-1] - hidden[:-1].mean(0)
        direction = direction / direction.norm()
        row = direction * THINK_LOGIT / float(direction @ hidden[-1])
        model.lm_head.weight[tokenizer.convert_tokens_to_ids("<think>")] = row
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
