"""The engine-neutral acceptance record every adapter fills, with its invariants checked."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SpecDecodeCounters:
    """Speculative-decoding counters, global (server counter deltas) or for one request.

    drafts           verify steps that carried at least one draft token
    draft_tokens     draft tokens proposed
    accepted_tokens  draft tokens accepted (the bonus token is not counted)
    accepted_per_position[i]  drafts whose position i (0-based) was accepted
    """

    drafts: int = 0
    draft_tokens: int = 0
    accepted_tokens: int = 0
    accepted_per_position: tuple[int, ...] = field(default=())
    source: str = ""

    def __post_init__(self) -> None:
        if min(self.drafts, self.draft_tokens, self.accepted_tokens) < 0:
            raise ValueError(f"negative SD counter in {self}")
        if self.accepted_tokens > self.draft_tokens:
            raise ValueError(f"accepted ({self.accepted_tokens}) > drafted ({self.draft_tokens}) in {self.source}")

    def __sub__(self, before: SpecDecodeCounters) -> SpecDecodeCounters:
        n = max(len(self.accepted_per_position), len(before.accepted_per_position))
        a = list(self.accepted_per_position) + [0] * (n - len(self.accepted_per_position))
        b = list(before.accepted_per_position) + [0] * (n - len(before.accepted_per_position))
        return SpecDecodeCounters(
            self.drafts - before.drafts,
            self.draft_tokens - before.draft_tokens,
            self.accepted_tokens - before.accepted_tokens,
            tuple(x - y for x, y in zip(a, b)),
            self.source,
        )

    def __add__(self, other: SpecDecodeCounters) -> SpecDecodeCounters:
        n = max(len(self.accepted_per_position), len(other.accepted_per_position))
        a = list(self.accepted_per_position) + [0] * (n - len(self.accepted_per_position))
        b = list(other.accepted_per_position) + [0] * (n - len(other.accepted_per_position))
        return SpecDecodeCounters(
            self.drafts + other.drafts,
            self.draft_tokens + other.draft_tokens,
            self.accepted_tokens + other.accepted_tokens,
            tuple(x + y for x, y in zip(a, b)),
            self.source or other.source,
        )

    @property
    def acceptance_length(self) -> float | None:
        """Acceptance length over drafted steps: 1 + accepted / drafts (bonus token included)."""
        return 1.0 + self.accepted_tokens / self.drafts if self.drafts else None

    @property
    def draft_acceptance_rate(self) -> float | None:
        return self.accepted_tokens / self.draft_tokens if self.draft_tokens else None

    @property
    def per_position_rate(self) -> tuple[float, ...]:
        """P(position i accepted) over drafted steps."""
        return tuple(x / self.drafts for x in self.accepted_per_position) if self.drafts else ()

    def to_dict(self) -> dict:
        return {
            "drafts": self.drafts,
            "draft_tokens": self.draft_tokens,
            "accepted_tokens": self.accepted_tokens,
            "accepted_per_position": list(self.accepted_per_position),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> SpecDecodeCounters | None:
        if not d:
            return None
        return cls(
            int(d["drafts"]),
            int(d["draft_tokens"]),
            int(d["accepted_tokens"]),
            tuple(int(x) for x in d.get("accepted_per_position", ())),
            d.get("source", ""),
        )


def counters_from_histogram(histogram: list[int], draft_tokens: int, source: str) -> SpecDecodeCounters:
    """Per-request counters from a dense histogram h[j] = verify steps that accepted exactly j drafts."""
    drafts = sum(histogram)
    accepted = sum(j * c for j, c in enumerate(histogram))
    # position i (0-based) was accepted on every step that accepted more than i drafts
    per_pos = tuple(sum(histogram[i + 1 :]) for i in range(len(histogram) - 1))
    return SpecDecodeCounters(drafts, draft_tokens, accepted, per_pos, source)
