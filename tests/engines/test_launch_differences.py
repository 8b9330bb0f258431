"""Every launch setting in which SD on differs from SD off, besides SD itself, is declared (manifest, report)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from speedbench.config import EngineConfig, SDConfig
from speedbench.engines import get_adapter, trtllm

NGRAM = SDConfig(method="ngram", num_speculative_tokens=3)


def test_vllm_declares_every_flag_the_sd_on_argv_adds():
    a = get_adapter(EngineConfig(name="vllm", model="/m", python="/py"))
    off, on = a.launch_argv(SDConfig(), "h", 1, 8), a.launch_argv(NGRAM, "h", 1, 8)
    added = [x for x in on[len(off) :] if x.startswith("--") and x != "--speculative-config"]
    assert on[: len(off)] == off
    assert added == [d["setting"] for d in a.launch_differences(NGRAM)] == ["--per-request-spec-decode-metrics"]
    assert a.launch_differences(SDConfig()) == []


@pytest.mark.parametrize(
    "sd,version,declared",
    [
        (NGRAM, None, ["disable_overlap_scheduler"]),
        (SDConfig(method="mtp"), None, []),
        # a release with per-request SD stats gets them in the SD-on YAML only: declared too (no release is
        # known to have them yet, so the floor is set here as one would be)
        (NGRAM, "1.3.0", ["disable_overlap_scheduler", "per_request_spec_decode_stats"]),
        (SDConfig(method="mtp"), "1.3.0", ["per_request_spec_decode_stats"]),
    ],
)
def test_trtllm_declares_every_option_the_sd_on_yaml_changes(tmp_path, monkeypatch, sd, version, declared):
    floor = trtllm.FLOORS["per_request_spec_decode_stats"]
    monkeypatch.setitem(trtllm.FLOORS, "per_request_spec_decode_stats", dataclasses.replace(floor, since="1.3.0"))
    a = get_adapter(EngineConfig(name="trtllm", model="/m", python="/py", version=version))
    a.files_dir = tmp_path

    def opts(s):
        argv = a.launch_argv(s, "h", 1, 8)
        return yaml.safe_load(Path(argv[argv.index("--extra_llm_api_options") + 1]).read_text())

    off, on = opts(SDConfig()), opts(sd)
    changed = sorted(k for k in set(off) | set(on) if k != "speculative_config" and off.get(k) != on.get(k))
    assert changed == [d["setting"] for d in a.launch_differences(sd)] == declared
    assert all(d["sd_on"] == "true" and d["sd_off"] == "not set" for d in a.launch_differences(sd))


@pytest.mark.parametrize("sd", [NGRAM, SDConfig(method="eagle3", num_speculative_tokens=3, draft_model="/d")])
def test_sglang_declares_what_its_0_5_23_source_changes_for_sd(sd):
    # on GPU SGLang 0.5.23 keeps the overlap scheduler with SD (off only on CPU): never declared as off there
    a = get_adapter(EngineConfig(name="sglang", model="/m", python="/py"))
    diffs = a.launch_differences(sd)
    assert [d["setting"] for d in diffs] == ["decode CUDA-graph batch sizes"]
    assert all(d["set_by"] == "engine" for d in diffs)
    assert a.launch_differences(SDConfig()) == []
    on_cpu = get_adapter(EngineConfig(name="sglang", model="/m", python="/py", extra_args=["--device", "cpu"]))
    (overlap,) = on_cpu.launch_differences(sd)
    assert (overlap["setting"], overlap["sd_off"], overlap["sd_on"]) == ("overlap scheduler", "on", "off")


def test_sglang_declares_mixed_chunk_off_only_for_drafts_that_cannot_mix():
    a = get_adapter(EngineConfig(name="sglang", model="/m", python="/py", extra_args=["--enable-mixed-chunk"]))
    assert "mixed chunked prefill" in [d["setting"] for d in a.launch_differences(NGRAM)]
    eagle = SDConfig(method="eagle3", num_speculative_tokens=3, draft_model="/d")
    assert "mixed chunked prefill" not in [d["setting"] for d in a.launch_differences(eagle)]
