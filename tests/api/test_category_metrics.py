"""Per-category acceptance (metrics.category): pure function of records."""

from speedbench.core.acceptance import counters_from_histogram
from speedbench.core.records import FAILED, RequestRecord
from speedbench.metrics.category import category_acceptance, turn_acceptance
from tests.metrics.helpers import summarize


def rec(cat, chunk_sizes, hist=None, k=3, warmup=False, status="ok"):
    """A record whose stream emitted chunks of these sizes, with optional per-request SD histogram."""
    cum, c = [], 0
    for s in chunk_sizes:
        c += s
        cum.append(c)
    r = RequestRecord(
        request_id="r",
        prompt_id="p",
        category=cat,
        prompt_len=4,
        max_tokens=c,
        warmup=warmup,
        chunk_tokens=cum,
        chunk_times_ns=list(range(len(cum))),
        status=status,
    )
    if hist is not None:
        r.sd = counters_from_histogram(hist, k * sum(hist), "test").to_dict()
    return r


def test_per_category_chunk_al_and_drafted_al():
    records = [
        rec("Coding", [1, 4, 4, 1], hist=[1, 0, 0, 2]),  # 10 tokens / 4 chunks; accepted 6 over 3 drafts
        rec("Coding", [1, 2, 1], hist=[1, 1, 0, 0]),  # 4 tokens / 3 chunks; accepted 1 over 2 drafts
        rec("Math", [1, 1, 1, 1], hist=[3, 0, 0, 0]),  # nothing accepted
        rec("Math", [1, 4, 4], hist=[0, 0, 0, 2], warmup=True),  # warm-up: ignored
        rec("RAG", [1, 3], hist=[0, 0, 1, 0], status=FAILED),  # failed: ignored
    ]
    out = {c.category: c for c in category_acceptance(records)}
    assert sorted(out) == ["Coding", "Math"]
    coding = out["Coding"]
    assert coding.requests == 2 and coding.output_tokens == 14 and coding.steps == 7
    assert coding.tokens_per_step == 14 / 7
    assert coding.tokens_per_step_mean == (10 / 4 + 4 / 3) / 2
    assert coding.drafts == 5 and coding.accepted_tokens == 7
    assert coding.al_drafted == 1 + 7 / 5
    assert coding.draft_acceptance_rate == 7 / 15
    assert out["Math"].al_drafted == 1.0 and out["Math"].tokens_per_step == 1.0


def test_sd_off_records_have_no_drafted_al():
    out = category_acceptance([rec("QA", [1, 1, 1])])
    assert len(out) == 1
    assert out[0].al_drafted is None and out[0].draft_acceptance_rate is None and out[0].drafts == 0
    assert out[0].tokens_per_step == 1.0


def test_no_measured_records_gives_empty_list():
    assert category_acceptance([rec("QA", [1, 2], warmup=True)]) == []


def test_per_turn_acceptance_of_multi_turn_points():
    def turn(t, sizes, hist, prompt_len, **kw):
        r = rec("Writing", sizes, hist=hist, **kw)
        r.turn, r.prompt_len, r.t_first_ns = t, prompt_len, 2_000_000 * t
        return r

    records = [
        turn(1, [1, 4, 4, 1], [1, 0, 0, 2], 10),
        turn(2, [1, 1, 1, 1], [3, 0, 0, 0], 30),
        turn(1, [1, 2, 1], [1, 1, 0, 0], 12),
        turn(2, [1, 3], [0, 0, 1, 0], 40),
        turn(2, [1, 4], [0, 0, 0, 1], 50, status=FAILED),
    ]
    t1, t2 = turn_acceptance(records)
    assert (t1["turn"], t1["requests"], t1["tokens_per_step"], t1["al_drafted"]) == (1, 2, 14 / 7, 1 + 7 / 5)
    assert (t2["turn"], t2["requests"], t2["tokens_per_step"], t2["al_drafted"]) == (2, 2, 8 / 6, 1 + 2 / 4)
    assert t1["prompt_len_mean"] == 11 and t2["prompt_len_mean"] == 35
    assert t2["ttft_mean_ms"] == 4.0
    # single-turn records: nothing to split
    assert turn_acceptance([r for r in records if r.turn == 1]) == []
    s = summarize("ngram", 1, records)
    assert [t["turn"] for t in s.per_turn] == [1, 2]
    assert s.tokens_per_step == 22 / 13  # the point itself pools every turn, as SPEED-Bench averages
    row = s.to_row()
    assert row["tokens_per_step_by_turn"] == "1:2.000,2:1.333"
    assert row["al_drafted_by_turn"] == "1:2.400,2:1.500"
