import json
import shutil

import pytest

from speedbench.config import ConfigError, DataConfig
from speedbench.data.pretokenize import fingerprint, prepare_prompts
from speedbench.data.tokenization import Wrapper, build_exact_isl

TEMPLATE = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}"
            "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


@pytest.fixture
def templated(gemma, tmp_path):
    d = tmp_path / "tok"
    d.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{gemma}/{name}", d / name)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = TEMPLATE
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    return str(d)


@pytest.mark.slow  # loads the tokenizer again (another dir or process): seconds each
def test_chat_template_changes_fingerprint_and_ids(gemma, templated, cache_dir):
    cfg = DataConfig(split="qualitative-mini", prompts_per_category=2, cache_dir=cache_dir)
    assert fingerprint(cfg, gemma) != fingerprint(cfg, templated)
    plain, chat = prepare_prompts(cfg, gemma), prepare_prompts(cfg, templated)
    assert chat.meta["chat_template_applied"] and not plain.meta["chat_template_applied"]
    for p in chat.prompts:  # the template's own {{ bos_token }} is not doubled
        assert p.token_ids[0] == 2 and p.token_ids.count(2) == 1
    assert plain.ids_sha256 != chat.ids_sha256
    # "none" ignores the template: same ids as the template-less tokenizer
    none = prepare_prompts(cfg.model_copy(update={"chat_template": "none"}), templated)
    assert [p.token_ids for p in none.prompts] == [p.token_ids for p in plain.prompts]


@pytest.mark.slow  # loads the tokenizer again (another dir or process): seconds each
def test_chat_template_exact_isl(templated, cache_dir):
    ps = prepare_prompts(DataConfig(split="throughput", isl="1k", prompts_per_category=2, cache_dir=cache_dir),
                         templated)
    assert {p.num_tokens for p in ps.prompts} == {1024}
    assert all(p.token_ids.count(2) == 1 and p.token_ids[0] == 2 for p in ps.prompts)


def test_fingerprint_covers_isl_split_and_selection(gemma):
    base = DataConfig(split="qualitative-mini")
    fps = {fingerprint(c, gemma) for c in (base, base.model_copy(update={"isl": 1024}),
                                           base.model_copy(update={"prompts_per_category": 2}),
                                           DataConfig(split="throughput", isl=1024))}
    assert len(fps) == 4


def test_qualitative_isl_pads_with_real_text(gemma, cache_dir):
    ps = prepare_prompts(DataConfig(split="qualitative-mini", isl="2k", prompts_per_category=2,
                                    cache_dir=cache_dir), gemma)
    assert {p.num_tokens for p in ps.prompts} == {2048}
    assert all(p.padded for p in ps.prompts)


def test_short_prompt_without_padding_source_is_an_error():
    with pytest.raises(ConfigError, match="no padding text"):
        build_exact_isl(Wrapper([2], []), [5, 6, 7], [], [], [], 10)
    ids, truncated, padded = build_exact_isl(Wrapper([2], [9]), list(range(10, 30)), [], [], [], 10)
    assert ids == [2] + list(range(10, 14)) + list(range(26, 30)) + [9] and truncated and not padded


@pytest.mark.slow  # loads the tokenizer again (another dir or process): seconds each
def test_tokenizer_without_bos(gemma, tmp_path, cache_dir):
    d = tmp_path / "nobos"
    d.mkdir()
    shutil.copy(f"{gemma}/tokenizer.json", d / "tokenizer.json")
    cfg = json.loads(open(f"{gemma}/tokenizer_config.json").read())
    cfg["bos_token"] = None
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    dc = DataConfig(split="qualitative-mini", prompts_per_category=1, cache_dir=cache_dir)
    for policy in ("once", "none"):  # no BOS to send: no error, and none sent
        ps = prepare_prompts(dc.model_copy(update={"bos": policy}), str(d))
        assert all(p.token_ids[0] != 2 for p in ps.prompts)


def test_bad_inputs(gemma, cache_dir):
    with pytest.raises(ConfigError, match="unknown split"):
        prepare_prompts(DataConfig(split="no-such-split", cache_dir=cache_dir), gemma)
    with pytest.raises(ConfigError, match="unknown category"):
        prepare_prompts(DataConfig(split="qualitative-mini", categories=["Poetry"], cache_dir=cache_dir), gemma)
    with pytest.raises(ConfigError, match="not found"):
        prepare_prompts(DataConfig(split="qualitative-mini", cache_dir=cache_dir), "/nonexistent/tok")
