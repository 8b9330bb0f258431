"""TRT-LLM adapter: argv + YAML options per SD method, stream folding, iteration stats and Prometheus."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from speedbench.config import ConfigError, EngineConfig, SDConfig
from speedbench.engines import get_adapter
from speedbench.engines.trtllm import TRTLLMAdapter
from speedbench.load.records import RequestRecord
from tests.engines.conftest import FIXTURES, sse_payloads

TR = FIXTURES / "trtllm"


def adapter(tmp_path=None, **kw) -> TRTLLMAdapter:
    a = get_adapter(EngineConfig(name="trtllm", model="/m/Llama-3.1-8B-Instruct", python="/py", **kw))
    if tmp_path is not None:
        a.files_dir = tmp_path
    return a


def options(a: TRTLLMAdapter, sd: SDConfig, conc: int = 64) -> tuple[list[str], dict]:
    argv = a.launch_argv(sd, "127.0.0.1", 8000, conc)
    return argv, yaml.safe_load(Path(argv[argv.index("--extra_llm_api_options") + 1]).read_text())


def test_sd_off_argv_and_options(tmp_path):
    argv, opts = options(adapter(tmp_path, tensor_parallel_size=8, expert_parallel_size=8,
                                 gpu_memory_fraction=0.8), SDConfig(), 512)
    assert argv[:6] == ["/py", "-m", "tensorrt_llm.commands.serve", "serve", "/m/Llama-3.1-8B-Instruct", "--host"]
    assert argv[argv.index("--tp_size") + 1] == "8" and argv[argv.index("--ep_size") + 1] == "8"
    assert argv[argv.index("--backend") + 1] == "pytorch"
    assert opts == {"max_batch_size": 512, "enable_iter_perf_stats": True,
                    "kv_cache_config": {"enable_block_reuse": False, "free_gpu_memory_fraction": 0.8}}
    _, opts = options(adapter(tmp_path, prefix_caching=True), SDConfig())
    assert opts["kv_cache_config"] == {"enable_block_reuse": True}


@pytest.mark.parametrize("k", range(1, 8))
@pytest.mark.parametrize("sd,spec,overlap_off", [
    (dict(method="eagle3", draft_model="/d"),
     {"decoding_type": "Eagle3", "speculative_model_dir": "/d", "eagle3_one_model": True}, False),
    (dict(method="mtp"), {"decoding_type": "MTP"}, False),
    (dict(method="ngram", prompt_lookup_max=4), {"decoding_type": "NGram", "max_matching_ngram_size": 4}, True),
    (dict(method="draft_model", draft_model="/d"), {"decoding_type": "Draft_Target", "speculative_model_dir": "/d"},
     True),
])
def test_speculative_config_per_method(tmp_path, k, sd, spec, overlap_off):
    _, opts = options(adapter(tmp_path), SDConfig(num_speculative_tokens=k, **sd))
    assert opts["speculative_config"] == {**spec, "max_draft_len": k}
    assert opts.get("disable_overlap_scheduler", False) is overlap_off
    assert opts["enable_iter_perf_stats"] is True


def test_unsupported_method_names_engine_and_method(tmp_path):
    with pytest.raises(ConfigError, match="'trtllm'.*'eagle'"):
        adapter(tmp_path).launch_argv(SDConfig(method="eagle", draft_model="/d"), "h", 1, 8)
    with pytest.raises(ConfigError, match="data-parallel"):
        adapter(tmp_path, data_parallel_size=2).launch_argv(SDConfig(), "h", 1, 8)


def test_options_file_is_content_addressed(tmp_path):
    a = adapter(tmp_path)
    p1 = a.launch_files(SDConfig(method="ngram"), 8)
    p2 = a.launch_files(SDConfig(method="ngram"), 16)
    assert p1 != p2 and p1 == a.launch_files(SDConfig(method="ngram"), 8)


def test_request_body_matches_captured_request():
    captured = json.loads((TR / "v1_completions_request.json").read_text())
    path, body = adapter().build_request(captured["prompt"], 16, fixed_length=True)  # captured with ignore_eos
    assert path == "/v1/completions" and body == captured
    _, natural = adapter().build_request(captured["prompt"], 16)
    assert "ignore_eos" not in natural and "min_tokens" not in natural


def test_stream_fold():
    rec = RequestRecord("r", "p", "c", 17, 16)
    for i, ev in enumerate(sse_payloads(TR / "v1_completions_stream_sd_continuous_usage.txt")):
        adapter().on_event(ev, rec, 1000 * (i + 1), [])
    assert rec.chunk_tokens == [1, 4, 6, 10, 11, 14, 16]
    assert rec.text == "The capital of France is Paris. It is known for its art, fashion."
    assert rec.completion_tokens == 16 and rec.finish_reason == "length" and rec.server_prompt_tokens == 17


def test_iteration_stats_accumulate_across_drains():
    rows = json.loads((TR / "metrics_iteration_stats_sd.json").read_text())
    a = adapter()
    before = a._iter_totals
    a.fold_iteration_stats(rows[:3])  # rows are removed once read: each poll brings new ones
    a.fold_iteration_stats(rows[3:])
    c = a._iter_totals - before
    assert (c.drafts, c.draft_tokens, c.accepted_tokens) == (6, 18, 9)
    assert c.acceptance_length == pytest.approx(2.5)


def test_prometheus_counters():
    c = TRTLLMAdapter.counters_from_prometheus((TR / "prometheus_metrics_sd.txt").read_text())
    assert (c.drafts, c.draft_tokens, c.accepted_tokens, c.accepted_per_position) == (6, 18, 9, (5, 3, 1))


def test_prometheus_without_per_position_falls_back():
    text = "\n".join(l for l in (TR / "prometheus_metrics_sd.txt").read_text().splitlines() if "token_position" not in l)
    assert TRTLLMAdapter.counters_from_prometheus(text) is None
