"""Version floors: the engine release each launch flag needs, checked against the installed engine before launch.

A floor here is the earliest release *read* that has the flag (docs/engines/*.md list the file and release of
each); the flag may be older. A flag that was renamed also has a ``until``: the last release read that still
accepts it. A flag found in no release (only on a branch or an open pull request) has ``since=None``: no
release admits it, so the adapter does not write it. A release candidate is an ordinary PEP 440 pre-release
(``1.3.0rc24 < 1.3.0``): it counts as the release it precedes only where the floor itself names a candidate
the flag was confirmed in (``since="1.3.0rc10"``). The installed version is read from the engine's own
environment (venv: importlib.metadata in its interpreter; container: the same inside the image,
speedbench.engines.image_release); the engine is never imported, so a check costs a subprocess, not an
engine start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from speedbench.config import ConfigError
from speedbench.env_info import engine_python_versions


@dataclass(frozen=True)
class Floor:
    flag: str  # as emitted: "--dp-size", "speculative_config.decoding_type=Eagle3"
    since: str | None  # earliest release read that accepts it; None: in no release read
    source: str  # file and release it was read from
    until: str | None = None  # last release read that accepts it (renamed or removed after)

    def admits(self, version: str) -> bool:
        v = parse(version)
        if v is None:
            return True  # an unparseable version string is reported, not guessed at
        if self.since is None or v < _release(self.since):
            return False
        return self.until is None or v <= _release(self.until)


def _release(text: str) -> Version:
    """A release written in this package's tables: plain PEP 440, so a typo fails loudly here instead of
    comparing as an unknown version."""
    return Version(text)


def parse(version: str | None) -> Version | None:
    """A comparable version; local tags (``+cpu``) and ``-emulated`` suffixes are dropped."""
    if not version:
        return None
    try:
        return Version(version.split("+")[0].split("-")[0])
    except InvalidVersion:
        return None


def at_least(version: str | None, since: str | None) -> bool:
    """The release is known and at or past ``since`` (never, for a feature in no release: ``since=None``)."""
    v = parse(version)
    return v is not None and since is not None and v >= _release(since)


def spelling(version: str | None, new: str, old: str, since: str) -> str:
    """A renamed flag: the new name from ``since`` on and when the release is unknown, else the old one."""
    return old if parse(version) is not None and not at_least(version, since) else new


def check_floors(engine: str, version: str, floors: Iterable[Floor], where: str = "") -> None:
    """Refuse, with one line naming every flag the engine lacks and the range each needs. ``where`` says how
    the release was learnt when it is not the installed one (e.g. a hint from an image tag)."""
    lacking: list[str] = []
    for f in dict.fromkeys(floors):  # each flag once, in the order written
        if not f.admits(version):
            if f.since is None:
                span = "a release that has it: none read does"
            else:
                span = f"{engine} >= {f.since}" + (f" and <= {f.until}" if f.until else "")
            lacking.append(f"{f.flag} (needs {span}; read in {f.source})")
    if lacking:
        raise ConfigError(f"{engine} {version}{where} does not accept " + ", ".join(lacking))


def installed_version(python: str, dists: tuple[str, ...]) -> str | None:
    """The engine's version in its own environment (first distribution found), None when unknown."""

    return version_of(engine_python_versions(python, dists), dists)


def version_of(found: dict, dists: tuple[str, ...]) -> str | None:
    """The first of ``dists`` in an ``engine_python_versions`` answer."""
    return next((found[d] for d in dists if found.get(d)), None)
