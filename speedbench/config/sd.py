"""Speculative-decoding settings and the ``--sd`` / draft-length list syntax."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from speedbench.config.base import ConfigError, _Strict, split_comma_list

SDMethod = Literal["off", "ngram", "eagle", "eagle3", "mtp", "draft_model"]


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


def parse_sd_list(spec: str, draft_length: int | None = None) -> list[dict[str, Any]]:
    """``off,ngram:3,eagle3:3@/path/to/head`` -> SD settings (method[:draft_length][@draft_model])."""
    out = []
    for item in split_comma_list(spec, "SD list"):
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
