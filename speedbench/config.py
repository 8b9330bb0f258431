"""One typed configuration tree for a sweep, shared by the CLI, YAML/JSON files and the Python API.

Precedence (lowest to highest): model defaults < preset file (``speedbench/resources/presets/*.yaml``) < user config
file < ``SPEEDBENCH_*`` environment < explicit CLI flags / API arguments (merged with their sources by
``speedbench.api.config_sources.resolve_config``).  Unknown keys are errors, never silently ignored.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from speedbench.resources import PRESETS_DIR  # noqa: E402  (re-exported: the presets folder)

# Where engines' venvs, prepared models and the prompt cache live; presets refer to it as ${SPEEDBENCH_HOME}.
os.environ.setdefault("SPEEDBENCH_HOME", str(Path.home() / ".cache" / "speedbench"))

SDMethod = Literal["off", "ngram", "eagle", "eagle3", "mtp", "draft_model"]


class ConfigError(ValueError):
    """A configuration problem worth one clear line to the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def expand_path(value: Optional[str]) -> Optional[str]:
    """``~`` and ``$VARS`` in paths from presets and config files."""
    return os.path.expanduser(os.path.expandvars(value)) if value else value


def parse_isl(value: int | str | None) -> Optional[int]:
    """Parse an input-sequence-length spec: ``8k`` = 8192 tokens (k = 1024), ``1000`` = 1000 tokens."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        n = value
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([kK]?)\s*", str(value))
        if not m:
            raise ConfigError(f"bad ISL {value!r}: use an integer token count or a bucket like 1k, 2k, 8k, 16k, 32k")
        n = int(m.group(1)) * (1024 if m.group(2) else 1)
    if n <= 0:
        raise ConfigError(f"bad ISL {value!r}: must be a positive number of tokens")
    return n


def parse_int_list(value: str | list[int] | int, what: str) -> list[int]:
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        try:
            items = [int(x) for x in value.replace(" ", "").split(",") if x]
        except ValueError:
            raise ConfigError(f"bad {what} {value!r}: expected comma-separated integers, e.g. 1,2,4,8") from None
    else:
        items = list(value)
    if not items:
        raise ConfigError(f"bad {what}: the list is empty")
    bad = [x for x in items if not isinstance(x, int) or x <= 0]
    if bad:
        raise ConfigError(f"bad {what} {items}: every value must be a positive integer (got {bad})")
    return items


class SDConfig(_Strict):
    """One speculative-decoding setting of the server. ``method='off'`` is the baseline."""

    method: SDMethod = "off"
    num_speculative_tokens: int = Field(3, ge=1, le=16, description="draft length (gamma)")
    draft_model: Optional[str] = Field(None, description="draft model / EAGLE head path (eagle, eagle3, draft_model)")
    prompt_lookup_min: int = Field(2, ge=1, description="n-gram: shortest suffix to match")
    prompt_lookup_max: int = Field(4, ge=1, description="n-gram: longest suffix to match")

    @model_validator(mode="after")
    def _check(self) -> "SDConfig":
        if self.method in ("eagle", "eagle3", "draft_model") and not self.draft_model:
            raise ValueError(f"SD method {self.method!r} needs draft_model (path of the draft model / EAGLE head)")
        if self.prompt_lookup_min > self.prompt_lookup_max:
            raise ValueError("prompt_lookup_min must be <= prompt_lookup_max")
        return self

    @property
    def enabled(self) -> bool:
        return self.method != "off"

    @property
    def label(self) -> str:
        return "sd-off" if not self.enabled else f"{self.method}-k{self.num_speculative_tokens}"


class EngineConfig(_Strict):
    name: str = "vllm"
    model: Optional[str] = Field(None, description="model directory or hub id served by the engine")
    served_model_name: Optional[str] = None
    python: str = Field(sys.executable, description="Python interpreter of the engine's own environment")
    endpoint: Optional[str] = Field(None, description="attach to a running server at this URL instead of launching")
    api_key: Optional[SecretStr] = Field(
        None, description="sent as 'Authorization: Bearer <key>' (a server started with --api-key); best set by "
                          "env SPEEDBENCH_ENGINE__API_KEY; never written to results")
    host: str = "127.0.0.1"
    port: Optional[int] = Field(None, ge=1, le=65535, description="None picks a free port")
    tensor_parallel_size: int = Field(1, ge=1, le=64)
    data_parallel_size: int = Field(1, ge=1, le=64, description="engine data-parallel replicas (1 = off)")
    expert_parallel_size: int = Field(1, ge=1, le=64, description="MoE expert-parallel size (1 = off)")
    gpu_memory_fraction: Optional[float] = Field(
        None, gt=0, le=1, description="fraction of GPU memory the engine may take (None = engine default)")
    extra_args: list[str] = Field(default_factory=list, description="appended to the launch argv as-is")
    env: dict[str, str] = Field(default_factory=dict)
    startup_timeout_s: float = Field(900.0, gt=0)
    enforce_eager: bool = False
    # SPEED-Bench's framework runs with prefix caching off; on, repeated or overlapping prompts would be
    # served from cache and TTFT / prefill throughput would describe a warm cache, not the prompts
    prefix_caching: bool = Field(False, description="let the engine reuse cached prompt prefixes (vLLM prefix "
                                 "caching, SGLang radix cache, TRT-LLM KV block reuse); off as in SPEED-Bench")
    on_server_death: Literal["restart", "stop"] = Field(
        "restart", description="a launched server died mid-sweep: restart it and go on, or stop the sweep")
    max_restarts: int = Field(1, ge=0, description="restarts allowed per SD setting before the sweep stops")

    @field_validator("model", "python")
    @classmethod
    def _expand(cls, v: Optional[str]) -> Optional[str]:
        return expand_path(v)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"} if self.api_key else {}

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"endpoint {v!r} is not an http(s) URL")
        return v.rstrip("/") if v else v


DEFAULT_SPLIT = "qualitative-mini"
ISL_SPLIT = "throughput"  # what an ISL means when no split is named: SPEED-Bench's Throughput split


class DataConfig(_Strict):
    split: str = Field(DEFAULT_SPLIT, description="bundled split name, throughput, speed-bench:<config>, or a "
                       ".jsonl/.parquet path; unset: qualitative-mini, or throughput when an ISL is given")
    tokenizer: Optional[str] = Field(None, description="tokenizer directory; defaults to the engine model")
    isl: Optional[int] = Field(None, description="exact input length in tokens (None = natural length)")
    pad_to_isl: bool = Field(False, description="allow padding a split other than throughput to the ISL (each "
                             "prompt gets its own, unshared slice of the split's text as padding)")
    categories: Optional[list[str]] = None
    prompts_per_category: Optional[int] = Field(None, ge=1)
    chat_template: Literal["auto", "none"] = "auto"
    bos: Literal["once", "none"] = "once"
    cache_dir: Optional[str] = None
    source: Optional[str] = Field(None, description="SPEED-Bench data for speed-bench:<config> splits: local "
                                  "folder/parquet or hub name (default nvidia/SPEED-Bench)")
    placeholders: Literal["error", "skip"] = Field(
        "error", description="rows holding SPEED-Bench placeholder texts: refuse (error) or drop with a count (skip)")

    @field_validator("tokenizer", "cache_dir", "source")
    @classmethod
    def _expand(cls, v: Optional[str]) -> Optional[str]:
        return expand_path(v)

    @field_validator("isl", mode="before")
    @classmethod
    def _isl(cls, v: Any) -> Optional[int]:
        try:
            return parse_isl(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="before")
    @classmethod
    def _split_for_isl(cls, data: Any) -> Any:
        """An ISL without a named split means the Throughput split (as in SPEED-Bench), never padding the
        short qualitative prompts with shared filler."""
        if isinstance(data, dict) and data.get("split") in (None, "") and data.get("isl") not in (None, ""):
            return {**data, "split": ISL_SPLIT}
        return data


def parse_sd_list(spec: str, draft_length: Optional[int] = None) -> list[dict[str, Any]]:
    """``off,ngram:3,eagle3:3@/path/to/head`` -> SD settings (method[:draft_length][@draft_model])."""
    out = []
    for item in (x.strip() for x in spec.split(",")):
        if not item:
            continue
        m = re.fullmatch(r"([a-z_0-9]+)(?::(\d+))?(?:@(.+))?", item)
        if not m:
            raise ConfigError(f"bad SD setting {item!r}: use method[:draft_length][@draft_model], e.g. ngram:3")
        entry: dict[str, Any] = {"method": m.group(1)}
        k = int(m.group(2)) if m.group(2) else draft_length
        if k is not None and m.group(1) != "off":
            entry["num_speculative_tokens"] = k
        if m.group(3):
            entry["draft_model"] = m.group(3)
        out.append(entry)
    if not out:
        raise ConfigError("empty SD list")
    return out


def expand_draft_lengths(sds: list[dict[str, Any]], ks: list[int]) -> list[dict[str, Any]]:
    """One SD setting per draft length for every SD-on method (each method once); SD off stays once."""
    out: list[dict[str, Any]] = []
    seen: set = set()
    for s in sds:
        if s.get("method", "off") == "off":
            if "off" not in seen:
                out.append(s)
                seen.add("off")
            continue
        key = (s.get("method"), s.get("draft_model"))
        if key in seen:
            continue
        seen.add(key)
        out += [dict(s, num_speculative_tokens=k) for k in ks]
    return out


class LoadConfig(_Strict):
    concurrency: list[int] = Field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    # SPEED-Bench's --output_length: a cap; each request stops at EOS (its natural length) unless fixed_length
    output_len: int = Field(4096, ge=1, description="output cap in tokens (max_tokens); requests stop at EOS")
    fixed_length: bool = Field(False, description="ignore EOS and generate exactly output_len tokens per request "
                               "(not SPEED-Bench's default: text after EOS can skew acceptance)")
    requests_per_point: Optional[int] = Field(None, ge=1, description="None = every prompt the warm-up leaves "
                                              "(#prompts - warm-up), each measured once")
    warmup_requests: Optional[int] = Field(None, ge=0, description="None = concurrency (one wave); warm-up "
                                           "prompts are never measured prompts")
    allow_repeats: bool = Field(False, description="let a point measure a prompt more than once when it needs "
                                "more requests than there are distinct prompts (each point records how many)")
    request_timeout_s: float = Field(600.0, gt=0, description="whole-request limit (connect to last byte)")
    stream_idle_timeout_s: float = Field(60.0, gt=0, description="a stream silent this long is failed (timeout)")
    max_error_rate: float = Field(0.01, ge=0, le=1,
                                  description="exit non-zero when a point's non-ok share exceeds this")
    abort_after_transport_errors: int = Field(
        8, ge=1, description="this many transport errors in a row = server gone: stop the point at once")
    seed: int = 0
    repeats: int = Field(1, ge=1, le=100, description="measure every point this many times (ids get -r1, -r2, ...)")
    mode: Literal["closed", "rate"] = Field("closed", description="closed loop (fixed concurrency) or open loop")
    request_rate: Optional[float] = Field(None, gt=0, description="open loop: requests/s (mode=rate)")
    arrival: Literal["poisson", "constant"] = "poisson"
    duration_s: Optional[float] = Field(None, gt=0, description="measure each point for this long instead of "
                                                                "requests_per_point requests")
    # Off by default: the point then drains, so the server's SD counter deltas cover exactly the measured
    # requests (checked against per-request SD metrics). On: steady-state window without the drain tail,
    # but counter deltas then also hold the cool-down requests' steps.
    cooldown: bool = Field(False, description="keep the load on until the last measured request ends")
    shuffle_prompts: bool = Field(False, description="seeded prompt order instead of file order")
    client_workers: int = Field(1, ge=1, le=64, description="client processes (each its own event loop)")
    http_client: Literal["http1", "aiohttp"] = Field(
        "http1", description="streaming client: raw HTTP/1.1 protocols (fast) or aiohttp (cross-check, fallback)")
    slo_ttft_ms: Optional[float] = Field(None, gt=0, description="goodput SLO: TTFT at most this")
    slo_min_user_tps: Optional[float] = Field(None, gt=0, description="goodput SLO: user TPS at least this")

    @field_validator("concurrency", mode="before")
    @classmethod
    def _conc(cls, v: Any) -> list[int]:
        try:
            return parse_int_list(v, "concurrency list")
        except ConfigError as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="after")
    def _rate(self) -> "LoadConfig":
        if self.mode == "rate" and self.request_rate is None:
            raise ValueError("mode 'rate' needs request_rate (requests/s)")
        return self


class QualityConfig(_Strict):
    """Post-sweep analysis (equivalence to SD off, text scores, draft-length recommendation)."""

    enabled: bool = Field(True, description="write quality.json and recommendation.json after a complete sweep")
    bertscore: bool = Field(False, description="also BERTScore (loads torch + an encoder; slow on CPU)")
    bertscore_model: Optional[str] = Field(None, description="local HF encoder dir; None = packaged MiniLM-L6")
    bertscore_layers: Optional[int] = Field(None, ge=1)

    @field_validator("bertscore_model")
    @classmethod
    def _expand(cls, v: Optional[str]) -> Optional[str]:
        return expand_path(v)


class BenchmarkConfig(_Strict):
    engine: EngineConfig = Field(default_factory=EngineConfig)
    sd: list[SDConfig] = Field(default_factory=lambda: [SDConfig(method="off"), SDConfig(method="ngram")])
    data: DataConfig = Field(default_factory=DataConfig)
    load: LoadConfig = Field(default_factory=LoadConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    output_dir: str = "results"
    name: Optional[str] = None

    @model_validator(mode="after")
    def _check(self) -> "BenchmarkConfig":
        labels = [s.label for s in self.sd]
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate SD settings in sweep: {labels}")
        if not self.engine.endpoint and not self.engine.model:
            raise ValueError("engine.model is required unless engine.endpoint attaches to a running server")
        return self

    @classmethod
    def from_file(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "BenchmarkConfig":
        return cls.from_dict(load_config_file(path), overrides)

    @classmethod
    def from_dict(cls, base: dict[str, Any], overrides: dict[str, Any] | None = None) -> "BenchmarkConfig":
        merged = deep_merge(base, overrides or {})
        try:
            return cls.model_validate(merged)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e)) from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())  # JSON is valid YAML
    except yaml.YAMLError as e:
        raise ConfigError(f"bad YAML/JSON in {p}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


def load_preset(name: str) -> dict[str, Any]:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(known) or 'none'}")
    return load_config_file(path)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def format_validation_error(e: ValidationError, origin: Optional[Callable[[str], Optional[str]]] = None) -> str:
    """One line naming every bad field, the value given, and (when known) which source set it."""
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if not isinstance(x, int)) or "config"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            given = err.get("input")
            if isinstance(given, (str, int, float, bool)) and repr(given) not in msg and str(given) not in msg:
                msg += f" (got {given!r})"
        src = origin(loc) if origin and loc != "config" else None
        parts.append(f"{loc}: {msg}" + (f" (from {src})" if src else ""))
    return "invalid config: " + "; ".join(parts)
