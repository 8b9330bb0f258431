"""The server's own description of itself (``adapter.server_info``) in the manifest, per SD label: read once
each server is ready, bounded in size, and checked against the SD setting the server was started for."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest
from aiohttp import web

from speedbench.config import BenchmarkConfig, EngineConfig, SDConfig
from speedbench.engines import get_adapter
from speedbench.measure import (
    SERVER_INFO_MAX_CHARS,
    SERVER_INFO_MAX_DEPTH,
    SERVER_INFO_MAX_ITEMS,
    SERVER_INFO_MAX_STR,
    read_server_info,
    trim_info,
)
from speedbench.results import ResultsDir
from speedbench.runner import BenchmarkRunner
from speedbench.testing.emulators import write_engine_shims
from tests.engines.test_emulators import ACCEPT, sweep_config

EAGLE3 = SDConfig(method="eagle3", num_speculative_tokens=3, draft_model="/d")
NGRAM = SDConfig(method="ngram", num_speculative_tokens=3)
MTP = SDConfig(method="mtp", num_speculative_tokens=3)
OFF = SDConfig()


def sglang():
    return get_adapter(EngineConfig(name="sglang", model="/m"))


def reported(**server_args) -> dict:
    return {"engine_version": "0.5.23", "server_args": server_args}


CHAIN3 = {"speculative_num_steps": 3, "speculative_eagle_topk": 1, "speculative_num_draft_tokens": 4}


# ---- the SGLang report against the setting -------------------------------------------------------------


@pytest.mark.parametrize(
    "sd,args",
    [
        (OFF, {"speculative_algorithm": None, "speculative_num_steps": None}),
        (EAGLE3, {"speculative_algorithm": "EAGLE3", **CHAIN3}),
        (MTP, {"speculative_algorithm": "EAGLE", **CHAIN3}),  # SGLang resolves NEXTN to EAGLE
        # NGRAM: topk is the breadth (1), steps = draft tokens // topk: num_steps is not the draft length
        (NGRAM, {"speculative_algorithm": "NGRAM", **CHAIN3, "speculative_num_steps": 4}),
        (EAGLE3, {"max_running_requests": 8}),  # SD fields not reported: nothing to contradict
        (EAGLE3, {"speculative_algorithm": "EAGLE3"}),  # no width reported: no draft-length claim
    ],
)
def test_a_matching_report_does_not_contradict(sd, args):
    assert sglang().sd_contradictions(sd, reported(**args)) == []


def test_no_report_contradicts_nothing():
    a = sglang()
    assert a.sd_contradictions(EAGLE3, {}) == [] and a.sd_contradictions(EAGLE3, {"error": "HTTP 500"}) == []


@pytest.mark.parametrize(
    "sd,args,names",
    [
        (EAGLE3, {"speculative_algorithm": None}, ["speculative_algorithm=None", "eagle3-k3", "EAGLE3"]),
        (OFF, {"speculative_algorithm": "EAGLE3"}, ["speculative_algorithm='EAGLE3'", "sd-off"]),
        (EAGLE3, {"speculative_algorithm": "EAGLE", **CHAIN3}, ["speculative_algorithm='EAGLE'", "EAGLE3"]),
        (
            EAGLE3,
            {"speculative_algorithm": "EAGLE3", **CHAIN3, "speculative_num_draft_tokens": 6},
            ["speculative_num_draft_tokens=6", "draft length 5", "draft length 3"],
        ),
        (
            EAGLE3,
            {"speculative_algorithm": "EAGLE3", **CHAIN3, "speculative_eagle_topk": 4},
            ["speculative_eagle_topk=4", "eagle3-k3"],
        ),
    ],
)
def test_a_contradicting_report_names_both_values(sd, args, names):
    (line,) = sglang().sd_contradictions(sd, reported(**args))
    assert all(n in line for n in names), line


# ---- size and time bounds -------------------------------------------------------------------------------


def test_trim_info_bounds_strings_lists_nesting_and_the_whole():
    deep: dict = {}
    node = deep
    for _ in range(SERVER_INFO_MAX_DEPTH + 3):
        node["x"] = {}
        node = node["x"]
    out = trim_info({"s": "a" * (SERVER_INFO_MAX_STR + 10), "l": list(range(SERVER_INFO_MAX_ITEMS + 5)), "d": deep})
    assert out["s"].startswith("a" * SERVER_INFO_MAX_STR) and out["s"].endswith("[10 chars trimmed]")
    assert out["l"][:SERVER_INFO_MAX_ITEMS] == list(range(SERVER_INFO_MAX_ITEMS)) and "5 more" in out["l"][-1]
    assert "too deep" in json.dumps(out["d"])
    small = {"engine_version": "1", "served_models": ["m"]}
    assert trim_info(small) == small  # a usual report is kept as it is
    big = {f"k{i}": "v" * SERVER_INFO_MAX_STR for i in range(40)}
    out = trim_info({"engine_version": "1", **big})
    assert len(json.dumps(out)) <= SERVER_INFO_MAX_CHARS and out["engine_version"] == "1"
    assert out["trimmed"] and set(out["trimmed"]) | set(out) - {"trimmed"} == {"engine_version", *big}


class _Hangs:
    name = "hangs"

    async def server_info(self, session, base_url):
        await asyncio.sleep(60)


class _Raises:
    name = "raises"

    async def server_info(self, session, base_url):
        raise RuntimeError("adapter bug")


class _Odd:
    name = "odd"

    async def server_info(self, session, base_url):
        return {"engine_version": 5, "max_model_len": "a lot"}


def test_read_server_info_never_raises(monkeypatch):
    monkeypatch.setattr("speedbench.measure.SERVER_INFO_TIMEOUT_S", 0.2)
    url = "http://127.0.0.1:9"
    assert asyncio.run(read_server_info(_Hangs(), url, {})) == {"error": "no answer within 0.2 s"}
    assert "adapter bug" in asyncio.run(read_server_info(_Raises(), url, {}))["error"]
    odd = asyncio.run(read_server_info(_Odd(), url, {}))  # kept as text: the manifest still validates
    assert odd["error"].startswith("unexpected report") and '"engine_version": 5' in odd["raw"]


def test_sglang_server_info_records_a_failing_endpoint():
    async def fails(request: web.Request) -> web.Response:
        return web.Response(status=500 if request.path == "/server_info" else 404)

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "m"}]})

    async def go() -> dict:
        app = web.Application()
        app.router.add_get("/server_info", fails)
        app.router.add_get("/get_server_info", fails)
        app.router.add_get("/v1/models", models)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            return await read_server_info(sglang(), f"http://127.0.0.1:{port}", {})
        finally:
            await runner.cleanup()

    info = asyncio.run(go())
    assert info == {"error": "GET /server_info: HTTP 500; GET /get_server_info: HTTP 404", "served_models": ["m"]}


async def _serve(routes: dict, go):
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        return await go(f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("flag,want", [("True", True), ("False", False), (None, None)])
def test_vllm_server_info_reads_prefix_caching_from_its_cache_config_gauge(flag, want):
    gauge = (
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
        f'vllm:cache_config_info{{block_size="16",enable_prefix_caching="{flag}",engine="0"}} 1.0\n'
        if flag
        else ""
    )

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=gauge + "vllm:num_requests_running 0.0\n")

    async def go(url: str) -> dict:
        return await read_server_info(get_adapter(EngineConfig(name="vllm", model="/m")), url, {})

    info = asyncio.run(_serve({"/metrics": metrics}, go))
    assert info.get("prefix_caching") is want


def test_attached_servers_report_fills_the_prefix_caching_condition(tmp_path):
    from speedbench.runner.manifest import ATTACHED_UNKNOWN, server_conditions, store_server_info

    cfg = BenchmarkConfig.model_validate({"engine": {"name": "sglang", "endpoint": "http://127.0.0.1:1"}})
    assert server_conditions(cfg) == {"prefix_caching": ATTACHED_UNKNOWN}  # the config's "off" applied to nothing
    rd = ResultsDir(tmp_path / "r").create({"engine": {"attached": True}, "conditions": server_conditions(cfg)})
    store_server_info(rd, "sd-off", {"served_models": ["m"]})  # says nothing about it: still unknown
    assert rd.manifest()["conditions"]["prefix_caching"] == ATTACHED_UNKNOWN
    store_server_info(rd, "sd-off", {"prefix_caching": True})
    assert rd.manifest()["conditions"]["prefix_caching"] == "on (reported by the attached server)"


# ---- sweeps against the emulators ------------------------------------------------------------------------


def emulated_sweep(tmp_path, tokenizer, engine: str, sd: list, extra: tuple[str, ...] = ()) -> ResultsDir:
    """A launch-mode sweep of the real adapter against its emulator: c=1, a few short requests per point."""
    shims = write_engine_shims(tmp_path / "shims")
    engine_cfg = {
        "name": engine,
        "model": str(tmp_path),
        "python": sys.executable,
        "startup_timeout_s": 60,
        "env": {"PYTHONPATH": str(shims)},
        "extra_args": ["--accept", ACCEPT, "--step-ms", "1", *extra],
    }
    raw = sweep_config(tmp_path, tokenizer, engine_cfg, sd).model_dump()
    raw["data"]["turns"] = "first"
    raw["load"].update(concurrency=[1], output_len=8, requests_per_point=2, warmup_requests=0)
    raw["quality"]["enabled"] = False
    cfg = BenchmarkConfig.model_validate(raw)
    return ResultsDir.open(BenchmarkRunner(cfg, progress=False).run().results_dir)


def server_info_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "SGLang reports" in r.message]


def test_sglang_server_info_per_label_and_a_healthy_run_does_not_warn(tmp_path, tiny_tokenizer, caplog):
    caplog.set_level(logging.INFO)
    rd = emulated_sweep(
        tmp_path,
        tiny_tokenizer,
        "sglang",
        [{"method": "off"}, {"method": "eagle3", "num_speculative_tokens": 3, "draft_model": str(tmp_path)}],
    )
    info = rd.manifest_doc().engine.server_info  # validated by the typed manifest
    assert set(info) == {"sd-off", "eagle3-k3"}
    assert info["sd-off"].server_args["speculative_algorithm"] is None
    assert info["eagle3-k3"].server_args == {
        "speculative_algorithm": "EAGLE3",
        **CHAIN3,
        "max_running_requests": 1,
        "stream_interval": 1,
        "tp_size": 1,
        "disable_radix_cache": True,
    }
    assert info["eagle3-k3"].prefix_caching is False  # launched with --disable-radix-cache, and says so
    assert rd.manifest()["conditions"] == {"prefix_caching": "off"}  # launched: as speedbench set it
    assert info["eagle3-k3"].engine_version == "0.5.23-emulated" and info["eagle3-k3"].served_models
    assert server_info_warnings(caplog) == []


def test_sglang_server_that_runs_another_draft_length_warns(tmp_path, tiny_tokenizer, caplog):
    # engine.extra_args come last: a user's --speculative-num-steps 2 overrides the adapter's 3
    rd = emulated_sweep(
        tmp_path,
        tiny_tokenizer,
        "sglang",
        [{"method": "eagle3", "num_speculative_tokens": 3, "draft_model": str(tmp_path)}],
        ("--speculative-num-steps", "2"),
    )
    (line,) = server_info_warnings(caplog)
    assert "speculative_num_draft_tokens=3 (draft length 2)" in line and "eagle3-k3 asked for draft length 3" in line
    assert rd.manifest()["status"] == "complete"  # a warning, never a stop


def test_trtllm_server_info_per_label(tmp_path, tiny_tokenizer):
    rd = emulated_sweep(tmp_path, tiny_tokenizer, "trtllm", [{"method": "off"}, {"method": "ngram"}])
    info = rd.manifest()["engine"]["server_info"]
    assert set(info) == {"sd-off", "ngram-k3"}
    assert all(i["served_models"] and i["engine_version"] and "error" not in i for i in info.values())
