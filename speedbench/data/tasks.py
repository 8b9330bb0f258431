"""Throughput tasks: the instruction put after a window of long real text, as SPEED-Bench puts its question
after the context. Pure functions: window text in, instruction text out; nothing random.

Each document kind has a few task templates whose answer is in the window: a question quoting something
found in the text (a function's docstring, a section title, a catalogue entry, a speaker) or a request over
the end of it (summarise, translate the last paragraph, read the last rows). Prompt *i* takes template
``i % len(templates)`` of its kind and, where a template quotes, the match ``i % len(matches)``; a template
that finds nothing to quote gives way to the kind's generic task.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_QUOTE = 120  # characters of quoted text: keeps every instruction short and its length bounded
SEP = "\n\n"  # between the text and the instruction

_DOCSTRING = re.compile(r'\n[ \t]*def (\w+)\([^\n]*\n[ \t]+[rRuU]?"""[ \t]*([A-Z][^\n"]{20,}?)\s*(?:\n|""")')
_CLASS = re.compile(r"\nclass (\w{4,})\b")
_RST_TITLE = re.compile(r"\n([A-Za-z`][^\n]{5,80})\n([=\-~^\"'`*#+])\2{4,}\n")
_PO_ENTRY = re.compile(r'\nmsgid "([^"\n]{20,120})"\nmsgstr "([^"\n]+)"\n')
_API_OPERATION = re.compile(r"\n### Operation (\w+)\n")
_SPEAKER = re.compile(r"\n([A-Z][A-Z' ]{2,30}[A-Z])\.\n")

Template = Callable[[str, int], str | None]


def _quote(s: str) -> str:
    s = " ".join(s.split())
    return s if len(s) <= MAX_QUOTE else s[:MAX_QUOTE].rsplit(" ", 1)[0] + " …"


def _pick(matches: list, i: int):
    return matches[i % len(matches)] if matches else None


def _code_docstring(text: str, i: int) -> str | None:
    m = _pick(_DOCSTRING.findall(text), i)
    return m and (
        f'Which function in the code above is documented as "{_quote(m[1])}"? Give its name, '
        "explain step by step how it does that, and name the functions it calls."
    )


def _code_class(text: str, i: int) -> str | None:
    m = _pick(_CLASS.findall(text), i)
    return m and (
        f"Explain what the class `{m}` defined in the code above is for, list its methods, and "
        "describe how they work together."
    )


def _docs_section(text: str, i: int) -> str | None:
    m = _pick(_RST_TITLE.findall(text), i)
    return m and (
        f'Summarise the section "{_quote(m[0])}" of the documentation above in five bullet points, '
        "then give one short example of applying it."
    )


def _po_entry(text: str, i: int) -> str | None:
    m = _pick(_PO_ENTRY.findall(text), i)
    return m and (
        f'In the translation catalogue above, find the entry whose English message is "{_quote(m[0])}". '
        "Which language is its translation in? Translate the translation back into English word by "
        "word and say whether it is faithful."
    )


def _api_operation(text: str, i: int) -> str | None:
    m = _pick(_API_OPERATION.findall(text), i)
    return m and (
        f"According to the API reference above, what does the operation `{m}` do? List what a caller must "
        "provide and every limit or error condition the text mentions for it."
    )


_NOT_SPEAKERS = ("ACT", "SCENE", "PERSONS", "PROLOGUE", "EPILOGUE", "THE END", "FINIS", "DRAMATIS")


def _prose_speaker(text: str, i: int) -> str | None:
    m = _pick(sorted({s for s in _SPEAKER.findall(text) if not s.startswith(_NOT_SPEAKERS)}), i)
    return m and (
        f"In the passage above, what does {m.title()} say and do? Summarise each of their speeches in "
        "one sentence of modern English, in order."
    )


def _fixed(instruction: str) -> Template:
    return lambda text, i: instruction


GENERIC = {
    "code": "Review the code above: list the functions and classes of the last file shown and say in one "
    "sentence what each does.",
    "po": "Which language is the last translation catalogue above in? Translate its last five translated "
    "messages back into English.",
    "csv": "The table above was cut at an arbitrary row. Say what one row records, explain each column, and "
    "give the largest value of the last numeric column among the last ten rows shown.",
    "docs": "Summarise the documentation above in one paragraph, then list every setting, function or command "
    "it names.",
    "prose": "Summarise what happens in the passage above, name the characters who speak in it, and rewrite "
    "its last speech in modern English.",
    "multilingual": "Which languages is the text above written in? Translate its last ten lines into English.",
    "apidocs": "Which service does the API reference above describe? Explain what its last three operations or "
    "data types shown are for, in plain words.",
}
TEMPLATES: dict[str, list[Template]] = {
    "code": [_code_docstring, _code_class, _fixed(GENERIC["code"])],
    "po": [_po_entry, _fixed(GENERIC["po"])],
    "csv": [
        _fixed(GENERIC["csv"]),
        _fixed(
            "Describe the table above: what its columns hold, their units where you can tell, and three "
            "patterns you see in the rows."
        ),
    ],
    "docs": [
        _docs_section,
        _fixed(GENERIC["docs"]),
        _fixed("Write a short quiz of five questions whose answers are in the documentation above, with the answers."),
    ],
    "prose": [
        _prose_speaker,
        _fixed(GENERIC["prose"]),
        _fixed("Translate the last paragraph above into plain modern English."),
    ],
    "apidocs": [_api_operation, _fixed(GENERIC["apidocs"])],
    "multilingual": [
        _fixed(GENERIC["multilingual"]),
        _fixed("Translate the last five lines above into English, one line each, and name their language."),
    ],
}
DEFAULT = "Summarise the text above in one paragraph and answer: what is it, and who would use it?"


def instruction_for(kind: str, text: str, i: int) -> str:
    """The task for prompt ``i`` over ``text`` (the document kind of the window's end): never empty."""
    templates = TEMPLATES.get(kind)
    if not templates:
        return DEFAULT
    return templates[i % len(templates)](text, i) or GENERIC.get(kind, DEFAULT)


def _fixed_instructions() -> frozenset[str]:
    """Every instruction that does not depend on the window (a fixed template's text, the generic ones)."""
    fixed = {DEFAULT, *GENERIC.values()}
    for templates in TEMPLATES.values():
        for t in templates:
            out = t("", 0)  # a quoting template finds nothing in "" and gives None; a fixed one its text
            if out:
                fixed.add(out)
    return frozenset(fixed)


FIXED_INSTRUCTIONS = _fixed_instructions()


def quotes_window(instruction: str) -> bool:
    """Whether the task names something found in its window (a function, a section, an entry, a speaker),
    rather than being one of the fixed, window-independent requests."""
    return instruction.removeprefix(SEP) not in FIXED_INSTRUCTIONS
