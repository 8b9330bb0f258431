"""Per-category acceptance (metrics.category): pure function of records."""
from speedbench.engines.acceptance import counters_from_histogram
from speedbench.load.records import FAILED, RequestRecord
from speedbench.metrics.category import category_acceptance


def rec(cat, chunk_sizes, hist=None, k=3, warmup=False, status="ok"):
    """A record whose stream emitted chunks of these sizes, with optional per-request SD histogram."""
    cum, c = [], 0
    for s in chunk_sizes:
        c += s
        cum.append(c)
    r = RequestRecord(request_id="r", prompt_id="p", category=cat, prompt_len=4, max_tokens=c,
                      warmup=warmup, chunk_tokens=cum, chunk_times_ns=list(range(len(cum))), status=status)
    if hist is not None:
        r.sd = counters_from_histogram(hist, k * sum(hist), "test").to_dict()
    return r


def test_per_category_chunk_al_and_drafted_al():
    records = [
        rec("Coding", [1, 4, 4, 1], hist=[1, 0, 0, 2]),       # 10 tokens / 4 chunks; accepted 6 over 3 drafts
        rec("Coding", [1, 2, 1], hist=[1, 1, 0, 0]),          # 4 tokens / 3 chunks; accepted 1 over 2 drafts
        rec("Math", [1, 1, 1, 1], hist=[3, 0, 0, 0]),         # nothing accepted
        rec("Math", [1, 4, 4], hist=[0, 0, 0, 2], warmup=True),   # warm-up: ignored
        rec("RAG", [1, 3], hist=[0, 0, 1, 0], status=FAILED),     # failed: ignored
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
