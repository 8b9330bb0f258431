import re

import numpy as np
import pytest

from speedbench.config import ConfigError, DataConfig
from speedbench.data.inspect import describe
from speedbench.data.pretokenize import prepare_prompts
from speedbench.data.tasks import SEP
from speedbench.data.throughput import TIERS, build_windows, read_pool, tier_streams, window_offsets
from speedbench.data.tokenization import load_tokenizer

PER_TIER = 6


def _prep(gemma, cache_dir, isl, per_tier=PER_TIER, **kw):
    return prepare_prompts(
        DataConfig(split="throughput", isl=isl, prompts_per_category=per_tier, cache_dir=cache_dir, **kw), gemma
    )


@pytest.mark.parametrize("isl", ["1k", "8k", 1000])
def test_every_prompt_has_exact_isl_and_one_bos(gemma, cache_dir, isl):
    ps = _prep(gemma, cache_dir, isl)
    want = ps.meta["isl"]
    assert want == (1000 if isl == 1000 else int(isl[:-1]) * 1024)
    assert len(ps.prompts) == PER_TIER * len(TIERS)
    for p in ps.prompts:
        assert p.num_tokens == want, p.id
        assert p.token_ids[0] == 2 and p.token_ids.count(2) == 1, p.id
    assert [p.category for p in ps.prompts] == list(TIERS) * PER_TIER  # interleaved
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


# ---- offline: a byte-level BPE without BOS (Qwen-style), built in the test session; the bundled pool ----


def _bpe(byte_bpe, cache_dir, isl, per_tier=PER_TIER, **kw):
    return prepare_prompts(
        DataConfig(split="throughput", isl=isl, prompts_per_category=per_tier, cache_dir=cache_dir, **kw), byte_bpe
    )


def test_tasks_exact_isl_interleaved_instruction_last(byte_bpe, cache_dir):
    tok = load_tokenizer(byte_bpe)
    ps = _bpe(byte_bpe, cache_dir, "1k")
    assert [p.category for p in ps.prompts] == list(TIERS) * PER_TIER  # a short point still sees every tier
    assert {p.num_tokens for p in ps.prompts} == {1024}
    assert len({p.token_ids for p in ps.prompts}) == len(ps.prompts)
    suffix = "<|im_end|>\n<|im_start|>assistant\n"
    for p in ps.prompts:
        text = tok.decode(list(p.token_ids))
        assert text.startswith("<|im_start|>user\n") and text.endswith(suffix), p.id
        body, _, task = text[: -len(suffix)].rpartition(SEP)
        assert len(body) > 200 and task.endswith(("?", ".")), (p.id, task)
        assert "above" in task, (p.id, task)  # every task is about the text before it
    assert ps.meta["order"].startswith("tiers interleaved") and "overlap" in ps.meta


def test_task_quotes_come_from_the_window(byte_bpe, cache_dir):
    tok = load_tokenizer(byte_bpe)
    ps = _bpe(byte_bpe, cache_dir, "2k", per_tier=12)
    quoted = 0
    for p in ps.prompts:
        text = tok.decode(list(p.token_ids))
        body, _, task = text.rpartition(SEP)
        m = re.search(r'"([^"]+)"', task)
        if m and not m.group(1).endswith("…"):
            quoted += 1
            assert m.group(1) in " ".join(body.split()), (p.id, m.group(1))
    assert quoted >= 3


def test_windows_start_at_line_starts_on_a_byte_level_vocabulary(byte_bpe):
    tok = load_tokenizer(byte_bpe)
    streams, nl = tier_streams(tok, read_pool())
    assert len(nl)
    wrapper_overhead = 10
    wins = build_windows(tok, streams, 1024 - wrapper_overhead, 20, TIERS, nl, 1024)
    at_line = 0
    for w in wins:
        st = streams[w.tier]
        k = st.text.find(w.text)
        line_head = st.text[st.text.rfind("\n", 0, k) + 1 : k]  # a piece like "ĊĠĠĠ" also eats the indent
        at_line += k == 0 or not line_head.strip() or w.text.startswith("\n")
    assert at_line >= 0.9 * len(wins)  # the rest: no line start before the next window (old code: few)


def test_overlap_bound_holds_where_the_bundled_pool_is_large_enough(byte_bpe, cache_dir):
    ps = _bpe(byte_bpe, cache_dir, "1k", per_tier=48)
    ov = ps.meta["overlap"]
    assert ov["prompts"] == 144 and ov["pairs"] == 144 * 143 // 2
    assert ov["max"] <= 0.10 and ov["within_bound"], ov
    assert all(n >= 48 * 1024 for n in ov["pool_tokens"].values())


def test_overlap_over_the_bound_is_refused_with_its_figures_unless_accepted(byte_bpe, cache_dir):
    over = {"pool": "bundled", "categories": ["mixed"]}  # 64 × 32k exceeds the bundled mixed tier
    for _attempt in ("built", "cached"):  # a cache hit is checked as well
        with pytest.raises(ConfigError, match=r"share up to \d.*bound 10%.*elsewhere.*--allow-overlap"):
            _bpe(byte_bpe, cache_dir, "32k", per_tier=64, **over)
    ps = _bpe(byte_bpe, cache_dir, "32k", per_tier=64, allow_overlap=True, **over)
    ov = ps.meta["overlap"]
    assert not ov["within_bound"] and ov["max"] > 0.10 and ov["over_bound_accepted"]
    assert ov["needed_tokens_per_tier"] > ov["pool_tokens"]["mixed"]
    assert ov["per_tier"]["mixed"]["elsewhere_mean"] >= ov["per_tier"]["mixed"]["mean"]
    out = describe(ps)
    assert "OVER the bound: the pool is too small" in out and "mixed" in out and "pairs > bound" in out
    assert "elsewhere" in out and "accepted with --allow-overlap" in out


def test_auto_pool_is_the_bundled_part_only_for_small_buckets():
    from speedbench.data.throughput import resolve_pool

    assert resolve_pool("auto", 6, 1024) == "bundled"  # tests and the CPU demo stay offline
    assert resolve_pool("auto", 512, 1024) == "full"  # SPEED-Bench's size: the bundled part cannot hold it
    assert resolve_pool("bundled", 512, 32768) == "bundled"


def test_throughput_prompt_meta_is_what_the_manifest_model_names(byte_bpe, cache_dir):
    """manifest.prompts is this meta (plus the fingerprint): every key is named by the typed manifest."""
    from speedbench.core.documents import PromptsInfo
    from tests.documents import unnamed_keys

    ps = _bpe(byte_bpe, cache_dir, "1k")
    info = PromptsInfo.model_validate({"fingerprint": ps.fingerprint, **ps.meta})
    assert unnamed_keys(info) == [] and info.pool_sha256 and info.tiers


def test_inspect_reports_how_many_tasks_quote_their_window(byte_bpe, cache_dir):
    from speedbench.data.tasks import FIXED_INSTRUCTIONS, quotes_window

    assert not quotes_window(SEP + next(iter(FIXED_INSTRUCTIONS)))
    ps = _bpe(byte_bpe, cache_dir, "2k", per_tier=12)
    tasks = ps.meta["tasks"]
    tok = load_tokenizer(byte_bpe)
    quoting = sum(
        quotes_window(SEP + tok.decode(list(p.token_ids)).rpartition(SEP)[2].split("<|im_end|>")[0]) for p in ps.prompts
    )
    assert tasks["prompts"] == 36 and tasks["quoting_window"] == quoting > 0
    assert sum(v["prompts"] for v in tasks["per_tier"].values()) == 36
    assert f"{tasks['quoting_window']} of 36" in describe(ps)


def test_table_tasks_quote_a_header_row_and_most_tasks_quote_the_window():
    from speedbench.data.tasks import instruction_for, quotes_window

    rows = "\n".join(f"2024-01-{d:02d},{d * 1.5},{d % 7}" for d in range(1, 29))
    with_header = f"\nsome prose before\ndate,temp_max,weather\n{rows}\n"
    task = instruction_for("csv", with_header, 0)
    assert '"date,temp_max,weather"' in task and quotes_window(task)
    headless = instruction_for("csv", f"\n{rows}\n", 0)  # rows without their header: no table task
    assert "column" not in headless and not quotes_window(headless)
    code = "\nimport os\n\n\ndef walk_tree(root, follow_links=False):\n    return list(os.walk(root))\n"
    tasks = [instruction_for("code", code, i) for i in range(6)]
    assert all(quotes_window(t) for t in tasks)  # no fixed request while something can be quoted


def test_the_pool_tokenized_in_batches_gives_the_same_streams(byte_bpe, monkeypatch):
    """The pool is tokenized ENCODE_BATCH documents per call (memory); the joined streams do not depend on it."""
    from speedbench.data import throughput

    tok, docs = load_tokenizer(byte_bpe), read_pool()
    whole, nl = tier_streams(tok, docs)
    monkeypatch.setattr(throughput, "ENCODE_BATCH", 3)  # many calls, a partial last one
    batched, nl_b = tier_streams(tok, docs)
    assert np.array_equal(nl, nl_b) and whole.keys() == batched.keys()
    for t in whole:
        for k in ("ids", "start", "end"):
            assert np.array_equal(getattr(whole[t], k), getattr(batched[t], k)), (t, k)
