"""One prompt set, three engines: identical token ids reach every engine's request body."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from speedbench.config import PRESETS_DIR, BenchmarkConfig, load_preset
from speedbench.data.pretokenize import prepare_prompts
from speedbench.runner import BenchmarkRunner

ENGINES = ("vllm", "sglang", "trtllm")


def test_ids_hash_and_request_ids_identical_across_engines(tmp_path, tiny_tokenizer):
    hashes, bodies = {}, {}
    for engine in ENGINES:
        cfg = BenchmarkConfig.model_validate(
            {
                "engine": {"name": engine, "endpoint": "http://127.0.0.1:1"},
                "sd": [{"method": "off"}],
                "data": {"tokenizer": tiny_tokenizer, "prompts_per_category": 1, "cache_dir": str(tmp_path)},
            }
        )
        runner = BenchmarkRunner(cfg, progress=False)
        prompts = prepare_prompts(cfg.data, runner.tokenizer_path())
        hashes[engine] = prompts.ids_sha256
        assert runner._manifest(prompts)["prompts"]["ids_sha256"] == prompts.ids_sha256
        ids = list(prompts.prompts[0].token_ids)
        _, body = runner.adapter.build_request(ids, 8)
        bodies[engine] = body.get("prompt") or body.get("input_ids")
    assert len(set(hashes.values())) == 1
    assert bodies["vllm"] == bodies["sglang"] == bodies["trtllm"]


PRESETS = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if p.stem != "cpu-demo")


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_validate_and_show_one_command_per_sd_setting(preset):
    cfg = BenchmarkConfig.from_dict(load_preset(preset))
    assert cfg.engine.tensor_parallel_size == 8 and [s.method for s in cfg.sd][0] == "off"
    res = CliRunner().invoke(main, ["engines", "show", preset, "--draft-length", "5"])
    assert res.exit_code == 0, res.output
    commands = [l for l in res.output.splitlines() if l and not l.startswith("#")]
    assert len(commands) == len(cfg.sd)
    assert cfg.engine.model in commands[0]
    on = res.output.split("-k5", 1)[1]  # the SD-on command carries draft length 5 in the engine's own knob
    assert any(
        s in on
        for s in ("--speculative-num-steps 5", "num-draft-tokens 6", "max_draft_len: 5", '"num_speculative_tokens":5')
    )


def test_show_unknown_preset_is_one_clear_error():
    res = CliRunner().invoke(main, ["engines", "show", "nope"])
    assert res.exit_code == 2 and "unknown preset" in res.output
