"""Server-sent-events framing on raw socket blocks (the JSON codec for chunk payloads: ``core.jsoncodec``).

The client reads the response body in whatever blocks the socket delivers (one block may hold many
events, or half of one) and splits lines itself: one ``bytes.split`` per block is far cheaper than one
coroutine wake-up per line.  Every ``data:`` line is one payload; engines put one JSON object per line,
so multi-line ``data`` fields (legal SSE, unused by OpenAI-style servers) are not joined.
"""

from __future__ import annotations

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
