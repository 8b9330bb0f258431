"""Gettext ``.po`` catalogues read as (msgid, msgstr) pairs: the translated strings of Django's catalogues.

Standard library only: ``scripts/mini_candidates.py`` imports it.
"""

from __future__ import annotations

import re

_PO_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _po_unescape(s: str) -> str:
    return s.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


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


def language_of(path: str) -> str:
    """The language code of a catalogue at ``.../<lang>/LC_MESSAGES/<domain>.po``."""
    parts = path.split("/")
    return parts[parts.index("LC_MESSAGES") - 1] if "LC_MESSAGES" in parts else ""


def translations_by_language(
    catalogues: list[tuple[str, str]], seen: set[str], min_chars: int = 8
) -> list[tuple[str, str]]:
    """(language, its translated strings joined by lines) from (path, .po text) pairs: English and regional or
    script variants (``pt_BR``, ``sr_Latn``, ``zh_Hant``; ``zh_Hans`` is kept) are left out, as they copy or
    nearly copy another catalogue; a string already in ``seen`` (any language, any package) is left out."""
    by_lang: dict[str, list[str]] = {}
    for path, text in sorted(catalogues):
        lang = language_of(path)
        if lang.startswith("en") or ("_" in lang and lang != "zh_Hans") or "@" in lang:
            continue
        for _, s in parse_po(text):
            s = " ".join(s.split())
            if len(s) >= min_chars and s not in seen:
                seen.add(s)
                by_lang.setdefault(lang, []).append(s)
    return [(lang, "\n".join(strs)) for lang, strs in sorted(by_lang.items())]
