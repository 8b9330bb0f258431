import json
import shutil

import pytest

from speedbench.config import ConfigError, DataConfig
from speedbench.data.pretokenize import fingerprint, prepare_prompts
from speedbench.data.tokenization import Wrapper, build_exact_isl, own_padding

TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


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
    ps = prepare_prompts(
        DataConfig(split="throughput", isl="1k", prompts_per_category=2, cache_dir=cache_dir), templated
    )
    assert {p.num_tokens for p in ps.prompts} == {1024}
    assert all(p.token_ids.count(2) == 1 and p.token_ids[0] == 2 for p in ps.prompts)


def test_fingerprint_covers_isl_split_and_selection(gemma):
    base = DataConfig(split="qualitative-mini")
    fps = {
        fingerprint(c, gemma)
        for c in (
            base,
            base.model_copy(update={"isl": 1024}),
            base.model_copy(update={"prompts_per_category": 2}),
            DataConfig(split="throughput", isl=1024),
        )
    }
    assert len(fps) == 4


def test_isl_without_split_means_the_throughput_split():
    assert DataConfig(isl="8k").split == "throughput"
    assert DataConfig().split == "qualitative-mini"
    assert DataConfig(split="qualitative-mini", isl="8k", pad_to_isl=True).split == "qualitative-mini"


def test_padding_a_qualitative_split_is_an_opt_in(gemma, cache_dir):
    with pytest.raises(ConfigError, match="pad_to_isl"):
        prepare_prompts(
            DataConfig(split="qualitative-mini", isl="2k", prompts_per_category=2, cache_dir=cache_dir), gemma
        )
    # 22 prompts x 2k of padding is far more distinct text than the split holds: refused, never shared
    with pytest.raises(ConfigError, match="distinct text"):
        prepare_prompts(
            DataConfig(
                split="qualitative-mini", isl="2k", prompts_per_category=2, pad_to_isl=True, cache_dir=cache_dir
            ),
            gemma,
        )


def test_padded_prompts_share_no_padding(gemma, cache_dir):
    ps = prepare_prompts(
        DataConfig(split="qualitative-mini", isl=80, prompts_per_category=1, pad_to_isl=True, cache_dir=cache_dir),
        gemma,
    )
    assert {p.num_tokens for p in ps.prompts} == {80}
    padded = [p for p in ps.prompts if p.padded]
    assert len(padded) >= 2
    tails = [tuple(p.token_ids[-16:]) for p in padded]  # each prompt's last 16 ids are its own padding
    assert len(set(tails)) == len(tails)


def test_own_padding_slices_do_not_overlap():
    pads = own_padding([[1] * 3, [1] * 10, [1] * 5], list(range(100, 120)), [0], 10)
    assert pads == [list(range(100, 106)), [], list(range(106, 110))]
    with pytest.raises(ConfigError, match="distinct text"):
        own_padding([[1], [1]], list(range(10)), [0], 10)


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


def test_caches_live_under_speedbench_home(monkeypatch, tmp_path):
    """Prompt caches and the full pool follow SPEEDBENCH_HOME (CI empties it so every cache is rebuilt); the
    prompt cache used to stay in ~/.cache/speedbench whatever SPEEDBENCH_HOME said."""
    from speedbench.core.paths import cache_root
    from speedbench.data.pretokenize import default_cache_dir

    monkeypatch.delenv("SPEEDBENCH_CACHE", raising=False)
    monkeypatch.setenv("SPEEDBENCH_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "prompts"
    assert cache_root() == tmp_path / "home"
    monkeypatch.setenv("SPEEDBENCH_CACHE", str(tmp_path / "cache"))  # caches only: it wins over HOME
    assert default_cache_dir() == tmp_path / "cache" / "prompts"
