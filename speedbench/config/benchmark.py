"""The whole sweep's config tree (``BenchmarkConfig``) and its small sections: quality, cost, telemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from speedbench.config.base import ConfigError, _Strict, expand_path
from speedbench.config.cli_flag import SWEEP_ONLY, CLIFlag
from speedbench.config.engine import EngineConfig
from speedbench.config.files import deep_merge, format_validation_error, load_config_file
from speedbench.config.sd import SDConfig
from speedbench.config.workload import DataConfig, LoadConfig


class QualityConfig(_Strict):
    """Post-sweep analysis (equivalence to SD off, text scores, draft-length recommendation)."""

    enabled: bool = Field(True, description="write quality.json and recommendation.json after a complete sweep")
    bertscore: Annotated[
        bool,
        CLIFlag(
            "--bertscore",
            help="Post-sweep quality: also BERTScore (loads torch; off by default to keep sweeps fast).",
            commands=SWEEP_ONLY,
        ),
    ] = Field(False, description="also BERTScore (loads torch + an encoder; slow on CPU)")
    bertscore_model: str | None = Field(None, description="local HF encoder dir; None = packaged MiniLM-L6")
    bertscore_layers: int | None = Field(None, ge=1)

    @field_validator("bertscore_model")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        return expand_path(v)


class CostConfig(_Strict):
    """Price of the hardware a point runs on: turns throughput into $ per million output tokens."""

    gpu_hour_usd: Annotated[
        float | None,
        CLIFlag("--gpu-hour-usd", help="Price of one GPU-hour: adds $ per million output tokens."),
    ] = Field(None, gt=0, description="price of one GPU-hour; the engine holds tensor x data-parallel GPUs")
    node_hour_usd: float | None = Field(None, gt=0, description="price of the whole node-hour instead")

    @model_validator(mode="after")
    def _one(self) -> CostConfig:
        if self.gpu_hour_usd is not None and self.node_hour_usd is not None:
            raise ValueError("set cost.gpu_hour_usd or cost.node_hour_usd, not both")
        return self


class TelemetryConfig(_Strict):
    gpu: bool = Field(
        True, description="sample NVML (power, energy, SM util, memory) during every point; n/a where NVML is absent"
    )
    interval_s: float = Field(0.05, gt=0, le=0.1, description="sampling period (<= 0.1 s = at least 10 Hz)")
    gpus: list[int] | None = Field(
        None, description="NVML indices of the engine's GPUs (None = every GPU on the node, idle ones included)"
    )


class RecordsConfig(_Strict):
    """What each request record keeps on disk besides its stamps and counts (docs/results-schema.md: costs)."""

    output_ids: bool = Field(
        True, description="keep output token ids (equivalence to SD off needs them; text is decoded from them)"
    )
    text: Literal["auto", "always", "never"] = Field(
        "auto", description="keep output text: auto = only for records without token ids (text-only servers)"
    )


class BenchmarkConfig(_Strict):
    engine: EngineConfig = Field(default_factory=EngineConfig)
    sd: list[SDConfig] = Field(default_factory=lambda: [SDConfig(method="off"), SDConfig(method="ngram")])
    data: DataConfig = Field(default_factory=DataConfig)
    load: LoadConfig = Field(default_factory=LoadConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    records: RecordsConfig = Field(default_factory=RecordsConfig)
    output_dir: Annotated[str, CLIFlag("--output-dir", help="Parent folder for results (default: results).")] = (
        "results"
    )
    name: Annotated[str | None, CLIFlag("--name", help="Name of this sweep's results folder.")] = Field(
        None, max_length=100, description="results folder name (after a time stamp)"
    )

    @model_validator(mode="after")
    def _check(self) -> BenchmarkConfig:
        labels = [s.label for s in self.sd]
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate SD settings in sweep: {labels}")
        if not self.engine.endpoint and not self.engine.model:
            raise ValueError("engine.model is required unless engine.endpoint attaches to a running server")
        return self

    @classmethod
    def from_file(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> BenchmarkConfig:
        return cls.from_dict(load_config_file(path), overrides)

    @classmethod
    def from_dict(cls, base: dict[str, Any], overrides: dict[str, Any] | None = None) -> BenchmarkConfig:
        merged = deep_merge(base, overrides or {})
        try:
            return cls.model_validate(merged)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e)) from None
