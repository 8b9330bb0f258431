"""Multi-turn conversations in the load client: turns in order, each built on the model's actual reply."""

from __future__ import annotations

import pytest

from speedbench.data.promptset import TokenizedPrompt, turn_ids_digest
from speedbench.data.turns import NextTurn
from speedbench.load.plan import LoadPlan, planned_requests
from speedbench.load.stub_server import StubConfig
from tests.load.conftest import make_prompts, run_against_stub

TAIL = (7, 8, 9)


def _conversations(n_two_turn: int = 3, n_single: int = 2) -> list[TokenizedPrompt]:
    two = [
        TokenizedPrompt(f"m{i}", "c", (2, 300 + i, 301 + i), num_turns=2, turn_tails=(TAIL + (i,),))
        for i in range(n_two_turn)
    ]
    return two + make_prompts(n_single)


def test_later_turns_carry_the_earlier_ids_and_the_reply_ids(adapter):
    prompts = _conversations()
    plan = LoadPlan(concurrency=2, num_requests=5, warmup_requests=0, max_tokens=4, next_turn=NextTurn())
    run, _ = run_against_stub(adapter, plan, StubConfig(), prompts=prompts)
    recs = [r for r in run.records if not r.warmup]
    assert len(recs) == planned_requests(prompts, plan) == 8 and all(r.status == "ok" for r in recs)
    by_conv: dict[str, list] = {}
    for r in recs:
        by_conv.setdefault(r.conversation_id, []).append(r)
    assert sorted(by_conv) == [f"pt#{i}" for i in range(5)]
    for conv, turns in by_conv.items():
        turns.sort(key=lambda r: r.turn)
        p = next(x for x in prompts if x.id == turns[0].prompt_id)
        assert [r.turn for r in turns] == list(range(1, p.turns_to_send + 1))
        assert turns[0].request_id == conv and turns[0].prompt_sha256 is None
        if len(turns) == 2:
            first, second = turns
            # sent only after the first reply had fully arrived (same closed-loop slot)
            assert second.t_start_ns >= first.t_end_ns
            expected = list(p.token_ids) + first.output_ids + list(p.turn_tails[0])
            assert second.prompt_len == len(expected) and second.prompt_sha256 == turn_ids_digest(expected)
            assert second.server_prompt_ids_match is True  # the stub echoed exactly these ids
            assert second.request_id == f"{conv}.2"
    assert run.prompt_order == [p.id for p in prompts]  # one entry per conversation


def test_first_turn_only_without_a_next_turn_builder(adapter):
    prompts = _conversations()
    plan = LoadPlan(concurrency=2, num_requests=5, warmup_requests=0, max_tokens=4)
    run, _ = run_against_stub(adapter, plan, StubConfig(), prompts=prompts)
    assert planned_requests(prompts, plan) == 5
    assert sorted(r.turn for r in run.records) == [1] * 5


def test_a_failed_turn_ends_its_conversation(adapter):
    prompts = _conversations(n_two_turn=2, n_single=0)
    plan = LoadPlan(concurrency=1, num_requests=2, warmup_requests=0, max_tokens=4, next_turn=NextTurn())
    run, _ = run_against_stub(adapter, plan, StubConfig(fault="http_500"), prompts=prompts)
    assert [(r.turn, r.status) for r in run.records] == [(1, "failed"), (1, "failed")]


@pytest.mark.parametrize(
    "end_id,output_ids,expected",
    [
        (7, [5, 6, 106], [1, 2, 5, 6, 106, 7, 9]),  # no overlap: the reply is kept whole
        (7, [5, 6, 7], [1, 2, 5, 6, 7, 9]),  # the reply ended its turn (7); the template writes 7 itself
        (None, [5, 6, 7], [1, 2, 5, 6, 7, 7, 9]),  # 7 is ordinary text (plain format): the reply is kept whole
    ],
)
def test_next_turn_splices_the_reply_ids(end_id, output_ids, expected):
    assert NextTurn(end_id=end_id)((7, 9), [1, 2], output_ids, "ignored") == expected


def test_next_turn_tokenizes_text_when_the_engine_returns_no_ids(gemma_dir):
    from speedbench.data.tokenization import encode, load_tokenizer

    reply = encode(load_tokenizer(str(gemma_dir)), " Paris is the capital.")
    assert NextTurn(str(gemma_dir))((9,), [1], [], " Paris is the capital.") == [1, *reply, 9]


@pytest.mark.slow  # spawns two worker processes
def test_conversations_in_worker_processes(adapter):
    """The per-turn builder travels with the plan, so each worker process runs whole conversations."""
    prompts = _conversations()
    plan = LoadPlan(concurrency=2, num_requests=5, warmup_requests=0, max_tokens=4, next_turn=NextTurn(), workers=2)
    run, _ = run_against_stub(adapter, plan, StubConfig(), prompts=prompts)
    measured = [r for r in run.records if not r.warmup]
    assert len(measured) == 8 and all(r.status == "ok" for r in measured)
    firsts = {r.conversation_id: r for r in measured if r.turn == 1}
    for r in (r for r in measured if r.turn == 2):
        p = next(x for x in prompts if x.id == r.prompt_id)
        expected = list(p.token_ids) + firsts[r.conversation_id].output_ids + list(p.turn_tails[0])
        assert r.prompt_sha256 == turn_ids_digest(expected) and r.server_prompt_ids_match
