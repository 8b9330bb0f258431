"""Typed documents of a results folder: manifest.json, a points.jsonl line, and the {"rows", "notes"} files
(quality.json, recommendation.json, gamma_validation.json).

These models are the one description of those files (the point's model is derived from the PointSummary
dataclass in ``speedbench.metrics.point_doc``; ``speedbench.results.document_models`` lists them all):
``docs/schema/*.json`` is generated from them (``scripts/gen_results_schema.py``; a test fails when a
checked-in schema differs), writers validate what they write through them, and tests run sweeps against
emulated servers and validate their files, so a writer that adds or changes a key must change the model too.

Results are never lost, so every model reads folders written before it: unknown keys are allowed and kept
(``extra="allow"``), and every key a past writer did not write has a default. Writers still write their own
dicts (same keys, same order, same JSON as before); the models validate, they do not rewrite.

They live in ``core`` because every layer that writes or reads these files imports them (runner, results,
quality, report, api, cli, and metrics for a point's status).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# A results folder's version (manifest.json ``schema_version``): adding a key is not a breaking change;
# renaming or removing one, or changing a unit or definition, bumps it (docs/results-schema.md).
SCHEMA_VERSION = 1

# A point's status when its line has none (PointSummary's default): points were written before they had one,
# and all of those ended.
POINT_COMPLETE = "complete"
# A folder's status when its manifest has none (never written by speedbench itself: damaged or foreign).
MANIFEST_STATUS_UNKNOWN = "unknown"


class _Document(BaseModel):
    """Keys this model does not know are kept, never dropped: a newer writer's additions survive a read."""

    model_config = ConfigDict(extra="allow")


# ---- manifest.json ---------------------------------------------------------------------------------------


class PromptsInfo(_Document):
    """``manifest.prompts``: which token ids were sent, and the rules that built them (speedbench.data)."""

    fingerprint: str | None = None
    ids_sha256: str | None = None
    split: str | None = None
    split_kind: str | None = None
    tokenizer: str | None = None
    chat_template_applied: bool | None = None
    bos_policy: str | None = None
    bos_id: int | None = Field(None, description="the BOS sent; null when the template renders none")
    bos_rule: str | None = None
    isl_rule: str | None = None
    isl: int | None = None
    num_prompts: int | None = None
    turns_used: str | None = None
    format: int | None = None
    fingerprint_spec: dict[str, Any] | None = None
    # throughput split
    pool: str | None = None
    pool_sha256: str | None = None
    per_tier: int | None = None
    tiers: list[str] | None = None
    order: str | None = None
    zlib_text: str | None = None
    overlap: dict[str, Any] | None = Field(None, description="measured pairwise overlap of the text windows")
    tasks: dict[str, Any] | None = Field(None, description="how many throughput tasks quote their window")
    # multi-turn
    turns_rule: str | None = None
    turns_planned: int | None = Field(None, description="requests one pass over the prompts sends")
    reply_end_id: int | None = None
    template_append_only: bool | None = Field(
        None, description="false: the chat template re-renders earlier turns, which are kept as sent"
    )


class ServerInfo(_Document):
    """``manifest.engine.server_info[<SD label>]``: what the ready server said about itself (the adapter's
    ``server_info``; which keys depends on the engine), trimmed to documented bounds (docs/results-schema.md)."""

    engine_version: str | None = Field(None, description="the release the server reports")
    served_models: list[Any] | None = Field(None, description="the model ids /v1/models lists")
    max_model_len: int | None = None
    server_args: dict[str, Any] | None = Field(None, description="SGLang: resolved server args of /server_info")
    prefix_caching: bool | None = Field(None, description="prefix caching as the server reports it (absent: unsaid)")
    error: str | None = Field(None, description="why part or all of it could not be read")
    trimmed: list[str] | None = Field(None, description="keys dropped to keep the record within its size bound")


class EngineInfo(_Document):
    """``manifest.engine``: what served the sweep."""

    name: str | None = None
    attached: bool | None = None
    served_model: str | None = Field(None, description="the model name requests carried")
    sd_probe: list[dict[str, Any]] = Field(
        default_factory=list, description="attach mode's SD evidence from the server before the sweep"
    )
    sd_unverified: str | None = Field(
        None, description="attach mode, --sd-unverified: why the probe could not confirm the SD-on setting"
    )
    server_info: dict[str, ServerInfo] = Field(
        default_factory=dict, description="per SD label, what its server reported about itself once ready"
    )
    version: str | None = Field(None, description="the engine release read from its environment before launch")
    version_pinned: str | None = Field(None, description="engine.version of the config")
    versions: dict[str, Any] = Field(default_factory=dict, description="package versions of the engine's env")


class GenerationInfo(_Document):
    """``manifest.generation``: what every request asked (compare and merge refuse runs that differ)."""

    output_len: int | None = None
    temperature: float | None = None
    ignore_eos: bool | None = None


class MachineInfo(_Document):
    """``manifest.machine`` (speedbench.env_info.machine_info)."""

    hostname: str | None = None
    platform: str | None = None
    cpu: str | None = None
    cpu_count: int | None = None
    usable_cpus: int | None = None
    memory_gib: float | None = None
    gpus: list[Any] = Field(default_factory=list)


class ContainerInfo(_Document):
    """``manifest.container``: container launches only, the image recorded by digest."""

    launcher: str | None = None
    runtime: str | None = None
    image: str | None = None
    digest: str | None = None
    image_id: str | None = None


class Manifest(_Document):
    """manifest.json: config, versions, machine, prompt fingerprint, timestamps, progress of the sweep."""

    schema_version: int = SCHEMA_VERSION
    status: str = Field(
        MANIFEST_STATUS_UNKNOWN, description="running | complete | failed | interrupted (merged: partial)"
    )
    created_at: str | None = None
    finished_at: str | None = None
    command: list[str] | None = None
    config: dict[str, Any] | None = Field(
        None, description="the full BenchmarkConfig; in a merged folder, the settings every source shares"
    )
    config_differences: list[str] | None = Field(
        None, description="a merged folder: the dotted config settings that differ between its sources"
    )
    config_hash: str | None = None
    prompts: PromptsInfo | None = None
    machine: MachineInfo | None = None
    harness: dict[str, str | None] | None = Field(None, description="package versions of the harness")
    engine: EngineInfo | None = None
    generation: GenerationInfo | None = Field(
        None, description="absent before it was recorded: output length from config, greedy, ignore_eos"
    )
    measurement: dict[str, Any] | None = Field(
        None,
        description="how each point spent its prompts: prompt_order, seed, warmup (the warm-up rule); absent "
        "before it was recorded (then warm-up set aside the last prompts of the file order)",
    )
    conditions: dict[str, str] | None = Field(
        None,
        description="server settings as they were: prefix_caching on/off as launched, or 'unknown (attached "
        "server)' unless the attached server reported it",
    )
    launch_differences: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="per SD-on label, each server setting its launch differs in from SD off"
    )
    metric_rules: dict[str, str] = Field(
        default_factory=dict,
        description="how the headline AL is aggregated and what happens to the EOS token (headline_al, "
        "eos_token, source: the specdec_bench commit they follow); absent before it was recorded",
    )
    points_planned: list[str] = Field(default_factory=list)
    points_finished: int | None = None
    points_failed: list[str] | None = None
    stopped_reason: str | None = None
    resumes: list[dict[str, Any]] = Field(default_factory=list)
    token_counts: dict[str, str] = Field(
        default_factory=dict, description="point id -> where its output token counts came from"
    )
    container: ContainerInfo | None = None
    # a merged folder
    merged_from: list[dict[str, Any]] | None = None
    points_missing: list[dict[str, str]] | None = Field(
        None,
        description="a merged folder: points a source planned but did not finish (point, source, status, why); "
        "they are in points_planned too",
    )
    generation_differences_allowed: Any = None
    prompts_fingerprint: str | None = None


# ---- points.jsonl: the model is derived from the PointSummary dataclass (speedbench.metrics.point_doc) ----


def manifest_status(manifest: Mapping[str, Any]) -> str:
    """The status of a manifest read as a plain dict (Manifest's default when it has none)."""
    return manifest.get("status", MANIFEST_STATUS_UNKNOWN)


def point_status(point: Mapping[str, Any]) -> str:
    """The status of a stored point or of its table row (PointDoc's default when the line has none)."""
    return point.get("status", POINT_COMPLETE)


def point_complete(point: Mapping[str, Any]) -> bool:
    """Whether a point ended with every planned request given its chance (a failed point is cut short)."""
    return point_status(point) == POINT_COMPLETE


# ---- quality.json, recommendation.json, gamma_validation.json --------------------------------------------


class _Row(_Document):
    """The keys every row of these documents starts with; the other columns are the model's extras (their
    names carry a suffix, e.g. ``bleu_vs_off`` or ``speedup_k3``); definitions in docs/quality.md."""

    engine: str | None = None
    isl: int | None = None
    concurrency: int | None = None
    category: str | None = None


class QualityRow(_Row):
    sd_label: str | None = None
    draft_length: int | None = None
    repeats: int | None = None
    requests: int | None = None
    reference: str | None = None
    pairs: int | None = None
    pairs_without_ids: int | None = None
    exact_match_rate: float | None = None
    divergence_rate: float | None = None
    first_divergence_min: float | None = None
    first_divergence_median: float | None = None
    matched_prefix_frac: float | None = None
    al: float | None = None


class RecommendationRow(_Row):
    sd_method: str | None = None
    measured_draft_lengths: str | None = None
    prompts: int | None = None
    drafted_steps: int | None = None
    recommended_draft_length: int | str | None = Field(None, description="a draft length, or 'off'")
    verdict: str | None = None
    expected_speedup: float | None = None
    speedup_lo: float | None = None
    speedup_hi: float | None = None


class ValidationRow(_Row):
    sd_method: str | None = None
    draft_length: int | None = None
    tokens_per_step_measured: float | None = None
    speedup_measured: float | None = None
    tokens_per_step_holdout: float | None = None
    holdout_within_tolerance: bool | None = None


class _RowsDocument(_Document):
    notes: list[str] | str = Field(default_factory=list)


class QualityDocument(_RowsDocument):
    """quality.json: equivalence of SD-on outputs to SD off, next to acceptance length, and text scores."""

    rows: list[QualityRow] = Field(default_factory=list)


class RecommendationDocument(_RowsDocument):
    """recommendation.json: the draft length per category and concurrency, with its confidence."""

    rows: list[RecommendationRow] = Field(default_factory=list)


class GammaValidationDocument(_RowsDocument):
    """gamma_validation.json: the draft-length model against measurement at held-out draft lengths."""

    rows: list[ValidationRow] = Field(default_factory=list)
