"""Config files and presets on disk, merging nested mappings, and one-line validation errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from speedbench.config.base import ConfigError
from speedbench.resources import PRESETS_DIR


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
