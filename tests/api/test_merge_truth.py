"""`merge` states the conditions its sources ran under (or that they differ), refuses a folder given twice, and
leaves nothing behind when it fails (issue 30)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from speedbench.cli import main
from speedbench.config import BenchmarkConfig
from speedbench.core.writer_lock import WriterLock
from tests.api.test_plan_merge import _fake_results


def _with_config(path, sd: str, *, prefix_caching: bool = False, output_len: int = 32):
    """A fake results folder whose manifest carries a full config: stop at EOS, a 32-token cap."""
    sd_entry = {"method": "off"} if sd == "off" else {"method": sd, "num_speculative_tokens": 3}
    cfg = BenchmarkConfig.model_validate(
        {
            "engine": {"name": "vllm", "endpoint": "http://127.0.0.1:9", "prefix_caching": prefix_caching},
            "sd": [sd_entry],
            "load": {"output_len": output_len, "fixed_length": False},
        }
    ).model_dump(mode="json")
    m = json.loads((path / "manifest.json").read_text())
    m["config"] = cfg
    m["generation"]["ignore_eos"] = False
    m["generation"]["output_len"] = output_len
    (path / "manifest.json").write_text(json.dumps(m))
    return path


def _merge(*args: str):
    return CliRunner().invoke(main, ["merge", *args])


def _report(path) -> str:
    res = CliRunner().invoke(main, ["report", str(path), "--format", "md"])
    assert res.exit_code == 0, res.output
    return res.output


def test_merge_carries_the_sources_conditions(tmp_path):
    a = _with_config(_fake_results(tmp_path, "off", "f" * 64), "off")
    b = _with_config(_fake_results(tmp_path, "on", "f" * 64, point="ngram-k3-c1"), "ngram")
    res = _merge(str(a), str(b), "--out", str(tmp_path / "m"))
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert m["config"]["load"]["output_len"] == 32 and m["config"]["engine"]["prefix_caching"] is False
    assert "sd" in m["config_differences"] and "load.output_len" not in m["config_differences"]
    text = _report(tmp_path / "m")
    assert "stop at EOS, cap 32 tokens" in text and "fixed None tokens" not in text
    assert "not recorded (engine default: on)" not in text
    assert ".writer.lock" not in {p.name for p in (tmp_path / "m").iterdir()}  # released


def test_merge_says_which_conditions_differ(tmp_path):
    a = _with_config(_fake_results(tmp_path, "a", "f" * 64), "off", prefix_caching=False)
    b = _with_config(_fake_results(tmp_path, "b", "f" * 64, engine="sglang"), "off", prefix_caching=True)
    assert _merge(str(a), str(b), "--out", str(tmp_path / "m")).exit_code == 0
    text = _report(tmp_path / "m")
    assert "differs between runs (engine.prefix_caching)" in text


def test_a_merged_folder_cannot_be_resumed(tmp_path):
    a = _with_config(_fake_results(tmp_path, "a", "f" * 64), "off")
    b = _with_config(_fake_results(tmp_path, "b", "f" * 64, engine="sglang"), "off")
    assert _merge(str(a), str(b), "--out", str(tmp_path / "m")).exit_code == 0
    res = CliRunner().invoke(main, ["sweep", "--resume", str(tmp_path / "m")])
    assert res.exit_code == 2 and "merged results folder: it cannot be resumed" in res.output


def test_the_same_folder_twice_is_refused(tmp_path):
    a = _fake_results(tmp_path, "a", "f" * 64)
    res = _merge(str(a), str(tmp_path / "." / "a"), "--out", str(tmp_path / "m"))
    assert res.exit_code == 2 and "is given twice" in res.output and "give it once" in res.output
    assert not (tmp_path / "m").exists()


def test_a_binary_points_file_is_refused_and_leaves_no_output(tmp_path):
    a = _fake_results(tmp_path, "a", "f" * 64)
    b = _fake_results(tmp_path, "b", "f" * 64, engine="sglang")
    good = (b / "points.jsonl").read_bytes()
    (b / "points.jsonl").write_bytes(b"\xff\xfe\x00garbage\x80\n")
    res = _merge(str(a), str(b), "--out", str(tmp_path / "m"))
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "not UTF-8 text" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()  # no half-built folder blocks the rerun
    (b / "points.jsonl").write_bytes(good)
    assert _merge(str(a), str(b), "--out", str(tmp_path / "m")).exit_code == 0


def test_merge_into_a_folder_another_writer_holds_is_refused(tmp_path):
    a = _fake_results(tmp_path, "a", "f" * 64)
    b = _fake_results(tmp_path, "b", "f" * 64, engine="sglang")
    out = tmp_path / "m"
    out.mkdir()
    with WriterLock(out):
        res = _merge(str(a), str(b), "--out", str(out))
        assert res.exit_code == 2, res.output
        assert "being written by another speedbench (pid" in res.output
        assert [p.name for p in out.iterdir()] == [".writer.lock"]  # the holder's folder untouched


def test_merge_carries_how_its_sources_measured(tmp_path):
    """A plan's jobs each record how they measured (prompt order and warm-up, the AL and EOS rules, the SD-on
    launch's differences): their merge states it, instead of 'not recorded (older run)'."""
    recorded = {
        "measurement": {"prompt_order": "stratified", "seed": 0, "warmup": "synthetic"},
        "metric_rules": {"headline_al": "the AL rule", "eos_token": "the EOS rule"},
    }
    diff = {"setting": "--flag", "sd_off": "not set", "sd_on": "x", "set_by": "speedbench", "why": "because"}
    folders = []
    for name, sd, point, launch in (("a", "off", "sd-off-c1", {}), ("b", "ngram", "ngram-k3-c1", {"ngram-k3": [diff]})):
        path = _with_config(_fake_results(tmp_path, name, "f" * 64, point=point), sd)
        m = json.loads((path / "manifest.json").read_text())
        m.update(recorded, launch_differences=launch, token_counts={point: "per-chunk usage"})
        (path / "manifest.json").write_text(json.dumps(m))
        folders.append(str(path))
    assert _merge(*folders, "--out", str(tmp_path / "m")).exit_code == 0
    m = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert m["token_counts"] == {"sd-off-c1": "per-chunk usage", "ngram-k3-c1": "per-chunk usage"}
    text = _report(tmp_path / "m")
    assert "older run" not in text
    assert "every prompt measured once per point, stratified order (seed 0); warm-up: synthetic" in text
    assert "the EOS rule" in text and "ngram-k3 launch vs SD off | --flag: not set -> x" in text
