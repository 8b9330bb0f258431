"""speedbench: speculative-decoding benchmarks on real serving engines.

    from speedbench import BenchmarkConfig, BenchmarkRunner, load_config
    result = BenchmarkRunner(load_config(preset="cpu-demo")).run()   # or BenchmarkConfig(...)

Names are exported lazily (PEP 562) so ``import speedbench`` and ``speedbench --help`` stay fast: measured with
``python -X importtime``, ``import speedbench`` costs ~4 ms this way and ~0.5 s if it imported its exports
(pydantic config, the runner with aiohttp and numpy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "BenchmarkConfig",
    "BenchmarkRunner",
    "CategoryAcceptance",
    "ConfigError",
    "PointSummary",
    "Speedup",
    "SweepResult",
    "load_config",
    "load_result",
]

_EXPORTS = {
    "BenchmarkConfig": "speedbench.config",
    "ConfigError": "speedbench.config",
    "BenchmarkRunner": "speedbench.runner",
    "SweepResult": "speedbench.runner",
    "Speedup": "speedbench.runner",
    "PointSummary": "speedbench.metrics.summary",
    "CategoryAcceptance": "speedbench.metrics.category",
    "load_config": "speedbench.api.python",
    "load_result": "speedbench.api.python",
}

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on first use
    from speedbench.api.python import load_config, load_result
    from speedbench.config import BenchmarkConfig, ConfigError
    from speedbench.metrics.category import CategoryAcceptance
    from speedbench.metrics.summary import PointSummary
    from speedbench.runner import BenchmarkRunner, Speedup, SweepResult


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'speedbench' has no attribute {name!r}")

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
