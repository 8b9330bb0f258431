"""Server-sent-events framing on raw socket blocks, plus byte-level helpers for adapters' fast parsers.

The client reads the response body in whatever blocks the socket delivers (one block may hold many
events, or half of one) and splits lines itself: one ``bytes.split`` per block is far cheaper than one
coroutine wake-up per line.  Every ``data:`` line is one payload; engines put one JSON object per line,
so multi-line ``data`` fields (legal SSE, unused by OpenAI-style servers) are not joined.
"""
from __future__ import annotations

import json
from typing import Callable, Optional

try:  # orjson parses a 300-byte chunk ~4x faster than json; optional so the harness runs without it
    import orjson

    loads: Callable[[bytes], object] = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    loads = json.loads

DONE = b"[DONE]"


class SSESplitter:
    """Feed socket blocks, get the ``data:`` payloads completed by that block (comments, other fields,
    blank lines and keep-alives dropped; ``data:`` with or without the space; ``\\r\\n`` or ``\\n``)."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, block: bytes) -> list[bytes]:
        if self._tail:
            block = self._tail + block
        lines = block.split(b"\n")
        self._tail = lines.pop()  # an unfinished line waits for the next block
        out = []
        for line in lines:
            if line[:5] == b"data:":
                out.append(line[5:].strip())
        return out

    @property
    def pending(self) -> bytes:
        """Bytes of an unfinished line (non-empty at stream end = the stream was cut mid-event)."""
        return self._tail


def int_after(payload: bytes, key: bytes) -> Optional[int]:
    """The non-negative integer right after ``key`` (e.g. ``b'"completion_tokens":'``), else None."""
    i = payload.find(key)
    if i < 0:
        return None
    i += len(key)
    n = len(payload)
    while i < n and payload[i] == 32:  # optional space after the colon
        i += 1
    j = i
    while j < n and 48 <= payload[j] <= 57:
        j += 1
    return int(payload[i:j]) if j > i else None


def int_list_after(payload: bytes, key: bytes) -> Optional[list[int]]:
    """The flat integer list right after ``key`` (e.g. ``b'"token_ids":'``); None if absent or ``null``."""
    i = payload.find(key)
    if i < 0:
        return None
    i += len(key)
    while payload[i:i + 1] == b" ":
        i += 1
    if payload[i:i + 1] != b"[":
        return None
    j = payload.find(b"]", i)
    if j < 0:
        raise ValueError("unterminated list")
    body = payload[i + 1:j]
    return [int(x) for x in body.split(b",")] if body.strip() else []


def str_after(payload: bytes, key: bytes) -> Optional[str]:
    """The JSON string right after ``key`` (e.g. ``b'"text":'``), unescaped; None if absent or not a string."""
    i = payload.find(key)
    if i < 0:
        return None
    i += len(key)
    while payload[i:i + 1] == b" ":
        i += 1
    if payload[i:i + 1] != b'"':
        return None
    j = payload.find(b'"', i + 1)
    if j < 0:
        raise ValueError("unterminated string")
    raw = payload[i + 1:j]
    if b"\\" not in raw:
        return raw.decode("utf-8")
    # escapes present: find the real closing quote (one not preceded by an odd run of backslashes)
    while True:
        k = j - 1
        while payload[k] == 92:
            k -= 1
        if (j - 1 - k) % 2 == 0:
            break
        j = payload.find(b'"', j + 1)
        if j < 0:
            raise ValueError("unterminated string")
    return json.loads(payload[i:j + 1])
