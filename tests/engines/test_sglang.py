"""SGLang adapter: exact launch flags per SD method, stream folding and acceptance from captured payloads."""

from __future__ import annotations

import json

import pytest

from speedbench.config import ConfigError, EngineConfig, SDConfig
from speedbench.core.records import RequestRecord
from speedbench.engines import get_adapter
from speedbench.engines.sglang import SGLangAdapter
from tests.engines.conftest import FIXTURES, sse_payloads

SG = FIXTURES / "sglang"


def adapter(**kw) -> SGLangAdapter:
    return get_adapter(EngineConfig(name="sglang", model="/m/Llama", python="/py", **kw))


def flags(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_sd_off_argv_sizes_running_requests_and_enables_metrics():
    argv = adapter(tensor_parallel_size=8, gpu_memory_fraction=0.85).launch_argv(SDConfig(), "127.0.0.1", 30000, 512)
    assert argv[:3] == ["/py", "-m", "sglang.launch_server"]
    assert flags(argv, "--model-path") == "/m/Llama" and flags(argv, "--tp-size") == "8"
    assert flags(argv, "--max-running-requests") == "512"  # SD would cap it at 48 otherwise
    assert flags(argv, "--stream-interval") == "1" and "--enable-metrics" in argv
    assert flags(argv, "--mem-fraction-static") == "0.85"
    assert not any(a.startswith("--speculative") for a in argv)
    # deltas like vLLM and TRT-LLM (the default re-sends all output on every event); graphs cover the sweep
    assert "--incremental-streaming-output" in argv and flags(argv, "--cuda-graph-max-bs-decode") == "512"


@pytest.mark.parametrize(
    "version,graphs,stream",
    [
        (None, "--cuda-graph-max-bs-decode", "--incremental-streaming-output"),
        ("0.5.23", "--cuda-graph-max-bs-decode", "--incremental-streaming-output"),
        ("0.5.18", "--cuda-graph-max-bs-decode", "--incremental-streaming-output"),
        ("0.5.5", "--cuda-graph-max-bs", "--stream-output"),
    ],
)
def test_renamed_flags_follow_the_release(version, graphs, stream):
    # 0.4.10.post2 has only the old names; 0.5.18 the new ones (old = deprecated aliases); 0.5.22 only the new
    argv = adapter(version=version).launch_argv(SDConfig(method="eagle3", draft_model="/d"), "h", 1, 64)
    assert flags(argv, graphs) == "64" and stream in argv


@pytest.mark.parametrize(
    "method,algo,draft",
    [("eagle", "EAGLE", "/d"), ("eagle3", "EAGLE3", "/d"), ("mtp", "NEXTN", None), ("draft_model", "STANDALONE", "/d")],
)
@pytest.mark.parametrize("k", range(1, 8))
def test_chain_methods_set_steps_topk_and_draft_tokens(method, algo, draft, k):
    argv = adapter().launch_argv(SDConfig(method=method, num_speculative_tokens=k, draft_model=draft), "h", 1, 64)
    tail = argv[argv.index("--speculative-algorithm") :]
    expected = ["--speculative-algorithm", algo]
    if draft:
        expected += ["--speculative-draft-model-path", draft]
    assert tail == expected + [
        "--speculative-num-steps",
        str(k),
        "--speculative-eagle-topk",
        "1",
        "--speculative-num-draft-tokens",
        str(k + 1),
    ]


def test_ngram_argv_is_a_single_chain():
    argv = adapter().launch_argv(SDConfig(method="ngram", num_speculative_tokens=5), "h", 1, 8)
    assert argv[argv.index("--speculative-algorithm") :] == [
        "--speculative-algorithm",
        "NGRAM",
        "--speculative-num-draft-tokens",
        "6",
        "--speculative-ngram-min-bfs-breadth",
        "1",
        "--speculative-ngram-max-bfs-breadth",
        "1",
    ]


@pytest.mark.parametrize("method", ["ngram", "draft_model"])
def test_plain_dp_allows_ngram_but_dp_attention_does_not(method):
    sd = SDConfig(method=method, draft_model="/d" if method == "draft_model" else None)
    argv = adapter(data_parallel_size=2).launch_argv(sd, "h", 1, 8)  # upstream rejects only DP attention
    assert flags(argv, "--dp-size") == "2"
    for extra in (["--enable-dp-attention"], ["--attn-dp-size", "2"], ["--attention-data-parallel-size=4"]):
        with pytest.raises(ConfigError, match="DP attention"):
            adapter(data_parallel_size=2, extra_args=extra).launch_argv(sd, "h", 1, 8)
    assert flags(adapter(extra_args=["--attn-dp-size", "1"]).launch_argv(sd, "h", 1, 8), "--tp-size") == "1"


def test_dp_ep_and_extra_args():
    argv = adapter(data_parallel_size=2, expert_parallel_size=8, extra_args=["--disable-radix-cache"]).launch_argv(
        SDConfig(), "h", 1, 8
    )
    assert flags(argv, "--dp-size") == "2" and flags(argv, "--ep-size") == "8" and argv[-1] == "--disable-radix-cache"


def test_request_body_matches_captured_request():
    captured = json.loads((SG / "generate_request.json").read_text())
    path, body = adapter().build_request(captured["input_ids"], 16, fixed_length=True)  # captured with ignore_eos
    assert path == "/generate"
    assert {k: v for k, v in captured.items() if k != "rid"} == body


def test_natural_length_stops_at_eos_and_prefix_cache_is_off():
    _, body = adapter().build_request([2, 5], 4096)
    assert body["sampling_params"] == {"max_new_tokens": 4096, "temperature": 0.0}  # no ignore_eos: stops at EOS
    assert "--disable-radix-cache" in adapter().launch_argv(SDConfig(), "h", 1, 8)
    assert "--disable-radix-cache" not in adapter(prefix_caching=True).launch_argv(SDConfig(), "h", 1, 8)


def fold(a: SGLangAdapter, events: list[dict], prompt_len: int = 17) -> RequestRecord:
    rec = RequestRecord("r", "p", "c", prompt_len, 16)
    for i, ev in enumerate(events):
        a.on_event(ev, rec, 1000 * (i + 1), [])
    return rec


@pytest.mark.parametrize("name", ["generate_stream_sd_v0.5.23.txt", "generate_stream_incremental_sd_v0.5.23.txt"])
def test_cumulative_and_incremental_streams_fold_identically(name):
    final = json.loads((SG / "generate_nonstream_sd_v0.5.23.json").read_text())
    rec = fold(adapter(), sse_payloads(SG / name))
    assert rec.output_ids == final["output_ids"] and rec.text == final["text"]
    assert rec.chunk_tokens == [1, 4, 6, 10, 11, 14, 16]  # 1 prefill token + steps of 3,2,4,1,3,2
    assert rec.completion_tokens == 16 and rec.finish_reason == "length" and rec.server_prompt_tokens == 17
    assert rec.sd == {
        "drafts": 6,
        "draft_tokens": 18,
        "accepted_tokens": 9,
        "accepted_per_position": [5, 3, 1],
        "source": "sglang.meta_info",
    }


def test_merged_events_count_tokens_not_events():
    events = sse_payloads(SG / "generate_stream_sd_v0.5.23.txt")
    rec = fold(adapter(), [events[0], events[3], events[6]])  # the writer lagged: steps coalesced
    assert rec.chunk_tokens == [1, 10, 16] and len(rec.output_ids) == 16


def test_per_request_counters_for_every_version():
    by_version = json.loads((SG / "meta_info_spec_keys_by_version.json").read_text())
    a = adapter()
    a.check_sd(SDConfig(method="eagle3", num_speculative_tokens=3, draft_model="/d"))  # k for 0.4.10
    for version, meta in by_version.items():
        if version.startswith("_"):
            continue
        c = a.request_counters(meta)
        assert (c.drafts, c.draft_tokens, c.accepted_tokens) == (6, 18, 9), version
        assert c.acceptance_length == pytest.approx(2.5)


def test_global_counters_from_metrics_text():
    a = adapter()
    c = a.counters_from_metrics((SG / "metrics_sd_v0.5.23.txt").read_text())
    # drafts = verify calls; accepted = generated − verify − requests (the prefill token of each request)
    assert (c.drafts, c.draft_tokens, c.accepted_tokens) == (6, 18, 9)


def test_draft_width_is_one_scheduler_gauge_not_the_sum_over_dp_ranks():
    lines = (SG / "metrics_sd_v0.5.23.txt").read_text().splitlines()
    gauge = next(l for l in lines if l.startswith("sglang:spec_num_draft_tokens{"))
    per_rank = [gauge.replace('engine_type="unified"', f'dp_rank="{r}",engine_type="unified"') for r in range(4)]
    text = "\n".join(x for l in lines for x in (per_rank if l == gauge else [l]))
    a = adapter()  # no SD setting remembered: k comes from the gauge alone
    c = a.counters_from_metrics(text)
    assert (c.drafts, c.draft_tokens, c.accepted_tokens) == (6, 18, 9)  # 6 verify steps x k=3, not x 15


def test_metrics_without_verify_counter_gives_none_and_warns(caplog):
    text = "\n".join(
        l for l in (SG / "metrics_sd_v0.5.23.txt").read_text().splitlines() if "spec_verify_calls_total" not in l
    )
    assert adapter().counters_from_metrics(text) is None
    assert "spec_verify_calls_total" in caplog.text
