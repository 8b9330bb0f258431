"""Clean shutdown: Ctrl-C / SIGTERM / SIGKILL of the harness mid-point, then resume to the same points.

The CLI runs as a subprocess against a launched fake server that has a worker child in its process group
(as vLLM has its engine core); afterwards no process of that group may live and its port must be free.
"""

from __future__ import annotations

import json
import signal

import pytest

from speedbench.results import ResultsDir
from tests.reliability.conftest import (
    FaultReport,
    accounting,
    fault_log,
    kill_launches,
    launches,
    lost_requests,
    orphans,
    run_cli,
    start_cli,
    sweep_config,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow


def _start_slow_sweep(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    pids, log = tmp_path / "pid.json", tmp_path / "requests.jsonl"
    # 20 ms per token: each point lasts seconds, so the signal lands mid-point
    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        fake_model,
        prompt_cache,
        sd=("off",),
        concurrency=(1, 2),
        requests=12,
        server_args=["--token-delay-ms", "20", "--pid-file", pids, "--spawn-child", "--fault-log", log],
    )
    proc = start_cli("sweep", "--config", str(write_config(tmp_path / "c.json", cfg)))
    points = wait_for(lambda: next((tmp_path / "results").glob("*/points.jsonl"), None), 90, "first point", proc)
    # point 1 = 2 warm-up + 12 requests; wait until point 2 has requests in flight at the server
    wait_for(lambda: len(fault_log(log)) >= 16, 30, "second point under way", proc)
    return proc, pids, points.parent


def _check_resume_matches(out, baseline) -> None:
    res = run_cli("sweep", "--resume", str(out))
    assert res.returncode == 0, res.stderr
    acc, want = accounting(out), baseline(concurrency=(1, 2), requests=12)
    assert sorted(acc) == sorted(want)
    for pid, a in acc.items():
        assert (a["status"], a["ok"], a["sent"], a["prompt_order"]) == (
            want[pid]["status"],
            want[pid]["ok"],
            want[pid]["sent"],
            want[pid]["prompt_order"],
        )
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_flushes_tears_down_and_resumes(sig, code, tmp_path, tiny_tokenizer, fake_model, prompt_cache, baseline):
    proc, pids, out = _start_slow_sweep(tmp_path, tiny_tokenizer, fake_model, prompt_cache)
    try:
        wait_for(lambda: len(launches(pids)) == 1, 10, "server pid file", proc)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == code, stderr
        assert "interrupted; finished points are kept in" in stderr and "Traceback" not in stderr
        left = orphans(pids)
        assert left == []
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "interrupted"
        acc = accounting(out)
        assert acc["sd-off-c1"]["status"] == "complete" and acc["sd-off-c1"]["ok"] == 12
        # what the interrupted point had finished or had in flight was flushed, every record terminal
        partial = ResultsDir(out).records("sd-off-c2")
        assert all(r.status in ("ok", "failed", "cancelled") for r in partial)
        assert any(r.status == "cancelled" for r in partial)  # in flight at the signal: cancelled, kept
        _check_resume_matches(out, baseline)
        assert list((out / "records" / "attempts").glob("sd-off-c2.*.arrows"))  # moved aside, not mixed in
        left, lost = left + orphans(pids), lost_requests(out)
        assert left == [] and lost == 0
        FaultReport.add(f"{sig.name} mid-point + resume", 1, 1, lost, len(left))
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_launches(pids)


def test_harness_sigkill_leaves_no_server_and_resumes(tmp_path, tiny_tokenizer, fake_model, prompt_cache, baseline):
    proc, pids, out = _start_slow_sweep(tmp_path, tiny_tokenizer, fake_model, prompt_cache)
    try:
        wait_for(lambda: len(launches(pids)) == 1, 10, "server pid file", proc)
        proc.kill()  # SIGKILL: no handler, no atexit; the server must still go (parent-death signal)
        proc.wait(10)
        try:  # generous: on a loaded 2-core machine a SIGTERM'd Python server can take a while to exit
            wait_for(lambda: not orphans(pids), 45, "server teardown after harness SIGKILL")
        except AssertionError as e:
            raise AssertionError(f"{e}: left {orphans(pids)}") from None
        assert json.loads((out / "manifest.json").read_text())["status"] == "running"
        with (out / "points.jsonl").open("a") as fh:  # and it died while writing a summary
            fh.write('{"point_id": "sd-off-c2", "sta')
        _check_resume_matches(out, baseline)
        resumes = json.loads((out / "manifest.json").read_text())["resumes"]
        assert "points.jsonl" in resumes[-1]["repaired"]
        left, lost = orphans(pids), lost_requests(out)
        assert left == [] and lost == 0
        FaultReport.add("harness SIGKILL + torn line + resume", 1, 1, lost, len(left))
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_launches(pids)
