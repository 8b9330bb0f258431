"""Checks on the bundled offline data (speedbench/resources/datasets/). Runs in a few seconds (the mini selection
is re-run on the bundled candidate pool)."""

import gzip
import json
import pathlib
import zlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATASETS = ROOT / "speedbench" / "resources" / "datasets"
MINI = DATASETS / "qualitative" / "mini.jsonl"
POOL = DATASETS / "throughput" / "pool.jsonl.gz"

# SPEED-Bench's categories spelled out here on purpose, not taken from speedbench.data.prompts.CATEGORIES: these
# checks hold the shipped data files to the paper's list with the standard library only (no speedbench import),
# so an edit of the package's tuple cannot make a wrong data file pass.
CATEGORIES = {
    "Coding",
    "Math",
    "Humanities",
    "STEM",
    "Writing",
    "Summarization",
    "Roleplay",
    "RAG",
    "Multilingual",
    "Reasoning",
    "QA",
}
MIN_PER_CATEGORY = 8
MAX_PROMPT_CHARS = 6000
TIERS = ("low", "mixed", "high")
MIN_TIER_CHARS = 24 * 40_000  # at least 24 distinct ~8k-token prompts per tier
MIN_DOC_CHARS = 8_000


@pytest.fixture(scope="module")
def mini():
    with MINI.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def pool():
    with gzip.open(POOL, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_mini_categories_and_counts(mini):
    counts = {}
    for r in mini:
        counts[r["category"]] = counts.get(r["category"], 0) + 1
    assert set(counts) == CATEGORIES
    for cat in CATEGORIES:
        assert counts[cat] >= MIN_PER_CATEGORY, cat


def test_mini_rows_well_formed(mini):
    ids = [r["id"] for r in mini]
    assert len(ids) == len(set(ids))
    for r in mini:
        for key in ("id", "category", "turns", "source", "license"):
            assert key in r, (r.get("id"), key)
        assert set(r) <= {"id", "category", "turns", "source", "license", "reference"}, r["id"]
        assert isinstance(r["turns"], list) and r["turns"], r["id"]
        for t in r["turns"]:
            assert isinstance(t, str) and t.strip(), r["id"]
            assert len(t) <= MAX_PROMPT_CHARS, r["id"]
        assert isinstance(r["source"], str) and r["source"].strip()
        assert isinstance(r["license"], str) and r["license"].strip()
        if "reference" in r:
            assert isinstance(r["reference"], str) and r["reference"].strip()


def test_mini_ordered_by_category_then_id(mini):
    keys = [(r["category"], r["id"]) for r in mini]
    assert keys == sorted(keys)


def test_mini_multi_turn_present(mini):
    assert any(len(r["turns"]) >= 2 for r in mini)


def test_pool_rows_well_formed(pool):
    ids = [r["id"] for r in pool]
    assert len(ids) == len(set(ids))
    for r in pool:
        for key in ("id", "tier", "kind", "text", "source", "license", "zlib_ratio"):
            assert key in r, (r.get("id"), key)
        assert r["tier"] in TIERS
        assert r["kind"] and r["source"] and r["license"]
        assert len(r["text"]) >= MIN_DOC_CHARS, r["id"]
        assert 0 < r["zlib_ratio"] < 1


def test_pool_zlib_ratio_is_measured(pool):
    # spot-check a few documents (compressing everything would cost time)
    for r in pool[:: max(1, len(pool) // 6)]:
        b = r["text"].encode("utf-8")
        assert abs(len(zlib.compress(b, 9)) / len(b) - r["zlib_ratio"]) < 1e-3, r["id"]


def test_pool_tiers_sizes_and_entropy_order(pool):
    chars, ratios = {}, {}
    for r in pool:
        chars[r["tier"]] = chars.get(r["tier"], 0) + len(r["text"])
        ratios.setdefault(r["tier"], []).append(r["zlib_ratio"])
    assert set(chars) == set(TIERS)
    for tier in TIERS:
        assert chars[tier] >= MIN_TIER_CHARS, (tier, chars[tier])
    mean = {t: sum(v) / len(v) for t, v in ratios.items()}
    assert mean["low"] < mean["mixed"] < mean["high"], mean


def test_pool_documents_distinct(pool):
    heads = [r["text"][:2000] for r in pool]
    assert len(heads) == len(set(heads))


def test_datasets_is_plain_data_folder():
    assert not list(DATASETS.rglob("__init__.py"))


# ---- the mini split is the diversity selection over the bundled candidate pool ----

CANDIDATES = DATASETS / "qualitative" / "mini-candidates.jsonl.gz"
SELECTION = DATASETS / "qualitative" / "mini-selection.json"


@pytest.fixture(scope="module")
def picks():
    from speedbench.data.mini_select import select_mini

    with gzip.open(CANDIDATES, "rt", encoding="utf-8") as f:
        return select_mini([json.loads(line) for line in f if line.strip()])


def test_mini_is_the_selection_over_the_bundled_candidates(mini, picks):
    # re-run the builder's rule (speedbench/data/mini_select.py) on the bundled pool: the same rows, same order
    chosen = [{"id": f"{p.category.lower()}-{n:03d}", **r} for p in picks for n, r in enumerate(p.chosen)]
    assert chosen == mini


def test_mini_selection_record_matches_and_beats_random(picks):
    record = json.loads(SELECTION.read_text(encoding="utf-8"))["categories"]
    assert set(record) == CATEGORIES
    for p in picks:
        r = record[p.category]
        assert r["chosen"] == [c["source"] for c in p.chosen]
        assert r["quota"] == p.quota and r["candidates"] == p.selection.candidates
        assert r["objective"] == pytest.approx(p.selection.objective, abs=1e-5)
        assert r["random_mean"] == pytest.approx(p.selection.random_mean, abs=1e-5)
        assert r["objective"] < r["random_mean"], p.category  # more diverse than a random pick of 8
        # a pool larger than 8 wherever a source beyond MT-Bench's 10 questions exists
        # Multilingual: 24 designed tasks (3 per task) whose messages are disjoint: Django's catalogues hold ~280
        assert r["candidates"] >= {"Math": 10, "Writing": 10, "Roleplay": 10, "Multilingual": 24}.get(p.category, 40)


def test_mini_spans_length_bands_and_keeps_conversations(mini):
    from speedbench.data.mini_select import band

    for cat in CATEGORIES:
        rows = [r for r in mini if r["category"] == cat]
        assert len(rows) == 8, cat
        assert len({band(r["turns"][0]) for r in rows}) >= 2, cat  # short and long inputs, not one band
    two_turn = [r for r in mini if len(r["turns"]) == 2]
    assert len(two_turn) == 42 and all("mt_bench" in r["source"] for r in two_turn)
    # conversations come first in a category, so `prompts_per_category: 1` still sends 8 two-turn prompts
    firsts = {r["category"]: r for r in reversed(mini)}
    assert sum(len(r["turns"]) == 2 for r in firsts.values()) == 8


# ---- licences: every bundled row's licence is one that allows bundling (no share-alike, copyleft, non-commercial)

ALLOWED_LICENSES = {
    "Apache-2.0",
    "MIT",
    "BSD-3-Clause",
    "ODC-By-1.0",
    "LicenseRef-Public-Domain (Project Gutenberg texts; package content CC-BY-2.5)",
    "LicenseRef-Public-Domain (US government / OurAirports data; package MIT)",
}
# sources whose text is share-alike (Wikipedia): never in a bundled file, whatever its row says
SHARE_ALIKE_SOURCES = ("NarrativeQA", "Quac", "BoolQ", "NQ-open")


def test_every_bundled_row_has_an_allowed_license(mini, pool):
    with gzip.open(CANDIDATES, "rt", encoding="utf-8") as f:
        candidates = [json.loads(line) for line in f if line.strip()]
    for name, rows in (("mini", mini), ("candidates", candidates), ("pool", pool)):
        for r in rows:
            assert r["license"] in ALLOWED_LICENSES, (name, r.get("id"), r["license"])
            assert not any(s in r["source"] for s in SHARE_ALIKE_SOURCES), (name, r.get("id"), r["source"])


# ---- Multilingual: 8 different tasks over messages that no two prompts share


def test_multilingual_is_eight_distinct_tasks_over_distinct_messages(mini):
    import re

    rows = [r for r in mini if r["category"] == "Multilingual"]
    meta = [dict(kv.split("=", 1) for kv in r["source"].split("#", 1)[1].split(";")) for r in rows]
    assert len({m["task"] for m in meta}) == 8
    messages = [m["messages"].split(",") for m in meta]
    slots = sum(len(m) for m in messages)
    assert len({i for m in messages for i in m}) == slots >= 8 * 2  # each English message in one prompt only
    for r, m in zip(rows, messages):  # the source's message list is what the prompt numbers
        assert len(re.findall(r"^\d+\. ", r["turns"][0], flags=re.M)) == len(m), r["id"]
    langs = {c for r in rows for c in r["source"].split("/locale/")[1].split("/")[0].split("+")}
    assert len(langs) >= 6
    assert sum(m["answer"] != "en" for m in meta) >= 3  # several ask for an answer in another language
