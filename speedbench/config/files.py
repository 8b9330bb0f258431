"""Config files and presets on disk, merging nested mappings, and one-line validation errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from speedbench.config.base import ConfigError, redact_credentials
from speedbench.resources import PRESETS_DIR

MAX_YAML_DEPTH = 64  # no config nests deeper than ~4; far below Python's recursion limit


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses what it would otherwise take silently or crash on: a key given twice in one
    mapping (YAML keeps the last one, so the first value a user wrote was dropped without a word) and nesting
    deeper than MAX_YAML_DEPTH (a 5,000-deep document hit Python's recursion limit: a traceback)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"nested deeper than {MAX_YAML_DEPTH} levels at line {mark.line + 1}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *base" then overriding a key is meant
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise ConfigError(
                            f"key {key!r} given twice in one mapping (line {key_node.start_mark.line + 1})"
                        )
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """YAML/JSON text -> data, strictly (see _StrictLoader); errors are ConfigError or yaml.YAMLError."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506  (a SafeLoader subclass)


def load_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = load_yaml_text(p.read_text(encoding="utf-8"))  # JSON is valid YAML
    except ConfigError as e:
        raise ConfigError(f"config file {p}: {e}") from None
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
            shown = redact_credentials(str(given))
            if isinstance(given, (str, int, float, bool)) and repr(given) not in msg and shown not in msg:
                msg += f" (got {given!r})"
            if isinstance(given, bool) and err["type"] not in ("bool_type", "bool_parsing"):
                msg += " (YAML reads unquoted off/on/no/yes as false/true: quote it, e.g. method: 'off')"
        src = origin(loc) if origin and loc != "config" else None
        parts.append(f"{loc}: {msg}" + (f" (from {src})" if src else ""))
    return redact_credentials("invalid config: " + "; ".join(parts))
