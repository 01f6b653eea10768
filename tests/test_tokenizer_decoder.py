"""Scoring decodes with the `tokenizers` library: the same text as transformers on the shared tokenizers."""

import random
import subprocess
import sys

import pandas as pd
import pytest
from conftest import shared_path

from budgeteval.generation.tokenizer import FastDecoder, load_decoder, load_tokenizer

pytestmark = [pytest.mark.shared]

TOKENIZERS = ["qwen2.5", "qwen3", "deepseek-r1-distill-qwen"]


@pytest.fixture(scope="module")
def responses() -> list[str]:
    frame = pd.read_json(shared_path("generations", "qwen25math_math_cot_100.jsonl"), lines=True)
    return list(frame["response"][:40])


@pytest.mark.parametrize("name", TOKENIZERS)
def test_saved_tokenizer_decodes_like_transformers(name, responses, tmp_path):
    reference = load_tokenizer(str(shared_path("tokenizers", name)))
    reference.save_pretrained(str(tmp_path))  # what a run directory's tokenizer/ holds
    decoder = load_decoder(str(tmp_path))
    assert isinstance(decoder, FastDecoder)
    rng = random.Random(0)
    special = sorted(reference.all_special_ids) + [reference.convert_tokens_to_ids(token) for token in ("<think>", "</think>")
                                                   if token in reference.get_vocab()]
    id_lists = [reference.encode(text, add_special_tokens=False) for text in responses]
    id_lists += [ids[:cut] for ids in id_lists[:10] for cut in (1, 7, 64, 333)]  # cut mid-word, mid-character
    id_lists += [[rng.randrange(len(reference)) for _ in range(200)] + [rng.choice(special) for _ in range(5)]
                 for _ in range(20)]
    id_lists += [[]]
    for skip in (True, False):
        assert decoder.batch_decode(id_lists, skip_special_tokens=skip) == \
            reference.batch_decode(id_lists, skip_special_tokens=skip)
        assert decoder.decode(id_lists[0], skip_special_tokens=skip) == \
            reference.decode(id_lists[0], skip_special_tokens=skip)


def test_a_folder_asking_for_space_clean_up_falls_back_to_transformers(tmp_path):
    reference = load_tokenizer(str(shared_path("tokenizers", "qwen2.5")))
    reference.save_pretrained(str(tmp_path))
    config = (tmp_path / "tokenizer_config.json")
    config.write_text(config.read_text().replace('"clean_up_tokenization_spaces": false',
                                                 '"clean_up_tokenization_spaces": true'))
    assert not isinstance(load_decoder(str(tmp_path)), FastDecoder)


def test_scoring_start_up_imports_no_transformers():
    code = ("import sys; from budgeteval.generation.tokenizer import load_decoder; import budgeteval.scoring.evaluate; "
            f"load_decoder({str(shared_path('tokenizers', 'qwen3'))!r}); print('transformers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
