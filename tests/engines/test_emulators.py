"""Emulators speak the captured wire formats, and the adapters run end to end against them."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from speedbench.config import BenchmarkConfig
from speedbench.runner import BenchmarkRunner
from speedbench.testing.emulator_core import AcceptanceModel
from speedbench.testing.emulators import write_engine_shims
from tests.engines.conftest import FIXTURES, sse_payloads

ACCEPT = "0.8,0.6,0.4"


def shape(x):
    """Key structure and JSON types, values ignored (None matches anything: fields that are often null)."""
    if isinstance(x, dict):
        return {k: shape(v) for k, v in x.items()}
    if isinstance(x, list):
        return [shape(x[0])] if x else []
    if x is None or isinstance(x, bool):
        return type(x).__name__
    return "number" if isinstance(x, (int, float)) else type(x).__name__


def post_stream(url: str, body: dict) -> list:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return [
            json.loads(l[5:])
            for l in r.read().decode().splitlines()
            if l.startswith("data:") and l[5:].strip() != "[DONE]"
        ]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def metric_names(text: str) -> set:
    return {l.split("{")[0] for l in text.splitlines() if l and not l.startswith("#")}


def test_acceptance_model_expectation():
    m = AcceptanceModel(3, (0.8, 0.6, 0.4))
    assert m.expected_acceptance_length == pytest.approx(1 + 0.8 + 0.8 * 0.6 + 0.8 * 0.6 * 0.4)
    assert AcceptanceModel(0).expected_acceptance_length == 1.0


def test_sglang_emulator_matches_captured_shapes(start_emulator):
    url = start_emulator("sglang", "--sd-k", "3", "--accept", ACCEPT, "--enable-metrics")
    body = json.loads((FIXTURES / "sglang" / "generate_request.json").read_text())
    got = post_stream(url + "/generate", body)
    want = sse_payloads(FIXTURES / "sglang" / "generate_stream_sd_v0.5.23.txt")
    assert shape(got[0]) == shape(want[0]) and shape(got[-1]) == shape(want[-1])
    assert all(shape(g) == shape(want[1]) for g in got[1:-1])
    assert got[-1]["output_ids"][: len(got[0]["output_ids"])] == got[0]["output_ids"]  # cumulative
    metrics = get(url + "/metrics")
    assert metric_names((FIXTURES / "sglang" / "metrics_sd_v0.5.23.txt").read_text()) - {
        "sglang:gen_throughput"
    } <= metric_names(metrics)


def test_trtllm_emulator_matches_captured_shapes(start_emulator):
    url = start_emulator(
        "trtllm", "serve", "/m/Llama-3.1-8B-Instruct", "--sd-k", "3", "--accept", ACCEPT, "--return-perf-metrics"
    )
    body = json.loads((FIXTURES / "trtllm" / "v1_completions_request.json").read_text())
    got = post_stream(url + "/v1/completions", body)  # detokenize: false: ids, empty text
    want = sse_payloads(FIXTURES / "trtllm" / "v1_completions_stream_sd_ids_per_request_stats.txt")
    assert [shape(g) for g in got[:-2]] == [shape(want[0])] * (len(got) - 2)
    got = post_stream(url + "/v1/completions", {**body, "detokenize": True})
    want = sse_payloads(FIXTURES / "trtllm" / "v1_completions_stream_sd_continuous_usage.txt")
    assert [shape(g) for g in got[:1] + got[-2:]] == [shape(w) for w in want[:1] + want[-2:]]
    rows = json.loads(get(url + "/metrics"))
    fixture_rows = json.loads((FIXTURES / "trtllm" / "metrics_iteration_stats_sd.json").read_text())
    assert rows and all(shape(r) == shape(fixture_rows[0]) for r in rows)
    assert json.loads(get(url + "/metrics")) == []  # removed once read
    prom = get(url + "/prometheus/metrics")
    fixture_names = metric_names((FIXTURES / "trtllm" / "prometheus_metrics_sd.txt").read_text())
    assert fixture_names - {
        "trtllm_spec_decode_acceptance_length",
        "trtllm_spec_decode_draft_overhead",
        "trtllm_num_requests_running",
    } <= metric_names(prom)


def test_emulators_reject_what_the_engines_reject(start_emulator):
    url = start_emulator("sglang")
    with pytest.raises(urllib.error.HTTPError) as e:
        post_stream(url + "/generate", {"input_ids": [1, 2], "sampling_params": {"max_tokens": 3}, "stream": True})
    assert e.value.code == 400


def sweep_config(tmp_path, tokenizer, engine: dict, sd: list) -> BenchmarkConfig:
    return BenchmarkConfig.model_validate(
        {
            "engine": engine,
            "sd": sd,
            "output_dir": str(tmp_path / "results"),
            "data": {
                "split": "qualitative-mini",
                "tokenizer": tokenizer,
                "prompts_per_category": 1,
                "cache_dir": str(tmp_path / "cache"),
            },
            "load": {"concurrency": [1, 4], "output_len": 48, "requests_per_point": 22, "allow_repeats": True},
        }
    )


def check_summary(result, expected_al: float) -> pd.DataFrame:
    df = pd.read_csv(result.results_dir / "summary.csv")
    assert (df["ok"] == df["sent"]).all() and (df["failed"] == 0).all()
    on = df[df["sd_method"] != "off"]
    assert len(on) and on["al_drafted"].notna().all()
    # seeded per-request RNG: deterministic, but still a sample of ~1000 verify steps
    assert on["al_drafted"].to_numpy() == pytest.approx(expected_al, abs=0.15)
    off = df[df["sd_method"] == "off"]
    assert (off["tokens_per_step"] == 1.0).all()
    return df


EXPECTED_AL = AcceptanceModel(3, (0.8, 0.6, 0.4)).expected_acceptance_length


@pytest.mark.slow
@pytest.mark.parametrize(
    "engine,args",
    [("sglang", ["--sd-k", "3", "--enable-metrics"]), ("trtllm", ["serve", "/m/emulated", "--sd-k", "3"])],
)
def test_attach_mode_end_to_end(tmp_path, tiny_tokenizer, start_emulator, engine, args):
    url = start_emulator(engine, *args, "--accept", ACCEPT, "--step-ms", "1")
    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        {"name": engine, "endpoint": url},
        [{"method": "eagle3", "num_speculative_tokens": 3, "draft_model": "/d"}],
    )
    result = BenchmarkRunner(cfg, progress=False).run()
    df = check_summary(result, EXPECTED_AL)
    vllm_like = set(result.points[0].to_row())
    assert set(df.columns) == vllm_like
    if engine == "sglang":  # per-request meta_info counters agree with the global counter deltas
        assert df["al_drafted_req_sum"].to_numpy() == pytest.approx(EXPECTED_AL, abs=0.15)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_launch_mode_end_to_end(tmp_path, tiny_tokenizer, engine):
    shims = write_engine_shims(tmp_path / "shims")
    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        {
            "name": engine,
            "model": str(tmp_path),
            "python": sys.executable,
            "startup_timeout_s": 60,
            "env": {"PYTHONPATH": str(shims)},
            "extra_args": ["--accept", ACCEPT, "--step-ms", "1"],
        },
        [{"method": "off"}, {"method": "eagle3", "num_speculative_tokens": 3, "draft_model": str(tmp_path)}],
    )
    result = BenchmarkRunner(cfg, progress=False).run()
    df = check_summary(result, EXPECTED_AL)
    assert sorted(df["sd_label"].unique()) == ["eagle3-k3", "sd-off"]
    assert len(result.speedups) == 2
    # greedy: SD on and off emit the same ids for the same prompt, turn by turn (a second turn carries the
    # first reply: ids from SGLang, text tokenized by the harness for trtllm-serve, which streams no ids)
    from speedbench.results import ResultsDir

    rd = ResultsDir(result.results_dir)
    by_prompt = {}
    for point in ("sd-off-c1", "eagle3-k3-c1"):
        for r in rd.records(point):
            assert r.output_ids  # trtllm streams ids with detokenize: false
            by_prompt.setdefault((r.prompt_id, r.turn), set()).add(tuple(r.output_ids))
    assert all(len(v) == 1 for v in by_prompt.values())
    assert {turn for _, turn in by_prompt} == {1, 2}


# ---- round trips: the adapter's launch options through emulators that apply the engines' own rules ----------


def trtllm_with_adapter_options(start_emulator, tmp_path, sd, extra_options=None, **engine) -> tuple[str, object]:
    from speedbench.config import EngineConfig
    from speedbench.engines import get_adapter

    a = get_adapter(EngineConfig(name="trtllm", model="/m/emulated", python=sys.executable, **engine))
    a.files_dir = tmp_path
    argv = a.launch_argv(sd, "127.0.0.1", 0, 8)
    if extra_options:  # keys the adapter does not write for any release, added as a user of a branch build would
        opts_file = Path(argv[argv.index("--extra_llm_api_options") + 1])
        opts_file.write_text(yaml.safe_dump({**yaml.safe_load(opts_file.read_text()), **extra_options}))
    return start_emulator(
        "trtllm",
        *argv[argv.index("serve") : argv.index("--host")],
        "--extra_llm_api_options",
        argv[argv.index("--extra_llm_api_options") + 1],
        "--accept",
        ACCEPT,
        "--step-ms",
        "1",
    ), a


def stream_one(url: str, a, prompt: list[int], n: int = 24):
    from speedbench.core.records import RequestRecord

    path, body = a.build_request(prompt, n, fixed_length=True)  # exactly n tokens: counts below
    rec = RequestRecord("r", "p", "c", len(prompt), n)
    for i, ev in enumerate(post_stream(url + path, body)):
        a.on_event(ev, rec, i + 1, prompt)
    return rec


@pytest.mark.parametrize("k", [2, 3])
def test_trtllm_mtp_runs_the_draft_length_it_is_labelled(start_emulator, tmp_path, k):
    from speedbench.config import SDConfig

    url, a = trtllm_with_adapter_options(start_emulator, tmp_path, SDConfig(method="mtp", num_speculative_tokens=k))
    stream_one(url, a, [5, 6, 7, 8])
    rows = json.loads(get(url + "/metrics"))
    st = [r["specDecodingStats"] for r in rows if r["specDecodingStats"]["numRequestsWithDraftTokens"]]
    assert st and all(s["numDraftTokens"] == k * s["numRequestsWithDraftTokens"] for s in st)


def test_trtllm_token_ids_and_per_request_counters_round_trip(start_emulator, tmp_path):
    from speedbench.config import SDConfig

    # per_request_spec_decode_stats: only open PR NVIDIA/TensorRT-LLM#19311's branch has it (never written for a
    # release); the adapter still reads the block such a server sends
    url, a = trtllm_with_adapter_options(
        start_emulator,
        tmp_path,
        SDConfig(method="ngram", num_speculative_tokens=3),
        {"per_request_spec_decode_stats": True},
        version="1.3.0",
    )
    rec = stream_one(url, a, [5, 6, 7, 8])
    assert len(rec.output_ids) == 24 == rec.completion_tokens  # detokenize: false streams the ids
    assert rec.sd["source"] == "trtllm.per_request" and rec.sd["draft_tokens"] == 3 * rec.sd["drafts"]
    # every output token is the prefill token, a bonus token per verify step, or an accepted draft
    assert 1 + rec.sd["drafts"] + rec.sd["accepted_tokens"] == 24


def test_sglang_draft_width_with_dp_replicas(start_emulator):
    from speedbench.config import EngineConfig, SDConfig
    from speedbench.engines import get_adapter

    a = get_adapter(EngineConfig(name="sglang", model="/m", data_parallel_size=2))
    argv = a.launch_argv(SDConfig(method="ngram", num_speculative_tokens=3), "127.0.0.1", 0, 8)  # allowed with DP
    url = start_emulator(
        "sglang",
        *argv[argv.index("--model-path") : argv.index("--host")],
        *argv[argv.index("--tp-size") :],
        "--accept",
        ACCEPT,
        "--step-ms",
        "1",
    )
    fresh = get_adapter(EngineConfig(name="sglang", model="/m"))  # k only from the server's gauges
    path, body = a.build_request([5, 6, 7, 8], 24)
    post_stream(url + path, body)
    c = fresh.counters_from_metrics(get(url + "/metrics"))
    assert c.drafts and c.draft_tokens == 3 * c.drafts


def test_sglang_emulator_refuses_ngram_with_dp_attention(tmp_path):
    import subprocess

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "speedbench.testing.emulators",
            "--engine",
            "sglang",
            "--port",
            "1",
            "--dp-size",
            "2",
            "--enable-dp-attention",
            "--speculative-algorithm",
            "NGRAM",
            "--speculative-ngram-max-bfs-breadth",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "does not support dp attention" in out.stderr


@pytest.mark.parametrize("incremental", [True, False])
def test_sglang_emulator_streams_one_event_per_step_written_from_the_engine(start_emulator, incremental):
    """Issue 29: the emulator writes each step's event from the engine's iteration, middle events filled into
    a template. Every event is still its own JSON object with SGLang's keys in SGLang's order, one step
    each (1 + accepted drafts tokens, SD on), counts rising to the cap; the ids and text add up."""
    args = ["--sd-k", "3", "--accept", ACCEPT, "--step-ms", "1"]
    url = start_emulator("sglang", *args, *(["--incremental-streaming-output"] if incremental else []))
    body = {"input_ids": list(range(10, 40)), "sampling_params": {"max_new_tokens": 40, "temperature": 0,
            "ignore_eos": True}, "stream": True}  # fmt: skip
    events = post_stream(url + "/generate", body)
    counts = [e["meta_info"]["completion_tokens"] for e in events]
    assert counts[-1] == 40 and counts == sorted(set(counts)) and len(events) > 40 / 4
    first_keys = list(events[0]["meta_info"])
    for e in events[1:-1]:
        assert list(e) == ["text", "output_ids", "meta_info"]
        assert [k for k in first_keys if k != "response_sent_to_client_ts"] == list(e["meta_info"])
        assert e["meta_info"]["finish_reason"] is None
    ids = [i for e in events for i in e["output_ids"]] if incremental else events[-1]["output_ids"]
    text = "".join(e["text"] for e in events) if incremental else events[-1]["text"]
    assert len(ids) == 40 and text == "".join(f" w{i}" for i in ids)
    assert events[-1]["meta_info"]["finish_reason"] == {"type": "length", "length": 40}
    steps = [b - a for a, b in zip([0, *counts], counts)]
    assert max(steps) <= 4 and events[-1]["meta_info"]["spec_verify_ct"] == len(events) - 1
