"""Through the CLI, on the SGLang emulator: a sweep of qualitative-mini measures every prompt of the split, all 11
categories, the same prompt set at every concurrency, and says when a concurrency is above the prompt count."""

from __future__ import annotations

import subprocess
import sys

import pytest

from speedbench.results import ResultsDir
from tests.engines.conftest import start_emulator, tiny_tokenizer  # noqa: F401  (fixtures)

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_qualitative_mini_sweep_measures_every_prompt_and_category_at_every_concurrency(
    tmp_path,
    tiny_tokenizer,  # noqa: F811
    start_emulator,  # noqa: F811
):
    url = start_emulator("sglang", "--enable-metrics", "--step-ms", "0")
    proc = subprocess.run(
        [
            sys.executable, "-m", "speedbench.cli", "sweep",
            "--engine", "sglang", "--endpoint", url, "--tokenizer", tiny_tokenizer,
            "--sd", "off", "--split", "qualitative-mini", "--concurrency", "1,8,32,128", "--output-len", "6",
            "--output-dir", str(tmp_path / "results"),
        ],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "SPEEDBENCH_DATA__CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    # one clear line for the grid point the 88 prompts cannot fill, naming a split that can
    assert "concurrency 128 above the 88 prompts of qualitative-mini" in proc.stderr
    (out,) = (tmp_path / "results").iterdir()
    rd = ResultsDir(out)
    prompts = None
    for point in rd.points():
        first_turns = [r for r in rd.records(point["point_id"]) if not r.warmup and r.turn == 1]
        ids = [r.prompt_id for r in sorted(first_turns, key=lambda r: int(r.request_id.rsplit("#", 1)[1]))]
        assert len(ids) == 88 == len(set(ids))  # every conversation exactly once; warm-up took none
        cats = {r.prompt_id: r.category for r in first_turns}
        assert len({cats[i] for i in ids[:11]}) == 11  # categories interleaved from the first request on
        assert len({r.category for r in first_turns}) == 11
        assert prompts is None or ids == prompts  # the same prompts, in the same order, at every concurrency
        prompts = ids
        # two-turn conversations stay whole: every second turn follows its first
        seconds = {r.prompt_id for r in rd.records(point["point_id"]) if not r.warmup and r.turn == 2}
        assert seconds and seconds <= set(ids)
        warm = [r for r in rd.records(point["point_id"]) if r.warmup]
        assert warm and all(r.prompt_id.startswith("warmup-") for r in warm)
    eff = {p["concurrency"]: p["effective_concurrency"] for p in rd.points()}
    assert eff == {1: 1, 8: 8, 32: 32, 128: 88}
