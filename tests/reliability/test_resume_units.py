"""Results-folder pieces that make resume safe: torn tails, last-attempt-wins, config hash, outcome."""

from __future__ import annotations

import json

import pytest

from speedbench.config import BenchmarkConfig
from speedbench.outcome import EXIT_ENGINE, EXIT_OK, EXIT_POINTS, sweep_outcome
from speedbench.results import ResultsDir, repair_jsonl_tail
from speedbench.resume import ResumeError, check_resumable, config_hash, prepare_resume
from speedbench.testing.fault_server import fault_for, parse_faults
from tests.conftest import make_record


def _cfg(**over) -> BenchmarkConfig:
    base = {"engine": {"model": "org/model"}, "load": {"concurrency": [1, 2]}}
    return BenchmarkConfig.from_dict(base, over)


def test_repair_cuts_only_a_torn_tail(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n{"b": 2}\n{"c": ')
    assert repair_jsonl_tail(p)
    assert p.read_text() == '{"a": 1}\n{"b": 2}\n'
    assert not repair_jsonl_tail(p)  # whole lines are left alone
    p.write_text('{"torn')
    assert repair_jsonl_tail(p) and p.read_text() == ""


def test_config_hash_ignores_name_and_output_dir_only():
    assert config_hash(_cfg()) == config_hash(_cfg(name="other", output_dir="/elsewhere"))
    assert config_hash(_cfg()) != config_hash(_cfg(load={"concurrency": [1, 4]}))


def test_check_resumable_refuses_changed_config_and_prompts():
    cfg = _cfg()
    manifest = {
        "config": cfg.model_dump(mode="json"),
        "config_hash": config_hash(cfg),
        "prompts": {"fingerprint": "abc"},
    }
    check_resumable(manifest, cfg, "abc")
    with pytest.raises(ResumeError, match="load.output_len"):
        check_resumable(manifest, _cfg(load={"concurrency": [1, 2], "output_len": 7}), "abc")
    with pytest.raises(ResumeError, match="prompt fingerprint changed"):
        check_resumable(manifest, cfg, "def")


def test_resume_refusal_names_the_edited_field_not_the_sections_left_at_default():
    cfg = _cfg()
    manifest = {
        "config": cfg.model_dump(mode="json"),
        "config_hash": config_hash(cfg),
        "prompts": {"fingerprint": "abc"},
    }
    with pytest.raises(ResumeError) as e:
        check_resumable(manifest, _cfg(load={"concurrency": [1, 2], "output_len": 7}), "abc")
    assert "(changed: load.output_len)" in str(e.value)  # not telemetry/cost/container at their defaults
    # a folder written before a field existed: the field is named as such, after what the user changed
    old = cfg.model_dump(mode="json")
    old["load"].pop("output_len")
    with pytest.raises(ResumeError, match="not known when this folder was written: load.output_len"):
        check_resumable({**manifest, "config": old, "config_hash": "older"}, cfg, "abc")


def _point(
    pid: str, status: str = "complete", ok: int = 10, failed: int = 0, cancelled: int = 0, not_sent: int = 0, **kw
) -> dict:
    return {
        "point_id": pid,
        "status": status,
        "sent": ok + failed + cancelled,
        "ok": ok,
        "failed": failed,
        "cancelled": cancelled,
        "not_sent": not_sent,
        "errors_by_kind": kw.pop("errors", {}),
        **kw,
    }


def test_prepare_resume_moves_unfinished_records_aside(tmp_path):
    rd = ResultsDir(tmp_path).create({"status": "running"})
    rd.append_records("a-c1", [make_record(request_id="a#0")])
    rd.append_records("a-c2", [make_record(request_id="b#0")])
    rd.append_records("a-c4", [make_record(request_id="c#0")])
    with (tmp_path / "points.jsonl").open("a") as fh:
        fh.write(json.dumps(_point("a-c1")) + "\n")
        fh.write(json.dumps(_point("a-c2", status="failed")) + "\n")
        fh.write('{"point_id": "a-c4", "sta')  # died while writing a-c4's summary
    plan = prepare_resume(rd, ["a-c1", "a-c2", "a-c4"])
    assert plan.done == {"a-c1"}
    assert sorted(plan.moved_aside) == ["records/attempts/a-c2.1.arrows", "records/attempts/a-c4.1.arrows"]
    assert plan.repaired == ["points.jsonl"]
    assert rd.records("a-c1") and not rd.records("a-c2") and not rd.records("a-c4")
    # a re-run's summary supersedes the failed attempt's line
    with (tmp_path / "points.jsonl").open("a") as fh:
        fh.write(json.dumps(_point("a-c2")) + "\n")
    assert [p["status"] for p in rd.points()] == ["complete", "complete"]
    assert len(rd.points(all_attempts=True)) == 3


def test_outcome_exit_codes():
    assert sweep_outcome([_point("x")], 0.01).exit_code == EXIT_OK
    over = sweep_outcome([_point("x", ok=95, failed=5, errors={"http_500": 5})], 0.01)
    assert over.exit_code == EXIT_POINTS and "http_500 5" in over.line
    assert sweep_outcome([_point("x", ok=95, failed=5)], 0.1).exit_code == EXIT_OK
    dead = sweep_outcome(
        [_point("x", status="failed", ok=3, cancelled=2, not_sent=5, abort_reason="server process exited")],
        0.01,
        stopped_reason="server exited; sweep stopped",
    )
    assert dead.exit_code == EXIT_ENGINE
    assert dead.totals["planned"] == 10 and "server process exited" in dead.line


def test_fault_schedule_is_seeded_and_order_free():
    faults = parse_faults("http_500=0.1,stall=0.05")
    a = [fault_for(i, faults, 7) for i in range(2000)]
    assert a == [fault_for(i, faults, 7) for i in range(2000)]
    assert a != [fault_for(i, faults, 8) for i in range(2000)]
    assert 120 < a.count("http_500") < 280 and 40 < a.count("stall") < 160
    with pytest.raises(ValueError):
        parse_faults("explode=0.1")


def test_load_plan_carries_both_timeouts(monkeypatch):
    from speedbench.runner import BenchmarkRunner

    cfg = _cfg(load={"concurrency": [1], "stream_idle_timeout_s": 5, "request_timeout_s": 90})
    plan = BenchmarkRunner(cfg, progress=False).load_plan(1, 4)
    assert (plan.stream_idle_timeout_s, plan.request_timeout_s) == (5, 90)
