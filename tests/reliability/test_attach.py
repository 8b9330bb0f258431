"""Attach mode checks what it is told: the served model name and the SD setting come from the server itself,
and a mismatch is one clear line (exit 2) before a results folder exists."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from speedbench.engines.server import pick_free_port, port_is_free
from tests.reliability.conftest import error_line, records_of, sweep_config, wait_for, write_config


@contextlib.contextmanager
def fault_server(*args: str):
    port = pick_free_port()
    srv = subprocess.Popen(
        [sys.executable, "-m", "speedbench.testing.fault_server", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: not port_is_free("127.0.0.1", port), 20, "fault server", srv)
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.terminate()
        srv.wait(10)


@pytest.fixture
def attach(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    """Run `sweep` attached to ``url``, sd-off at c=1 (4 requests), with the given extra flags."""

    def run(url: str, *flags: str):
        cfg = sweep_config(
            tmp_path, tiny_tokenizer, fake_model, prompt_cache, sd=("off",), concurrency=(1,), requests=4
        )
        del cfg["engine"]["model"]  # as the README's attach example: no --model
        cfg["quality"] = {"enabled": False}
        path = write_config(tmp_path / "cfg.json", cfg)
        return CliRunner().invoke(main, ["sweep", "--config", str(path), "--endpoint", url, *flags])

    return run


def _ok_records(tmp_path) -> list[dict]:
    (run,) = (tmp_path / "results").iterdir()
    return [r for r in records_of(run) if not r["warmup"]]


def test_served_model_name_taken_from_v1_models(attach, tmp_path):
    with fault_server("--model-name", "/models/llama") as url:  # a vLLM server left at its default name
        res = attach(url)
    assert res.exit_code == 0, res.stderr
    recs = _ok_records(tmp_path)
    assert recs and all(r["status"] == "ok" for r in recs)


def test_several_served_models_need_a_name(attach, tmp_path):
    with fault_server("--model-name", "a", "--also-serve", "b") as url:
        res = attach(url)
        assert res.exit_code == 2
        assert "serves 2 models (a, b): name one with --served-model-name" in error_line(res)
        assert not (tmp_path / "results").exists()
        res = attach(url, "--served-model-name", "b")
    assert res.exit_code == 0, res.stderr
    assert all(r["status"] == "ok" for r in _ok_records(tmp_path))


def test_served_model_name_not_served_is_refused(attach, tmp_path):
    with fault_server("--model-name", "a") as url:
        res = attach(url, "--served-model-name", "llama")
    assert res.exit_code == 2
    assert "does not serve model 'llama' (it serves: a)" in error_line(res)
    assert not (tmp_path / "results").exists()


def test_sd_off_against_a_speculating_server_is_refused(attach, tmp_path):
    with fault_server("--sd-k", "3") as url:
        res = attach(url, "--sd", "off")
    assert res.exit_code == 2
    line = error_line(res)
    assert "--sd off, but the server at" in line and "is speculating" in line
    assert not (tmp_path / "results").exists()


def test_sd_draft_length_mismatch_is_refused(attach, tmp_path):
    with fault_server("--sd-k", "3") as url:
        res = attach(url, "--sd", "ngram:5")
    assert res.exit_code == 2
    assert "--sd ngram:5, but the server at" in (line := error_line(res)) and "give --sd ngram:3" in line
    assert not (tmp_path / "results").exists()


def test_sd_on_against_a_server_without_sd_is_refused(attach, tmp_path):
    with fault_server() as url:  # SD off: like vLLM, no spec_decode counters on /metrics at all
        res = attach(url, "--sd", "ngram:3")
    assert res.exit_code == 2
    assert "exports no SD counters on /metrics: it is not speculating; give --sd off" in error_line(res)
    assert not (tmp_path / "results").exists()


def test_sd_on_against_a_server_that_drafts_nothing_is_refused(attach, tmp_path):
    with fault_server("--metrics", "zero") as url:  # SD counters exported, but the probe sees no draft
        res = attach(url, "--sd", "ngram:3")
    assert res.exit_code == 2
    line = error_line(res)
    assert "--sd ngram:3, but the server at" in line and "no draft in the 2-request probe" in line
    assert "give --sd off, or --sd-unverified" in line
    assert not (tmp_path / "results").exists()


def test_sd_on_against_a_server_without_any_sd_source_is_refused(attach, tmp_path):
    with fault_server("--metrics", "none") as url:  # no /metrics, no per-request SD metrics
        res = attach(url, "--sd", "ngram:3")
    assert res.exit_code == 2
    line = error_line(res)
    assert "no SD source (no SD counters on /metrics, no per-request SD metrics)" in line
    assert "--sd-unverified" in line
    assert not (tmp_path / "results").exists()


def test_sd_unverified_runs_records_and_reports_it(attach, tmp_path):
    with fault_server("--metrics", "none") as url:
        res = attach(url, "--sd", "ngram:3", "--sd-unverified")
    assert res.exit_code == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "could not read" in ln]
    assert len(warnings) == 1, res.stderr  # once, not once per scrape
    (run,) = (tmp_path / "results").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["engine"]["sd_unverified"] is True
    assert manifest["engine"]["sd_unverified"].startswith("no SD source")
    report = CliRunner().invoke(main, ["report", str(run), "--format", "md"])
    assert "unverified (--sd-unverified): the attached server showed no SD source" in report.output


def test_sd_setting_that_matches_runs(attach, tmp_path):
    with fault_server("--sd-k", "3") as url:
        res = attach(url, "--sd", "ngram:3")
    assert res.exit_code == 0, res.stderr
    assert all(r["status"] == "ok" for r in _ok_records(tmp_path))


def test_a_run_of_timeouts_stops_the_point(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    """Every stream stalls: the point stops after a run of timeouts instead of waiting out each request."""
    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        fake_model,
        prompt_cache,
        sd=("off",),
        concurrency=(1,),
        requests=30,
        stream_idle_timeout_s=0.5,
        abort_after_transport_errors=3,
    )
    cfg["load"]["warmup_requests"] = 0
    cfg["quality"] = {"enabled": False}
    path = write_config(tmp_path / "cfg.json", cfg)
    with fault_server("--model-name", "m", "--faults", "stall=1", "--stall-s", "60") as url:
        res = CliRunner().invoke(main, ["sweep", "--config", str(path), "--endpoint", url])
    assert res.exit_code == 1, res.stderr
    assert "Traceback" not in res.stderr
    (run,) = (tmp_path / "results").iterdir()
    (point,) = [json.loads(line) for line in (run / "points.jsonl").read_text().splitlines()]
    assert point["status"] == "failed" and "timeouts in a row" in point["abort_reason"]
    assert point["errors_by_kind"] == {"timeout": 3} and point["not_sent"] == 27  # finished records kept
