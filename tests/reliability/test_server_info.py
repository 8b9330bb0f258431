"""The fake engine's (vLLM wire format) own description of itself lands in the manifest per SD label, launched
or attached; an adapter whose server_info fails or hangs costs its record, never the sweep."""

from __future__ import annotations

import asyncio

from speedbench.config import BenchmarkConfig
from speedbench.results import ResultsDir
from speedbench.runner import BenchmarkRunner
from tests.reliability.conftest import sweep_config
from tests.reliability.fake_engine import FakeAdapter
from tests.reliability.test_attach import fault_server


def run(cfg: dict) -> ResultsDir:
    cfg["quality"] = {"enabled": False}
    return ResultsDir.open(BenchmarkRunner(BenchmarkConfig.from_dict(cfg), progress=False).run().results_dir)


def test_launched_servers_are_recorded_per_label(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    rd = run(sweep_config(tmp_path, tiny_tokenizer, fake_model, prompt_cache, concurrency=(1,), requests=2))
    info = rd.manifest()["engine"]["server_info"]
    assert set(info) == {"sd-off", "ngram-k3"}
    # the fake server lists its model with max_model_len on /v1/models and has no /version
    assert all(i == {"served_models": [fake_model.name], "max_model_len": 4096} for i in info.values())


def test_an_attached_server_is_recorded_once(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    cfg = sweep_config(tmp_path, tiny_tokenizer, fake_model, prompt_cache, sd=("off",), concurrency=(1,), requests=2)
    with fault_server("--model-name", "m") as url:
        cfg["engine"]["endpoint"] = url
        del cfg["engine"]["model"]
        rd = run(cfg)
    assert rd.manifest()["engine"]["server_info"] == {"sd-off": {"served_models": ["m"], "max_model_len": 4096}}


def test_a_failing_server_info_is_recorded_and_the_sweep_finishes(
    tmp_path, tiny_tokenizer, fake_model, prompt_cache, monkeypatch
):
    calls = []

    async def broken(self, session, base_url):
        calls.append(base_url)
        if len(calls) == 1:
            raise RuntimeError("boom")
        await asyncio.sleep(60)  # the second server never answers

    monkeypatch.setattr(FakeAdapter, "server_info", broken)
    monkeypatch.setattr("speedbench.measure.SERVER_INFO_TIMEOUT_S", 0.3)
    rd = run(sweep_config(tmp_path, tiny_tokenizer, fake_model, prompt_cache, concurrency=(1,), requests=2))
    m = rd.manifest()
    assert m["status"] == "complete" and m["points_finished"] == 2
    assert m["engine"]["server_info"] == {
        "sd-off": {"error": "RuntimeError('boom')"},
        "ngram-k3": {"error": "no answer within 0.3 s"},
    }
