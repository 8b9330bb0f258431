"""One streaming request/response on the raw HTTP/1.1 client (``http1``) and how it ended.  ``StreamOutcome``
is what both HTTP clients hand back (``aiohttp_client`` too); the exchange holds the stamps that the
outcome and the timeouts come from: when the request was taken up (the watchdog's total timeout), when it
left (``t_sent_ns``: its last byte handed to the kernel; what TTFT counts from) and its last byte read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from speedbench.load.sse import SSESplitter

# on_payload(payload, t_ns) -> True when the stream is over for the caller ([DONE] or a failure it recorded)
PayloadSink = Callable[[bytes, int], bool]


@dataclass
class StreamOutcome:
    """How one streaming request ended, in the load client's error vocabulary."""

    http_status: int | None = None
    error_kind: str | None = None  # None = the sink ended the stream itself (or it completed)
    error: str | None = None
    t_end_ns: int = 0
    # when the request's last byte was handed to the kernel (0: never written); what TTFT counts from
    t_sent_ns: int = 0
    connect_ns: int = 0  # time spent opening a connection for this request (0: an open one was reused)
    # of the time before it left, what waited on the server: its previous reply's end on the connection this
    # request reuses, and its reading of a request too large for the socket at once (the server's, not ours)
    server_wait_ns: int = 0


class Exchange:
    """One request/response on a connection."""

    __slots__ = (
        "sink",
        "future",
        "status",
        "split",
        "error_body",
        "done",
        "t_start_ns",
        "t_last_ns",
        "got_bytes",
        "outcome",
        "t_sent_ns",
        "t_write_ns",
    )

    def __init__(self, sink: PayloadSink, future: asyncio.Future, t_start_ns: int) -> None:
        self.sink, self.future = sink, future
        self.status: int | None = None
        self.split = SSESplitter()
        self.error_body = b""
        self.done = False
        self.t_start_ns = self.t_last_ns = t_start_ns
        self.got_bytes = False
        self.outcome = StreamOutcome()
        self.t_sent_ns = 0
        self.t_write_ns = 0  # when the request was handed to the transport (its write may not fit at once)

    def finish(self, t_ns: int, kind: str | None = None, error: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        o = self.outcome
        o.http_status, o.error_kind, o.error, o.t_end_ns = self.status, kind, error, t_ns
        o.t_sent_ns = self.t_sent_ns
        if not self.future.done():
            self.future.set_result(o)
