"""Streaming HTTP/1.1 POSTs on raw asyncio protocols: the load generator's hot path.

Why not aiohttp here (it still does every control-plane call): per socket read aiohttp feeds a StreamReader
and wakes the reading task, a coroutine step per chunk.  At 512 streams that bookkeeping, not parsing,
was the client's ceiling (scripts/bench_client.py).  Here a read costs one timestamp and one list append;
nothing else runs until every socket that was ready in this loop iteration has been read and stamped.
Then one deferred callback parses the blocks (httptools' C parser does the HTTP and chunked framing) and
hands each SSE ``data:`` payload to the caller with the stamp of the read that delivered it, so parsing
work never delays another stream's timestamp.  Tasks wake once per request (its end), not per chunk.

On Linux over plain http, sockets are read with ``recvmsg`` and SO_TIMESTAMPNS: each block then carries the
time the kernel queued it, not the time the loop got round to reading it, so TTFT/ITL stay exact even when
512 streams deliver at once and the loop needs milliseconds to read them all (issue 6 measured ~12 us per
read here: 512 simultaneous first tokens take ~6 ms just to read).  Elsewhere (TLS, other OSes) the stamp
is the read time.

Keep-alive connections are pooled per process; a reused connection the server had closed in the meantime
(keep-alive timeout) is retried once on a fresh one if it answered nothing.  One watchdog per pool fails
streams that exceed the idle or total timeout.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl as ssl_mod
import time
from urllib.parse import urlsplit

import httptools

from speedbench.load.exchange import Exchange, PayloadSink, StreamOutcome
from speedbench.load.stamped_socket import AVAILABLE as KERNEL_STAMPS
from speedbench.load.stamped_socket import KernelStampedSocket, prepare_stamped_tcp

_now = time.perf_counter_ns
_ERROR_BODY_LIMIT = 2048
_DRAIN_WAIT_S = 1.0  # longest a request waits for a draining connection before it opens a new one


class _Connection(asyncio.Protocol):
    __slots__ = (
        "pool",
        "transport",
        "parser",
        "ex",
        "blocks",
        "queued",
        "lost",
        "lost_reason",
        "keep_alive",
        "draining",
        "t_block",
    )

    def __init__(self, pool: Http1Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.ex: Exchange | None = None
        self.blocks: list = []  # (t_ns, bytes) read but not yet parsed
        self.queued = False
        self.lost = False
        self.lost_reason = ""
        self.keep_alive = True
        self.draining = False  # the caller is done; the rest of the message is read, then pooled
        self.t_block = 0

    # ---- asyncio.Protocol: reads are stamped and parked, nothing more -------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.stamped_data(data, _now())

    def stamped_data(self, data: bytes, t: int) -> None:
        self.blocks.append((t, data))
        if not self.queued:
            self.queued = True
            self.pool.schedule(self)

    def write_drained(self) -> None:
        """KernelStampedSocket: the last byte of a write that did not fit the socket at once went out now."""
        if self.ex is not None and not self.ex.t_sent_ns:
            self.ex.t_sent_ns = _now()
            if self.ex.t_write_ns:  # the rest waited for the server to read it
                self.ex.outcome.server_wait_ns += self.ex.t_sent_ns - self.ex.t_write_ns

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_reason = f"{type(exc).__name__}: {exc}" if exc else "server closed the connection"
        if not self.queued:
            self.queued = True
            self.pool.schedule(self)

    # ---- deferred parsing ---------------------------------------------------------------------------
    def process(self) -> None:
        self.queued = False
        blocks, self.blocks = self.blocks, []
        for t, data in blocks:
            if self.ex is None:  # bytes nobody asked for: the connection is unusable
                self.close()
                return
            self.t_block = self.ex.t_last_ns = t
            self.ex.got_bytes = True
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as e:
                self.ex.finish(t, "transport", f"bad HTTP response: {e}")
                self.close()
                return
            if self.ex is None or self.ex.done and not self.draining:
                return
        if self.lost and self.ex is not None:
            self.pool.lost_mid_exchange(self)

    # ---- httptools callbacks --------------------------------------------------------------------------
    # httptools calls these only from feed_data in process(), which feeds bytes only during an exchange
    def on_headers_complete(self) -> None:
        assert self.ex is not None
        self.ex.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        ex = self.ex
        assert ex is not None
        if ex.done:
            return  # draining the rest of a message the caller has finished with
        if ex.status != 200:
            if len(ex.error_body) < _ERROR_BODY_LIMIT:
                ex.error_body += body
            return
        sink, t = ex.sink, self.t_block
        for payload in ex.split.feed(body):
            if sink(payload, t):
                ex.finish(t)
                if self.keep_alive:
                    self.draining = True  # pooled again once the message's end arrives
                    self.pool.draining += 1
                else:
                    self.close()
                return

    def on_message_complete(self) -> None:
        ex, t = self.ex, self.t_block
        assert ex is not None
        if not ex.done:
            if ex.status != 200:
                ex.finish(t, f"http_{ex.status}", ex.error_body[:300].decode("utf-8", "replace"))
            elif ex.split.pending.strip():
                ex.finish(t, "truncated_stream", "stream ended mid-event")
            else:
                ex.finish(t, "truncated_stream", "stream ended without [DONE]")
        self.ex = None
        self.end_draining()
        if self.keep_alive and not self.lost:
            self.pool.release(self)
        else:
            self.close()

    def end_draining(self) -> None:
        if self.draining:
            self.draining = False
            self.pool.draining -= 1
            self.pool.wake_waiter()  # a request waiting for this connection: take it, or connect

    def close(self) -> None:
        self.ex = None
        self.end_draining()
        self.keep_alive = False
        self.pool.active.discard(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


async def _within(timeout_s: float, op):
    """``op`` under a deadline, without losing a cancel.  ``asyncio.wait_for`` before 3.12 runs ``op`` as a
    task and, when a cancel lands just as that task fails (a refused connect), raises the failure and drops
    the cancel; ``asyncio.timeout`` (3.11+) awaits ``op`` in place, so a cancel always arrives."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:  # Python 3.10; _Phases.halt still stops the load on a swallowed cancel
        return await asyncio.wait_for(op, timeout_s)
    async with timeout(timeout_s):
        return await op


class Http1Pool:
    """Keep-alive HTTP/1.1 connections to one server, for streaming POSTs (one process, one loop)."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str] | None = None,
        idle_timeout_s: float = 60.0,
        total_timeout_s: float = 600.0,
        connect_timeout_s: float = 30.0,
        kernel_timestamps: bool = True,
    ) -> None:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"load client: base URL {base_url!r} must be http(s)://host[:port][/prefix]")
        self.host, self.port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
        self.ssl = ssl_mod.create_default_context() if u.scheme == "https" else None
        self.prefix = u.path.rstrip("/")
        self.kernel_timestamps = kernel_timestamps and self.ssl is None and KERNEL_STAMPS
        host_header = u.netloc.rsplit("@", 1)[-1]
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head = (
            "POST {path} HTTP/1.1\r\nHost: " + host_header + "\r\nContent-Type: application/json\r\n"
            "Accept: text/event-stream\r\n" + extra + "Content-Length: {n}\r\n\r\n"
        )
        self.idle_ns, self.total_ns = int(idle_timeout_s * 1e9), int(total_timeout_s * 1e9)
        self.connect_timeout_s = connect_timeout_s
        self.idle: list[_Connection] = []
        self.active: set[_Connection] = set()
        # connections whose caller is done ([DONE] read) but whose message end has not arrived yet: a request
        # that finds no idle connection waits for one of these rather than connect (one per in-flight slot)
        self.draining = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._dirty: list[_Connection] = []
        self._scheduled = False
        self.loop = asyncio.get_running_loop()
        self._watchdog = self.loop.create_task(self._watch(min(idle_timeout_s, total_timeout_s)))

    # ---- the deferred parse: once per loop iteration, after every ready socket was read and stamped ---
    def schedule(self, conn: _Connection) -> None:
        """Process ``conn`` (data arrived) in the one callback this loop pass runs for every such connection."""
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._process)

    def _process(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.process()

    # ---- connections --------------------------------------------------------------------------------
    def release(self, conn: _Connection) -> None:
        """``conn`` finished its exchange and may be reused."""
        self.active.discard(conn)
        self.idle.append(conn)

    def wake_waiter(self) -> None:
        """A draining connection was pooled or closed: the longest-waiting request looks again."""
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    async def open_idle(self, n: int) -> int:
        """Open connections until ``n`` are idle: one per in-flight slot, before the measured window, so that
        no measured request waits for a connect.  Returns how many are idle; a connect that fails is left
        to the requests (they then connect themselves and fail as records, or time the connect apart)."""
        need = n - len(self.idle)
        if need > 0:
            opened = await asyncio.gather(*(self._connect() for _ in range(need)), return_exceptions=True)
            for c in opened:
                if isinstance(c, _Connection):
                    self.idle.append(c)
                elif not isinstance(c, (OSError, asyncio.TimeoutError)):
                    raise c
        return len(self.idle)

    def _take_idle(self) -> _Connection | None:
        while self.idle:
            c = self.idle.pop()
            if not c.lost and c.transport is not None and not c.transport.is_closing():
                return c
        return None

    async def _checkout(self) -> _Connection | None:
        """An open connection: an idle one, else (briefly) one whose message is about to end; None: connect.

        A closed-loop slot reads [DONE] and sends its next request at once; the chunked body's terminator
        can arrive a read later, so its connection is not idle yet.  Waiting for it, not connecting, keeps
        one connection per slot and every connect outside the measured window."""
        conn = self._take_idle()
        while conn is None and self.draining:
            w = self.loop.create_future()
            self._waiters.append(w)
            try:
                await _within(_DRAIN_WAIT_S, w)
            except asyncio.TimeoutError:
                return None
            conn = self._take_idle()
        return conn

    def lost_mid_exchange(self, conn: _Connection) -> None:
        """``conn`` closed under an exchange: end it as an HTTP error (a body ended by the close) or a transport
        failure."""
        ex = conn.ex
        self.active.discard(conn)
        conn.ex = None
        if ex is not None and not ex.done:
            if ex.status is not None and ex.status != 200:  # an error body delimited by the close
                ex.finish(_now(), f"http_{ex.status}", ex.error_body[:300].decode("utf-8", "replace"))
            else:
                ex.finish(_now(), "transport", conn.lost_reason)

    async def _connect(self) -> _Connection:
        return await _within(self.connect_timeout_s, self._open())

    async def _open(self) -> _Connection:
        if not self.kernel_timestamps:
            _, conn = await self.loop.create_connection(lambda: _Connection(self), self.host, self.port, ssl=self.ssl)
            return conn
        return await self._connect_stamped()

    async def _connect_stamped(self) -> _Connection:
        infos = await self.loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        last: OSError | None = None
        for family, type_, proto, _, addr in infos:
            sock = socket.socket(family, type_, proto)
            try:
                prepare_stamped_tcp(sock)
                await self.loop.sock_connect(sock, addr)
            except OSError as e:
                sock.close()
                last = e
                continue
            except BaseException:
                sock.close()
                raise
            conn = _Connection(self)
            KernelStampedSocket(self.loop, sock, conn)
            return conn
        raise last or OSError(f"cannot resolve {self.host}")

    async def stream(self, path: str, body: bytes, sink: PayloadSink) -> StreamOutcome:
        """POST ``body`` (JSON) to ``path`` and feed every SSE payload of a 200 reply to ``sink``.  The
        outcome says when the request's last byte went to the kernel and how long a connect took, if any."""
        request = self._head.format(path=self.prefix + path, n=len(body)).encode("latin-1") + body
        connect_ns = 0
        for attempt in (0, 1):
            t_checkout = _now()
            conn = await self._checkout()
            drain_wait_ns = _now() - t_checkout  # ~0 with an idle connection; else the server ending a reply
            reused = conn is not None
            t0 = _now()
            if conn is None:
                try:
                    conn = await self._connect()
                except asyncio.TimeoutError:
                    return StreamOutcome(
                        error_kind="timeout", error="connect timed out", t_end_ns=_now(), connect_ns=_now() - t0
                    )
                except OSError as e:
                    return StreamOutcome(
                        error_kind="transport",
                        error=f"connect: {type(e).__name__}: {e}"[:300],
                        t_end_ns=_now(),
                        connect_ns=_now() - t0,
                    )
                connect_ns += _now() - t0
            ex = Exchange(sink, self.loop.create_future(), t0)
            ex.outcome.connect_ns = connect_ns
            ex.outcome.server_wait_ns = drain_wait_ns if reused else 0
            conn.ex = ex
            self.active.add(conn)
            transport = conn.transport
            assert transport is not None  # set by connection_made before the connect returns
            ex.t_write_ns = _now()
            transport.write(request)
            # the request's start: its last byte is with the kernel (a write that did not fit the socket
            # stamps itself when it drains: _Connection.write_drained)
            if not transport.get_write_buffer_size() or not isinstance(transport, KernelStampedSocket):
                # (uvloop's own transports hand small writes to the kernel at the end of this loop pass:
                # there the stamp is early by at most the rest of the pass)
                ex.t_sent_ns = _now()
            try:
                outcome = await ex.future
            except asyncio.CancelledError:
                conn.close()  # also leaves the active set
                raise
            if outcome.error_kind == "transport" and reused and not ex.got_bytes and attempt == 0:
                continue  # a stale keep-alive connection: the request never reached a live socket
            return outcome
        raise AssertionError("unreachable")

    async def _watch(self, timeout_s: float) -> None:
        """Fail streams silent longer than the idle timeout, or running longer than the total timeout."""
        period = max(0.05, min(1.0, timeout_s / 4))
        while True:
            await asyncio.sleep(period)
            now = _now()
            for conn in list(self.active):
                ex = conn.ex
                if ex is None or ex.done:
                    continue
                if now - ex.t_last_ns > self.idle_ns or now - ex.t_start_ns > self.total_ns:
                    ex.finish(now, "timeout", "request or stream timed out")
                    conn.close()

    async def close(self) -> None:
        """Stop the timeout watchdog and close every connection."""
        self._watchdog.cancel()
        await asyncio.gather(self._watchdog, return_exceptions=True)
        for conn in [*self.idle, *self.active]:
            conn.close()
        self.idle.clear()
        self.active.clear()
