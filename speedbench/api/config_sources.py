"""Where a sweep's configuration comes from, merged in one documented order, shared by CLI, REST and API.

Precedence, lowest to highest:

    model defaults < preset (speedbench/resources/presets/NAME.yaml) < config file (YAML/JSON) < environment < CLI flags

Environment variables: ``SPEEDBENCH_<SECTION>__<FIELD>``, nested with ``__`` (``SPEEDBENCH_LOAD__CONCURRENCY=1,2,4``,
``SPEEDBENCH_ENGINE__PYTHON=/venv/bin/python``, ``SPEEDBENCH_ENGINE__ENV__VLLM_CPU_KVCACHE_SPACE=4``) and the
top-level fields ``SPEEDBENCH_SD`` (``off,ngram:3``), ``SPEEDBENCH_NAME``, ``SPEEDBENCH_OUTPUT_DIR``;
``SPEEDBENCH_ENGINE_PYTHON`` is an older spelling of ``SPEEDBENCH_ENGINE__PYTHON``. Lists are
comma-separated or JSON; an empty value means null. Other ``SPEEDBENCH_*`` variables (``NOT_CONFIG_VARS``:
``SPEEDBENCH_HOME``, ``SPEEDBENCH_ENGINE_HOME``, ``SPEEDBENCH_CACHE``, ...) are not config fields and are left
alone.

Every resolved value remembers its source, so ``speedbench config show`` can say where it came from and
validation errors name the variable / flag / file that set the bad value.
"""

from __future__ import annotations

import json
import os
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from speedbench.config import (
    BenchmarkConfig,
    ConfigError,
    SDConfig,
    cli_flags,
    deep_merge,
    expand_draft_lengths,
    format_validation_error,
    load_config_file,
    load_preset,
    load_yaml_text,
    parse_int_list,
    parse_sd_list,
    split_comma_list,
    unwrap_optional,
)
from speedbench.quality.draft_plan import describe, plan_draft_lengths

ENV_PREFIX = "SPEEDBENCH_"
LEGACY_ENGINE_PYTHON = "SPEEDBENCH_ENGINE_PYTHON"  # older spelling of SPEEDBENCH_ENGINE__PYTHON
DEFAULT = "default"


@dataclass
class ConfigLayer:
    """One source's values (nested dict) and, per dotted path it sets, a human label of where it came from."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def set(self, dotted: str, value: Any, origin: str) -> None:
        d = self.values
        keys = dotted.split(".")
        for k in keys[:-1]:
            d = d.setdefault(k, {})
        d[keys[-1]] = value
        self.origins[dotted] = origin


@dataclass
class ResolvedConfig:
    config: BenchmarkConfig
    layers: list[ConfigLayer]

    def origin(self, dotted: str) -> str:
        """The highest-precedence source that set this path (or one of its parents), else 'default'."""
        return _origin(self.layers, dotted)

    def origins(self) -> dict[str, str]:
        return {path: self.origin(path) for path in _leaves(self.config.model_dump(mode="json"))}


# ---- the layers ------------------------------------------------------------------------------------
def preset_layer(name: str, dirs: Sequence[Path] = ()) -> ConfigLayer:
    return _file_like(f"preset {name}", load_preset(name, dirs))


def file_layer(path: str) -> ConfigLayer:
    return _file_like(f"file {path}", load_config_file(path))


def dict_layer(name: str, values: Mapping[str, Any]) -> ConfigLayer:
    """A plain nested mapping (a REST request body, API keyword overrides)."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{name} must be a JSON object / mapping")
    return _file_like(name, dict(values))


# SPEEDBENCH_* variables that are not config fields (folders, the REST token, test settings): never typos
NOT_CONFIG_VARS = frozenset(
    {
        "SPEEDBENCH_HOME",
        "SPEEDBENCH_ENGINE_HOME",
        "SPEEDBENCH_CACHE",
        "SPEEDBENCH_API_TOKEN",
        "SPEEDBENCH_TEST_MODEL",
        "SPEEDBENCH_TEST_ENGINE_PYTHON",
    }
)


def env_layer(environ: Mapping[str, str] | None = None) -> ConfigLayer:
    environ = os.environ if environ is None else environ
    layer = ConfigLayer("environment")
    top = set(BenchmarkConfig.model_fields)
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX) :].split("__")
        head = parts[0].lower()
        if var == LEGACY_ENGINE_PYTHON:
            if f"{ENV_PREFIX}ENGINE__PYTHON" not in environ:
                layer.set("engine.python", environ[var], f"env {var}")  # older spelling, same layer
            continue
        if head not in top:
            if len(parts) > 1:  # looks meant for us: a typo must not be silently ignored
                raise ConfigError(
                    f"environment variable {var}: unknown config section {head!r} (known: {', '.join(sorted(top))})"
                )
            near = [t for t in top if head.startswith(t + "_")] if var not in NOT_CONFIG_VARS else []
            if near:  # SPEEDBENCH_LOAD_CONCURRENCY: meant for load.concurrency, would be silently ignored
                raise ConfigError(
                    f"environment variable {var}: sections and fields are joined by two "
                    f"underscores: {ENV_PREFIX}{near[0].upper()}__{head[len(near[0]) + 1 :].upper()}"
                )
            continue  # SPEEDBENCH_HOME, SPEEDBENCH_CACHE, ...: not config fields
        path = _env_path(parts)
        layer.set(".".join(path), _env_value(path, environ[var], var), f"env {var}")
    return layer


def flag_layer(
    flags: Mapping[str, Any],
    *,
    sd_spec: str | None = None,
    draft_length: int | None = None,
    base_sd: list | None = None,
    model: type[BaseModel] | None = None,
) -> ConfigLayer:
    """CLI flags (click dests) -> layer. Which dest sets which path, and the origin "flag --tp" it gets, come
    from the ``CLIFlag`` declared on the schema (``model``, default BenchmarkConfig). ``draft_length`` without
    ``sd_spec`` rewrites the lower layers' SD list."""
    layer = ConfigLayer("flags")
    for spec in cli_flags(model or BenchmarkConfig):
        value = flags.get(spec.dest)
        if value is None:
            continue
        if isinstance(value, str):
            value = _comma_list(spec.annotation, value, spec.flag)
        layer.set(spec.path, value, f"flag {spec.flag}")
    if sd_spec:
        layer.set("sd", parse_sd_list(sd_spec, draft_length), "flag --sd")
    elif draft_length is not None:
        sds = base_sd or [{"method": "off"}, {"method": "ngram"}]
        layer.set(
            "sd",
            [dict(s, num_speculative_tokens=draft_length) if s.get("method") != "off" else s for s in sds],
            "flag --draft-length",
        )
    if (
        (draft_length is not None or flags.get("draft_lengths"))
        and sd_spec
        and all(s.get("method", "off") == "off" for s in layer.values.get("sd", []))
    ):
        flag = "--draft-lengths" if flags.get("draft_lengths") else "--draft-length"
        raise ConfigError(f"{flag} needs an SD-on setting; --sd {sd_spec} has none")
    if flags.get("draft_lengths"):
        sds = layer.values.get("sd") or base_sd or [{"method": "off"}, {"method": "ngram"}]
        if str(flags["draft_lengths"]).strip().lower() == "auto":
            default_k = SDConfig.model_fields["num_speculative_tokens"].default
            configured = sorted(
                {int(s.get("num_speculative_tokens") or default_k) for s in sds if s.get("method", "off") != "off"}
            ) or [default_k]
            ks, added = plan_draft_lengths(configured)
            layer.set("sd", expand_draft_lengths(sds, ks), f"flag {describe(configured, added)}")
        else:
            ks = parse_int_list(flags["draft_lengths"], "draft-length list")
            layer.set("sd", expand_draft_lengths(sds, ks), "flag --draft-lengths")
    return layer


def resolve_config(
    *,
    preset: str | None = None,
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    use_env: bool = True,
    flags: Mapping[str, Any] | None = None,
    sd_spec: str | None = None,
    draft_length: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    overrides_name: str = "overrides",
    preset_dirs: Sequence[Path] = (),
    base: Mapping[str, Any] | None = None,
    base_name: str = "base",
) -> ResolvedConfig:
    """defaults < preset < config file < environment < flags < overrides (API/REST body), validated once.
    ``base`` (a resumed sweep's stored config) sits just above the defaults."""
    layers: list[ConfigLayer] = [dict_layer(base_name, base)] if base else []
    if preset:
        layers.append(preset_layer(preset, preset_dirs))
    if config_file:
        layers.append(file_layer(config_file))
    if use_env:
        layers.append(env_layer(environ))
    if flags is not None or sd_spec or draft_length is not None:
        lower = _merge(layers)
        layers.append(flag_layer(flags or {}, sd_spec=sd_spec, draft_length=draft_length, base_sd=lower.get("sd")))
    if overrides:
        layers.append(dict_layer(overrides_name, overrides))
    layers = [layer for layer in layers if layer.values or layer.name.startswith(("preset", "file"))]
    try:
        cfg = BenchmarkConfig.model_validate(_merge(layers))
    except ValidationError as e:
        raise ConfigError(_explain(e, layers)) from None
    return ResolvedConfig(cfg, layers)


# ---- rendering -------------------------------------------------------------------------------------
def render_with_origins(resolved: ResolvedConfig) -> str:
    """The effective config as YAML (valid; loadable with --config) with each value's source as a comment."""
    lines = ["# effective speedbench config; precedence: defaults < preset < file < env < flags"]
    _render(resolved.config.model_dump(mode="json"), "", 0, resolved, lines)
    return "\n".join(lines) + "\n"


def _render(d: dict, prefix: str, indent: int, resolved: ResolvedConfig, lines: list[str]) -> None:
    pad = " " * indent
    for key, value in d.items():
        path = f"{prefix}{key}"
        k = key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key) else json.dumps(key)
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{k}:")
            _render(value, path + ".", indent + 2, resolved, lines)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{pad}{k}:  # {resolved.origin(path)}")
            lines += [f"{pad}  - {json.dumps(v)}" for v in value]
        else:
            lines.append(f"{pad}{k}: {json.dumps(value)}  # {resolved.origin(path)}")


# ---- helpers ---------------------------------------------------------------------------------------
def _file_like(name: str, values: dict[str, Any]) -> ConfigLayer:
    layer = ConfigLayer(name, values)
    layer.origins = {p: name for p in _leaves(values)}
    return layer


def _merge(layers: list[ConfigLayer]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in layers:
        out = deep_merge(out, layer.values)
    return out


def _leaves(d: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out += _leaves(v, path + ".")
        else:
            out.append(path)
    return out


def _origin(layers: list[ConfigLayer], dotted: str) -> str:
    parts = dotted.split(".")
    candidates = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    for layer in reversed(layers):
        for c in candidates:
            if c in layer.origins:
                return layer.origins[c]
        # a parent set as a whole mapping counts for every child below it
        if any(o.startswith(dotted + ".") for o in layer.origins):
            return layer.name
    return DEFAULT


def _explain(e: ValidationError, layers: list[ConfigLayer]) -> str:
    def origin(loc: str) -> str | None:
        src = _origin(layers, loc)
        return None if src == DEFAULT else src

    return format_validation_error(e, origin)


def _annotation(path: list[str]) -> Any:
    model: Any = BenchmarkConfig
    ann: Any = None
    for seg in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or seg not in model.model_fields:
            return None
        ann = unwrap_optional(model.model_fields[seg].annotation)
        model = ann
    return ann


def _env_path(parts: list[str]) -> list[str]:
    """Lower-case the field names, but keep keys inside dict fields (engine.env) exactly as written."""
    path: list[str] = []
    for i, seg in enumerate(parts):
        ann = _annotation(path) if path else BenchmarkConfig
        if typing.get_origin(ann) is dict:
            return path + ["__".join(parts[i:])]
        path.append(seg.lower())
    return path


def _env_value(path: list[str], raw: str, var: str) -> Any:
    raw = raw.strip()
    if raw == "":
        return None
    if raw[0] in "[{":
        try:
            return load_yaml_text(raw)
        except ConfigError as e:
            raise ConfigError(f"environment variable {var}: {e}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"environment variable {var}: bad JSON/YAML value: {e}") from None
    if path == ["sd"]:
        return parse_sd_list(raw)
    return _comma_list(_annotation(path), raw, var)


def _comma_list(ann: Any, raw: str, source: str) -> Any:
    """A list[str] field's text from a flag or variable, comma-separated; any other text as it is: pydantic
    coerces "4" -> 4, "true" -> True, and list[int] fields parse "1,2,4" themselves."""
    if typing.get_origin(ann) is list and typing.get_args(ann) in ((str,),):
        return split_comma_list(raw, source)
    return raw
