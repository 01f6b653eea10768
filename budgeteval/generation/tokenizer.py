"""Loading a model's tokenizer: the one place every stage (run, import, score, backends, trainers) gets it.

Prompts are rendered and responses decoded with the model's own tokenizer; a run directory keeps
a copy in `tokenizer/` (`budgeteval.rundir.layout.tokenizer_dir`), so scoring never needs the hub.
Scoring only decodes: `load_decoder` reads that copy's `tokenizer.json` with the `tokenizers`
library (milliseconds, where importing transformers takes seconds) whenever that gives
transformers' text, and falls back to `load_tokenizer` otherwise.
"""

import json
from collections.abc import Sequence
from pathlib import Path

from budgeteval.errors import UserError


def load_tokenizer(name_or_path: str, revision: str | None = None, flag: str = "--tokenizer"):
    """Load a Hugging Face tokenizer, with one clear sentence naming `flag` when it cannot be found."""
    from transformers import AutoTokenizer

    text = str(name_or_path)
    path = Path(text).expanduser()
    # A hub id is `name` or `org/name`; anything else is meant as a local path, and a missing one
    # would otherwise reach the hub client and come back as a complaint about repo-id characters.
    looks_local = path.exists() or text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text
    if looks_local and not path.exists():
        raise UserError(f"{flag} {text} does not exist: pass a local checkpoint directory or a hub id "
                        f"such as Qwen/Qwen3-1.7B.")
    if looks_local and not path.is_dir():
        raise UserError(f"{flag} {text} is a file: pass the checkpoint directory that holds it.")
    try:
        return AutoTokenizer.from_pretrained(text, revision=revision)
    except (OSError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        where = (f"the local directory {text} has no tokenizer files" if looks_local
                 else f"hub id {text!r} could not be fetched ({reason})")
        fix = ("pass --tokenizer with the tokenizer's directory or hub id" if looks_local
               else f"check the id, go online, or pass {flag} a local directory")
        raise UserError(f"Cannot load the tokenizer of {flag} {text}: {where}; {fix}.") from None


class FastDecoder:
    """Token ids to text with the `tokenizers` library alone: the `decode`/`batch_decode` of a
    transformers fast tokenizer whose config asks for no clean-up of tokenization spaces."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        """A `tokenizers.Tokenizer`."""

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens)

    def batch_decode(self, id_lists: Sequence[Sequence[int]], skip_special_tokens: bool = False) -> list[str]:
        return self.tokenizer.decode_batch([ids if isinstance(ids, list) else list(ids) for ids in id_lists],
                                           skip_special_tokens=skip_special_tokens)

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        """Encode `text` as a transformers tokenizer call does (`{"input_ids": [...]}`), for marker ids."""
        return {"input_ids": self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids}


def load_decoder(folder: str):
    """What decodes a saved tokenizer folder's ids: a `FastDecoder` when its tokenizer.json decodes
    exactly as transformers would (no `clean_up_tokenization_spaces`), else the transformers tokenizer."""
    path = Path(folder)
    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if (path / "tokenizer.json").is_file() and config is not None and not config.get("clean_up_tokenization_spaces"):
        try:
            from tokenizers import Tokenizer

            return FastDecoder(Tokenizer.from_file(str(path / "tokenizer.json")))
        except Exception:  # noqa: BLE001  (a file this tokenizers version cannot read: transformers can)
            pass
    return load_tokenizer(str(path))
