"""CLI flags declared once, on the config fields they set.

A field that a command-line flag sets carries its flag next to it::

    tensor_parallel_size: Annotated[int, CLIFlag("--tp", dest="tensor_parallel_size", help="...")] = Field(1, ...)

``cli_flags()`` walks the schema and returns every such flag with its dotted config path; the click options
(``speedbench.cli.options``) and the flag layer's sources ("flag --tp", ``speedbench.api.config_sources``)
are both built from it, so a new field with a ``CLIFlag`` is a new flag with no other edit.  This module
knows nothing of click: it only describes each flag.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

# the flags only `speedbench sweep` takes (they only change what a run measures)
SWEEP_ONLY = frozenset({"sweep"})

FlagKind = Literal["bool", "choice", "int", "float", "text"]


@dataclass(frozen=True)
class CLIFlag:
    """How one config field appears on the command line."""

    flag: str  # "--tp"; a bool field also gets "--no-..." and the value None when neither is given
    help: str | None = None
    dest: str | None = None  # the command's keyword; default: the flag's name with '-' -> '_'
    # value type on the command line where it is not the field's own: str for "8k" (an int field whose
    # validator reads the k suffix); list fields are text already (their validator or the flag layer splits)
    type: type | None = None
    # the commands that take it (None: every config-taking command: sweep, config show, plan)
    commands: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.flag.startswith("--") or "/" in self.flag:
            raise ValueError(f"CLIFlag {self.flag!r}: give one long flag ('--name'); bool fields get '--no-' added")


@dataclass(frozen=True)
class FlagSpec:
    """A ``CLIFlag`` found on the schema, with the config path it sets and its command-line value kind."""

    path: str  # dotted config path, e.g. engine.tensor_parallel_size
    cli: CLIFlag
    annotation: Any  # the field's type, Optional removed

    @property
    def flag(self) -> str:
        return self.cli.flag

    @property
    def dest(self) -> str:
        return self.cli.dest or self.cli.flag.removeprefix("--").replace("-", "_")

    @property
    def kind(self) -> FlagKind:
        ann = self.cli.type or self.annotation
        if typing.get_origin(ann) is Literal:
            return "choice"
        return {bool: "bool", int: "int", float: "float"}.get(ann, "text")  # type: ignore[return-value]

    @property
    def choices(self) -> list[str]:
        return [str(c) for c in typing.get_args(self.cli.type or self.annotation)] if self.kind == "choice" else []

    def on(self, command: str) -> bool:
        return self.cli.commands is None or command in self.cli.commands


def unwrap_optional(ann: Any) -> Any:
    """Optional[X] / X | None -> X."""
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return args[0] if len(args) == 1 else ann
    return ann


def cli_flags(model: type[BaseModel], command: str | None = None) -> list[FlagSpec]:
    """Every flag declared on ``model`` (usually BenchmarkConfig, which callers pass: benchmark.py builds its
    fields with this module's CLIFlag, so this module cannot import it) and its nested sections, in field order;
    with ``command``, only the flags that command takes.  Two fields claiming one flag or dest are an error."""
    specs = _walk(model, "")
    for attr in ("flag", "dest"):
        seen: dict[str, str] = {}
        for s in specs:
            other = seen.setdefault(getattr(s, attr), s.path)
            if other != s.path:
                raise ValueError(f"CLI {attr} {getattr(s, attr)!r} declared on both {other} and {s.path}")
    return [s for s in specs if command is None or s.on(command)]


def _walk(model: type[BaseModel], prefix: str) -> list[FlagSpec]:
    out: list[FlagSpec] = []
    for name, info in model.model_fields.items():
        ann = unwrap_optional(info.annotation)
        out += [FlagSpec(prefix + name, m, ann) for m in info.metadata if isinstance(m, CLIFlag)]
        if isinstance(ann, type) and issubclass(ann, BaseModel):  # a nested section (engine.container, ...)
            out += _walk(ann, f"{prefix}{name}.")
    return out
