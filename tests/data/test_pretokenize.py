import json
import shutil

import pytest

from speedbench.config import ConfigError, DataConfig
from speedbench.data.pretokenize import apply_bos, prepare_prompts, read_prompt_set
from speedbench.data.prompts import CATEGORIES


def test_bos_exactly_once():
    assert apply_bos([2, 2, 2, 5, 6], 2, 2) == [2, 5, 6]
    assert apply_bos([5, 6], 2, 2) == [2, 5, 6]
    assert apply_bos([5, 6], None, None) == [5, 6]  # a tokenizer without BOS: no error, no BOS
    assert apply_bos([2, 5], None, 2) == [5]  # bos: none drops the one the template rendered


def test_natural_prompts_start_with_one_bos_and_are_cached(gemma_dir, tmp_path):
    cfg = DataConfig(prompts_per_category=1, cache_dir=str(tmp_path))
    ps = prepare_prompts(cfg, str(gemma_dir))
    assert len(ps.prompts) == 11
    assert {p.category for p in ps.prompts} == set(CATEGORIES)
    for p in ps.prompts:
        assert p.token_ids[0] == 2 and p.token_ids[1] != 2
    cached = list(tmp_path.glob("*.parquet"))
    assert len(cached) == 1
    again = read_prompt_set(cached[0])
    assert again.ids_sha256 == ps.ids_sha256 and again.fingerprint == ps.fingerprint


def _change_one_id(path):
    """Rewrite a cache parquet with one token id changed, keeping its fingerprint and metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    rows = table.column("token_ids").to_pylist()
    rows[0][-1] += 1
    table = table.set_column(table.column_names.index("token_ids"), "token_ids", pa.array(rows, pa.list_(pa.int32())))
    pq.write_table(table.replace_schema_metadata(table.schema.metadata), path)


def test_a_cache_with_one_id_changed_is_refused_naming_the_file(tmp_path):
    from speedbench.data.promptset import PromptCacheMismatch, PromptSet, TokenizedPrompt, write_prompt_set

    pset = PromptSet("f" * 64, [TokenizedPrompt("a", "QA", (2, 5, 6)), TokenizedPrompt("b", "QA", (2, 7))])
    pset.meta["ids_sha256"] = pset.ids_sha256
    path = tmp_path / "entry.parquet"
    write_prompt_set(pset, path)
    assert read_prompt_set(path).ids_sha256 == pset.ids_sha256
    _change_one_id(path)
    with pytest.raises(PromptCacheMismatch, match=str(path)):
        read_prompt_set(path)


def test_prepare_rebuilds_a_tampered_cache(gemma_dir, tmp_path, caplog):
    cfg = DataConfig(prompts_per_category=1, cache_dir=str(tmp_path))
    ps = prepare_prompts(cfg, str(gemma_dir))
    (cached,) = tmp_path.glob("*.parquet")
    _change_one_id(cached)
    again = prepare_prompts(cfg, str(gemma_dir))
    assert again.ids_sha256 == ps.ids_sha256 and again.prompts == ps.prompts  # rebuilt, not the edited ids
    assert str(cached) in caplog.text and "rebuilding" in caplog.text
    assert read_prompt_set(cached).ids_sha256 == ps.ids_sha256  # the rebuilt entry replaced the edited one


@pytest.mark.parametrize("isl", [64, 1024])
def test_exact_isl_for_every_prompt(gemma_dir, tmp_path, isl):
    # 64: the qualitative split padded on request; 1024: no split named, so the throughput split
    named = {"split": "qualitative-mini", "pad_to_isl": True} if isl == 64 else {}
    ps = prepare_prompts(DataConfig(prompts_per_category=2, isl=isl, cache_dir=str(tmp_path), **named), str(gemma_dir))
    assert ps.meta["split"] == ("qualitative-mini" if isl == 64 else "throughput")
    assert [p.num_tokens for p in ps.prompts] == [isl] * len(ps.prompts)
    assert all(p.token_ids.count(2) == 1 and p.token_ids[0] == 2 for p in ps.prompts)
    # short prompts were padded with real text, long ones truncated; never both
    assert all(not (p.padded and p.truncated) for p in ps.prompts)
    if isl == 64:
        assert any(p.padded for p in ps.prompts) and all(p.padded or p.truncated for p in ps.prompts)


def test_fingerprint_follows_the_chat_template(gemma_dir, tmp_path):
    tok = tmp_path / "tok"
    shutil.copytree(gemma_dir, tok, ignore=shutil.ignore_patterns("*.safetensors"))
    cfg = DataConfig(prompts_per_category=1, cache_dir=str(tmp_path / "cache"))
    plain = prepare_prompts(cfg, str(tok))
    tc = json.loads((tok / "tokenizer_config.json").read_text())
    tc["chat_template"] = (
        "{{ bos_token }}{% for m in messages %}<start_of_turn>user\n{{ m['content'] }}<end_of_turn>\n{% endfor %}<start_of_turn>model\n"
    )
    (tok / "tokenizer_config.json").write_text(json.dumps(tc))
    templated = prepare_prompts(cfg, str(tok))
    assert templated.fingerprint != plain.fingerprint
    assert templated.meta["chat_template_applied"] and not plain.meta["chat_template_applied"]
    # the template's own {{ bos_token }} does not produce a second BOS
    for p in templated.prompts:
        assert p.token_ids[0] == 2 and p.token_ids[1] != 2
        assert len(p.token_ids) > len(next(q for q in plain.prompts if q.id == p.id).token_ids)


def test_isl_shorter_than_template_is_a_clear_error(gemma_dir, tmp_path):
    with pytest.raises(ConfigError, match="ISL"):
        prepare_prompts(DataConfig(prompts_per_category=1, isl=1, cache_dir=str(tmp_path)), str(gemma_dir))


def test_unknown_category_and_split(gemma_dir, tmp_path):
    with pytest.raises(ConfigError, match="Poetry"):
        prepare_prompts(DataConfig(categories=["Poetry"], cache_dir=str(tmp_path)), str(gemma_dir))
    with pytest.raises(ConfigError, match="unknown split"):
        prepare_prompts(DataConfig(split="nope", cache_dir=str(tmp_path)), str(gemma_dir))


def test_no_tokenizer_is_a_config_error(tmp_path):
    # was a TypeError from Path(None) deep inside; callers catch ConfigError to print one clear line
    with pytest.raises(ConfigError, match="no tokenizer"):
        prepare_prompts(DataConfig(cache_dir=str(tmp_path)), None)
