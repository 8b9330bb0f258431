"""Minimal Prometheus text-format reader: enough for counters and gauges with labels."""
from __future__ import annotations

import re

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def sum_metric(samples, name: str, **match: str) -> float | None:
    """Sum a metric over all label sets matching ``match`` (e.g. over engine indices); None if absent."""
    vals = [v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in match.items())]
    return sum(vals) if vals else None
