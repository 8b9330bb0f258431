"""Reading a TCP socket with the kernel's receive timestamps (Linux SO_TIMESTAMPNS).

A timestamp taken when the event loop reads a socket includes every millisecond the loop spent on other
sockets first: 512 streams whose tokens land together take ~6 ms just to read on this VM (~12 us a
read), so read-time stamps smear TTFT/ITL by up to that much.  The kernel stamps each segment as it is
queued; ``recvmsg`` hands that stamp back with the data.  It is on the wall clock, so it is moved onto
perf_counter_ns (CLOCK_MONOTONIC) by its age at read time: ``t = perf_counter_ns() - (time_ns() - stamp)``,
which needs no clock-offset bookkeeping and is immune to wall-clock steps outside the read itself.
A read that returns several segments carries the stamp of the last one, so in a burst the earlier events
in that read are stamped late by at most the gap between them.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
from typing import Any, Protocol

_now = time.perf_counter_ns
_wall = time.time_ns
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the cmsg type has the same number
_READ_SIZE = 65536
_STAMP = struct.Struct("qq")
_HIGH_WATER, _LOW_WATER = 256 * 1024, 64 * 1024


def _noop() -> None:
    return None


AVAILABLE = sys.platform == "linux"


def prepare_stamped_tcp(sock: socket.socket) -> None:
    """A connected TCP socket made ready for KernelStampedSocket: non-blocking, no Nagle delay, and the
    kernel's receive timestamps on every read."""
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


class StampedProtocol(Protocol):
    """What KernelStampedSocket calls on its protocol (``pause_writing``/``resume_writing`` are optional and
    looked up at run time): an asyncio.Protocol with a ``stamped_data`` method fits."""

    def connection_made(self, transport: Any) -> None: ...

    def stamped_data(self, data: bytes, t: int) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class KernelStampedSocket:
    """The little of an asyncio transport that the load client and the stub server need, over a non-blocking
    socket read with ``recvmsg``: the protocol's ``stamped_data(data, t_ns)`` gets each block with the time
    the kernel queued it (perf_counter_ns), ``pause_writing``/``resume_writing`` as the send buffer fills
    and drains, ``write_drained`` once a write that did not fit the socket has all gone to the kernel (these
    three only if the protocol has them), ``connection_lost`` once."""

    __slots__ = ("loop", "sock", "fd", "protocol", "_out", "_closing", "_paused")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: StampedProtocol) -> None:
        self.loop, self.sock, self.fd, self.protocol = loop, sock, sock.fileno(), protocol
        self._out = bytearray()
        self._closing = self._paused = False
        protocol.connection_made(self)
        loop.add_reader(self.fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data, anc, _, _ = self.sock.recvmsg(_READ_SIZE, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return self._lost(e)
        t = _now()
        if not data:
            return self._lost(None)
        if anc:  # the last segment read: its age on the wall clock, taken off the monotonic read stamp
            sec, nsec = _STAMP.unpack_from(anc[0][2])
            age = _wall() - (sec * 1_000_000_000 + nsec)
            if 0 < age < 10_000_000_000:
                t -= age
        self.protocol.stamped_data(data, t)

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if self._out:
            self._out += data
            self._flow()
            return
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as e:
            return self._lost(e)
        if n < len(data):  # a large prompt, or a slow reader: the rest goes out as the socket drains
            self._out += data[n:]
            self.loop.add_writer(self.fd, self._on_writable)
            self._flow()

    def _on_writable(self) -> None:
        try:
            n = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return self._lost(e)
        del self._out[:n]
        if not self._out:
            self.loop.remove_writer(self.fd)
            getattr(self.protocol, "write_drained", _noop)()
        self._flow()

    def _flow(self) -> None:
        size = len(self._out)
        if not self._paused and size > _HIGH_WATER:
            self._paused = True
            getattr(self.protocol, "pause_writing", _noop)()
        elif self._paused and size <= _LOW_WATER:
            self._paused = False
            getattr(self.protocol, "resume_writing", _noop)()

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet handed to the kernel (asyncio.WriteTransport's name)."""
        return len(self._out)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._lost(None)

    def _lost(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        self.sock.close()
        self.loop.call_soon(self.protocol.connection_lost, exc)
