"""TRT-LLM adapter: argv + YAML options per SD method, stream folding, iteration stats and Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from speedbench.config import ConfigError, EngineConfig, SDConfig
from speedbench.core.records import RequestRecord
from speedbench.engines import get_adapter
from speedbench.engines.trtllm import TRTLLMAdapter
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
    argv, opts = options(
        adapter(tmp_path, tensor_parallel_size=8, expert_parallel_size=8, gpu_memory_fraction=0.8), SDConfig(), 512
    )
    assert argv[:6] == ["/py", "-m", "tensorrt_llm.commands.serve", "serve", "/m/Llama-3.1-8B-Instruct", "--host"]
    assert argv[argv.index("--tp_size") + 1] == "8" and argv[argv.index("--ep_size") + 1] == "8"
    assert argv[argv.index("--backend") + 1] == "pytorch"
    assert opts == {
        "max_batch_size": 512,
        "enable_iter_perf_stats": True,
        "cuda_graph_config": {"batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], "enable_padding": True},
        "kv_cache_config": {"enable_block_reuse": False, "free_gpu_memory_fraction": 0.8},
    }
    _, opts = options(adapter(tmp_path, prefix_caching=True), SDConfig())
    assert opts["kv_cache_config"] == {"enable_block_reuse": True}


@pytest.mark.parametrize(
    "conc,sizes",
    [(1, [1]), (6, [1, 2, 4, 6]), (64, [1, 2, 4, 8, 16, 32, 64]), (300, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300])],
)
def test_cuda_graphs_cover_the_largest_concurrency(tmp_path, conc, sizes):
    # TRT-LLM's default graph limit is batch 128: points above it would run eager while vLLM's replay graphs
    _, opts = options(adapter(tmp_path), SDConfig(method="ngram"), conc)
    assert opts["cuda_graph_config"] == {"batch_sizes": sizes, "enable_padding": True}


@pytest.mark.parametrize("k", range(1, 8))
@pytest.mark.parametrize(
    "sd,spec,overlap_off",
    [
        (dict(method="eagle3", draft_model="/d"), {"decoding_type": "Eagle3", "speculative_model_dir": "/d"}, False),
        (dict(method="ngram", prompt_lookup_max=4), {"decoding_type": "NGram", "max_matching_ngram_size": 4}, True),
        (
            dict(method="draft_model", draft_model="/d"),
            {"decoding_type": "Draft_Target", "speculative_model_dir": "/d"},
            True,
        ),
    ],
)
def test_speculative_config_per_method(tmp_path, k, sd, spec, overlap_off):
    _, opts = options(adapter(tmp_path), SDConfig(num_speculative_tokens=k, **sd))
    assert opts["speculative_config"] == {**spec, "max_draft_len": k}
    assert opts.get("disable_overlap_scheduler", False) is overlap_off
    assert opts["enable_iter_perf_stats"] is True


@pytest.mark.parametrize("k", range(1, 8))
def test_mtp_sets_num_nextn_predict_layers_to_k(tmp_path, k):
    # MTPDecodingConfig: max_draft_len = num_nextn_predict_layers (default 1), so max_draft_len alone runs k = 1
    _, opts = options(adapter(tmp_path), SDConfig(method="mtp", num_speculative_tokens=k))
    assert opts["speculative_config"] == {"decoding_type": "MTP", "max_draft_len": k, "num_nextn_predict_layers": k}


@pytest.mark.parametrize("version", [None, "1.2.0", "1.3.0rc24", "1.3.0", "1.4.0"])
def test_per_request_stats_key_is_never_written_for_a_release(tmp_path, version):
    # only an open pull request's branch has it (NVIDIA/TensorRT-LLM PR 19311): a strict LlmArgs of any release
    # would refuse the unknown key, so the presets' 1.3.0 pin must not get it
    _, opts = options(adapter(tmp_path, version=version), SDConfig(method="ngram"))
    assert "per_request_spec_decode_stats" not in opts
    _, off = options(adapter(tmp_path, version=version), SDConfig())
    assert "per_request_spec_decode_stats" not in off  # SD off drafts nothing


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


def test_token_ids_and_per_request_counters_from_the_final_choice():
    rec = RequestRecord("r", "p", "c", 17, 16)
    for i, ev in enumerate(sse_payloads(TR / "v1_completions_stream_sd_ids_per_request_stats.txt")):
        adapter().on_event(ev, rec, 1000 * (i + 1), [])
    final = json.loads((FIXTURES / "sglang" / "generate_nonstream_sd_v0.5.23.json").read_text())
    assert rec.output_ids == final["output_ids"] and rec.text == ""  # detokenize: false
    assert rec.chunk_tokens == [1, 4, 6, 10, 11, 14, 16] and rec.completion_tokens == 16
    assert rec.sd == {
        "drafts": 6,
        "draft_tokens": 18,
        "accepted_tokens": 9,
        "accepted_per_position": [5, 3, 1],
        "source": "trtllm.per_request",
    }


def test_inconsistent_per_request_block_loses_its_counters_not_the_request(caplog):
    events = sse_payloads(TR / "v1_completions_stream_sd_ids_per_request_stats.txt")
    events[-2]["choices"][0]["speculative_decoding"]["num_spec_steps"] = 7  # histogram sums to 6
    rec = RequestRecord("r", "p", "c", 17, 16)
    for i, ev in enumerate(events):
        adapter().on_event(ev, rec, 1000 * (i + 1), [])
    assert rec.sd is None and rec.completion_tokens == 16 and "inconsistent" in caplog.text


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
    text = "\n".join(
        l for l in (TR / "prometheus_metrics_sd.txt").read_text().splitlines() if "token_position" not in l
    )
    assert TRTLLMAdapter.counters_from_prometheus(text) is None


def test_id_only_outputs_get_text_for_the_text_scores(tiny_tokenizer):
    # detokenize: false leaves text empty; quality.json's BLEU/ROUGE would otherwise compare empty strings
    from speedbench.data.tokenization import load_tokenizer
    from speedbench.quality.points import PointData
    from speedbench.quality.quality_report import texts_from_ids

    tok = load_tokenizer(tiny_tokenizer)
    ids = tok.encode("What is the answer", add_special_tokens=False)
    rec = RequestRecord("r", "p", "c", 4, len(ids))
    rec.output_ids = ids
    texts_from_ids([PointData({"point_id": "ngram-k3-c1"}, [rec])], {"config": {"data": {"tokenizer": tiny_tokenizer}}})
    assert rec.text == tok.decode(ids) and "answer" in rec.text and "[UNK]" not in rec.text


@pytest.mark.parametrize(
    "name,al",
    [
        ("trtllm_test_per_sequence_choice0", 2.0),
        ("trtllm_test_per_sequence_choice1", 1 + 1 / 3),
        ("aiperf_docs_example", 2.5),
    ],
)
def test_upstream_speculative_decoding_blocks(name, al):
    # the blocks of open pull request NVIDIA/TensorRT-LLM#19311's branch (and aiperf's docs), not of a release:
    # tests/fixtures/engines/SOURCES.md
    from speedbench.engines.trtllm import request_counters

    block = json.loads((TR / "speculative_decoding_blocks_upstream.json").read_text())[name]
    c = request_counters(block)
    assert (c.drafts, c.draft_tokens, c.accepted_tokens) == (
        block["num_spec_steps"],
        block["total_draft_tokens"],
        block["total_accepted_draft_tokens"],
    )
    assert c.acceptance_length == pytest.approx(al)
    assert c.draft_acceptance_rate == pytest.approx(block["acceptance_rate"])
