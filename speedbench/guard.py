"""Stop a point the moment its server is gone, instead of firing thousands of doomed requests.

Two signals, whichever comes first: the launched server's process has exited (polled every
``poll_s``), or ``max_consecutive`` transport errors or timeouts in a row (a dead, unreachable or stalled
endpoint, the only signal in attach mode: a server whose every stream stalls would otherwise cost the full
idle timeout per request). The guard then cancels the load task; the load client marks requests in flight
``cancelled`` and the runner counts the ones never sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from speedbench.core.records import FAILED, OK, RequestRecord

TRANSPORT_KINDS = ("transport", "timeout")  # the server is not answering, whichever way it shows
T = TypeVar("T")


class PointGuard:
    def __init__(self, is_alive: Callable[[], bool] | None, max_consecutive: int, poll_s: float = 0.1) -> None:
        self.is_alive = is_alive
        self.max_consecutive = max_consecutive
        self.poll_s = poll_s
        self.reason: str | None = None
        self.server_died = False
        self._consecutive = 0
        self._task: asyncio.Future | None = None

    def observe(self, rec: RequestRecord) -> None:
        """Called for every finished request, in completion order."""
        if rec.status == FAILED and rec.error_kind in TRANSPORT_KINDS:
            self._consecutive += 1
            if self._consecutive >= self.max_consecutive:
                if self.is_alive is not None and not self.is_alive():
                    self.abort("server process exited", died=True)
                else:
                    self.abort(f"{self._consecutive} transport errors or timeouts in a row: stopped sending")
        elif rec.status == OK:
            self._consecutive = 0

    def abort(self, reason: str, died: bool = False) -> None:
        if self.reason is None:
            self.reason = reason
            self.server_died = died
            if self._task is not None and not self._task.done():
                self._task.cancel()

    async def run(self, load: Awaitable[T]) -> T | None:
        """Await ``load`` (a coroutine or future) under watch. Returns its result, or None when the guard
        aborted it."""
        task: asyncio.Future[T] = load if isinstance(load, asyncio.Task) else asyncio.ensure_future(load)
        self._task = task
        watcher = asyncio.create_task(self._watch()) if self.is_alive is not None else None
        try:
            return await task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if self.reason is None or (me is not None and getattr(me, "cancelling", lambda: 0)()):
                raise  # cancelled from outside (Ctrl-C, SIGTERM): not ours to swallow
            return None
        finally:
            if watcher is not None:
                watcher.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _watch(self) -> None:
        assert self.is_alive is not None
        while True:
            if not self.is_alive():
                self.abort("server process exited", died=True)
                return
            await asyncio.sleep(self.poll_s)
