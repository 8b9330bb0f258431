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
