"""The engine interface: everything engine-specific lives behind it (argv, readiness, wire format, SD fields)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from speedbench.config import ConfigError, EngineConfig, SDConfig
from speedbench.core.acceptance import SpecDecodeCounters
from speedbench.engines.versions import Floor, check_floors

if TYPE_CHECKING:
    import aiohttp

    from speedbench.core.records import RequestRecord


class FastEventHook(Protocol):
    """An adapter's fold of one raw SSE payload (the bytes after ``data: ``) into the record, without the
    generic parse: None when the payload is folded, else the parsed JSON value (the client hands a dict to
    ``on_event`` and records anything else as a malformed stream). Raises ValueError on a payload that is not
    JSON (also a malformed stream)."""

    def __call__(self, payload: bytes, rec: RequestRecord, t_ns: int) -> object: ...


class EngineAdapter(abc.ABC):
    """Everything engine-specific, behind one interface: how to launch the server of an SD setting, what a
    request looks like, how its stream folds into a RequestRecord, where the SD acceptance counters are.

    Lifecycle: the runner builds one adapter per sweep from the EngineConfig (``speedbench.engines.get_adapter``);
    before any server starts it checks every SD setting (``check_sd``; ``check_version`` against the installed
    release, read into ``installed_version``); per SD setting it launches ``launch_argv`` (with
    ``launch_files``/``launch_env``) and waits for ``health_path``; per point the load client sends
    ``build_request`` bodies and folds every stream payload with ``fast_event`` (when the adapter has one)
    and ``on_event``, and ``scrape_counters`` is read before and after the point (``poll_during_point``
    every ``poll_interval_s`` in between, for engines that need it).

    An engine must implement ``launch_argv``, ``build_request`` and ``on_event`` and set ``name``; the rest has
    defaults (no SD counters, no extra files, no info) that an engine overrides where it has more to say.
    """

    name: ClassVar[str]
    supported_sd: ClassVar[tuple[str, ...]] = ("off",)
    health_path: ClassVar[str] = "/health"
    # Seconds between ``poll_during_point`` calls while a point runs; None = the engine needs no polling.
    poll_interval_s: ClassVar[float | None] = None
    # What every request asks beyond its length: greedy (SD must then reproduce SD-off ids). Sent by
    # build_request and recorded in the manifest's `generation` with the EOS policy (load.fixed_length).
    sampling: ClassVar[dict[str, Any]] = {"temperature": 0.0}
    # distributions whose version is the engine's (first found wins), read without importing the engine
    dists: ClassVar[tuple[str, ...]] = ()
    # distributions whose presence in the engine's environment means a GPU build (one with a "+cpu" local
    # version, e.g. a vLLM built for CPU, is not one): such an engine is refused before launch without GPUs
    gpu_dists: ClassVar[tuple[str, ...]] = ()
    # flag as emitted -> the release range that accepts it (see speedbench/engines/versions.py)
    floors: ClassVar[dict[str, Floor]] = {}
    # flags whose value selects a feature with its own floor: emitted as "--flag=value" in ``emitted_flags``
    valued_flags: ClassVar[tuple[str, ...]] = ()

    # The server exports SD counters only when SD is on, one per-position series per draft position (the
    # attach-mode SD check reads the served setting from them).
    sd_counters_show_config: ClassVar[bool] = False

    # Optional fast path for the hottest loop of a point (one call per streamed chunk): None = every payload
    # is parsed generically and handed to ``on_event``. vLLM's folds the common mid-stream chunk itself.
    fast_event: FastEventHook | None = None

    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        self.installed_version: str | None = None  # read from the engine's environment before launch
        self.attached_model: str | None = None  # the name an attached server lists in /v1/models

    @property
    def version(self) -> str | None:
        """The release flags are written for: the installed one when known, else the one the config pins."""
        return self.installed_version or self.cfg.version

    # ---- launch -------------------------------------------------------------------------------
    def check_sd(self, sd: SDConfig) -> None:
        """Refuse an SD method this engine cannot run (ConfigError), before any server starts."""
        if sd.method not in self.supported_sd:
            raise ConfigError(
                f"engine {self.name!r} does not support SD method {sd.method!r} "
                f"(supported: {', '.join(self.supported_sd)})"
            )

    @abc.abstractmethod
    def launch_argv(self, sd: SDConfig, host: str, port: int, max_concurrency: int = 256) -> list[str]:
        """The exact server command line (argv list; never a shell string)."""

    def launch_files(self, sd: SDConfig, max_concurrency: int = 256) -> dict[str, str]:
        """Files the launch argv refers to (path -> content), e.g. an engine config file; written by launch_argv."""
        return {}

    def emitted_flags(self, sd: SDConfig, max_concurrency: int = 256) -> list[str]:
        """Every flag the adapter writes for this setting (engine.extra_args excluded: those are the user's)."""
        argv = self.launch_argv(sd, "127.0.0.1", 8000, max_concurrency)
        argv = argv[: len(argv) - len(self.cfg.extra_args)]
        out = []
        for i, a in enumerate(argv):
            if a.startswith("--"):
                out.append(f"{a}={argv[i + 1]}" if a in self.valued_flags else a)
        return out

    def check_version(self, sd: SDConfig, max_concurrency: int = 256) -> None:
        """Refuse before launch when the installed engine lacks a flag this setting needs."""
        self.check_versions([sd], max_concurrency)

    def check_versions(self, sds: Sequence[SDConfig], max_concurrency: int = 256, where: str = "") -> None:
        """Refuse before launch, in one line naming each, the flags of these settings the engine release lacks
        (``installed_version``; ``where`` says how it was learnt when not read from the engine itself)."""
        if self.installed_version:
            check_floors(
                self.name,
                self.installed_version,
                [self.floors[f] for sd in sds for f in self.emitted_flags(sd, max_concurrency) if f in self.floors],
                where,
            )

    def launch_differences(self, sd: SDConfig) -> list[dict]:
        """Every server setting in which this SD-on launch differs from the SD-off one besides SD itself:
        ``{"setting", "sd_off", "sd_on", "set_by": "speedbench" | "engine", "why"}`` (recorded in the manifest
        and the report, next to the speedup it may bias)."""
        return []

    def launch_env(self, sd: SDConfig) -> dict[str, str]:
        """Environment variables the server starts with (engine.env; an engine may add its own)."""
        return dict(self.cfg.env)

    @property
    def served_model_name(self) -> str:
        """The model name requests carry: the attached server's, the configured one, else the model folder's."""
        if self.attached_model:
            return self.attached_model
        if self.cfg.served_model_name:
            return self.cfg.served_model_name
        return (self.cfg.model or "model").rstrip("/").split("/")[-1]

    # ---- requests and streams ---------------------------------------------------------------------
    @abc.abstractmethod
    def build_request(self, token_ids: list[int], max_tokens: int, fixed_length: bool = False) -> tuple[str, dict]:
        """(path, JSON body) of one streaming, greedy request with token-id input: it stops at EOS under the
        ``max_tokens`` cap (SPEED-Bench's natural length), or with ``fixed_length`` ignores EOS and generates
        exactly ``max_tokens``."""

    @abc.abstractmethod
    def on_event(self, event: dict, rec: RequestRecord, t_ns: int, sent_ids: list[int]) -> None:
        """Fold one parsed SSE payload into the record (chunk time/tokens, ids, usage, SD fields)."""

    # ---- acceptance counters -------------------------------------------------------------------
    async def scrape_counters(self, session: aiohttp.ClientSession, base_url: str) -> SpecDecodeCounters | None:
        """Global SD counters as of now (None when the engine exposes none)."""
        return None

    async def poll_during_point(self, session: aiohttp.ClientSession, base_url: str) -> None:
        """Called every ``poll_interval_s`` while a point runs, for engines whose stats are consumed on read."""
        return None

    async def server_info(self, session: aiohttp.ClientSession, base_url: str) -> dict:
        """What the running server says about itself, best effort (never raises): ``engine_version``,
        ``served_models`` (the ids /v1/models lists), and what else the engine reports (vLLM:
        ``max_model_len``; SGLang: ``server_args``, its SD and batching settings); ``error`` when a query
        failed. Empty for an engine that reports nothing."""
        return {}

    def sd_contradictions(self, sd: SDConfig, info: dict) -> list[str]:
        """Where ``info`` (what ``server_info`` returned) contradicts the SD setting ``sd`` the server was
        started for or declared with, one line each naming both values; only fields the report really has and
        that really differ (none for an engine whose report says nothing about SD)."""
        return []
