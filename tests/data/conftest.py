"""Shared fixtures: the Gemma tokenizer dir and one prompt cache per session, so the throughput pool is
tokenized once per test session."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def gemma(gemma_dir: Path) -> str:
    """The model `make test` prepared (tests/conftest.py: $SPEEDBENCH_TEST_MODEL, else under $SPEEDBENCH_HOME);
    skipped without it, except in CI, where a missing model fails."""
    return str(gemma_dir)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("prompt-cache"))


QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_byte_level_bpe(out: Path, texts, bos_token=None, chat_template=QWEN_TEMPLATE) -> str:
    """A small byte-level BPE tokenizer (Llama 3 / Qwen / GPT-OSS style: a newline is the piece "Ċ"),
    trained offline on ``texts``; ``bos_token`` None makes it BOS-less like Qwen's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + ([bos_token] if bos_token else [])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=3000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos_token, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(out)
    return str(out)


def _bundled_texts():
    import json

    from speedbench.resources import DATASETS_DIR

    lines = (DATASETS_DIR / "qualitative" / "mini.jsonl").read_text(encoding="utf-8").splitlines()
    return [t for line in lines if line.strip() for t in json.loads(line)["turns"]]


@pytest.fixture(scope="session")
def byte_bpe(tmp_path_factory) -> str:
    """Qwen-style: byte-level BPE, no BOS token, a chat template that renders none."""
    return build_byte_level_bpe(tmp_path_factory.mktemp("byte-bpe"), _bundled_texts())
