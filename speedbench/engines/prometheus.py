"""Prometheus text-format reading through ``prometheus_client``'s own parser (escapes, ``}`` inside label
values, timestamps, NaN/Inf), so the SD counter deltas never silently miss a sample."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample as (sample name as exposed, e.g. ``..._total``; labels, unescaped; value).

    A malformed exposition raises ValueError naming the line: ``measure.scrape_counters`` then warns and
    records no server counters, rather than deltas summed over whatever lines happened to parse."""
    try:
        return [
            (s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    except ValueError as e:
        raise ValueError(f"unreadable Prometheus text: {e}") from None


def sum_metric(samples, name: str, **match: str) -> float | None:
    """Sum a metric over all label sets matching ``match`` (e.g. over engine indices); None if absent."""
    vals = [v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in match.items())]
    return sum(vals) if vals else None
