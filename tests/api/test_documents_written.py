"""An attached multi-turn sweep writes what the typed documents describe (tests/documents.py)."""

from __future__ import annotations

from speedbench import BenchmarkConfig, BenchmarkRunner
from speedbench.results import ResultsDir
from tests.documents import check_written


def test_an_attached_multi_turn_sweep_writes_what_the_models_describe(
    tmp_path, tiny_tokenizer, fake_sd_server, attach_config
):
    cfg = BenchmarkConfig.model_validate(attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path, concurrency=[1]))
    rd = ResultsDir.open(BenchmarkRunner(cfg, progress=False).run().results_dir)
    manifest, points = check_written(rd)
    assert manifest.engine and manifest.engine.attached and manifest.engine.sd_probe
    assert manifest.prompts and manifest.prompts.turns_rule and "reply_end_id" in manifest.prompts.model_fields_set
    assert points and points[0].per_turn  # multi-turn: one row per turn
