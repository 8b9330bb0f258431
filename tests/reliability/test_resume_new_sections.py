"""A results folder written before the container / telemetry / cost settings existed can still be resumed."""

from __future__ import annotations

import hashlib
import json

from speedbench.config import BenchmarkConfig
from speedbench.resume import check_resumable, config_hash


def _cfg(**over) -> BenchmarkConfig:
    return BenchmarkConfig.from_dict({"engine": {"model": "org/model"}, "load": {"concurrency": [1, 2]}}, over)


def _hash_as_before(cfg: BenchmarkConfig) -> str:
    """What speedbench computed before engine.launcher/container/sd_unverified, telemetry and cost existed."""
    d = cfg.model_dump(mode="json")
    for key in ("output_dir", "name", "telemetry", "cost"):
        d.pop(key, None)
    for key in ("api_key", "launcher", "container", "sd_unverified"):
        d["engine"].pop(key, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_defaults_of_the_new_sections_hash_as_if_absent():
    cfg = _cfg()
    assert config_hash(cfg) == _hash_as_before(cfg)
    check_resumable({"config_hash": _hash_as_before(cfg), "config": {}, "prompts": {"fingerprint": "f"}}, cfg, "f")


def test_settings_that_change_what_is_measured_still_change_the_hash():
    base = config_hash(_cfg())
    assert (
        config_hash(
            _cfg(
                engine={"model": "org/model", "launcher": "docker", "container": {"image": "vllm/vllm-openai:v0.11.0"}}
            )
        )
        != base
    )
    assert config_hash(_cfg(cost={"gpu_hour_usd": 2.0})) != base
    assert config_hash(_cfg(engine={"model": "org/model", "sd_unverified": True})) != base
    assert config_hash(_cfg(telemetry={"gpu": False})) != base
