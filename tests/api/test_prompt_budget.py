"""A point measures every prompt once (warm-up sends prompts of its own); repeats only when allowed, and counted."""

from __future__ import annotations

import pytest

from speedbench.config import BenchmarkConfig, ConfigError
from speedbench.results import ResultsDir
from speedbench.runner import BenchmarkRunner


def _records(result, point_id):
    # first turns: one per conversation (a multi-turn prompt's later turns share its prompt id)
    recs = [r for r in ResultsDir(result.results_dir).records(point_id) if r.turn == 1]
    # the warm-up wave's own requests (cool-down ones are flagged warm-up too, but are none here)
    return [r for r in recs if not r.warmup], [r for r in recs if r.warmup]


def test_default_point_measures_every_prompt_once(fake_off_server, tiny_tokenizer, tmp_path, attach_config):
    cfg = BenchmarkConfig.model_validate(
        attach_config(fake_off_server.url, tiny_tokenizer, tmp_path, sd="off", concurrency=[2])
    )
    result = BenchmarkRunner(cfg, progress=False).run()
    measured, warm = _records(result, "sd-off-c2")
    ids = [r.prompt_id for r in measured]
    assert len(ids) == 11 and len(set(ids)) == 11  # all 11 prompts, the warm-up took none of them
    assert len(warm) == 2 and {r.prompt_id for r in warm} == {"warmup-0", "warmup-1"}
    assert result.points[0].repeated_requests == 0 and result.points[0].effective_concurrency == 2
    manifest = ResultsDir(result.results_dir).manifest()
    assert manifest["measurement"]["warmup"].startswith("synthetic")
    assert manifest["measurement"]["prompt_order"] == "stratified"
    # attached: speedbench set no prefix caching, and this server does not say (config's "off" is not recorded)
    assert manifest["conditions"] == {"prefix_caching": "unknown (attached server)"}


def test_point_needing_repeats_is_refused_up_front_unless_allowed(
    fake_off_server, tiny_tokenizer, tmp_path, attach_config
):
    raw = attach_config(fake_off_server.url, tiny_tokenizer, tmp_path, sd="off", concurrency=[2], requests_per_point=20)
    with pytest.raises(ConfigError, match=r"20 measured requests per point need 20 distinct prompts.* has 11"):
        BenchmarkRunner(BenchmarkConfig.model_validate(raw), progress=False).run()
    assert not (tmp_path / "results").exists()  # refused before any results folder or request
    raw["load"]["allow_repeats"] = True
    result = BenchmarkRunner(BenchmarkConfig.model_validate(raw), progress=False).run()
    measured, warm = _records(result, "sd-off-c2")
    assert len(measured) == 20 and result.points[0].repeated_requests == 20 - 11
    assert not {r.prompt_id for r in warm} & {r.prompt_id for r in measured}
