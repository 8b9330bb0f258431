"""Every launch setting in which SD on differs from SD off, besides SD itself, is declared (manifest, report)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from speedbench.config import EngineConfig, SDConfig
from speedbench.engines import get_adapter

NGRAM = SDConfig(method="ngram", num_speculative_tokens=3)


def test_vllm_declares_every_flag_the_sd_on_argv_adds():
    a = get_adapter(EngineConfig(name="vllm", model="/m", python="/py"))
    off, on = a.launch_argv(SDConfig(), "h", 1, 8), a.launch_argv(NGRAM, "h", 1, 8)
    added = [x for x in on[len(off) :] if x.startswith("--") and x != "--speculative-config"]
    assert on[: len(off)] == off
    assert added == [d["setting"] for d in a.launch_differences(NGRAM)] == ["--per-request-spec-decode-metrics"]
    assert a.launch_differences(SDConfig()) == []


@pytest.mark.parametrize("sd,declared", [(NGRAM, ["disable_overlap_scheduler"]), (SDConfig(method="mtp"), [])])
def test_trtllm_declares_every_option_the_sd_on_yaml_changes(tmp_path, sd, declared):
    a = get_adapter(EngineConfig(name="trtllm", model="/m", python="/py"))
    a.files_dir = tmp_path

    def opts(s):
        argv = a.launch_argv(s, "h", 1, 8)
        return yaml.safe_load(Path(argv[argv.index("--extra_llm_api_options") + 1]).read_text())

    off, on = opts(SDConfig()), opts(sd)
    changed = sorted(k for k in set(off) | set(on) if k != "speculative_config" and off.get(k) != on.get(k))
    assert changed == [d["setting"] for d in a.launch_differences(sd)] == declared


def test_sglang_declares_the_overlap_scheduler_it_turns_off():
    a = get_adapter(EngineConfig(name="sglang", model="/m", python="/py"))
    assert [d["setting"] for d in a.launch_differences(NGRAM)] == ["overlap scheduler"]
    assert all(d["set_by"] == "engine" for d in a.launch_differences(NGRAM))
