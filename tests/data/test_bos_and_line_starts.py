"""BOS follows the chat template; line starts are found on byte-level BPE vocabularies (issue 17, item 4).

Tokenizers are built offline with the `tokenizers` library (see conftest): no hub, no model.
"""

import pytest

from speedbench.config import DataConfig
from speedbench.data.pretokenize import prepare_prompts
from speedbench.data.throughput import newline_ids
from speedbench.data.tokenization import load_tokenizer

from .conftest import QWEN_TEMPLATE, _bundled_texts, build_byte_level_bpe

LLAMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _mini(tok_dir, tmp_path, **kw):
    return prepare_prompts(DataConfig(prompts_per_category=1, cache_dir=str(tmp_path / "c"), **kw), tok_dir)


def test_newline_ids_on_a_byte_level_vocabulary(byte_bpe):
    tok = load_tokenizer(byte_bpe)
    nl = newline_ids(tok)
    assert len(nl) > 0  # the vocabulary stores "\n" as "Ċ": a search for "\n" in pieces finds nothing
    assert all("\n" in tok.decode([int(i)]) for i in nl)
    ids = tok.encode("first line\nsecond line", add_special_tokens=False)
    assert any(i in set(nl.tolist()) for i in ids)


def test_bosless_tokenizer_prepares_without_error_or_bos(byte_bpe, tmp_path):
    tok = load_tokenizer(byte_bpe)
    assert tok.bos_token_id is None
    ps = _mini(byte_bpe, tmp_path)  # bos: once (the default) used to raise "defines no BOS token"
    start = tok.convert_tokens_to_ids("<|im_start|>")
    assert len(ps.prompts) == 11 and all(p.token_ids[0] == start for p in ps.prompts)
    assert ps.meta["bos_id"] is None and ps.meta["bos_policy"] == "once"


@pytest.mark.parametrize("template, want_bos", [(QWEN_TEMPLATE, False), (LLAMA_TEMPLATE, True)])
def test_bos_only_when_the_template_renders_it(tmp_path, template, want_bos):
    d = build_byte_level_bpe(tmp_path / "tok", _bundled_texts(), bos_token="<|begin_of_text|>", chat_template=template)
    bos = load_tokenizer(d).bos_token_id
    ps = _mini(d, tmp_path)
    for p in ps.prompts:
        assert p.token_ids.count(bos) == (1 if want_bos else 0), p.id
        assert (p.token_ids[0] == bos) == want_bos
    assert ps.meta["bos_id"] == (bos if want_bos else None)
    none = _mini(d, tmp_path, bos="none")
    assert all(bos not in p.token_ids for p in none.prompts)


def test_plain_text_without_a_bos_token(byte_bpe, tmp_path):
    ps = _mini(byte_bpe, tmp_path, chat_template="none")  # no template, no BOS in the tokenizer: none
    assert ps.meta["bos_id"] is None
    assert ps.meta["bos_id"] is None and not ps.meta["chat_template_applied"]
