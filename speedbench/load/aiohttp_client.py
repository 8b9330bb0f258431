"""The streaming POST on aiohttp: the reference implementation to cross-check the raw HTTP/1.1 client
(``speedbench.load.http1``) against, and a fallback for servers that one cannot talk to.

Chosen with ``load.http_client: aiohttp``.  Same contract as ``Http1Pool.stream``: SSE payloads go to the
sink with the perf_counter_ns of the socket read that delivered them (read time; no kernel stamps here).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import aiohttp

from speedbench.load.exchange import StreamOutcome
from speedbench.load.sse import SSESplitter

_now = time.perf_counter_ns
_JSON = {"Content-Type": "application/json"}


class AiohttpStreamer:
    """One aiohttp session's streaming POSTs (``LoadPlan.http_client = "aiohttp"``)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, headers: dict[str, str]) -> None:
        self.session, self.base_url, self.headers = session, base_url, {**_JSON, **headers}

    async def open_idle(self, n: int) -> int:
        """Nothing: aiohttp opens its connections as requests need them, so on this (cross-check) client a
        slot's first request includes its connect, and starts are stamped before the request is written."""
        return 0

    async def stream(self, path: str, data: bytes, sink: Callable[[bytes, int], bool]) -> StreamOutcome:
        """POST ``data`` (JSON) to ``path`` and feed every SSE payload of a 200 reply to ``sink`` (as ``Http1Pool``)."""
        out = StreamOutcome()
        split = SSESplitter()
        try:
            async with self.session.post(self.base_url + path, data=data, headers=self.headers) as resp:
                out.http_status = resp.status
                if resp.status != 200:
                    out.error_kind, out.error = f"http_{resp.status}", (await resp.text())[:300]
                    return out
                content = resp.content
                while True:
                    block = await content.readany()
                    t = _now()
                    if not block:
                        out.error_kind, out.error = "truncated_stream", "stream ended without [DONE]"
                        return out
                    for payload in split.feed(block):
                        if sink(payload, t):
                            return out
        except asyncio.TimeoutError:
            out.error_kind, out.error = "timeout", "request or stream timed out"
        except aiohttp.ClientError as e:
            out.error_kind, out.error = "transport", f"{type(e).__name__}: {e}"[:300]
        finally:
            out.t_end_ns = _now()
        return out


@contextlib.asynccontextmanager
async def aiohttp_streamer(base_url: str, headers: dict[str, str], total_timeout_s: float, idle_timeout_s: float):
    """One session (one unbounded keep-alive pool) for a point's share of requests."""
    timeout = aiohttp.ClientTimeout(total=total_timeout_s, sock_read=idle_timeout_s)
    connector = aiohttp.TCPConnector(limit=0, force_close=False, enable_cleanup_closed=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, raise_for_status=False) as session:
        yield AiohttpStreamer(session, base_url, headers)
