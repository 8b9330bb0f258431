"""Pairwise overlap is measured on the ids (issue 17, item 2): it sees copied text wherever it comes from."""

import numpy as np

from speedbench.data.overlap import BOUND, pairwise_overlap


def _stream(n=400_000, seed=0):
    return np.random.default_rng(seed).integers(0, 50_000, n).astype(np.int32)


def test_disjoint_windows_share_nothing():
    s = _stream()
    o = pairwise_overlap([s[i : i + 4096] for i in range(0, 40 * 4096, 4096)])
    assert o.pairs == 40 * 39 // 2 and o.max < 0.01 and o.pairs_over_bound == 0


def test_overlapping_windows_measure_their_shared_share():
    s = _stream()
    w, step = 4096, 1024  # consecutive windows share 75 % of their tokens
    o = pairwise_overlap([s[i : i + w] for i in range(0, 20 * step, step)])
    assert abs(o.max - 0.75) < 0.05 and o.worst[1] == o.worst[0] + 1
    assert o.pairs_over_bound > 0 and BOUND == 0.10


def test_repeated_text_at_distant_offsets_is_seen():
    # what a start-offset check cannot see: the same paragraph (a license header, say) in two far windows
    s = _stream()
    header = _stream(1000, seed=1)
    a = np.concatenate([header, s[:3000]])
    b = np.concatenate([s[200_000:203_000], header])
    o = pairwise_overlap([a, b, s[300_000:304_000]])
    assert 0.2 < o.max < 0.3 and o.worst == (0, 1)


def test_tiny_inputs():
    assert pairwise_overlap([]).pairs == 0
    assert pairwise_overlap([np.arange(5)]).max == 0.0
    assert pairwise_overlap([np.arange(5), np.arange(5)]).max == 0.0  # shorter than one k-gram


def test_text_spread_over_many_prompts_is_seen_elsewhere_though_no_pair_is_over_the_bound():
    # the mixed tier of issue 27: each prompt shares little with any ONE other, yet little of it is its own
    s = _stream(500_000)
    parts = [s[i * 1000 : (i + 1) * 1000] for i in range(40)]
    own = [s[100_000 + i * 8000 : 100_000 + (i + 1) * 8000] for i in range(40)]
    # prompt i: its own 8,000 tokens + piece j (400 tokens) of prompt i+j's own text, j = 1..10: every piece
    # of own text is copied once, into a different prompt
    piece = [[own[(i + j) % 40][j * 400 : (j + 1) * 400] for j in range(1, 11)] for i in range(40)]
    prompts = [np.concatenate([own[i], *piece[i]]) for i in range(40)]
    o = pairwise_overlap(prompts)
    assert o.max <= BOUND  # no pair shares more than one 400-token piece (of 12,000 tokens)
    assert 0.5 < o.elsewhere_mean and 0.5 < o.elsewhere_max  # but 8,000 of its 12,000 tokens occur elsewhere
    alone = pairwise_overlap(parts)
    assert alone.elsewhere_max < 0.01 and alone.as_dict()["elsewhere_mean"] < 0.01


def test_windows_of_a_second_tier_avoid_text_taken_in_the_first():
    from speedbench.data.overlap import spread_pick

    shared = _stream(40_000, seed=3)  # the same text in both tiers' streams (a catalogue in low and high, say)
    a = np.concatenate([shared, _stream(40_000, seed=4)])
    b = np.concatenate([shared, _stream(40_000, seed=5)])
    offsets = np.arange(0, 76_000, 4_000)
    owners: dict = {}
    took_a = spread_pick(a, offsets, 4_000, 10, BOUND / 2, owners)
    assert any(o < 40_000 for o in took_a)  # the first tier takes some of the shared text
    took_b = spread_pick(b, offsets, 4_000, 8, BOUND / 2, owners)
    overlap = pairwise_overlap([a[o : o + 4_000] for o in took_a] + [b[o : o + 4_000] for o in took_b])
    assert overlap.max <= BOUND  # the second tier skipped the windows the first already holds
    alone = spread_pick(b, offsets, 4_000, 8, BOUND / 2)  # without the first tier's windows: no reason to skip
    assert any(o < 40_000 for o in alone)
