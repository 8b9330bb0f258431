"""Checks that turn bad input into one clear line before a server starts (or before load starts).

A wrong context length or a busy port found here costs milliseconds; found by the engine it costs a
start-up (minutes on a big model) and a log to read.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

from speedbench.config import ConfigError

# config.json keys that hold the trained context length, in the order transformers' configs use them
_CTX_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "max_seq_len")
# launch flags that cap the served context (vLLM, SGLang, TRT-LLM spellings)
_CTX_FLAGS = ("--max-model-len", "--context-length", "--max_seq_len", "--max-seq-len")


class EndpointError(RuntimeError):
    """The server could not be reached or is not healthy."""


def model_context_len(model: Optional[str]) -> Optional[tuple[int, str]]:
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


def flag_context_len(extra_args: Sequence[str]) -> Optional[tuple[int, str]]:
    """A context cap given to the engine in engine.extra_args (``--max-model-len 4096`` or ``=4096``)."""
    args = list(extra_args)
    for i, a in enumerate(args):
        name, eq, val = a.partition("=")
        if name in _CTX_FLAGS:
            raw = val if eq else (args[i + 1] if i + 1 < len(args) else "")
            if raw.isdigit():
                return int(raw), f"{name} in engine.extra_args"
    return None


def check_context(prompt_lens: Sequence[int], output_len: int, limit: Optional[tuple[int, str]]) -> None:
    if limit is None or not prompt_lens:
        return
    ctx, where = limit
    longest = max(prompt_lens)
    if longest + output_len > ctx:
        raise ConfigError(f"prompts of up to {longest} tokens + {output_len} output tokens exceed the model's "
                          f"context of {ctx} tokens ({where}); lower --isl or --output-len "
                          "(multi-turn: or --turns first)")


def check_port(host: str, port: Optional[int]) -> None:
    from speedbench.engines.server import port_is_free

    if port is not None and not port_is_free(host, port):
        raise ConfigError(f"port {port} on {host} is already in use; pick another with --port (or omit it)")


def _get(url: str, timeout_s: float, headers: Optional[dict[str, str]] = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout_s) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise EndpointError(f"server not reachable at {url} ({reason})") from None


def check_health(url: str, timeout_s: float = 10.0, headers: Optional[dict[str, str]] = None) -> None:
    status, _ = _get(url, timeout_s, headers)
    if status != 200:
        raise EndpointError(f"server not healthy at {url} (HTTP {status})")


def endpoint_context_len(base_url: str, timeout_s: float = 10.0,
                         headers: Optional[dict[str, str]] = None) -> Optional[tuple[int, str]]:
    """``max_model_len`` of the first model in ``/v1/models`` (vLLM, SGLang and TRT-LLM report it)."""
    try:
        status, body = _get(base_url + "/v1/models", timeout_s, headers)
        data = json.loads(body).get("data") or [] if status == 200 else []
    except (EndpointError, ValueError, AttributeError):
        return None
    if data and isinstance(data[0], dict) and isinstance(data[0].get("max_model_len"), int):
        return data[0]["max_model_len"], f"max_model_len from {base_url}/v1/models"
    return None
