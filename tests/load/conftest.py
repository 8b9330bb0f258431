"""Shared helpers: a vLLM adapter, synthetic prompts, and one-call runs against the in-process stub server."""

from __future__ import annotations

import asyncio

import pytest

from speedbench.config import EngineConfig
from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.engines.vllm import VLLMAdapter
from speedbench.load.plan import LoadPlan, PointRun
from speedbench.load.point import run_point
from speedbench.load.stub_server import StubConfig, start_stub


def make_prompts(n: int = 8, length: int = 6) -> list[TokenizedPrompt]:
    return [
        TokenizedPrompt(id=f"p{i}", category="c", token_ids=tuple([2] + [100 + i] * (length - 1))) for i in range(n)
    ]


@pytest.fixture
def adapter() -> VLLMAdapter:
    return VLLMAdapter(EngineConfig(model="stub", served_model_name="stub"))


def run_against_stub(
    adapter, plan: LoadPlan, cfg: StubConfig | None = None, prompts=None, on_record=None
) -> tuple[PointRun, list[dict]]:
    """Serve the stub and run one point in the same event loop; returns the run and the server's log."""

    async def main():
        srv, server, port = await start_stub(cfg or StubConfig())
        try:
            run = await run_point(adapter, f"http://127.0.0.1:{port}", prompts or make_prompts(), plan, on_record, "pt")
        finally:
            server.close()
        return run, srv.log

    return asyncio.run(main())
