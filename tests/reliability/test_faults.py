"""Fault injection through the real CLI: every fault survived, classified and accounted; dead servers stop
the point at once; no request lost, no process or port left behind.

The fault server decides faults from (seed, arrival index), so the multiset of injected faults is known
from its log and must equal the multiset of error kinds in the records.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from speedbench.load.schedule import measured_order
from tests.reliability.conftest import (
    FaultReport,
    accounting,
    expected_kind,
    fault_log,
    kill_launches,
    launches,
    lost_requests,
    orphans,
    records_of,
    run_cli,
    sweep_config,
    write_config,
)

pytestmark = pytest.mark.slow

FAULTS = "http_500=0.06,http_503=0.03,disconnect=0.04,malformed=0.04,truncate=0.04,stall=0.03,error_event=0.04"


def _results_dir(tmp_path):
    (d,) = (tmp_path / "results").iterdir()
    return d


def test_every_fault_kind_survived_classified_accounted(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    log, pids = tmp_path / "faults.jsonl", tmp_path / "pid.json"
    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        fake_model,
        prompt_cache,
        sd=("off",),
        concurrency=(4, 8),
        requests=60,
        server_args=["--faults", FAULTS, "--seed", "11", "--fault-log", log, "--pid-file", pids, "--spawn-child"],
    )
    res = run_cli("sweep", "--config", str(write_config(tmp_path / "c.json", cfg)))
    try:
        left = orphans(pids)
        assert res.returncode == 1, res.stderr  # results written, error budget (1 %) exceeded
        summary = [ln for ln in res.stderr.splitlines() if ln.startswith("speedbench: ") and "points:" in ln]
        assert len(summary) == 1 and "errors >" in summary[0]
        injected = Counter(expected_kind(e["fault"]) for e in fault_log(log) if e["fault"])
        recorded = Counter(r["error_kind"] for r in records_of(_results_dir(tmp_path)) if r["status"] == "failed")
        # the seed exercises every kind (a stall ends as "timeout" through load.stream_idle_timeout_s = 2 s)
        assert set(injected) == {
            "http_500",
            "http_503",
            "transport",
            "malformed_sse",
            "truncated_stream",
            "timeout",
            "server_error_event",
        }, injected
        assert recorded == injected  # each fault seen exactly as what it was, none silently accepted
        for r in records_of(_results_dir(tmp_path)):
            if (r["error_kind"] or "").startswith("http_"):  # status and body snippet are kept
                assert r["http_status"] == int(r["error_kind"][5:]) and "injected fault" in r["error"]
        acc = accounting(_results_dir(tmp_path))
        assert set(acc) == {"sd-off-c4", "sd-off-c8"}
        lost = 0
        for a in acc.values():
            assert a["status"] == "complete" and a["not_sent"] == 0 and a["records"] == a["sent"] == 60
            lost += a["planned"] - (a["ok"] + a["failed"] + a["cancelled"] + a["not_sent"])
        served = len(fault_log(log))
        total_records = len(records_of(_results_dir(tmp_path)))
        lost += max(0, served - total_records)  # a request the server saw but the harness did not record
        assert lost == 0 and left == []
        FaultReport.add("mixed faults (c4, c8)", sum(injected.values()), sum(recorded.values()), lost, len(left))
    finally:
        kill_launches(pids)


def test_server_sigkill_stops_sending_restarts_then_resume_matches(
    tmp_path, tiny_tokenizer, fake_model, prompt_cache, baseline
):
    pids, marker = tmp_path / "pid.json", tmp_path / "killed"
    # many requests per point: a harness that kept firing at a dead server would send hundreds
    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        fake_model,
        prompt_cache,
        sd=("off",),
        concurrency=(4, 8),
        requests=150,
        server_args=["--kill-after", "40", "--kill-marker", marker, "--pid-file", pids, "--spawn-child"],
    )

    res = run_cli("sweep", "--config", str(write_config(tmp_path / "c.json", cfg)))
    out = _results_dir(tmp_path)
    try:
        assert marker.exists()  # the server really was SIGKILLed mid-point
        assert res.returncode == 1, res.stderr  # c4 failed; the restarted server ran c8
        acc = accounting(out)
        c4 = acc["sd-off-c4"]
        assert c4["status"] == "failed" and c4["not_sent"] > 0
        assert c4["planned"] == 150 and c4["ok"] + c4["failed"] + c4["cancelled"] == c4["sent"]
        assert c4["failed"] <= 8 + 4  # abort threshold + what was in flight: no storm of doomed requests
        assert acc["sd-off-c8"]["status"] == "complete" and acc["sd-off-c8"]["ok"] == 150
        assert "restarting fake" in res.stderr and "FAILED" in res.stderr
        assert len(launches(pids)) == 2
        left = orphans(pids)
        assert left == []

        res2 = run_cli("sweep", "--resume", str(out))
        assert res2.returncode == 0, res2.stderr
        assert "1 of 2 points done" in res2.stderr
        acc2 = accounting(out)
        assert sorted(acc2) == sorted(baseline(concurrency=(4, 8), requests=150))
        for pid, a in acc2.items():
            b = baseline(concurrency=(4, 8), requests=150)[pid]
            assert (a["status"], a["ok"], a["sent"], a["prompt_order"]) == (
                b["status"],
                b["ok"],
                b["sent"],
                b["prompt_order"],
            )
        assert list((out / "records" / "attempts").glob("sd-off-c4.*.arrows"))  # the failed attempt kept aside
        lost = lost_requests(out)
        assert lost == 0
        assert len(launches(pids)) == 3
        left += orphans(pids)
        assert left == []
        FaultReport.add("server SIGKILL mid-point + resume", 1, 1, lost, len(left))
    finally:
        kill_launches(pids)


def test_on_server_death_stop_exits_3_and_keeps_partial_records(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    pids = tmp_path / "pid.json"
    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        fake_model,
        prompt_cache,
        sd=("off",),
        concurrency=(4, 8),
        requests=100,
        server_args=["--kill-after", "30", "--pid-file", pids],
    )
    cfg["engine"]["on_server_death"] = "stop"
    res = run_cli("sweep", "--config", str(write_config(tmp_path / "c.json", cfg)))
    try:
        assert res.returncode == 3, res.stderr
        assert "sweep stopped" in res.stderr and "planned points not run (sd-off-c8)" in res.stderr
        out = _results_dir(tmp_path)
        acc = accounting(out)
        assert list(acc) == ["sd-off-c4"] and acc["sd-off-c4"]["status"] == "failed"
        assert acc["sd-off-c4"]["ok"] > 0  # the partial records are kept
        assert json.loads((out / "manifest.json").read_text())["status"] == "failed"
        left, lost = orphans(pids), lost_requests(out)
        assert left == [] and lost == 0
        FaultReport.add("server SIGKILL, on_server_death=stop", 1, 1, lost, len(left))
    finally:
        kill_launches(pids)


def test_multi_turn_faults_end_conversations_and_are_accounted(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    """A failed turn ends its conversation: the turns it could not send are counted as not sent, never lost."""
    from speedbench.data.pretokenize import read_prompt_set

    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        fake_model,
        prompt_cache,
        sd=("off",),
        concurrency=(4,),
        requests=30,
        server_args=["--faults", "http_500=0.3", "--seed", "5"],
    )
    cfg["data"]["turns"] = "all"
    res = run_cli("sweep", "--config", str(write_config(tmp_path / "c.json", cfg)))
    assert res.returncode == 1, res.stderr  # results written, error budget exceeded
    results = _results_dir(tmp_path)
    prompts = read_prompt_set(results / "prompts.parquet").prompts
    turns = {p.id: p.turns_to_send for p in prompts}
    (a,) = accounting(results).values()
    # 30 conversations in the measured order over every prompt (warm-up sends its own), one request per turn
    order = measured_order([p.category for p in prompts], "stratified", 0)
    assert a["planned"] == sum(prompts[order[i % len(order)]].turns_to_send for i in range(30))
    recs = [r for r in records_of(results) if not r["warmup"]]
    cut = [r for r in recs if r["status"] == "failed" and r["turn"] < turns[r["prompt_id"]]]
    assert cut and a["not_sent"] == sum(turns[r["prompt_id"]] - r["turn"] for r in cut)
    assert a["records"] == a["sent"] and lost_requests(results) == 0
    assert all(r["turn"] == 1 for r in cut)  # (two-turn prompts: only a first turn can cut one short)
