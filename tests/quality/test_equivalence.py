from speedbench.quality.equivalence import ALL, by_category, compare_records, first_divergence, summarize_pairs
from tests.conftest import make_record


def rec(pid, cat, ids, text="", **kw):
    return make_record(
        chunk_tokens=tuple(range(1, len(ids) + 1)),
        prompt_id=pid,
        category=cat,
        output_ids=list(ids),
        text=text or " ".join(map(str, ids)),
        **kw,
    )


def test_first_divergence():
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [1, 9, 3]) == 1
    assert first_divergence([5, 2], [1, 2]) == 0
    assert first_divergence([1, 2], [1, 2, 3]) == 2  # a strict prefix diverges where the shorter one ends


def test_identical_outputs_match_exactly():
    off = [rec("a", "Math", [1, 2, 3]), rec("b", "QA", [4, 5, 6])]
    on = [rec("a", "Math", [1, 2, 3]), rec("b", "QA", [4, 5, 6])]
    s = summarize_pairs(compare_records(on, off))
    assert (s.pairs, s.exact_match_rate, s.divergence_rate, s.first_divergence_min) == (2, 1.0, 0.0, None)
    assert s.matched_prefix_frac == 1.0 and s.text_match_rate == 1.0


def test_divergence_position_and_rate_per_category():
    off = [rec("a", "Math", [1, 2, 3, 4]), rec("b", "Math", [1, 2, 3, 4]), rec("c", "QA", [7, 7, 7, 7])]
    on = [rec("a", "Math", [1, 2, 9, 9]), rec("b", "Math", [1, 2, 3, 4]), rec("c", "QA", [7, 7, 7, 7])]
    rows = {s.category: s for s in by_category(compare_records(on, off))}
    assert rows["Math"].pairs == 2 and rows["Math"].divergence_rate == 0.5
    assert rows["Math"].first_divergence_min == 2
    assert rows["Math"].matched_prefix_frac == (2 / 4 + 1) / 2
    assert rows["QA"].exact_match_rate == 1.0
    assert rows[ALL].pairs == 3 and abs(rows[ALL].exact_match_rate - 2 / 3) < 1e-12


def test_warmup_failed_and_unpaired_requests_are_not_compared():
    off = [rec("a", "Math", [1, 2]), rec("z", "QA", [1], warmup=True)]
    on = [
        rec("a", "Math", [1, 2]),
        rec("a", "Math", [3, 3], warmup=True),
        rec("a", "Math", [3, 3], status="failed"),
        rec("b", "QA", [1, 2]),
        rec("z", "QA", [2]),
    ]
    pairs = compare_records(on, off)
    assert [p.prompt_id for p in pairs] == ["a"] and pairs[0].exact


def test_pairs_without_token_ids_are_refused_not_passed():
    from speedbench.core.records import RequestRecord
    from speedbench.quality.equivalence import compare_records, pairs_without_ids

    def rec(ids, text):
        r = RequestRecord("r", "p1", "coding", 4, 8)
        r.output_ids, r.text = list(ids), text
        return r

    # an engine that streamed no ids: two different texts must not read as an exact match
    assert compare_records([rec([], "Paris")], [rec([], "London")]) == []
    assert pairs_without_ids([rec([], "Paris")], [rec([1, 2], "London")]) == ["coding"]
    assert [p.exact for p in compare_records([rec([1, 2], "a")], [rec([1, 2], "a")])] == [True]


def conv(pid, cid, turns, **kw):
    """One conversation: a record per turn's output ids."""
    return [
        rec(pid, "Writing", ids, conversation_id=cid, turn=t, request_id=cid if t == 1 else f"{cid}.{t}", **kw)
        for t, ids in enumerate(turns, 1)
    ]


def test_whole_conversations_are_compared_not_single_turns():
    off = conv("m", "off#0", [[1, 2, 3], [4, 5, 6]]) + conv("n", "off#1", [[7, 8], [9, 9]])
    # m: first turns equal, the second diverges -> diverges at token 3 + 1 of the joined outputs
    # n: turns listed out of order still join in turn order
    on = conv("m", "on#0", [[1, 2, 3], [4, 0, 6]]) + conv("n", "on#1", [[7, 8], [9, 9]])[::-1]
    pairs = {p.prompt_id: p for p in compare_records(on, off)}
    assert (pairs["m"].exact, pairs["m"].first_divergence, pairs["m"].compared_tokens, pairs["m"].turns) == (
        False,
        4,
        6,
        2,
    )
    assert pairs["n"].exact and pairs["n"].turns == 2
    # one pair per conversation, not per turn
    assert summarize_pairs(list(pairs.values())).pairs == 2


def test_conversations_with_a_failed_or_missing_turn_are_left_out():
    off = conv("m", "off#0", [[1, 2], [3, 4]])
    failed = conv("m", "on#0", [[1, 2], [3, 4]])
    failed[1].status = "failed"
    cut_short = conv("m", "on#1", [[1, 2]])  # the point ended before its second turn
    missing_first = conv("m", "on#2", [[1, 2], [3, 4]])[1:]
    assert compare_records(failed + cut_short + missing_first, off) == []
    # a reference cut short does not replace a complete one
    pairs = compare_records(conv("m", "on#3", [[1, 2], [3, 4]]), conv("m", "off#9", [[1, 2]]) + off)
    assert len(pairs) == 1 and pairs[0].exact
