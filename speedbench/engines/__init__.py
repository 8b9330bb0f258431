"""Engine adapters by name. Each owns launch argv, readiness, wire format and acceptance fields."""

from __future__ import annotations

import importlib

from speedbench.config import ConfigError, EngineConfig
from speedbench.engines.base import EngineAdapter

_REGISTRY: dict[str, str] = {
    # name -> "module:Class", imported lazily so one engine's quirks never slow another's start
    "vllm": "speedbench.engines.vllm:VLLMAdapter",
    "sglang": "speedbench.engines.sglang:SGLangAdapter",
    "trtllm": "speedbench.engines.trtllm:TRTLLMAdapter",
}


def engine_names() -> list[str]:
    return sorted(_REGISTRY)


def register(name: str, target: str) -> None:
    _REGISTRY[name] = target


def get_adapter(cfg: EngineConfig) -> EngineAdapter:
    target = _REGISTRY.get(cfg.name)
    if target is None:
        raise ConfigError(f"unknown engine {cfg.name!r}; known engines: {', '.join(engine_names())}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(cfg)
