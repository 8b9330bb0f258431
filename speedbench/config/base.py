"""What every config section shares: the error type, strict models, and the value parsers of paths, ISLs and
integer lists."""

from __future__ import annotations

import os
import re
from typing import overload

from pydantic import BaseModel, ConfigDict

_URL_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@")


def redact_credentials(text: str) -> str:
    """``http://user:password@host`` -> ``http://***@host`` wherever a URL with credentials appears in a
    message: an error line must never echo a password (the CLI's errors and log lines pass through this)."""
    return _URL_USERINFO.sub(r"\1***@", text)


class ConfigError(ValueError):
    """A configuration problem worth one clear line to the user."""


class _Strict(BaseModel):
    # allow_inf_nan=False: an infinite timeout or price (YAML .inf, "inf", "nan") is refused at parse, not
    # carried to the sweep (asyncio's timeouts raise OverflowError on inf) or into a report as a figure
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


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
    """Parse an input-sequence-length spec: ``8k`` = 8192 tokens (k = 1024), ``1000`` = 1000 tokens; ``none``
    clears an ISL a lower layer set (a GPU preset's, to run another split at natural length)."""
    if value is None or value == "" or (isinstance(value, str) and value.strip().lower() == "none"):
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


def split_comma_list(text: str, what: str) -> list[str]:
    """The items of a comma-separated flag or variable, stripped. One trailing comma is harmless; an empty
    item inside ("1,,2") is refused: a value was lost between the commas, a typo rather than a shorter list."""
    parts = [x.strip() for x in text.split(",")]
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if "" in parts[1:] or (parts[0] == "" and len(parts) > 1):
        raise ConfigError(f"bad {what} {text!r}: an empty item between commas")
    return [x for x in parts if x]


def parse_int_list(value: str | list[int] | int | None, what: str) -> list[int]:
    if value is None:  # an empty SPEEDBENCH_* variable or a bare YAML key: no list, never a TypeError
        raise ConfigError(f"bad {what}: no value given (e.g. 1,2,4,8)")
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        parts = split_comma_list(value, what)
        try:
            items = [int(x) for x in parts]
        except ValueError:
            raise ConfigError(f"bad {what} {value!r}: expected comma-separated integers, e.g. 1,2,4,8") from None
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"bad {what} {value!r}: expected comma-separated integers, e.g. 1,2,4,8")
    if not items:
        raise ConfigError(f"bad {what}: the list is empty")
    bad = [x for x in items if not isinstance(x, int) or isinstance(x, bool) or x <= 0]  # YAML true is no 1
    if bad:
        raise ConfigError(f"bad {what} {items}: every value must be a positive integer (got {bad})")
    twice = sorted({x for x in items if items.count(x) > 1})
    if twice:  # a repeated point would run again and replace the first one's result
        raise ConfigError(f"bad {what} {items}: {', '.join(map(str, twice))} given more than once")
    return items
