"""Every shipped preset runs as shipped: `sweep --preset X --dry-run` exits 0, and its split fills its grid.

A dry run is every check a sweep makes before a server starts (issue 30): the engine's Python, its GPUs, the
tokenizer and the whole prompt set. A GPU node supplies the model and the engine's environment; here the
Gemma tokenizer stands in for the model's (``--tokenizer``) and this interpreter for the engine's Python (no
engine package in it: the preset's pinned release is what its flags are checked against, and no GPU build
asks for GPUs). Everything else runs as shipped, the split included (the throughput split at 1k, 1,536
prompts: the first run builds the full pool, hence slow).
"""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from speedbench import load_config
from speedbench.cli import main
from speedbench.data import throughput
from speedbench.data.prompts import load_split
from speedbench.resources import PRESETS_DIR
from speedbench.runner import BenchmarkRunner

PRESETS = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _prompt_count(cfg) -> int:
    """Prompts the preset's split yields, without a tokenizer: throughput = tiers x per tier."""
    d = cfg.data
    if d.split == "throughput":
        return len(d.categories or throughput.TIERS) * (d.prompts_per_category or throughput.DEFAULT_PER_TIER)
    return len(load_split(d.split, d.categories, d.prompts_per_category))


def test_every_preset_is_tested():
    assert len(PRESETS) >= 12 and "cpu-demo" in PRESETS


def _node(gemma_dir) -> list[str]:
    """What a GPU node gives a preset: the model's tokenizer and the engine's Python (stand-ins here)."""
    return ["--tokenizer", str(gemma_dir), "--engine-python", sys.executable]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_dry_run_exits_0_and_its_split_fills_its_grid(preset, gemma_dir):
    res = CliRunner().invoke(main, ["sweep", "--preset", preset, "--dry-run", *_node(gemma_dir)])
    assert res.exit_code == 0, res.output
    cfg = load_config(preset=preset)
    runner = BenchmarkRunner(cfg, progress=False)
    # the sweep's prompt-count rule: no refusal, and no concurrency above the prompts (every point at its load)
    assert runner.check_prompt_counts(_prompt_count(cfg)) is None
    if preset != "cpu-demo":  # GPU presets: SPEED-Bench's throughput split at the preset's ISL
        assert cfg.data.split == "throughput" and cfg.data.isl == 1024 and max(cfg.load.concurrency) == 512


@pytest.mark.slow
def test_readme_preset_example_dry_runs(gemma_dir):
    res = CliRunner().invoke(
        main,
        [
            "sweep",
            "--preset",
            "llama3.3-70b-eagle3-sglang",
            "--draft-lengths",
            "1,2,3,4,5",
            "--dry-run",
            *_node(gemma_dir),
        ],
    )
    assert res.exit_code == 0, res.output


def test_a_preset_isl_is_cleared_to_run_another_split_at_natural_length():
    cfg = load_config(preset="llama3.3-70b-eagle3-vllm", data={"split": "qualitative-mini", "isl": "none"})
    assert (cfg.data.split, cfg.data.isl) == ("qualitative-mini", None)
    # 88 prompts for a grid to 512: runs, each point above 88 with all 88 in flight, said in one line
    note = BenchmarkRunner(cfg, progress=False).check_prompt_counts(88)
    assert note is not None and "concurrency 128, 256, 512 above the 88 prompts" in note
