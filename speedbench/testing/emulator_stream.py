"""An emulator's streaming response written from inside the engine's iteration (test fixtures only).

Why: a handler task per request that wakes on a queue for every engine step, then goes through aiohttp's
async write path, cost ~60 µs per event on one core and capped the SGLang emulator near 30k events/s, short
of the ~100k tokens/s a client rehearsal needs (docs/rehearsal.md). Here the engine calls ``on_step`` for
each request in its iteration, and the event goes straight to the connection's transport, HTTP/1.1
chunk-framed as aiohttp frames it. Still one SSE event per engine step with output and one write per event,
so the client parses and stamps exactly what it would from a real server.

The handler writes the first event through aiohttp (that also sends the headers), then hands the rest to
``on_step`` and waits for the end; it writes the chunked terminator. When the connection's write buffer is
not empty (the kernel took less than everything: the client is not reading fast enough) a step's tokens are
held and go out with the next step's, as a real server's lagging writer coalesces them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

# build(first, done) -> the SSE payload of everything not yet sent, and marks it sent
EventBuilder = Callable[[bool, bool], bytes]
TAIL = b"data: [DONE]\n\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class DirectStream:
    def __init__(self, build: EventBuilder, interval: int = 1, finished: Callable[[], bool] = lambda: False) -> None:
        self.build = build
        # the request has ended: its last step's event is the final one (SGLang sends the last tokens with
        # the finish reason), and the engine's end-of-request call after it adds nothing
        self.finished = finished
        self.interval = interval
        self.steps = 0
        self.done = False
        self.direct = False
        self.transport: asyncio.Transport | None = None
        self._woken = asyncio.Event()
        self._finished = asyncio.get_running_loop().create_future()

    def on_step(self, new: list[int] | None) -> None:
        """Engine side: one call per step with output (``new``), then one with None at the end."""
        if new is None:
            if self.done:
                return
            self.done = True
        else:
            self.steps += 1
            self.done = self.finished()
        if not self.done and self.steps % self.interval:
            return
        if not self.direct:
            self._woken.set()  # the handler has not sent its first event yet: it takes everything so far
            return
        t = self.transport
        if t is None or t.is_closing():
            if self.done and not self._finished.done():
                self._finished.set_result(None)
            return
        if not self.done and t.get_write_buffer_size():
            return  # the client lags: these tokens go out with the next step's
        data = _chunk(self.build(False, self.done))
        t.write(data + _chunk(TAIL) if self.done else data)
        if self.done:
            self._finished.set_result(None)

    async def serve(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        first = True
        while True:
            await self._woken.wait()
            self._woken.clear()
            await resp.write(self.build(first, self.done))
            first = False
            if self.done:
                await resp.write(TAIL)
                break
            if not self._woken.is_set():  # nothing new while that write awaited: the engine takes over
                self.transport = request.transport
                self.direct = True
                await self._finished
                break
        await resp.write_eof()
        return resp
