"""A fast stand-in for a vLLM OpenAI server that stamps its own send times: the ground truth that the
client's timing is checked against (scripts/bench_client.py, tests/load).

Raw asyncio protocol (no web framework) so that one core can push more chunks than any client reads.
Modes: zero-latency (ttft = itl = 0: chunks as fast as the client drains them, round-robin over streams,
back-pressured by the socket) and paced (first chunk ``ttft`` after the request arrived, then one every
``itl``, on an absolute schedule).  Chunks are vLLM-shaped ``/v1/completions`` events with continuous usage.
``--lockstep`` puts every paced chunk on one global clock of ``itl`` ticks, as a batched engine's steps do:
equal-length streams that started within one tick end on the same tick, so the client must re-send a
whole wave at once (the burst case).

    python -m speedbench.load.stub_server --port 8123 --ttft-ms 50 --itl-ms 10 --cpu 0

GET /stamps returns, per request, the arrival stamp (the kernel's receive time of the request's first
bytes), the server's CPU time then, and the send stamp of every chunk (perf_counter_ns = CLOCK_MONOTONIC,
comparable with the client's); ``/stamps?reset=1`` clears them.  GET /connects returns the stamp of every
connection accepted (``?reset=1`` clears them): when the client connected, measured apart from requests.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import time
from dataclasses import dataclass

from speedbench.load.eventloop import run_async
from speedbench.load.stamped_socket import AVAILABLE as KERNEL_STAMPS
from speedbench.load.stamped_socket import KernelStampedSocket, prepare_stamped_tcp

_now = time.perf_counter_ns


@dataclass
class StubConfig:
    """How the stub answers: its pacing (seconds to first chunk and between chunks), a fault every request
    meets, odd but legal framing, and what it stamps."""

    ttft_s: float = 0.0
    itl_s: float = 0.0
    model: str = "stub"
    fault: str | None = None  # http_500 | truncate | malformed | error_event (every request)
    odd_framing: bool = False  # comments, "data:" without space, events split across writes
    stamp_chunks: bool = True  # keep every chunk's send stamp (else first and last only)
    burst: int = 1  # zero-latency: events per socket write per stream and round (1 = one each)
    kernel_timestamps: bool = True  # request arrival = the kernel's receive stamp (Linux), not the read time
    lockstep: bool = False  # paced chunks on one global tick of itl_s (a batched engine's steps)
    end_delay_s: float = 0.0  # write the chunked body's terminator this long after [DONE] (a late message end)


_END = b"0\r\n\r\n"  # the chunked body's terminator: the response's end


def _frame(data: bytes) -> bytes:
    """HTTP/1.1 chunked transfer-encoding frame."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Stream:
    __slots__ = ("conn", "n", "i", "prompt_len", "echo", "recv_ns", "sends", "due_ns", "paced", "cpu_ns")

    def __init__(self, conn: _Conn, n: int, prompt_len: int, echo: list | None, recv_ns: int) -> None:
        self.conn, self.n, self.i, self.prompt_len, self.echo = conn, n, 0, prompt_len, echo
        self.recv_ns, self.due_ns, self.paced = recv_ns, 0, False
        self.sends: list[int] = []  # perf_counter_ns of each stamped chunk write
        self.cpu_ns = time.process_time_ns()  # the server's own CPU time at arrival: is the server the limit?

    def event(self) -> bytes:
        """The SSE bytes of the next event (one output token per chunk; then usage-only; then [DONE])."""
        i, p = self.i, self.prompt_len
        if i < self.n:
            k = i + 1
            fin = b'"length"' if k == self.n else b"null"
            echo = (
                json.dumps(self.echo, separators=(",", ":")).encode() if (i == 0 and self.echo is not None) else b"null"
            )
            body = (
                b'{"id":"cmpl-stub","object":"text_completion","created":0,"model":"%s","choices":[{"index":0,'
                b'"text":" tok%d","logprobs":null,"finish_reason":%s,"stop_reason":null,"token_ids":[%d],'
                b'"prompt_token_ids":%s}],"usage":{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d}}'
                % (self.conn.server.model, k, fin, 1000 + k, echo, p, p + k, k)
            )
        elif i == self.n:
            body = (
                b'{"id":"cmpl-stub","object":"text_completion","created":0,"model":"%s","choices":[],'
                b'"usage":{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d}}'
                % (self.conn.server.model, p, p + self.n, self.n)
            )
        else:
            body = b"[DONE]"
        if self.conn.server.cfg.fault == "malformed" and i == 1:
            body = b"{not json"
        if self.conn.server.cfg.fault == "error_event" and i == 1:
            body = b'{"error":{"message":"boom","code":500}}'
        return b"data: " + body + b"\n\n"


class StubServer:
    """The server's state: its streams and its ``log`` of stamps per request (served by ``GET /stamps``)."""

    def __init__(self, cfg: StubConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg = cfg
        self.model = cfg.model.encode()
        self.log: list[dict] = []
        self.connects: list[int] = []  # perf_counter_ns of each accepted connection
        self.ready: collections.deque[_Stream] = collections.deque()  # zero-latency round-robin
        self._pumping = False
        self.loop = loop

    # ---- zero-latency: one callback writes one chunk per ready stream, then yields to the loop --------
    def kick(self) -> None:
        """Schedule one pump over the ready streams unless one is already scheduled."""
        if not self._pumping and self.ready:
            self._pumping = True
            self.loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._pumping = False
        for _ in range(len(self.ready)):
            s = self.ready.popleft()
            if s.conn.paused:
                s.conn.parked = s  # resumes when the socket drains
                continue
            if self.send(s, self.cfg.burst):
                self.ready.append(s)
        self.kick()

    # ---- paced: each stream on its own absolute timeline -------------------------------------------
    def _paced_step(self, s: _Stream) -> None:
        if self.send(s):
            s.due_ns += int(self.cfg.itl_s * 1e9) if s.i < s.n else 0
            self.loop.call_later(max(0, s.due_ns - _now()) / 1e9, self._paced_step, s)

    def start_stream(self, s: _Stream) -> None:
        """Begin answering one request: paced on its schedule, or at once in the zero-latency round-robin."""
        if self.cfg.ttft_s > 0 or self.cfg.itl_s > 0:
            s.due_ns = s.recv_ns + int(self.cfg.ttft_s * 1e9)
            tick = int(self.cfg.itl_s * 1e9)
            if self.cfg.lockstep and tick > 0:  # the first step boundary at or after the TTFT
                s.due_ns = -(-s.due_ns // tick) * tick
            self.loop.call_later(max(0, s.due_ns - _now()) / 1e9, self._paced_step, s)
        else:
            self.ready.append(s)
            self.kick()

    def send(self, s: _Stream, n: int = 1) -> bool:
        """Write the stream's next ``n`` events in one socket write; False once the stream is over."""
        c = s.conn
        if c.transport is None or c.transport.is_closing():
            return False
        frames: list[bytes] = []
        stamped, over = 0, ""  # over: "" while the stream goes on, then "cut" or "done"
        for _ in range(n):
            ev = s.event()
            if self.cfg.odd_framing:
                ev = ev.replace(b"data: ", b"data:")
                frames.append(_frame(b": keepalive\n\n" + ev[:7]))
                ev = ev[7:]
            frames.append(_frame(ev))
            if s.i < s.n and (self.cfg.stamp_chunks or s.i in (0, s.n - 1)):
                stamped += 1
            s.i += 1
            if self.cfg.fault == "truncate" and s.i == 2:
                over = "cut"
                break
            if s.i > s.n + 1:  # [DONE] written
                if not self.cfg.end_delay_s:
                    frames.append(_END)
                over = "done"
                break
        t = _now()
        c.transport.write(b"".join(frames))
        s.sends.extend([t] * stamped)
        if over == "cut":
            c.transport.close()
        elif over == "done" and self.cfg.end_delay_s:
            self.loop.call_later(self.cfg.end_delay_s, self._end_late, s)
        elif over == "done":
            self._ended(s)
        return not over

    def _end_late(self, s: _Stream) -> None:
        c = s.conn
        if c.transport is not None and not c.transport.is_closing():
            c.transport.write(_END)
            self._ended(s)

    def _ended(self, s: _Stream) -> None:
        """The response's last byte is written: log its stamps, and read the connection's next request."""
        c = s.conn
        self.log.append(
            {
                "prompt_head": s.echo[:4] if s.echo else None,
                "prompt_len": s.prompt_len,
                "recv_ns": s.recv_ns,
                "cpu_ns": s.cpu_ns,
                "sends": s.sends,
            }
        )
        c.busy = False
        c.feed(b"")  # a pipelined next request, if any


class _Conn(asyncio.Protocol):
    def __init__(self, server: StubServer) -> None:
        self.server, self.buf = server, b""
        self.transport: asyncio.WriteTransport | KernelStampedSocket | None = None
        self.paused, self.busy = False, False
        self.parked: _Stream | None = None
        self.t_arrive, self.parse_queued = 0, False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connects.append(_now())

    def connection_lost(self, exc) -> None:
        self.transport = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.parked is not None:
            self.server.ready.append(self.parked)
            self.parked = None
            self.server.kick()

    def data_received(self, data: bytes) -> None:
        self.stamped_data(data, _now())

    def stamped_data(self, data: bytes, t: int) -> None:
        # Stamp the arrival (the kernel's stamp where available) and parse later in this loop iteration:
        # parsing one request must not push back the arrival stamps of requests read after it.
        if not self.buf:
            self.t_arrive = t
        self.buf += data
        if not self.parse_queued:
            self.parse_queued = True
            self.server.loop.call_soon(self._parse_queued)

    def _parse_queued(self) -> None:
        self.parse_queued = False
        self.feed(b"")

    def feed(self, data: bytes) -> None:
        self.buf += data
        if self.busy:
            return
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buf[:head_end].decode("latin-1").split("\r\n")
        method, target = head[0].split(" ")[:2]
        length = 0
        for h in head[1:]:
            name, _, value = h.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buf) < head_end + 4 + length:
            return
        body = self.buf[head_end + 4 : head_end + 4 + length]
        self.buf = self.buf[head_end + 4 + length :]
        t_arrive, self.t_arrive = self.t_arrive, _now()  # a pipelined next request counts from here
        self.handle(method, target, body, t_arrive)

    def _write(self, data: bytes) -> None:
        # a client that hung up before its request was answered gets nothing (send() checks the same)
        if self.transport is not None:
            self.transport.write(data)

    def reply(self, status: str, body: bytes, ctype: str = "application/json") -> None:
        self._write(
            b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (status.encode(), ctype.encode(), len(body), body)
        )
        self.feed(b"")

    def handle(self, method: str, target: str, body: bytes, recv_ns: int) -> None:
        srv = self.server
        path = target.split("?")[0]
        if method == "GET" and path == "/stamps":
            out = json.dumps(srv.log).encode()
            if "reset=1" in target:
                srv.log = []
            return self.reply("200 OK", out)
        if method == "GET" and path == "/connects":
            out = json.dumps(srv.connects).encode()
            if "reset=1" in target:
                srv.connects = []
            return self.reply("200 OK", out)
        if method == "GET" and path in ("/health", "/metrics"):
            return self.reply("200 OK", b"", "text/plain")
        if method == "GET" and path == "/v1/models":
            return self.reply(
                "200 OK",
                json.dumps(
                    {"object": "list", "data": [{"id": srv.cfg.model, "object": "model", "max_model_len": 1 << 20}]}
                ).encode(),
            )
        if method != "POST" or path not in ("/v1/completions", "/v1/chat/completions"):
            return self.reply("404 Not Found", b'{"error":"not found"}')
        if srv.cfg.fault == "http_500":
            return self.reply("500 Internal Server Error", b'{"error":"stub fault"}')
        req = json.loads(body)
        prompt = req.get("prompt", req.get("messages", ""))
        ids = prompt if isinstance(prompt, list) and all(isinstance(x, int) for x in prompt) else None
        plen = len(ids) if ids is not None else len(str(prompt).split())
        n = int(req.get("max_tokens") or req.get("max_completion_tokens") or 16)
        self.busy = True
        self._write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        srv.start_stream(_Stream(self, n, plen, ids, recv_ns))


class _StampedListener:
    """Accepts connections onto kernel-timestamped sockets, so request arrival stamps (the truth TTFT is
    measured from) do not include this server's own loop delay.  close()/serve_forever() like asyncio's."""

    def __init__(self, loop: asyncio.AbstractEventLoop, srv: StubServer, host: str, port: int) -> None:
        self.loop, self.srv = loop, srv
        self.sock = socket.create_server((host, port), backlog=2048)
        self.sock.setblocking(False)
        self.sockets = [self.sock]
        self.closed = loop.create_future()
        loop.add_reader(self.sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(64):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            prepare_stamped_tcp(conn)
            KernelStampedSocket(self.loop, conn, _Conn(self.srv))

    def close(self) -> None:
        if not self.closed.done():
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.closed.set_result(None)

    async def serve_forever(self) -> None:
        await self.closed


async def start_stub(cfg: StubConfig, host: str = "127.0.0.1", port: int = 0):
    """Serve in the running loop; returns (StubServer, server with close(), port)."""
    srv = StubServer(cfg, asyncio.get_running_loop())
    server: _StampedListener | asyncio.Server
    if cfg.kernel_timestamps and KERNEL_STAMPS:
        server = _StampedListener(srv.loop, srv, host, port)
    else:
        server = await srv.loop.create_server(lambda: _Conn(srv), host, port, backlog=2048)
    return srv, server, server.sockets[0].getsockname()[1]


def main() -> None:
    """Command line: serve the stub until interrupted."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--ttft-ms", type=float, default=0.0)
    ap.add_argument("--itl-ms", type=float, default=0.0)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this core (os.sched_setaffinity)")
    ap.add_argument("--model", default="stub")
    ap.add_argument("--burst", type=int, default=1, help="zero-latency: events per write per stream and round")
    ap.add_argument("--lockstep", action="store_true", help="paced: every chunk on one global clock of ITL ticks")
    a = ap.parse_args()
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    cfg = StubConfig(ttft_s=a.ttft_ms / 1e3, itl_s=a.itl_ms / 1e3, model=a.model, burst=a.burst, lockstep=a.lockstep)

    async def serve() -> None:
        _, server, port = await start_stub(cfg, a.host, a.port)
        print(f"stub server on http://{a.host}:{port}", flush=True)
        await server.serve_forever()

    run_async(serve())


if __name__ == "__main__":
    main()
