"""Issue 15 item 6: attach mode against an OpenAI-compatible server without vLLM's per-chunk usage."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from speedbench.config import BenchmarkConfig
from speedbench.results import ResultsDir
from speedbench.runner import BenchmarkRunner
from speedbench.testing.fake_openai import FakeOpenAIServer


def _sweep(url, tokenizer, tmp_path, attach_config):
    cfg = BenchmarkConfig.model_validate(attach_config(url, tokenizer, tmp_path, sd="off", concurrency=[2]))
    result = BenchmarkRunner(cfg, progress=False).run()
    rd = ResultsDir(result.results_dir)
    return rd, rd.points()[0]


@pytest.mark.parametrize("final_usage,source", [(True, "final usage"), (False, "tokenizer")])
def test_text_chunks_are_timed_and_counted(tmp_path, tiny_tokenizer, attach_config, final_usage, source):
    # paced like a real decode loop: with no gap the server thread can write all 12 chunks before the client
    # reads once (one stamp, zero decode span, so rightly no TPOT), which failed this test on a busy machine
    with FakeOpenAIServer(wire="plain", final_usage=final_usage, step_delay_s=0.002) as srv:
        rd, point = _sweep(srv.url, tiny_tokenizer, tmp_path, attach_config)
    assert point["ok"] == point["sent"] > 0
    for name in ("ttft_s", "itl_s", "tpot_s", "e2e_s", "user_tps"):
        assert point[name]["count"] > 0, name  # used to be count 0, NaN, and exit 0
    assert point["output_tokens"] == 12 * point["ok"]  # every request made output_len tokens
    assert point["token_counts"] == source
    assert rd.manifest()["token_counts"] == {point["point_id"]: source}
    rec = next(r for r in rd.records(point["point_id"]) if not r.warmup)
    assert len(rec.chunk_times_ns) == 12 and rec.output_tokens == 12


def test_a_point_whose_latencies_cannot_be_measured_exits_non_zero(tmp_path, tiny_tokenizer, attach_config):
    """Chat-style deltas carry no completion text: no chunk can be timed, and the sweep says so."""
    with FakeOpenAIServer(wire="chat") as srv:
        cfg = attach_config(srv.url, tiny_tokenizer, tmp_path, sd="off", concurrency=[1])
        path = Path(tmp_path / "cfg.json")
        path.write_text(json.dumps(cfg))
        res = CliRunner().invoke(main, ["sweep", "--config", str(path)], catch_exceptions=False)
    assert res.exit_code == 1, res.output
    assert "no token chunk was timed" in res.output
