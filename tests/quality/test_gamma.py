import pytest

from speedbench.quality.gamma import (conditional_from_cumulative, cumulative_from_conditional,
                                      expected_tokens_drafted, expected_tokens_per_step, fit_cost_ratio, merge_stats,
                                      predict_tokens_per_step, recommend, step_stats)
from tests.conftest import make_record


def test_expected_tokens_hand_computed():
    p = [0.8, 0.5, 0.5]                     # conditional acceptance
    a = cumulative_from_conditional(p)      # 0.8, 0.4, 0.2
    assert a == pytest.approx([0.8, 0.4, 0.2])
    assert conditional_from_cumulative(a) == pytest.approx(p)
    assert expected_tokens_drafted(a, 0) == 1.0
    assert expected_tokens_drafted(a, 1) == pytest.approx(1.8)
    assert expected_tokens_drafted(a, 3) == pytest.approx(2.4)
    with pytest.raises(ValueError):
        expected_tokens_drafted(a, 4)


def test_steps_without_draft_emit_one_token():
    a = [0.8, 0.4, 0.2]
    assert expected_tokens_per_step(a, 3, 1.0) == pytest.approx(2.4)
    assert expected_tokens_per_step(a, 3, 0.0) == 1.0
    # a quarter of steps draft: 0.25 * 2.4 + 0.75 * 1
    assert expected_tokens_per_step(a, 3, 0.25) == pytest.approx(1.35)


def test_cost_fit_line_and_constant():
    fit = fit_cost_ratio([1, 2, 4], [1.2, 1.4, 1.8])
    assert fit.ratio(3) == pytest.approx(1.6) and fit.slope == pytest.approx(0.2)
    one = fit_cost_ratio([3], [1.5])
    assert one.ratio(1) == one.ratio(7) == 1.5
    assert fit_cost_ratio([], []) is None
    falling = fit_cost_ratio([1, 2, 3], [1.3, 1.1, 0.9])  # noise: more verification cannot be cheaper
    assert falling.clamped and falling.slope == 0.0 and falling.ratio(5) == pytest.approx(1.1)


def test_recommend_picks_the_k_that_maximizes_modeled_speedup():
    a = [0.9, 0.6, 0.3, 0.1, 0.02]
    cost = fit_cost_ratio([1, 5], [1.1, 1.5])   # r(k) = 1.0 + 0.1 k
    best, cands = recommend(a, 0.8, cost)
    speedups = {c.k: c.speedup for c in cands}
    expected = {k: predict_tokens_per_step(a, 5, 0.8, k)[0] / (1.0 + 0.1 * k) for k in range(1, 6)}
    assert speedups == pytest.approx(expected)
    assert best == max(expected, key=expected.get)
    assert 1 < best < 5  # an interior optimum: acceptance decays while cost keeps growing


def test_recommend_says_off_when_nothing_beats_sd_off():
    best, cands = recommend([0.1, 0.01], 0.1, fit_cost_ratio([1, 2], [1.5, 1.7]))
    assert best == 0 and all(c.speedup < 1 for c in cands)


def test_step_stats_counts_drafted_steps_and_decode_tokens():
    # 5 chunks = prefill + 4 decode steps; 2 steps drafted (server per-step arrays), 1 accepted at pos 1
    r = make_record(chunk_tokens=(1, 2, 4, 5, 6), chunk_gap_ms=10.0, sd_per_step_drafted=[2, 2],
                    sd_per_step_accepted=[1, 0],
                    sd={"drafts": 2, "draft_tokens": 4, "accepted_tokens": 1, "accepted_per_position": [1, 0]})
    warm = make_record(chunk_tokens=(1, 2), warmup=True)
    s = step_stats([r, warm])
    assert (s.requests, s.decode_steps, s.decode_tokens, s.drafted_steps) == (1, 4, 5, 2)
    assert s.f_draft == 0.5 and s.cum_accept == (0.5, 0.0)
    assert s.itl_s == pytest.approx(0.010) and s.tokens_per_step == pytest.approx(1.25)
    # the model fed with these counters reproduces the stream: 0.5 * (1 + 0.5) + 0.5 = 1.25
    assert expected_tokens_per_step(s.cum_accept, 2, s.f_draft) == pytest.approx(s.tokens_per_step)
    both = merge_stats([s, s])
    assert (both.decode_steps, both.drafted_steps, both.accepted_per_position) == (8, 4, (2, 0))
    off = step_stats([make_record(chunk_tokens=(1, 2, 3))], sd_on=False)
    assert off.f_draft == 0.0 and off.drafts == 0


def test_undrafted_token_share_carries_f_draft_across_draft_lengths():
    # 100 tokens: 40 emitted without a draft; drafted steps emit E tokens. k=2: E=2.2 -> 60/2.2 drafted steps
    a = [0.8, 0.4]
    e1, e2 = 1.8, 2.2
    f2 = (60 / e2) / (60 / e2 + 40)
    t1, f1 = predict_tokens_per_step(a, 2, f2, 1)
    assert f1 == pytest.approx((60 / e1) / (60 / e1 + 40))
    assert t1 == pytest.approx(100 / (60 / e1 + 40))
    assert f1 > f2  # shorter drafts need more drafted steps for the same text
    assert predict_tokens_per_step(a, 2, f2, 2)[0] == pytest.approx(expected_tokens_per_step(a, 2, f2))
