"""What a REST request may choose: the sweep, never what the service's user runs or where it writes.

A request body is a partial BenchmarkConfig. It may pick engine, model, prompts, SD settings and load, but
 * what runs and with which environment is the operator's: ``engine.python``, ``engine.extra_args`` and
   ``engine.env`` (and the engine's listen address ``engine.host``) come from a preset (the package's or
   ``serve-api --preset-dir``) or the service's ``--config``, never from the body;
 * where results go is the service's (``output_dir``);
 * every path it names (model, tokenizer, a split file, SPEED-Bench source, draft model, prompt cache,
   BERTScore encoder) must lie under a root the operator allowed (``serve-api --allow-root DIR``), after
   ``~``/``$VAR`` expansion and symlinks.
A refusal is a ``Forbidden`` naming the field in one line (HTTP 403).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speedbench.config import expand_path
from speedbench.data.prompts import BUNDLED_SPLITS
from speedbench.data.splits import SPEED_PREFIX

# dotted field -> why the body may not set it
OPERATOR_ONLY = {
    "engine.python": "the engine's interpreter is the operator's (a preset or the service's --config)",
    "engine.extra_args": "engine launch arguments are the operator's (a preset or the service's --config)",
    "engine.env": "the engine's environment is the operator's (a preset or the service's --config)",
    "engine.host": "the address a launched engine listens on is the operator's (a preset or --config)",
    "output_dir": "the service decides where results go (serve-api --output-dir)",
}
# dotted field of a section -> always a filesystem path when set
PATH_FIELDS = ("engine.model", "data.tokenizer", "data.source", "data.cache_dir", "quality.bertscore_model")


class Forbidden(Exception):
    """A request asked for something only the operator may choose (one line, naming the field)."""


@dataclass(frozen=True)
class SubmitPolicy:
    allow_roots: Sequence[Path] = ()
    preset_dirs: Sequence[Path] = field(default_factory=tuple)  # searched before the package's presets

    def check(self, body: Mapping[str, Any]) -> None:
        """Raise Forbidden for the first field of a request body the caller may not set."""
        for dotted, why in OPERATOR_ONLY.items():
            if _has(body, dotted):  # even null or the default: the body has no say
                raise Forbidden(f"{dotted} cannot be set over REST: {why}")
        for dotted, value in _paths(body):
            self.check_path(dotted, value)

    def check_path(self, dotted: str, value: Any) -> None:
        if not isinstance(value, str):
            return  # a wrong type is the config validator's 422, not a path question
        resolved = Path(expand_path(value)).resolve()
        roots = [Path(r).resolve() for r in self.allow_roots]
        if any(resolved.is_relative_to(r) for r in roots):
            return
        allowed = ", ".join(map(str, roots)) if roots else "none (start serve-api with --allow-root DIR)"
        raise Forbidden(f"{dotted}: {value!r} is outside the folders this service allows; allowed roots: {allowed}")


def _has(body: Mapping[str, Any], dotted: str) -> bool:
    *parents, leaf = dotted.split(".")
    d: Any = body
    for k in parents:
        d = d.get(k) if isinstance(d, Mapping) else None
    return isinstance(d, Mapping) and leaf in d


def _get(body: Mapping[str, Any], dotted: str) -> Any:
    d: Any = body
    for k in dotted.split("."):
        d = d.get(k) if isinstance(d, Mapping) else None
    return d


def _paths(body: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(field, value) of every path the body names; a split is a path unless it is a split name."""
    for dotted in PATH_FIELDS:
        if _get(body, dotted) is not None:
            yield dotted, _get(body, dotted)
    split = _get(body, "data.split")
    if isinstance(split, str) and not _is_split_name(split):
        yield "data.split", split
    sds = body.get("sd")
    if isinstance(sds, list):
        for i, sd in enumerate(sds):
            if isinstance(sd, Mapping) and sd.get("draft_model") is not None:
                yield f"sd[{i}].draft_model", sd["draft_model"]


def _is_split_name(split: str) -> bool:
    return split in BUNDLED_SPLITS or split == "throughput" or split.startswith(SPEED_PREFIX)
