"""What a real sweep writes validates against the typed documents (tests/documents.py). The sweep launches
the fake engine (vLLM wire format) on loopback: a launch writes every manifest section."""

from __future__ import annotations

from speedbench.config import BenchmarkConfig
from speedbench.results import ResultsDir
from speedbench.runner import BenchmarkRunner
from tests.documents import check_written
from tests.reliability.conftest import sweep_config


def test_a_launched_sweep_writes_what_the_models_describe(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    cfg = BenchmarkConfig.from_dict(
        sweep_config(tmp_path, tiny_tokenizer, fake_model, prompt_cache, concurrency=(1,), requests=6)
    )
    rd = ResultsDir.open(BenchmarkRunner(cfg, progress=False).run().results_dir)
    manifest, points = check_written(rd)
    # every section the docs describe was written (none left to its default)
    assert {"prompts", "engine", "generation", "machine", "harness", "launch_differences"} <= manifest.model_fields_set
    assert manifest.launch_differences and manifest.engine and manifest.engine.attached is False
    assert manifest.status == "complete" and manifest.points_finished == len(points) == 2
    written = sorted(p.name for p in rd.path.glob("*.json"))
    assert written == ["gamma_validation.json", "manifest.json", "quality.json", "recommendation.json"]
