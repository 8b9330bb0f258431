"""Where speedbench writes what it produces itself: the one rule every layer follows.

``SPEEDBENCH_CACHE`` (caches only) overrides ``SPEEDBENCH_HOME``; without either, ``~/.cache/speedbench``.
Prompt caches and the full Throughput pool both live there, so a run with an empty ``SPEEDBENCH_HOME``
(CI) rebuilds them from nothing instead of reading an old machine-wide cache ("fresh means empty").
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The folder speedbench's own caches (prompt sets, the full pool) go under."""
    home = os.environ.get("SPEEDBENCH_CACHE") or os.environ.get("SPEEDBENCH_HOME")
    return Path(home) if home else Path.home() / ".cache" / "speedbench"
