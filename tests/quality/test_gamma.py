import numpy as np
import pytest

from speedbench.quality.decay import fit_decay, position_counts
from speedbench.quality.gamma import (
    conditional_from_cumulative,
    cumulative_from_conditional,
    drafted_steps,
    expected_tokens_drafted,
    expected_tokens_per_step,
    predict_tokens_per_step,
)
from speedbench.quality.gamma_model import fit_cost_line, model_curve, prompt_weights, sample_point, tokens_per_step
from speedbench.quality.points import PointData
from tests.conftest import make_record


def test_expected_tokens_hand_computed():
    p = [0.8, 0.5, 0.5]  # conditional acceptance
    a = cumulative_from_conditional(p)  # 0.8, 0.4, 0.2
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


def test_cost_line_needs_two_draft_lengths_and_never_falls():
    one = lambda v: np.array([v])  # noqa: E731  (one replicate)
    fit = fit_cost_line({1: one(1.2), 2: one(1.4), 4: one(1.8)})
    assert fit.ratio(4)[0] == pytest.approx([1.2, 1.4, 1.6, 1.8]) and fit.slope[0] == pytest.approx(0.2)
    assert fit_cost_line({3: one(1.5)}) is None  # one k: the cost at any other k is unknown
    falling = fit_cost_line({1: one(1.3), 2: one(1.1), 3: one(0.9)})  # more verification cannot be cheaper
    assert falling.clamped and falling.slope[0] == 0.0 and falling.ratio(5)[0] == pytest.approx([1.1] * 5)


def test_decay_fit_recovers_a_logistic_trend_and_extrapolates():
    # counts drawn exactly from logit p_j = 1.0 - 0.8 (j - 1) over 3 measured positions, 10^5 drafts
    p = 1 / (1 + np.exp(-(1.0 - 0.8 * np.arange(3))))
    n = 100_000 * np.concatenate([[1.0], np.cumprod(p)])
    trials, succ = position_counts(n[:1], n[None, 1:])
    fit = fit_decay(trials, succ)
    assert fit.trend_identifiable
    assert fit.alpha[0] == pytest.approx(1.0, abs=0.01) and fit.beta[0] == pytest.approx(-0.8, abs=0.01)
    cond = fit.conditional(6)[0]
    assert cond[:3] == pytest.approx(p)  # measured where measured
    assert cond[3:] == pytest.approx(1 / (1 + np.exp(-(1.0 - 0.8 * np.arange(3, 6)))), rel=0.02)  # the trend
    assert fit.cumulative(6)[0] == pytest.approx(np.cumprod(cond))


def test_decay_with_one_position_holds_acceptance_constant():
    fit = fit_decay(np.array([[200.0]]), np.array([[150.0]]))
    assert not fit.trend_identifiable and fit.beta[0] == 0.0
    assert fit.conditional(3)[0] == pytest.approx([0.75, 150.5 / 201, 150.5 / 201], rel=1e-6)


def test_drafted_steps_and_model_reproduce_the_stream():
    # 5 chunks = prefill + 4 decode steps; 2 steps drafted (server per-step arrays), 1 accepted at pos 1
    r = make_record(
        chunk_tokens=(1, 2, 4, 5, 6),
        chunk_gap_ms=10.0,
        sd_per_step_drafted=[2, 2],
        sd_per_step_accepted=[1, 0],
        sd={"drafts": 2, "draft_tokens": 4, "accepted_tokens": 1, "accepted_per_position": [1, 0]},
    )
    warm = make_record(chunk_tokens=(1, 2), warmup=True)
    assert drafted_steps(r) == 2
    point = PointData(
        {"point_id": "ngram-k2-c1", "sd_method": "ngram", "draft_length": 2, "engine": "vllm", "concurrency": 1},
        [r, warm],
    )
    s = sample_point(point, prompt_weights([point], np.random.default_rng(0), reps=3))
    assert s.total()[0, :5].tolist() == pytest.approx([4, 5, 0.04, 2, 2])  # steps, tokens, time, drafted, drafts
    assert tokens_per_step([s])[0] == pytest.approx(1.25)
    # the model fed with these counters reproduces the stream: 0.5 * (1 + 0.5) + 0.5 = 1.25
    assert model_curve([s], None, "QA", 2).tokens_per_step[0, 1] == pytest.approx(1.25, rel=0.02)


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
