"""Kernel receive timestamps: a chunk's stamp is when it reached the socket, even if the loop was busy.

The server is a plain thread (not on the client's event loop) that stamps its sends with the same
CLOCK_MONOTONIC (perf_counter_ns), so the client's stamps can be checked against it directly.
"""

import asyncio
import socket
import sys
import threading
import time

import pytest

from speedbench.load.http1 import Http1Pool

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS is Linux-only")


def frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class ThreadServer:
    """One connection: reads one request (all of its body), answers with events at set delays."""

    def __init__(self, delays_s=(0.0, 0.05), read_slowly=False):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.delays_s, self.read_slowly = delays_s, read_slowly
        self.sent_ns: list[int] = []
        self.body_len = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += conn.recv(65536)
        head, _, rest = buf.partition(b"\r\n\r\n")
        n = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(rest) < n:
            if self.read_slowly:
                time.sleep(0.001)
            rest += conn.recv(65536)
        self.body_len = len(rest)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i, d in enumerate(self.delays_s):
            time.sleep(d)
            self.sent_ns.append(time.perf_counter_ns())
            conn.sendall(frame(b"data: %d\n\n" % i))
        conn.sendall(frame(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        time.sleep(0.2)
        conn.close()
        self.sock.close()


def run_blocking_client(kernel_timestamps: bool):
    """The sink blocks the loop for 150 ms on the first event; the second arrives 50 ms into that stall."""
    srv = ThreadServer()
    got = []

    def sink(payload, t):
        got.append((payload, t, time.perf_counter_ns()))
        if payload == b"0":
            time.sleep(0.15)  # the event loop is stuck: no socket is read meanwhile
        return payload == b"[DONE]"

    async def main():
        pool = Http1Pool(f"http://127.0.0.1:{srv.port}", kernel_timestamps=kernel_timestamps)
        try:
            return await pool.stream("/v1/completions", b"{}", sink)
        finally:
            await pool.close()

    out = asyncio.run(main())
    srv.thread.join(5)
    return out, got, srv.sent_ns


def test_kernel_stamps_see_through_a_stalled_loop():
    out, got, sent = run_blocking_client(kernel_timestamps=True)
    assert out.error_kind is None and [p for p, _, _ in got] == [b"0", b"1", b"[DONE]"]
    (_, t0, _), (_, t1, handled1), _ = got
    assert abs(t0 - sent[0]) < 5e6  # both stamps within 5 ms of the server's send
    assert abs(t1 - sent[1]) < 5e6
    assert handled1 - t1 > 60e6  # although the loop only got to it ~100 ms later


def test_read_time_stamps_include_the_stall():
    out, got, sent = run_blocking_client(kernel_timestamps=False)
    assert out.error_kind is None
    (_, t1, _) = got[1]
    assert t1 - sent[1] > 60e6  # the stamp is when the loop read it


def test_a_large_request_body_goes_out_in_pieces():
    srv = ThreadServer(delays_s=(0.0,), read_slowly=True)
    body = b"[" + b",".join(b"12345" for _ in range(1_500_000)) + b"]"  # ~9 MB: more than the socket takes

    async def main():
        pool = Http1Pool(f"http://127.0.0.1:{srv.port}")
        try:
            return await pool.stream("/v1/completions", body, lambda p, t: p == b"[DONE]")
        finally:
            await pool.close()

    out = asyncio.run(main())
    srv.thread.join(10)
    assert out.error_kind is None and srv.body_len == len(body)
