"""Ctrl-C and SIGTERM during a sweep: both end as one exception, so every ``finally`` (records flushed, server
torn down, manifest closed) runs."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: finished points are on disk, the server is torn down, the exit is non-zero."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into an exception so every ``finally`` (flush records, server teardown) runs."""

    def handler(signum, frame):
        raise SweepInterrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a REST worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
