"""The event loop a load process runs on: uvloop when installed, else asyncio's own."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed (several times faster I/O callbacks), else asyncio."""
    try:
        # imported here, not at the top: uvloop is an optional dependency (no wheels on some platforms)
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)
