"""A sweep puts energy, tokens per joule and cost on every point; without NVML they are n/a and nothing fails."""

from __future__ import annotations

import json
import sys

import pytest

from speedbench.config import BenchmarkConfig
from speedbench.metrics.speedup import speedup_rows
from speedbench.report.load import ReportData
from speedbench.report.render import render
from speedbench.runner import BenchmarkRunner
from speedbench.testing.fake_openai import FakeOpenAIServer
from tests.telemetry import fake_nvml
from tests.telemetry.conftest import make_attach_config


def run_sweep(tmp_path, tokenizer, **extra):
    with FakeOpenAIServer(sd_k=0, step_delay_s=0.002) as srv:
        d = make_attach_config(srv.url, tokenizer, tmp_path, sd="off", requests_per_point=8)
        d.update(quality={"enabled": False}, **extra)
        return BenchmarkRunner(BenchmarkConfig.model_validate(d), progress=False).run()


def test_energy_and_cost_per_point_with_nvml(tmp_path, tiny_tokenizer, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make([250.0, 250.0]))
    result = run_sweep(tmp_path, tiny_tokenizer, cost={"gpu_hour_usd": 2.0})
    for p in result.points:
        assert p.telemetry["gpu"] == "nvml" and p.telemetry["interval_s"] == 0.05
        # two GPUs at 250 W over the measured window: the same window as output TPS
        assert p.energy_j == pytest.approx(500.0 * p.duration_s, rel=0.03)
        assert p.mean_power_w == pytest.approx(500.0, rel=0.03)
        assert p.output_tokens_per_joule == pytest.approx(p.output_tokens / p.energy_j)
        assert p.usd_per_mtok == pytest.approx(2.0 / (p.output_tps * 3600) * 1e6)
        samples = (result.results_dir / "telemetry" / f"{p.point_id}.jsonl").read_text().splitlines()
        assert {json.loads(s)["gpu"] for s in samples} == {0, 1}
        assert "sums all 2 GPUs of the node while the engine holds 1" in p.telemetry["scope"]
    text = render(ReportData.load([str(result.results_dir)]), "md").text
    assert "Energy and cost per point" in text


def test_telemetry_gpus_counts_only_the_engines_gpus(tmp_path, tiny_tokenizer, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make([400.0, 100.0, 400.0]))
    result = run_sweep(tmp_path, tiny_tokenizer, telemetry={"gpus": [1]})
    for p in result.points:
        assert [g["gpu"] for g in p.telemetry["gpus"]] == [1] and "scope" not in p.telemetry
        assert p.mean_power_w == pytest.approx(100.0, rel=0.03)
    assert "GPUs of the node" not in caplog.text  # a healthy run warns nothing


def test_without_nvml_columns_say_na_and_nothing_fails(tmp_path, tiny_tokenizer, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    result = run_sweep(tmp_path, tiny_tokenizer)
    assert result.status == "complete"
    for p in result.points:
        assert p.energy_j is None and p.output_tokens_per_joule is None and p.usd_per_mtok is None
        assert "NVML not installed" in p.telemetry["gpu"]
    assert not (result.results_dir / "telemetry").exists()
    text = render(ReportData.load([str(result.results_dir)]), "md").text
    section = text[text.index("Energy and cost per point") :]
    assert "| n/a | n/a | n/a | n/a |" in section


def test_ratios_next_to_the_speedup():
    base = {"run": "r", "engine": "vllm", "isl": None, "concurrency": 4, "status": "complete", "user_tps_mean": 1.0}
    off = {
        **base,
        "point_id": "sd-off-c4",
        "sd_method": "off",
        "sd_label": "sd-off",
        "output_tps": 100.0,
        "output_tokens_per_joule": 2.0,
        "usd_per_mtok": 5.0,
    }
    on = {
        **base,
        "point_id": "ngram-k3-c4",
        "sd_method": "ngram",
        "sd_label": "ngram-k3",
        "output_tps": 150.0,
        "output_tokens_per_joule": 1.8,
        "usd_per_mtok": 5.0 / 1.5,
    }
    (s,) = speedup_rows([off, on])
    # faster (1.5x) yet 10 % more energy per token: the case the energy ratio exists for
    assert s["output_tps_speedup"] == pytest.approx(1.5)
    assert s["tokens_per_joule_ratio"] == pytest.approx(0.9)
    assert s["cost_ratio"] == pytest.approx(1 / 1.5)
    (na,) = speedup_rows([{**off, "output_tokens_per_joule": None, "usd_per_mtok": None}, on])
    assert na["tokens_per_joule_ratio"] is None and na["cost_ratio"] is None
