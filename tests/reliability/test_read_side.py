"""Commands that read a results folder say what is missing, and refuse what they cannot answer (exit 2)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from tests.reliability.conftest import error_line, sweep_config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_tokenizer, fake_model, prompt_cache):
    """One complete fake-engine sweep: sd-off and ngram-k3 at c=1 and c=2 (quality off: the tests run it)."""
    from speedbench.config import BenchmarkConfig
    from speedbench.runner import BenchmarkRunner

    tmp = tmp_path_factory.mktemp("read-side")
    cfg = sweep_config(tmp, tiny_tokenizer, fake_model, prompt_cache, concurrency=(1, 2), requests=4)
    cfg["quality"] = {"enabled": False}
    return BenchmarkRunner(BenchmarkConfig.from_dict(cfg), progress=False).run().results_dir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    return shutil.copytree(finished_run, tmp_path / "run")


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _drop_points(run, keep) -> None:
    pts = run / "points.jsonl"
    pts.write_text("".join(line + "\n" for line in pts.read_text().splitlines() if keep(json.loads(line))))


def test_report_says_a_torn_last_point_is_missing(run_copy):
    pts = run_copy / "points.jsonl"
    text = pts.read_text()
    pts.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])  # the last line torn in half
    res = _invoke("report", run_copy)
    assert res.exit_code == 0
    assert "1 of 4 planned points missing (ngram-k3-c2): points.jsonl holds no line" in res.stderr


def test_report_says_why_points_are_missing(run_copy):
    _drop_points(run_copy, lambda p: p["sd_method"] == "off")
    manifest = json.loads((run_copy / "manifest.json").read_text())
    manifest.update(status="failed", stopped_reason="server not reachable (attached server); sweep stopped")
    (run_copy / "manifest.json").write_text(json.dumps(manifest))
    res = _invoke("report", run_copy)
    assert res.exit_code == 0
    assert (
        "2 of 4 planned points missing (ngram-k3-c1, ngram-k3-c2): server not reachable (attached server); "
        "sweep stopped"
    ) in res.stderr


def test_quality_refuses_missing_records(run_copy):
    shutil.rmtree(run_copy / "records")
    res = _invoke("quality", run_copy)
    assert res.exit_code == 2
    assert "no request records" in error_line(res)
    assert not (run_copy / "quality.json").exists()


def test_quality_refuses_missing_baseline(run_copy):
    _drop_points(run_copy, lambda p: p["sd_method"] != "off")
    res = _invoke("quality", run_copy)
    assert res.exit_code == 2
    assert "needs the SD-off baseline" in error_line(res)


def test_explicit_bertscore_that_cannot_run_is_an_error(run_copy, tmp_path):
    (tmp_path / "not-a-model").mkdir()
    res = _invoke("quality", run_copy, "--bertscore", "--bertscore-model", tmp_path / "not-a-model")
    assert res.exit_code == 2
    assert "--bertscore cannot run" in error_line(res)


def test_quality_of_a_complete_run_passes(run_copy):
    res = _invoke("quality", run_copy, "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert json.loads((run_copy / "quality.json").read_text())["rows"]


@pytest.mark.parametrize("command", [["quality"], ["report"]])
def test_corrupt_manifest_is_one_line(run_copy, command):
    (run_copy / "manifest.json").write_text("{not json")
    res = _invoke(*command, run_copy)
    assert res.exit_code == 2
    assert "unreadable manifest.json" in error_line(res)


@pytest.mark.parametrize("command", [["quality"], ["recommend"], ["report", "--format", "html"]])
def test_unwritable_destination_is_one_line(run_copy, command):
    """Root ignores read-only modes, so the unwritable place is a file standing where a folder must be."""
    (run_copy / "quality.json").mkdir()  # quality/recommend write beside the results; html writes report.html
    (run_copy / "recommendation.json").mkdir()
    (run_copy / "report.html").mkdir()
    res = _invoke(*command, run_copy)
    assert res.exit_code == 2
    assert "cannot write" in error_line(res)


def test_report_out_under_a_file(run_copy, tmp_path):
    (tmp_path / "a-file").write_text("x")
    res = _invoke("report", run_copy, "--format", "md", "--out", tmp_path / "a-file" / "r.md")
    assert res.exit_code == 2
    assert "cannot write" in error_line(res)


def test_points_line_that_is_not_an_object_is_damage_not_a_traceback(run_copy):
    with (run_copy / "points.jsonl").open("a") as fh:
        fh.write("[1, 2]\n")
    res = _invoke("report", run_copy)
    assert res.exit_code == 0 and "Traceback" not in res.stderr


def test_point_missing_its_fields_is_one_line(run_copy):
    pts = run_copy / "points.jsonl"
    rows = [json.loads(line) for line in pts.read_text().splitlines()]
    del rows[0]["concurrency"]
    pts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = _invoke("report", run_copy)
    assert res.exit_code == 2
    assert "damaged results in" in error_line(res)


def test_resume_with_a_changed_option_names_the_field(run_copy):
    res = _invoke("sweep", "--resume", run_copy, "--output-len", "8")
    assert res.exit_code == 2
    line = error_line(res)
    assert "config differs" in line and "changed: load.output_len" in line
