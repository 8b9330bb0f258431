"""Throughput tasks: the instruction put after a window of long real text, as SPEED-Bench puts its question
after the context. Pure functions: window text in, instruction text out; nothing random.

Each document kind has tasks whose answer is in the window, quoting something found in it (a function's
docstring, a class, a section title, a catalogue entry, a speaker, an API operation, a table's header row, or
any line of 40-120 characters). Prompt *i* tries them in turn from task ``i % len(tasks)``, with the match
``i % len(matches)``; only a window where none finds anything gets a fixed request of its kind (summarise,
translate the last lines). ``quotes_window`` tells the two apart (``data inspect`` prints the share).
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
_API_OPERATION = re.compile(r"\n### (?:Operation (\w+)|[\w.]*\.methods\.(\w+))\n")
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
    m = _pick([a or b for a, b in _API_OPERATION.findall(text)], i)
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


# A table task is given only with the table's header row quoted (found in the window): without it, what the
# columns hold could only be guessed. A header row: 2+ comma-separated names, no digits, no spaces at the ends.
_CSV_HEADER = re.compile(r"\n([A-Za-z_][A-Za-z_ ()/.-]{0,40}(?:,[A-Za-z_][A-Za-z_ ()/.-]{0,40}){1,30})\n")


def _csv_header(text: str, i: int) -> str | None:
    m = _pick(_CSV_HEADER.findall(text), i)
    return m and (
        f'The table above has the header row "{_quote(m)}". Say what one row under it records, explain each '
        "column, and give the largest value of the last numeric column among the last ten rows shown."
    )


_LINE = re.compile(r"\n([^\n\"]{40,120})(?=\n)")


def _quote_line(text: str, i: int) -> str | None:
    """Any kind of text: a line of it (40-120 characters, with letters) quoted, to be explained in context."""
    m = _pick([" ".join(s.split()) for s in _LINE.findall(text) if sum(c.isalpha() for c in s) >= 20], i)
    return m and (
        f'The text above contains the line "{m}". Explain what it says or does in its context, and what '
        "comes right before and after it."
    )


GENERIC = {
    "code": "Review the code above: list the functions and classes of the last file shown and say in one "
    "sentence what each does.",
    "po": "Which language is the last translation catalogue above in? Translate its last five translated "
    "messages back into English.",
    "docs": "Summarise the documentation above in one paragraph, then list every setting, function or command "
    "it names.",
    "prose": "Summarise what happens in the passage above, name the characters who speak in it, and rewrite "
    "its last speech in modern English.",
    "multilingual": "Which languages is the text above written in? Translate its last ten lines into English.",
    "apidocs": "Which service does the API reference above describe? Explain what its last three operations or "
    "data types shown are for, in plain words.",
}
DEFAULT = "Summarise the text above in one paragraph and answer: what is it, and who would use it?"
# Tasks that quote the window, per kind, tried in turn from prompt i's; the quoted line fits any kind but a
# table (a data row without its header is no task).
QUOTING: dict[str, list[Template]] = {
    "code": [_code_docstring, _code_class, _quote_line],
    "po": [_po_entry, _quote_line],
    "csv": [_csv_header],
    "docs": [_docs_section, _quote_line],
    "prose": [_prose_speaker, _quote_line],
    "apidocs": [_api_operation, _quote_line],
    "multilingual": [_quote_line],
}
# Window-independent requests: only when no quoting task found anything in the window.
FIXED: dict[str, list[str]] = {
    "code": [GENERIC["code"]],
    "po": [GENERIC["po"]],
    "csv": [DEFAULT],  # not a table task: no header row in the window to say what the columns hold
    "docs": [
        GENERIC["docs"],
        "Write a short quiz of five questions whose answers are in the documentation above, with the answers.",
    ],
    "prose": [GENERIC["prose"], "Translate the last paragraph above into plain modern English."],
    "apidocs": [GENERIC["apidocs"]],
    "multilingual": [
        GENERIC["multilingual"],
        "Translate the last five lines above into English, one line each, and name their language.",
    ],
}


def instruction_for(kind: str, text: str, i: int) -> str:
    """The task for prompt ``i`` over ``text`` (the document kind of the window's end): never empty. The
    kind's quoting tasks are tried in turn starting at ``i``'s; a fixed request only when none finds
    anything to quote."""
    quoting = QUOTING.get(kind, [_quote_line])
    for k in range(len(quoting)):
        out = quoting[(i + k) % len(quoting)](text, i)
        if out:
            return out
    fixed = FIXED.get(kind) or [DEFAULT]
    return fixed[i % len(fixed)]


FIXED_INSTRUCTIONS = frozenset({DEFAULT, *GENERIC.values(), *(t for ts in FIXED.values() for t in ts)})


def quotes_window(instruction: str) -> bool:
    """Whether the task names something found in its window (a function, a section, an entry, a speaker),
    rather than being one of the fixed, window-independent requests."""
    return instruction.removeprefix(SEP) not in FIXED_INSTRUCTIONS
