"""Multi-node planning (full matrix -> jobs), submission through submitit's debug executor, and merging."""

import json
import shutil

import pytest
from click.testing import CliRunner

from speedbench.api.merge import merge_results
from speedbench.api.plan import SPEED_BENCH_ISL, expand_matrix
from speedbench.cli import main
from speedbench.config import ConfigError
from speedbench.report.comparable import NotComparable
from speedbench.results import ResultsDir


def test_full_matrix_one_job_per_engine_configuration():
    jobs = expand_matrix(
        presets=["cpu-demo"],
        engines=["vllm", "sglang"],
        isl_buckets=SPEED_BENCH_ISL,
        sd_methods="off,ngram,eagle3@/heads/eagle3",
        draft_lengths=[1, 3, 5],
        environ={},
    )
    # 2 engines × 6 ISL buckets × (SD off + 2 SD-on methods × 3 draft lengths)
    assert len(jobs) == 2 * 6 * (1 + 2 * 3)
    assert len({j.job_id for j in jobs}) == len(jobs)
    assert all(len(j.config.sd) == 1 for j in jobs)
    assert {j.isl for j in jobs} == {None, 1024, 2048, 8192, 16384, 32768}
    assert {j.sd_label for j in jobs} == {
        "sd-off",
        "ngram-k1",
        "ngram-k3",
        "ngram-k5",
        "eagle3-k1",
        "eagle3-k3",
        "eagle3-k5",
    }
    # one merge group per prompt set (preset × ISL), shared by both engines and every SD setting
    groups = {}
    for j in jobs:
        groups.setdefault(j.group, set()).add((j.engine, j.sd_label))
    assert len(groups) == 6 and all(len(v) == 14 for v in groups.values())
    assert jobs[0].config.engine.served_model_name == "gemma3-270m"  # preset carried into every job


def test_plan_cli_prints_the_job_list():
    res = CliRunner().invoke(
        main,
        [
            "plan",
            "--preset",
            "cpu-demo",
            "--full",
            "--engines",
            "vllm,sglang",
            "--sd",
            "off,ngram",
            "--draft-lengths",
            "1,3",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "36 jobs" in res.output  # 2 engines × 6 ISL × (off + ngram k1, k3)
    for job in ("vllm-cpu-demo-islnatural-sd-off", "sglang-cpu-demo-isl32768-ngram-k3"):
        assert job in res.output
    assert "1,2,4,8,16,32,64" in res.output  # --full uses SPEED-Bench's concurrency grid


def test_plan_rejects_bad_settings():
    res = CliRunner().invoke(main, ["plan", "--preset", "cpu-demo", "--isl-buckets", "8q"])
    assert res.exit_code == 2 and "bad ISL" in res.output


@pytest.mark.slow
def test_submit_debug_executor_runs_jobs_and_merges(tmp_path, tiny_tokenizer, attach_config, monkeypatch):
    """Each job launches its own server with its own SD setting (the test engine: speedbench's fault server);
    one attached server cannot serve an SD-off and an SD-on job (attach mode checks the server's SD)."""
    import pdb
    import sys

    from tests.reliability.fake_engine import register

    register()
    monkeypatch.setattr(pdb, "post_mortem", lambda *a, **k: None)  # submitit's debug executor would open pdb
    model = tmp_path / "fake-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"max_position_embeddings": 4096}))
    cfg = attach_config("http://unused", tiny_tokenizer, tmp_path, concurrency=[1])
    cfg["engine"] = {"name": "fake", "model": str(model), "python": sys.executable, "startup_timeout_s": 30}
    cfg_file = tmp_path / "base.json"
    cfg_file.write_text(json.dumps(cfg))
    plan_dir = tmp_path / "plan"
    res = CliRunner().invoke(
        main,
        [
            "plan",
            "--config",
            str(cfg_file),
            "--sd",
            "off,ngram",
            "--draft-lengths",
            "3",
            "--submit",
            "debug",
            "--plan-dir",
            str(plan_dir),
            "--wait",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.count("submitted ") == 2
    merged = plan_dir / "merged" / "config-islnatural"
    assert f"merged config-islnatural: {merged}" in res.output
    points = [json.loads(x)["point_id"] for x in (merged / "points.jsonl").read_text().splitlines()]
    assert sorted(points) == ["ngram-k3-c1", "sd-off-c1"]
    manifest = json.loads((merged / "manifest.json").read_text())
    assert len(manifest["merged_from"]) == 2 and manifest["status"] == "complete"
    assert (merged / "speedup.csv").is_file()  # SD-off and SD-on of one engine now sit side by side
    assert all(ResultsDir(merged).records_path(p).is_file() for p in points)


def _fake_results(root, name, fingerprint, engine="vllm", point="sd-off-c1", output_len=16):
    """A minimal results folder: manifest + one point, as the runner writes them."""
    from speedbench.metrics.distribution import distribution
    from speedbench.metrics.summary import PointSummary

    rd = ResultsDir(root / name).create(
        {
            "status": "complete",
            "prompts": {"fingerprint": fingerprint, "ids_sha256": fingerprint[::-1]},
            "generation": {"output_len": output_len, "temperature": 0.0, "ignore_eos": True},
            "points_planned": [point],
        }
    )
    d = distribution([1.0, 2.0])
    rd.append_point(
        PointSummary(
            point,
            engine,
            "sd-off",
            "off",
            None,
            1,
            None,
            2,
            2,
            0,
            0,
            {},
            1.0,
            20,
            20.0,
            2.0,
            d,
            d,
            d,
            d,
            d,
            1.0,
            d,
            None,
            None,
            None,
        )
    )
    rd.records_path(point).write_text("")
    return rd.path


def test_merge_renames_clashing_points_and_refuses_other_prompts(tmp_path):
    a = _fake_results(tmp_path, "a", "f" * 64, engine="vllm")
    b = _fake_results(tmp_path, "b", "f" * 64, engine="sglang")
    out = merge_results([a, b], tmp_path / "merged")
    ids = [json.loads(x)["point_id"] for x in (out / "points.jsonl").read_text().splitlines()]
    assert ids == ["sd-off-c1", "sglang-sd-off-c1"]
    assert ResultsDir(out).records_path("sglang-sd-off-c1").is_file()
    with pytest.raises(ConfigError, match="not empty"):
        merge_results([a, b], out)

    c = _fake_results(tmp_path, "c", "0" * 64)
    with pytest.raises(NotComparable, match="different prompt sets"):
        merge_results([a, c], tmp_path / "m2")
    res = CliRunner().invoke(main, ["merge", str(a), str(c), "--out", str(tmp_path / "m3")])
    assert res.exit_code == 2 and "different prompt sets (token ids differ)" in res.output
    assert not (tmp_path / "m3").exists()
    shutil.rmtree(out)


def test_merge_refuses_different_output_length_unless_allowed(tmp_path):
    a = _fake_results(tmp_path, "a", "f" * 64, output_len=16)
    b = _fake_results(tmp_path, "b", "f" * 64, engine="sglang", output_len=4)
    res = CliRunner().invoke(main, ["merge", str(a), str(b), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"output_len {a}=16, {b}=4" in res.output and not (tmp_path / "m").exists()
    res = CliRunner().invoke(
        main, ["merge", str(a), str(b), "--out", str(tmp_path / "m"), "--allow-generation-mismatch"]
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["generation_differences_allowed"] == [f"output_len {a}=16, {b}=4"]
    # a merged folder with mixed settings is never silently like one with a single setting
    c = _fake_results(tmp_path, "c", "f" * 64, output_len=16)
    res = CliRunner().invoke(main, ["compare", str(tmp_path / "m"), str(c)])
    assert res.exit_code == 2 and "output_len m=mixed, c=16" in res.output


def test_submitting_leaves_the_callers_logging_alone(tmp_path):
    """submitit's import reconfigured logging and closed every root handler's stream: under click's
    CliRunner, after absl (rouge-score) had put a handler on sys.stderr, that closed pytest's own capture."""
    import subprocess
    import sys

    code = f"""
import io, logging
from speedbench.api.plan import SubmitOptions, submit
class ClosingHandler(logging.StreamHandler):  # as absl's handler does: close() closes its stream
    def close(self):
        self.stream.close()
        super().close()
stream = io.StringIO()
handler = ClosingHandler(stream)
logging.getLogger().addHandler(handler)
submit([], SubmitOptions(cluster="debug", folder={str(tmp_path)!r}))
logging.getLogger().warning("still here")
assert handler in logging.getLogger().handlers and not stream.closed, "submitit closed the caller's handler"
assert stream.getvalue() == "still here\\n", repr(stream.getvalue())
"""
    env = {k: v for k, v in __import__("os").environ.items() if k != "SUBMITIT_LOG_LEVEL"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
