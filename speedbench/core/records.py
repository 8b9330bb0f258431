"""The raw per-request record: one small slots object per request on the hot path.

On disk: columnar (``records_arrow``, files ending in COLUMNAR_SUFFIX); folders written before it hold one
JSON object per line (``to_json`` / ``from_dict``), still read."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

# Every request ends as exactly one of these.
OK, FAILED, CANCELLED = "ok", "failed", "cancelled"
TIMEOUT = "timeout"  # error_kind of a request or stream that ran out of time (idle or total)
COLUMNAR_SUFFIX = ".arrows"  # a records file in the Arrow IPC stream format (the format's usual extension)


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    prompt_id: str
    category: str
    prompt_len: int  # ids the harness sent
    max_tokens: int
    warmup: bool = False
    # perf_counter_ns once the request's last byte was handed to the kernel (the send returned): TTFT and
    # end-to-end latency count from here, so none of the client's own queueing or connecting is in them
    t_start_ns: int = 0
    t_first_ns: int = 0  # first chunk that carried output tokens
    t_end_ns: int = 0  # stream finished (or failed)
    chunk_times_ns: list[int] = field(default_factory=list)  # one per chunk that carried tokens
    chunk_tokens: list[int] = field(default_factory=list)  # cumulative output tokens after that chunk
    output_ids: list[int] = field(default_factory=list)
    text: str = ""
    server_prompt_tokens: int | None = None  # usage.prompt_tokens as the server counted it
    server_prompt_ids_match: bool | None = None  # echoed prompt ids == sent ids (when the engine echoes)
    completion_tokens: int | None = None  # final usage.completion_tokens
    finish_reason: str | None = None
    status: str = OK
    error_kind: str | None = None
    error: str | None = None
    http_status: int | None = None
    sd: dict | None = None  # per-request SpecDecodeCounters.to_dict()
    sd_per_step_accepted: list[int] | None = None
    sd_per_step_drafted: list[int] | None = None
    # multi-turn: every turn of one conversation shares its conversation id (the first turn's request id);
    # turn 1 is the first user turn; later turns carry the sha256 of the ids built from the model's replies
    conversation_id: str = ""
    turn: int = 1
    prompt_sha256: str | None = None
    # how chunk token counts were known: "usage" (cumulative usage on every chunk), "ids" (the chunk's
    # token ids), "text" (a chunk with text and neither: one token counted for timing; the total then comes
    # from the final usage, else "tokenizer" once the harness has counted the text)
    token_source: str | None = None
    # when the harness wanted to send it (perf_counter_ns): the end of the previous request on its slot
    # (closed loop), the previous turn's end, its due time (open loop), else when it was picked up.
    # t_start_ns - t_wanted_ns is the client's own send delay (wake-up, encoding, any connect, the write);
    # 0 = not recorded (records written before this field existed)
    t_wanted_ns: int = 0
    connect_ns: int = 0  # nanoseconds spent opening a connection for this request (0: a pre-opened one)
    # of t_start_ns - t_wanted_ns, the nanoseconds spent waiting on the server: for the end of its previous
    # reply on the connection this request reuses (the chunked terminator after [DONE]) and for it to read a
    # request too large for the socket at once. The client's own delay is the rest. 0: none, or not recorded
    server_wait_ns: int = 0

    def add_chunk(self, t_ns: int, cumulative_tokens: int) -> None:
        """Tokens arrived: keep the chunk when the cumulative count grew (usage-only chunks carry none)."""
        if cumulative_tokens > (self.chunk_tokens[-1] if self.chunk_tokens else 0):
            if not self.chunk_tokens:
                self.t_first_ns = t_ns
            self.chunk_times_ns.append(t_ns)
            self.chunk_tokens.append(cumulative_tokens)

    @property
    def t_active_end_ns(self) -> int:
        """When the request last did something: its end, except a stream that timed out (idle or total),
        whose wait for bytes that never came ends at its last chunk (or its start). Windows that describe
        the load (throughput, in-flight) end here, so one dead stream cannot stretch them."""
        if self.status == FAILED and self.error_kind == TIMEOUT:
            return self.chunk_times_ns[-1] if self.chunk_times_ns else self.t_start_ns
        return self.t_end_ns

    @property
    def output_tokens(self) -> int:
        if self.completion_tokens is not None:
            return self.completion_tokens
        if self.chunk_tokens:
            return self.chunk_tokens[-1]
        return len(self.output_ids)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> RequestRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
