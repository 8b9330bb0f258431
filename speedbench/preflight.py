"""Checks that turn bad input into one clear line before a server starts (or before load starts).

A wrong context length or a busy port found here costs milliseconds; found by the engine it costs a
start-up (minutes on a big model) and a log to read.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from speedbench.config import ConfigError
from speedbench.engines.server import port_is_free

if TYPE_CHECKING:
    from speedbench.config import EngineConfig, SDConfig
    from speedbench.core.acceptance import SpecDecodeCounters
    from speedbench.engines.base import EngineAdapter

# config.json keys that hold the trained context length, in the order transformers' configs use them
PROBE_REQUESTS = 2  # attach mode: requests sent one at a time to see the server's SD evidence before a sweep
_CTX_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "max_seq_len")
# launch flags that cap the served context (vLLM, SGLang, TRT-LLM spellings)
_CTX_FLAGS = ("--max-model-len", "--context-length", "--max_seq_len", "--max-seq-len")


class EndpointError(RuntimeError):
    """The server could not be reached or is not healthy."""


def model_context_len(model: str | None) -> tuple[int, str] | None:
    """(tokens, where it came from) from a local model directory's config.json; None when unknown."""
    if not model:
        return None
    cfg_path = Path(model) / "config.json"
    if not cfg_path.is_file():
        return None
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError):
        return None
    for scope in (cfg, cfg.get("text_config") or {}, cfg.get("llm_config") or {}):
        for key in _CTX_KEYS:
            v = scope.get(key)
            if isinstance(v, int) and v > 0:
                return v, f"{key} in {cfg_path}"
    return None


def flag_context_len(extra_args: Sequence[str]) -> tuple[int, str] | None:
    """A context cap given to the engine in engine.extra_args (``--max-model-len 4096`` or ``=4096``)."""
    args = list(extra_args)
    for i, a in enumerate(args):
        name, eq, val = a.partition("=")
        if name in _CTX_FLAGS:
            raw = val if eq else (args[i + 1] if i + 1 < len(args) else "")
            if raw.isdigit():
                return int(raw), f"{name} in engine.extra_args"
    return None


def check_context(prompt_lens: Sequence[int], output_len: int, limit: tuple[int, str] | None) -> None:
    if limit is None or not prompt_lens:
        return
    ctx, where = limit
    longest = max(prompt_lens)
    if longest + output_len > ctx:
        raise ConfigError(
            f"prompts of up to {longest} tokens + {output_len} output tokens exceed the model's "
            f"context of {ctx} tokens ({where}); lower --isl or --output-len "
            "(multi-turn: or --turns first)"
        )


def check_port(host: str, port: int | None) -> None:
    if port is not None and not port_is_free(host, port):
        raise ConfigError(f"port {port} on {host} is already in use; pick another with --port (or omit it)")


GPU_CHECK_OFF = "SPEEDBENCH_SKIP_GPU_CHECK"  # =1: launch a GPU build although no NVIDIA GPU is visible here


def check_engine_python(python: str) -> None:
    """The engine's interpreter exists and runs: found here, not as a failed launch after the prompts were
    built and a results folder made (GPU presets name venvs that a fresh machine does not have)."""
    found = shutil.which(python) if os.sep not in python else (python if os.access(python, os.X_OK) else None)
    if not found or not os.path.isfile(found):
        raise ConfigError(
            f"engine.python {python}: no such executable; point --engine-python (or SPEEDBENCH_ENGINE__PYTHON) at "
            "the Python of the engine's own environment (cpu-demo's: `make engine-cpu`)"
        )


def visible_gpus(engine_env: Mapping[str, str]) -> tuple[int, str]:
    """(NVIDIA GPUs the engine would see, how that was found): the driver's /proc entries or ``nvidia-smi -L``,
    narrowed by CUDA_VISIBLE_DEVICES (the engine's env over this process's)."""
    procfs = Path("/proc/driver/nvidia/gpus")
    if procfs.is_dir():
        n, how = len(list(procfs.iterdir())), str(procfs)
    elif shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        n, how = sum(1 for ln in out.splitlines() if ln.startswith("GPU ")), "nvidia-smi -L"
    else:
        n, how = 0, "no NVIDIA driver (/proc/driver/nvidia) and no nvidia-smi on PATH"
    mask = engine_env.get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
    if mask is not None:
        n = min(n, len([d for d in mask.split(",") if d.strip()]))
        how += f", CUDA_VISIBLE_DEVICES={mask!r}"
    return n, how


def check_gpus(adapter: EngineAdapter, ec: EngineConfig, engine_versions: Mapping[str, str]) -> None:
    """A GPU build of the engine (adapter.gpu_dists in its environment) on a machine without the GPUs its
    parallelism needs: refused in one line instead of a launch that fails minutes later with the cause only
    in the engine's log."""
    gpu_build = [d for d in adapter.gpu_dists if engine_versions.get(d) and "+cpu" not in engine_versions[d]]
    if not gpu_build or os.environ.get(GPU_CHECK_OFF) == "1":
        return
    need = ec.tensor_parallel_size * ec.data_parallel_size
    have, how = visible_gpus(ec.env)
    if have < need:
        raise ConfigError(
            f"{gpu_build[0]} {engine_versions[gpu_build[0]]} in {ec.python} runs on GPUs and needs {need} "
            f"(tensor_parallel_size {ec.tensor_parallel_size} x data_parallel_size {ec.data_parallel_size}); "
            f"{have} visible ({how}). On a CPU machine use --preset cpu-demo; {GPU_CHECK_OFF}=1 launches anyway"
        )


def check_tp_heads(model: str | None, tp: int) -> None:
    """Tensor parallelism splits the attention heads: a TP that does not divide them is refused here (the
    engine refuses it only after loading, its reason in the log), when the model's config.json is readable."""
    if tp <= 1 or not model:
        return
    cfg_path = Path(model) / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(cfg, dict):
        return
    for scope in (cfg, cfg.get("text_config") or {}, cfg.get("llm_config") or {}):
        heads = scope.get("num_attention_heads") if isinstance(scope, dict) else None
        if isinstance(heads, int) and heads > 0:
            if heads % tp:
                fits = max(d for d in range(1, tp) if heads % d == 0)
                raise ConfigError(
                    f"tensor_parallel_size {tp} does not divide the model's {heads} attention heads "
                    f"(num_attention_heads in {cfg_path}); give a --tp that divides {heads}, e.g. --tp {fits}"
                )
            return


def _get(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout_s) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise EndpointError(f"server not reachable at {url} ({reason})") from None
    except http.client.HTTPException as e:  # something answers, but not in HTTP (an SSH or database port)
        said = str(e).strip()[:80]
        raise EndpointError(
            f"the server at {url} does not answer in HTTP ({type(e).__name__}{': ' + said if said else ''}): "
            "is --endpoint the inference server's port?"
        ) from None


def check_health(url: str, timeout_s: float = 10.0, headers: dict[str, str] | None = None) -> None:
    status, _ = _get(url, timeout_s, headers)
    if status != 200:
        raise EndpointError(f"server not healthy at {url} (HTTP {status})")


def served_models(base_url: str, timeout_s: float = 10.0, headers: dict[str, str] | None = None) -> list[dict] | None:
    """The model entries of ``/v1/models`` (vLLM, SGLang and TRT-LLM serve it); None when it gives none."""
    try:
        status, body = _get(base_url + "/v1/models", timeout_s, headers)
        data = json.loads(body).get("data") if status == 200 else None
    except (EndpointError, ValueError, AttributeError):
        return None
    models = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)] if isinstance(data, list) else []
    return models or None


def choose_served_model(models: list[dict] | None, given: str | None, model: str | None, url: str) -> dict | None:
    """The ``/v1/models`` entry to send requests to: ``given`` (--served-model-name) when the server serves it,
    else the only one served, else the one whose id is ``model``. None when the server lists no models."""
    if not models:
        return None
    ids = [m["id"] for m in models]
    listed = ", ".join(ids)
    if given:
        for m in models:
            if m["id"] == given:
                return m
        raise ConfigError(f"the server at {url} does not serve model {given!r} (it serves: {listed})")
    if len(models) == 1:
        return models[0]
    for m in models:
        if model and m["id"] == model:
            return m
    raise ConfigError(f"the server at {url} serves {len(models)} models ({listed}): name one with --served-model-name")


def model_context(entry: dict | None, url: str) -> tuple[int, str] | None:
    """``max_model_len`` of a ``/v1/models`` entry."""
    if entry and isinstance(entry.get("max_model_len"), int) and not isinstance(entry["max_model_len"], bool):
        return entry["max_model_len"], f"max_model_len from {url}/v1/models"
    return None


def check_endpoint(
    endpoint: str, adapter: EngineAdapter, ec: EngineConfig, prompt_lens: Sequence[int], output_len: int
) -> None:
    """A dead endpoint, a model it does not serve, a context too small: found by one request each, not by
    thousands of failed ones. The adapter then names the model exactly as ``/v1/models`` lists it."""
    auth = ec.auth_headers()
    check_health(endpoint + adapter.health_path, headers=auth)
    entry = choose_served_model(served_models(endpoint, headers=auth), ec.served_model_name, ec.model, endpoint)
    if entry is not None:
        adapter.attached_model = entry["id"]
    check_context(prompt_lens, output_len, model_context(entry, endpoint))


def check_sd_matches(
    sd: SDConfig,
    evidence: Sequence[SpecDecodeCounters],
    url: str,
    counters_show_config: bool = False,
    counters_exported: bool | None = None,
    unverified_ok: bool = False,
) -> str | None:
    """The attached server's own SD evidence (counter deltas over a probe, per-request SD metrics) against the
    SD setting the user declared. ``counters_show_config``: the engine exports SD counters only when SD is
    configured, with one per-position series for each of its k draft positions (vLLM), so their absence means
    SD off and the number of positions is the served k.

    An SD-on setting the probe cannot confirm (no drafts seen, or no SD source at all) is refused unless
    ``unverified_ok`` (``--sd-unverified``: an n-gram drafter may find no match in a short probe); then the
    reason it stays unverified is returned, for the manifest and the report. None: nothing left unverified."""
    drafted = [c for c in evidence if c.drafts > 0]
    if not sd.enabled:
        if drafted:
            c = drafted[0]
            raise ConfigError(
                f"--sd off, but the server at {url} is speculating ({c.draft_tokens} draft tokens "
                f"in {c.drafts} steps, {c.source}): it is not an SD-off baseline; give its SD "
                f"setting with --sd"
            )
        return None
    setting = f"--sd {sd.method}:{sd.num_speculative_tokens}"
    if counters_show_config and counters_exported is False and not drafted:
        raise ConfigError(
            f"{setting}, but the server at {url} exports no SD counters on /metrics: it is not speculating; "
            "give --sd off"
        )
    if not drafted:
        why = (
            f"no draft in the {PROBE_REQUESTS}-request probe ({', '.join(sorted({c.source for c in evidence}))})"
            if evidence
            else "no SD source (no SD counters on /metrics, no per-request SD metrics)"
        )
        if not unverified_ok:
            raise ConfigError(
                f"{setting}, but the server at {url} shows {why}: it cannot be labelled SD-on; give --sd off, "
                "or --sd-unverified to run it unverified (recorded in the results)"
            )
        return why
    k = sd.num_speculative_tokens
    for c in drafted:
        if counters_show_config and c.accepted_per_position and len(c.accepted_per_position) != k:
            n = len(c.accepted_per_position)
            served, hint = f"{n} draft positions", f"--sd {sd.method}:{n}"
        elif c.draft_tokens > c.drafts * k:
            served, hint = f"{c.draft_tokens / c.drafts:.2f} draft tokens per step", "the server's own draft length"
        else:
            continue
        raise ConfigError(f"--sd {sd.method}:{k}, but the server at {url} shows {served} ({c.source}): give {hint}")
    return None
