"""The Qualitative "mini" split's selection rule: 8 prompts per category out of a larger candidate pool.

Candidates fall into strata: MT-Bench conversations (``two-turn``, the only multi-turn source) and, for every
other prompt, a length band of its first turn (a Multilingual candidate: its task). Each category has a quota
per stratum, so the 8 keep some conversations and span short and long inputs (Multilingual: 8 different
tasks); within the quotas the 8 are chosen by the diversity objective
(``speedbench.data.diversity.select_diverse``: lowest mean pairwise cosine of hashed n-grams, the objective
of ``speedbench data build``). ``scripts/build_bundled_data.py`` builds the pool and calls this;
``tests/test_bundled_data.py`` re-runs it on the bundled pool and compares with the bundled split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from speedbench.data.diversity import HashedNgramEmbedder, Selection, select_diverse

PER_CATEGORY = 8
SEED = 0  # only for the random-subset comparison; the selection itself is deterministic
TWO_TURN = "two-turn"
# first-turn characters: [lower, upper) per band. MT-Bench questions are 38-862 characters (short and medium)
BANDS = (("short", 0, 250), ("medium", 250, 1000), ("long", 1000, 10**9))
# Multilingual candidates are designed tasks (scripts/mini_candidates.py, the task named in their source): one
# of each, so the category holds 8 different tasks, not the most diverse 8 of a few.
MULTILINGUAL_TASKS = ("to-english", "from-english", "pivot", "review", "explain", "placeholders", "compare", "rewrite")
STRATA = (TWO_TURN,) + tuple(b[0] for b in BANDS) + tuple(f"task:{t}" for t in MULTILINGUAL_TASKS)
# (STRATA is also the order of the chosen prompts in a category)
_TASK = re.compile(r"#task=([\w-]+)")

# Half of a category with MT-Bench candidates stays two-turn (42 conversations in all); the rest spans bands.
# Writing, Roleplay and Math have only MT-Bench offline (ASDiv, the math source, is CC-BY-NC): 8 of 10.
QUOTAS: dict[str, dict[str, int]] = {
    "Coding": {TWO_TURN: 4, "medium": 2, "long": 2},
    "Math": {TWO_TURN: 8},
    "Humanities": {TWO_TURN: 4, "medium": 2, "long": 2},
    "STEM": {TWO_TURN: 4, "short": 1, "medium": 2, "long": 1},
    "Writing": {TWO_TURN: 8},
    "Summarization": {"medium": 4, "long": 4},
    "Roleplay": {TWO_TURN: 8},
    "RAG": {TWO_TURN: 2, "medium": 3, "long": 3},
    "Multilingual": {f"task:{t}": 1 for t in MULTILINGUAL_TASKS},
    "Reasoning": {TWO_TURN: 4, "short": 2, "medium": 1, "long": 1},
    "QA": {"short": 3, "medium": 3, "long": 2},
}


def band(text: str) -> str:
    return next(name for name, lo, hi in BANDS if lo <= len(text) < hi)


def stratum(turns: Sequence[str]) -> str:
    return TWO_TURN if len(turns) > 1 else band(turns[0])


def row_stratum(row: dict) -> str:
    """A candidate row's stratum: its task for a designed Multilingual task, else ``stratum`` of its turns."""
    task = _TASK.search(str(row.get("source", ""))) if row.get("category") == "Multilingual" else None
    return f"task:{task.group(1)}" if task else stratum(row["turns"])


@dataclass(frozen=True)
class CategoryPick:
    category: str
    quota: dict[str, int]
    chosen: list[dict]  # candidate rows, in output order (stratum order, then pool order)
    selection: Selection


def select_category(category: str, candidates: list[dict]) -> CategoryPick:
    """The category's 8 by the objective within its quotas (``candidates``: rows with ``turns``, in pool order)."""
    quota = QUOTAS[category]
    strata = [row_stratum(c) for c in candidates]
    emb = HashedNgramEmbedder().embed(["\n".join(c["turns"]) for c in candidates])
    sel = select_diverse(emb, PER_CATEGORY, seed=SEED, strata=strata, quota=quota)
    order = sorted(sel.indices, key=lambda i: (STRATA.index(strata[i]), i))
    return CategoryPick(category, quota, [candidates[i] for i in order], sel)


def select_mini(candidates: list[dict]) -> list[CategoryPick]:
    """Every category's pick, categories sorted by name (the split's row order)."""
    by_cat: dict[str, list[dict]] = {}
    for c in candidates:
        by_cat.setdefault(c["category"], []).append(c)
    return [select_category(cat, by_cat.get(cat, [])) for cat in sorted(QUOTAS)]
