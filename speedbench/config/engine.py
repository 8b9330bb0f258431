"""How the engine is started or reached: the engine section and its container settings."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from speedbench.config.base import _Strict, expand_path, redact_credentials
from speedbench.config.cli_flag import CLIFlag

Launcher = Literal["venv", "docker", "podman", "enroot", "pyxis"]


class ContainerConfig(_Strict):
    """How a containerised engine is started (``engine.launcher`` other than ``venv``; see engines/container.py)."""

    image: Annotated[
        str | None,
        CLIFlag("--image", help="Container image, pinned by tag (e.g. vllm/vllm-openai:v0.11.0) or .sqsh."),
    ] = Field(None, description="image pinned by tag (docker/podman/pyxis) or a .sqsh file (enroot); overrides images")
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


def engine_gpus(tensor_parallel_size: int | None, data_parallel_size: int | None) -> int:
    """GPUs one engine holds: TP x DP (expert parallelism runs on those same GPUs). The one rule behind the
    cost of an engine-hour, the GPUs energy should count and output TPS per GPU."""
    return max(1, int(tensor_parallel_size or 1)) * max(1, int(data_parallel_size or 1))


class EngineConfig(_Strict):
    name: Annotated[str, CLIFlag("--engine", help="Engine adapter: vllm, sglang, trtllm.")] = "vllm"
    model: Annotated[str | None, CLIFlag("--model", help="Model directory (or hub id) the engine serves.")] = Field(
        None, description="model directory or hub id served by the engine"
    )
    served_model_name: Annotated[
        str | None,
        CLIFlag(
            "--served-model-name",
            help="Model name requests carry (attach mode: one the server lists in "
            "/v1/models; default: the only one it serves).",
        ),
    ] = None
    python: Annotated[
        str,
        CLIFlag("--engine-python", help="Python of the engine's own environment (env: SPEEDBENCH_ENGINE__PYTHON)."),
    ] = Field(sys.executable, description="Python interpreter of the engine's own environment")
    version: str | None = Field(
        None,
        description="engine release this config was checked against; launch flags follow the installed "
        "release when it can be read from the engine's environment, else this one",
    )
    endpoint: Annotated[
        str | None, CLIFlag("--endpoint", help="Attach to a running server at this URL instead of launching one.")
    ] = Field(None, description="attach to a running server at this URL instead of launching")
    sd_unverified: Annotated[
        bool,
        CLIFlag(
            "--sd-unverified",
            help="Attach mode: run an SD-on --sd setting although the server showed no SD evidence over the "
            "probe (no drafts, or no counters and no per-request SD metrics); recorded and shown in the report.",
        ),
    ] = Field(
        False,
        description="attach mode: accept an SD-on setting the server's probe could not confirm (recorded)",
    )
    api_key: SecretStr | None = Field(
        None,
        description="sent as 'Authorization: Bearer <key>' (a server started with --api-key); best set by "
        "env SPEEDBENCH_ENGINE__API_KEY; never written to results",
    )
    host: str = "127.0.0.1"
    port: Annotated[int | None, CLIFlag("--port", help="Port for the launched server (default: a free one).")] = Field(
        None, ge=1, le=65535, description="None picks a free port"
    )
    tensor_parallel_size: Annotated[int, CLIFlag("--tp", dest="tensor_parallel_size", help="Tensor parallel size.")] = (
        Field(1, ge=1, le=64)
    )
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
    prefix_caching: Annotated[
        bool, CLIFlag("--prefix-caching", help="Engine prefix caching (off by default, as in SPEED-Bench).")
    ] = Field(
        False,
        description="let the engine reuse cached prompt prefixes (vLLM prefix "
        "caching, SGLang radix cache, TRT-LLM KV block reuse); off as in SPEED-Bench",
    )
    on_server_death: Literal["restart", "stop"] = Field(
        "restart", description="a launched server died mid-sweep: restart it and go on, or stop the sweep"
    )
    max_restarts: int = Field(1, ge=0, description="restarts allowed per SD setting before the sweep stops")
    launcher: Annotated[
        Launcher,
        CLIFlag(
            "--launcher",
            help="Start the engine from --engine-python's venv (default) or from a container image.",
        ),
    ] = Field(
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

    @property
    def gpu_count(self) -> int:
        """GPUs this engine holds (engine_gpus: TP x DP)."""
        return engine_gpus(self.tensor_parallel_size, self.data_parallel_size)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"} if self.api_key else {}

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"endpoint {v!r} is not an http(s) URL")
        url = urlsplit(v)
        if url.username is not None or url.password is not None:  # never sent (requests carry a bearer token)
            raise ValueError(
                f"endpoint {redact_credentials(v)!r}: credentials in the URL are not used and would be written "
                "into the results; give the server's token with SPEEDBENCH_ENGINE__API_KEY (engine.api_key)"
            )
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
