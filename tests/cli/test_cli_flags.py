"""CLI flags declared once, on the config schema: the generated options match the hand-written ones they
replaced (snapshot), every generated flag sets its config path and is named as that value's origin, and a
new field with CLI metadata becomes a flag with no other edit."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field

from speedbench.api.config_sources import flag_layer
from speedbench.cli import main
from speedbench.cli.options import config_options, resolve_from_flags
from speedbench.config import BenchmarkConfig, CLIFlag, cli_flags

SNAPSHOT = Path(__file__).with_name("cli_options_snapshot.json")
COMMANDS = {"sweep": ("sweep",), "config show": ("config", "show"), "plan": ("plan",)}


def _command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = main
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


def _type(t: click.ParamType) -> str | list[str]:
    if isinstance(t, click.Choice):
        return list(t.choices)
    if isinstance(t, click.Path):
        return f"path(file_okay={t.file_okay}, dir_okay={t.dir_okay}, exists={t.exists})"
    return t.name


def describe(cmd: click.Command) -> dict[str, dict]:
    """Every option's parsed attributes (not the wrapped help text), keyed by its first flag."""
    out = {}
    for p in cmd.params:
        assert isinstance(p, click.Option)
        out[p.opts[0]] = {
            "opts": p.opts,
            "secondary_opts": p.secondary_opts,
            "dest": p.name,
            "type": _type(p.type),
            "help": p.help,
            "default": p.default if isinstance(p.default, (str, int, float, bool, type(None))) else repr(p.default),
            "is_flag": p.is_flag,
            "multiple": p.multiple,
            "required": p.required,
            "show_default": p.show_default,
        }
    return out


def current() -> dict[str, dict]:
    return {name: describe(_command(path)) for name, path in COMMANDS.items()}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_options_match_the_snapshot(command):
    """Same flags, dests, types/choices, defaults and help as the hand-written click options had."""
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))[command]
    got = json.loads(json.dumps(current()[command]))  # tuples -> lists, as stored
    assert sorted(got) == sorted(expected)
    for flag in expected:
        assert got[flag] == expected[flag], flag


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_flag_is_taken_twice(command):
    """A schema flag must not shadow a command's own option (click would keep one of the two silently)."""
    opts = [o for p in _command(COMMANDS[command]).params for o in (*p.opts, *p.secondary_opts)]
    dests = [p.name for p in _command(COMMANDS[command]).params]
    assert len(opts) == len(set(opts)) and len(dests) == len(set(dests))


# text flags whose value is parsed: what is typed and what the config then holds
PARSED = {
    "--endpoint": ("http://127.0.0.1:9", "http://127.0.0.1:9"),
    "--isl": ("8k", 8192),
    "--concurrency": ("1,2", [1, 2]),
    "--categories": ("coding, math", ["coding", "math"]),
}
SAMPLE = {"int": ("64", 64), "float": ("2.5", 2.5), "text": ("/x/y", "/x/y")}


def _cases():
    for spec in cli_flags(BenchmarkConfig):
        if spec.kind == "bool":
            yield pytest.param(spec, [spec.flag], True, id=spec.flag)
            yield pytest.param(spec, [f"--no-{spec.flag[2:]}"], False, id=f"--no-{spec.flag[2:]}")
            continue
        typed, value = (
            (spec.choices[-1], spec.choices[-1]) if spec.kind == "choice" else PARSED.get(spec.flag, SAMPLE[spec.kind])
        )
        yield pytest.param(spec, [spec.flag, typed], value, id=spec.flag)


def _at(d: dict, dotted: str):
    for k in dotted.split("."):
        d = d[k]
    return d


@pytest.mark.parametrize(("spec", "args", "expected"), list(_cases()))
def test_every_flag_sets_its_path_and_is_named_as_its_origin(spec, args, expected, monkeypatch):
    for var in [v for v in os.environ if v.startswith("SPEEDBENCH_") and "__" in v]:
        monkeypatch.delenv(var)  # the flag must win on its own merits, not for want of a variable
    args = args + (["--model", "/m"] if spec.flag != "--model" else [])
    if spec.on("config show"):
        res = CliRunner().invoke(main, ["config", "show", "--format", "json", *args])
        assert res.exit_code == 0, res.output
        shown = json.loads(res.output)
        assert _at(shown["config"], spec.path) == expected
        assert shown["origins"][spec.path] == f"flag {spec.flag}"
    else:  # a sweep-only flag: parsed by sweep's own options, resolved as sweep resolves it
        params = _command(("sweep",)).make_context("sweep", args).params
        flags = {s.dest: params[s.dest] for s in cli_flags(BenchmarkConfig, "sweep")}
        r = resolve_from_flags(None, None, None, None, flags)
        assert _at(r.config.model_dump(mode="json"), spec.path) == expected
        assert r.origin(spec.path) == f"flag {spec.flag}"


# ---- a new field with CLI metadata is a new flag, with no other edit --------------------------------
class _Knobs(BaseModel):
    depth: Annotated[int | None, CLIFlag("--depth", help="How deep.")] = None
    mode: Annotated[Literal["a", "b"], CLIFlag("--mode")] = "a"
    tags: Annotated[list[str], CLIFlag("--tags")] = []
    loud: Annotated[bool, CLIFlag("--loud", dest="be_loud")] = False
    elsewhere: Annotated[int, CLIFlag("--elsewhere", commands=frozenset({"plan"}))] = 0
    plain: int = 0


class _Throwaway(BaseModel):
    knobs: _Knobs = Field(default_factory=_Knobs)
    top: Annotated[str | None, CLIFlag("--top", help="Top level.")] = None


def test_a_new_annotated_field_is_a_flag_with_its_path_and_origin():
    seen = {}

    @click.command()
    @config_options("sweep", model=_Throwaway)
    def cmd(**kw):
        seen.update(kw)

    opts = describe(cmd)
    assert {"--depth", "--mode", "--tags", "--loud", "--top"} <= set(opts)
    assert "--elsewhere" not in opts and "--plain" not in opts  # another command's flag; a field without one
    assert opts["--depth"]["type"] == "integer" and opts["--depth"]["help"] == "How deep."
    assert opts["--mode"]["type"] == ["a", "b"]
    assert opts["--loud"]["secondary_opts"] == ["--no-loud"] and opts["--loud"]["dest"] == "be_loud"
    res = CliRunner().invoke(cmd, ["--depth", "3", "--mode", "b", "--tags", "x,y", "--no-loud", "--top", "t"])
    assert res.exit_code == 0, res.output
    layer = flag_layer(seen, model=_Throwaway)
    assert layer.values == {"knobs": {"depth": 3, "mode": "b", "tags": ["x", "y"], "loud": False}, "top": "t"}
    assert layer.origins == {
        "knobs.depth": "flag --depth",
        "knobs.mode": "flag --mode",
        "knobs.tags": "flag --tags",
        "knobs.loud": "flag --loud",
        "top": "flag --top",
    }
    assert [s.path for s in cli_flags(_Throwaway, "plan")] == [
        "knobs.depth",
        "knobs.mode",
        "knobs.tags",
        "knobs.loud",
        "knobs.elsewhere",
        "top",
    ]


def test_one_flag_on_two_fields_is_refused():
    class Twice(BaseModel):
        a: Annotated[int, CLIFlag("--n")] = 0
        b: Annotated[int, CLIFlag("--n")] = 0

    with pytest.raises(ValueError, match="'--n' declared on both a and b"):
        cli_flags(Twice)


def test_a_cli_flag_is_one_long_flag():
    with pytest.raises(ValueError, match="one long flag"):
        CLIFlag("--x/--no-x")


if __name__ == "__main__":  # regenerate: python -m tests.cli.test_cli_flags (only for a deliberate change)
    SNAPSHOT.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
