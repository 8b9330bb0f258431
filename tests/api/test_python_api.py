"""The Python API: typed results from a real (attach-mode) sweep against the fake vLLM-shaped server."""

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from speedbench.config import ConfigError

pytestmark = pytest.mark.slow


def test_import_speedbench_stays_light():
    code = (
        "import sys, speedbench; heavy = [m for m in ('speedbench.runner', 'pandas', 'transformers', "
        "'aiohttp', 'fastapi') if m in sys.modules]; print(heavy); assert not heavy, heavy; "
        "from speedbench import BenchmarkConfig, BenchmarkRunner; assert BenchmarkRunner.__name__ == "
        "'BenchmarkRunner'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_runner_returns_typed_complete_result(tmp_path, tiny_tokenizer, fake_sd_server, attach_config):
    from speedbench import BenchmarkConfig, BenchmarkRunner, CategoryAcceptance, PointSummary, SweepResult, load_result
    from speedbench.data.pretokenize import read_prompt_set
    from speedbench.data.promptset import turn_ids_digest

    cfg = BenchmarkConfig.model_validate(attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path))
    seen = []
    result = BenchmarkRunner(cfg, on_point=seen.append).run()

    assert isinstance(result, SweepResult) and result.status == "complete"
    assert [p.point_id for p in result.points] == ["ngram-k3-c1", "ngram-k3-c2"] == [p.point_id for p in seen]
    assert all(isinstance(p, PointSummary) and p.ok == p.sent > 0 and p.failed == 0 for p in result.points)
    assert result.speedups == []  # no SD-off baseline in this sweep
    assert result.quality is None and result.recommendation is None
    assert len(result.prompts_fingerprint) == 64

    # Ground truth from the fake server: acceptance per step is a function of the prompt ids; later turns
    # of a conversation are found by the digest of the ids built from the replies (the record's prompt_sha256)
    accepted_by_ids = {turn_ids_digest(e.prompt_ids): e.per_step_accepted for e in fake_sd_server.log}
    prompts = read_prompt_set(Path(result.results_dir) / "prompts.parquet")
    ids_by_prompt = {p.id: p.token_ids for p in prompts.prompts}
    cats = {p.id: p.category for p in prompts.prompts}
    for point in result.points:
        records = [r for r in _records(result.results_dir, point.point_id) if not r.warmup]
        assert {r.turn for r in records} == {1, 2}
        acc, steps = defaultdict(int), defaultdict(int)
        for r in records:
            per_step = accepted_by_ids[r.prompt_sha256 or turn_ids_digest(ids_by_prompt[r.prompt_id])]
            acc[cats[r.prompt_id]] += sum(per_step)
            steps[cats[r.prompt_id]] += len(per_step)
        got = {c.category: c for c in result.categories[point.point_id]}
        assert set(got) == set(acc) and all(isinstance(c, CategoryAcceptance) for c in got.values())
        for cat, c in got.items():
            assert c.al_drafted == pytest.approx(1 + acc[cat] / steps[cat])
            assert c.requests == sum(1 for r in records if cats[r.prompt_id] == cat)
        # the point's own per-request AL is the token-weighted mean of the categories'
        assert point.al_drafted_req_sum == pytest.approx(1 + sum(acc.values()) / sum(steps.values()))
        assert point.chunk_step_mismatches == 0 and point.prompt_mismatches == 0

    again = load_result(result.results_dir)
    assert again.points == result.points and again.categories == result.categories
    assert again.to_dict()["points"][0]["point_id"] == "ngram-k3-c1"


def test_load_config_layers_keywords_over_preset(monkeypatch):
    from speedbench import load_config

    monkeypatch.setenv("SPEEDBENCH_LOAD__OUTPUT_LEN", "7")
    cfg = load_config(preset="cpu-demo", load={"concurrency": [2]})
    assert cfg.load.concurrency == [2] and cfg.load.output_len == 7  # keyword > env > preset
    assert cfg.engine.served_model_name == "gemma3-270m"  # preset kept where not overridden
    assert load_config(preset="cpu-demo", use_env=False).load.output_len == 32


def _records(results_dir, point_id):
    from speedbench.results import ResultsDir

    return ResultsDir(results_dir).records(point_id)


def test_api_key_reaches_every_request_and_never_the_results(tmp_path, tiny_tokenizer, attach_config):
    from speedbench import BenchmarkConfig, BenchmarkRunner
    from speedbench.testing.fake_openai import FakeOpenAIServer

    secret = "sk-test-7d1f"
    with FakeOpenAIServer(sd_k=3, api_key=secret) as srv:
        raw = attach_config(srv.url, tiny_tokenizer, tmp_path, concurrency=[1])
        keyed = BenchmarkConfig.model_validate({**raw, "engine": {**raw["engine"], "api_key": secret}})
        result = BenchmarkRunner(keyed).run()
        assert result.status == "complete" and result.points[0].ok == result.points[0].sent > 0
        assert secret not in "".join(
            p.read_text(errors="replace")
            for p in Path(result.results_dir).rglob("*")
            if p.is_file() and p.suffix in (".json", ".jsonl", ".md", ".yaml")
        )

        # without the key the attach-mode SD probe gets no answer: refused before any folder, naming the 401
        raw["output_dir"] = str(tmp_path / "no-key")
        with pytest.raises(ConfigError, match=r"answered none of the 2 SD-probe requests \(http_401"):
            BenchmarkRunner(BenchmarkConfig.model_validate(raw)).run()
        assert not (tmp_path / "no-key").exists() or not any((tmp_path / "no-key").iterdir())
