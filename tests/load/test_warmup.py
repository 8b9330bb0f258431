import asyncio

from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.load.plan import LoadPlan
from speedbench.load.point import run_point
from speedbench.load.schedule import PromptOrder
from speedbench.load.stub_server import StubConfig, start_stub
from speedbench.load.warmup import WARMUP_MAX_TOKENS, warmup_prompts


def _prompts(n: int = 12) -> list[TokenizedPrompt]:
    cats = ["a", "b", "c"]
    return [TokenizedPrompt(f"p{i}", cats[i % 3], [2, *range(10 * i, 10 * i + 4 + i)]) for i in range(n)]


def test_warmup_prompts_follow_the_length_profile_and_send_no_measured_prompt_or_prefix():
    prompts = _prompts()
    order = PromptOrder([p.category for p in prompts], "stratified", seed=4)
    warm = warmup_prompts(prompts, order, 5, seed=4)
    assert [w.num_tokens for w in warm] == [prompts[order.index(j)].num_tokens for j in range(5)]
    sent = {p.token_ids for p in prompts}
    for j, w in enumerate(warm):
        src = prompts[order.index(j)]
        assert w.id == f"warmup-{j}" and w.category == "warm-up" and not w.turn_tails
        assert w.token_ids not in sent and sorted(w.token_ids) == sorted(src.token_ids)
        assert w.token_ids[0] != src.token_ids[0]  # no prefix shared: a prefix cache keeps nothing reusable
    assert [w.token_ids for w in warmup_prompts(prompts, order, 5, seed=4)] == [w.token_ids for w in warm]


def test_point_warms_up_on_its_own_prompts_and_measures_every_prompt_once(adapter):
    prompts = _prompts()
    plan = LoadPlan(concurrency=4, num_requests=12, warmup_requests=4, max_tokens=400, order="stratified")

    async def quiet_moment():  # the runner's counter snapshot: makes the warm-up a wave of its own
        return None

    async def main():
        srv, server, port = await start_stub(StubConfig())
        try:
            return await run_point(adapter, f"http://127.0.0.1:{port}", prompts, plan, None, "pt", quiet_moment)
        finally:
            server.close()

    run = asyncio.run(main())
    warm = [r for r in run.records if r.warmup]
    measured = [r for r in run.records if not r.warmup]
    assert len(warm) == 4 and all(r.prompt_id.startswith("warmup-") for r in warm)
    assert all(r.max_tokens == WARMUP_MAX_TOKENS for r in warm)  # capped below the point's 400
    assert sorted(r.prompt_id for r in measured) == sorted(p.id for p in prompts)  # each prompt exactly once
