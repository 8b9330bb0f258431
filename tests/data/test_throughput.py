import numpy as np
import pytest

from speedbench.config import ConfigError, DataConfig
from speedbench.data.pretokenize import prepare_prompts
from speedbench.data.throughput import TIERS, window_offsets

PER_TIER = 6


def _prep(gemma, cache_dir, isl, per_tier=PER_TIER, **kw):
    return prepare_prompts(DataConfig(split="throughput", isl=isl, prompts_per_category=per_tier,
                                      cache_dir=cache_dir, **kw), gemma)


@pytest.mark.parametrize("isl", ["1k", "8k", 1000])
def test_every_prompt_has_exact_isl_and_one_bos(gemma, cache_dir, isl):
    ps = _prep(gemma, cache_dir, isl)
    want = ps.meta["isl"]
    assert want == (1000 if isl == 1000 else int(isl[:-1]) * 1024)
    assert len(ps.prompts) == PER_TIER * len(TIERS)
    for p in ps.prompts:
        assert p.num_tokens == want, p.id
        assert p.token_ids[0] == 2 and p.token_ids.count(2) == 1, p.id
    assert [p.category for p in ps.prompts] == [t for t in TIERS for _ in range(PER_TIER)]
    assert len({p.token_ids for p in ps.prompts}) == len(ps.prompts)  # distinct windows


@pytest.mark.slow
@pytest.mark.parametrize("isl", ["2k", "16k", "32k"])
def test_bigger_buckets_exact(gemma, cache_dir, isl):
    ps = _prep(gemma, cache_dir, isl, per_tier=4)
    assert {p.num_tokens for p in ps.prompts} == {int(isl[:-1]) * 1024}
    assert len({p.token_ids for p in ps.prompts}) == len(ps.prompts)


def test_tiers_differ_in_entropy_proxy(gemma, cache_dir):
    ps = _prep(gemma, cache_dir, "8k", per_tier=16)
    z = {t: np.mean([p.zlib_ratio for p in ps.prompts if p.category == t]) for t in TIERS}
    h = {t: np.mean([p.token_entropy for p in ps.prompts if p.category == t]) for t in TIERS}
    # low vs mixed zlib ratio depends on which windows are drawn (translation catalogues compress less
    # than code); the orders below hold on every sample size tried (6..512 per tier)
    assert z["low"] < z["high"] and z["mixed"] < z["high"]
    assert h["low"] < h["mixed"] < h["high"]


def test_isl_required_and_unknown_tier(gemma, cache_dir):
    with pytest.raises(ConfigError, match="needs an ISL"):
        prepare_prompts(DataConfig(split="throughput", cache_dir=cache_dir), gemma)
    with pytest.raises(ConfigError, match="unknown throughput tier"):
        _prep(gemma, cache_dir, "1k", categories=["medium"])


def test_tier_filter(gemma, cache_dir):
    ps = _prep(gemma, cache_dir, "1k", per_tier=3, categories=["high"])
    assert [p.category for p in ps.prompts] == ["high"] * 3


def test_window_offsets_distinct_increasing_and_in_range():
    line_starts = np.arange(0, 10_000, 7)
    offs = window_offsets(10_000, 1_000, 50, line_starts)
    assert len(offs) == 50 and np.all(np.diff(offs) > 0)
    assert offs.min() >= 0 and offs.max() <= 9_000
