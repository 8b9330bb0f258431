"""The raw HTTP/1.1 client on its own: keep-alive reuse, stale connections, timeouts, error bodies, headers.

A tiny scripted server (asyncio streams) answers each request the way a test needs, and counts connections.
"""

import asyncio

import pytest

from speedbench.load.http1 import Http1Pool

SSE_OK = b'data: {"n":1}\n\ndata: [DONE]\n\n'


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


class Scripted:
    """Serves ``script(i)`` as the raw reply to the i-th request (None = close without answering)."""

    def __init__(self, script):
        self.script, self.requests, self.connections, self.heads = script, 0, 0, []

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head.decode())
                n = int(
                    [h for h in head.decode().split("\r\n") if h.lower().startswith("content-length")][0].split(":")[1]
                )
                await reader.readexactly(n)
                i, self.requests = self.requests, self.requests + 1
                reply = self.script(i)
                if reply is None:
                    break
                if callable(reply):
                    await reply(writer)
                else:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def sse_reply(body: bytes = SSE_OK) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body)


async def _with_server(script, fn, **pool_kw):
    srv = Scripted(script)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Http1Pool(f"http://127.0.0.1:{port}/prefix", **pool_kw)
    try:
        return await fn(pool), srv
    finally:
        await pool.close()
        server.close()


def collect():
    got = []

    def sink(payload, t):
        got.append((payload, t))
        return payload == b"[DONE]"

    return got, sink


def stream_times(n: int, path: str = "/x"):
    """A pool user that sends ``n`` requests one after another: [(outcome, payloads with stamps), ...]."""

    async def fn(pool):
        outs = []
        for _ in range(n):
            got, sink = collect()
            outs.append((await pool.stream(path, b"{}", sink), got))
        return outs

    return fn


def test_keep_alive_reuses_one_connection_and_sends_headers():
    outs, srv = asyncio.run(
        _with_server(lambda i: sse_reply(), stream_times(5, "/v1/completions"), headers={"Authorization": "Bearer k"})
    )
    assert srv.requests == 5 and srv.connections == 1
    assert all(
        o.error_kind is None and o.http_status == 200 and [p for p, _ in got] == [b'{"n":1}', b"[DONE]"]
        for o, got in outs
    )
    assert srv.heads[0].startswith("POST /prefix/v1/completions HTTP/1.1") and "Authorization: Bearer k" in srv.heads[0]


def test_a_stale_keep_alive_connection_is_retried_once_on_a_fresh_one():
    # request 1 arrives on the kept-alive connection and the server drops it without a byte (keep-alive expiry)
    outs, srv = asyncio.run(_with_server(lambda i: None if i == 1 else sse_reply(), stream_times(2)))
    assert [o.error_kind for o, _ in outs] == [None, None]
    assert srv.requests == 3 and srv.connections == 2


def test_http_errors_keep_the_body_and_the_connection():
    body = b'{"error":{"message":"prompt too long"}}'
    reply = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    outs, srv = asyncio.run(_with_server(lambda i: reply, stream_times(2)))
    assert all(o.error_kind == "http_400" and "prompt too long" in o.error and o.http_status == 400 for o, _ in outs)
    assert srv.connections == 1


def test_a_silent_stream_times_out_and_a_clean_end_without_done_is_truncation():
    async def stall(writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"data: {}\n\n")[:-5])
        await writer.drain()
        await asyncio.sleep(5)

    async def fn(pool):
        got, sink = collect()
        t0 = asyncio.get_running_loop().time()
        stalled = await pool.stream("/x", b"{}", sink)
        waited = asyncio.get_running_loop().time() - t0
        truncated = await pool.stream("/x", b"{}", collect()[1])
        return stalled, waited, got, truncated

    script = lambda i: stall if i == 0 else sse_reply(b"data: {}\n\n")
    (stalled, waited, got, truncated), _ = asyncio.run(_with_server(script, fn, idle_timeout_s=0.3))
    assert stalled.error_kind == "timeout" and 0.25 < waited < 2 and [p for p, _ in got] == [b"{}"]
    assert truncated.error_kind == "truncated_stream"


def test_refused_connection_is_a_transport_error_and_bad_urls_are_named():
    async def fn():
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, never listening: refused
            pool = Http1Pool(f"http://127.0.0.1:{port}")
            out = await pool.stream("/x", b"{}", collect()[1])
            await pool.close()
        return out

    out = asyncio.run(fn())
    assert out.error_kind == "transport" and "connect" in out.error

    async def bad():
        Http1Pool("ftp://host/x")

    with pytest.raises(ValueError, match="ftp://host/x"):
        asyncio.run(bad())


def test_every_payload_of_a_block_carries_the_stamp_of_the_read_that_brought_it():
    async def two_writes(writer):
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"data: 1\n\n", b"data: 2\n\n"))
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(chunked(b"data: 3\n\ndata: [DONE]\n\n"))
        await writer.drain()

    async def fn(pool):
        got, sink = collect()
        await pool.stream("/x", b"{}", sink)
        return got

    got, _ = asyncio.run(_with_server(lambda i: two_writes, fn))
    assert [p for p, _ in got] == [b"1", b"2", b"3", b"[DONE]"]
    stamps = [t for _, t in got]
    assert stamps[0] == stamps[1] and stamps[2] == stamps[3] and stamps[2] - stamps[1] > 40e6


def test_an_error_body_ended_by_closing_the_connection_keeps_its_status():
    async def close_after(writer):
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nengine overloaded")
        await writer.drain()
        writer.close()

    async def fn(pool):
        return await pool.stream("/x", b"{}", collect()[1])

    out, _ = asyncio.run(_with_server(lambda i: close_after, fn))
    assert out.error_kind == "http_503" and "engine overloaded" in out.error
