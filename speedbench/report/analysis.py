"""Pure functions from summary rows / point counters to what reports show: speedups, crossover, acceptance.

No I/O here: `speedbench.report.load` reads results folders, renderers format what these return.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from speedbench.metrics import uncertainty as un
from speedbench.metrics.speedup import UnitsOf, speedup_rows

# Rows describing the same SD setting of the same run share these keys.
SETTING_KEYS = ("run", "model", "engine", "sd_label", "sd_method", "draft_length")


def setting_key(row: dict) -> tuple:
    return tuple(row.get(k) for k in SETTING_KEYS)


def setting_name(row: dict, with_run: bool = False) -> str:
    """'model / SD method / engine [/ k=draft length]' as in the SPEED-Bench tables."""
    parts = [str(row.get("model") or "?"), str(row.get("sd_method")), str(row.get("engine"))]
    if row.get("draft_length") and row.get("sd_method") != "off":
        parts.append(f"k={row['draft_length']}")
    name = " / ".join(parts)
    return f"{row['run']}: {name}" if with_run and row.get("run") else name


def speedups(rows: Sequence[dict], units: UnitsOf | None = None) -> list[dict]:
    """SD-on / SD-off pairs (see metrics.speedup.speedup_rows, the one definition); ``units`` gives a
    row's per-prompt sums for the paired interval."""
    return speedup_rows(rows, units)


@dataclass(frozen=True)
class Crossover:
    """Where SD stops paying along a concurrency sweep.

    status: 'crossover' (concurrency set), 'always_pays' (speedup ≥ 1 everywhere), 'never_pays' (< 1
            everywhere), 'mixed' (≥ 1 at the highest concurrency but < 1 somewhere below), 'no_data'.
    below/above: the measured concurrencies that bracket the crossing.
    below_one: every concurrency whose speedup is < 1; noise: those whose interval holds 1.0.
    """

    status: str
    concurrency: float | None = None
    below: int | None = None
    above: int | None = None
    below_one: tuple[int, ...] = ()
    noise: tuple[int, ...] = ()

    def describe(self) -> str:
        if self.status == "crossover":
            dips = [c for c in self.below_one if c < (self.below or 0)]
            text = f"{self.concurrency:.1f} (between {self.below} and {self.above})" + (
                f"; also < 1 at c={_cs(dips)}" if dips else ""
            )
        else:
            text = {
                "always_pays": "none in range (speedup ≥ 1 at every concurrency)",
                "never_pays": "none in range (speedup < 1 at every concurrency)",
                "mixed": f"none in range (≥ 1 at the highest concurrency, < 1 at c={_cs(self.below_one)})",
            }.get(self.status, "no data")
        return text + (f"; within noise at c={_cs(self.noise)}" if self.noise and self.status != "no_data" else "")


def _cs(concurrencies: Iterable[int]) -> str:
    return ",".join(str(c) for c in concurrencies)


def crossover(points: Iterable[tuple[int, float | None]], noise: Iterable[int] = ()) -> Crossover:
    """First concurrency after which the speedup stays < 1, interpolated linearly on log2(concurrency).

    ``points`` are (concurrency, speedup); points without a speedup are ignored. ``noise``: concurrencies
    whose speedup interval holds 1.0, named in the description.
    """
    pts = sorted((c, s) for c, s in points if s is not None and not math.isnan(s) and c > 0)
    if not pts:
        return Crossover("no_data")
    below_one = tuple(c for c, s in pts if s < 1.0)
    noise = tuple(sorted(set(noise) & {c for c, _ in pts}))
    if not below_one:
        return Crossover("always_pays", noise=noise)
    if pts[-1][1] >= 1.0:
        return Crossover("mixed", below_one=below_one, noise=noise)
    i = len(pts) - 1
    while i > 0 and pts[i - 1][1] < 1.0:
        i -= 1
    if i == 0:
        return Crossover("never_pays", below_one=below_one, noise=noise)
    (c0, s0), (c1, s1) = pts[i - 1], pts[i]
    x0, x1 = math.log2(c0), math.log2(c1)
    frac = (s0 - 1.0) / (s0 - s1)  # s0 ≥ 1 > s1, so 0 ≤ frac < 1
    return Crossover("crossover", 2.0 ** (x0 + frac * (x1 - x0)), c0, c1, below_one, noise)


def crossovers(speedup_rows: Sequence[dict]) -> list[dict]:
    """One row per (run, engine, ISL, SD setting): crossover concurrency for output TPS and user TPS."""
    groups: dict[tuple, list[dict]] = {}
    for s in speedup_rows:
        groups.setdefault((s.get("run"), s.get("model"), s["engine"], s["isl"], s["sd_label"]), []).append(s)
    out = []
    for (run, model, engine, isl, sd_label), grp in groups.items():
        row = {
            "run": run,
            "model": model,
            "engine": engine,
            "isl": isl,
            "sd_label": sd_label,
            "concurrencies": sorted({g["concurrency"] for g in grp}),
        }
        for metric in ("output_tps", "user_tps"):
            noise = [g["concurrency"] for g in grp if g.get(f"{metric}_verdict") == un.NOISE]
            x = crossover(((g["concurrency"], g[f"{metric}_speedup"]) for g in grp), noise)
            row[f"{metric}_crossover"] = x.concurrency
            row[f"{metric}_crossover_status"] = x.status
            row[f"{metric}_crossover_text"] = x.describe()
        out.append(row)
    return out


def verdict_text(speedups: Sequence[dict], metric: str = "output_tps") -> str:
    """What the speedups of one setting say, concurrency by concurrency, with their intervals: 'SD pays'
    only where the whole interval is above 1, 'within noise' where it holds 1.0."""
    by: dict[tuple[str, bool], list[int]] = {}  # (verdict, judged without an interval) -> concurrencies
    for s in sorted(speedups, key=lambda s: s["concurrency"]):
        v, bare = s.get(f"{metric}_verdict"), False
        if v is None:
            x = s.get(f"{metric}_speedup")
            if x is None:
                continue
            v, bare = (un.PAYS if x >= 1.0 else un.SLOWER), True
        cs = by.setdefault((v, bare), [])
        if s["concurrency"] not in cs:
            cs.append(s["concurrency"])
    words = {un.PAYS: "SD pays", un.SLOWER: "SD is slower", un.NOISE: "within noise"}
    tail = {True: " (no interval)", False: ""}
    if len(by) == 1:
        ((v, bare),) = by
        return f"{words[v]} at every measured concurrency{tail[bare]}"
    return "; ".join(f"{words[v]} at c={_cs(cs)}{tail[bare]}" for (v, bare), cs in by.items()) or "-"


def position_acceptance(counters: dict | None, speedbench_rates: dict[int, float] | None = None) -> list[dict]:
    """Per draft position i (1-based): absolute P(i accepted) and conditional P(i accepted | i−1 accepted)
    per drafted step, beside SPEED-Bench's conditional rate at chunk length i + 1.

    From engine-neutral counters: accepted_per_position[i] counts drafted steps whose position i was
    accepted; drafts counts drafted steps (position 0's condition: the step drafted at all).
    ``speedbench_rates`` (metrics.speed_bench.conditional_rates) come from the histogram of every chunk
    length, prefill chunks and steps without a draft included: P(len ≥ i + 1 | len ≥ i), so they are low
    where many steps draft nothing (n-gram) although the drafts that were made are mostly accepted.
    """
    rates = speedbench_rates or {}
    out: list[dict] = []
    if counters and counters.get("drafts"):
        drafts = counters["drafts"]
        prev = drafts
        for i, a in enumerate(counters.get("accepted_per_position") or []):
            out.append(
                {"position": i + 1, "accepted": a, "absolute": a / drafts, "conditional": a / prev if prev else None}
            )
            prev = a
    for i in range(len(out), max(rates, default=1) - 1):  # lengths the counters do not reach (or no counters)
        out.append({"position": i + 1, "accepted": None, "absolute": None, "conditional": None})
    for pos in out:
        pos["conditional_speedbench"] = rates.get(pos["position"] + 1)
    return out


def sum_counters(counters: Iterable[dict | None]) -> dict | None:
    """Σ of counter dicts (drafts, draft_tokens, accepted_tokens, accepted_per_position)."""
    total: dict | None = None
    for c in counters:
        if not c:
            continue
        if total is None:
            total = {"drafts": 0, "draft_tokens": 0, "accepted_tokens": 0, "accepted_per_position": []}
        for k in ("drafts", "draft_tokens", "accepted_tokens"):
            total[k] += int(c.get(k) or 0)
        a, b = total["accepted_per_position"], list(c.get("accepted_per_position") or [])
        n = max(len(a), len(b))
        total["accepted_per_position"] = [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(n)]
    return total
