import json
from pathlib import Path

import pytest

from speedbench.config import ConfigError
from speedbench.data.build import build_split, format_report
from speedbench.data.prompts import CATEGORIES, read_jsonl_prompts
from speedbench.resources import DATASETS_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_bundled_manifest_builds_diverse_mini(tmp_path):
    out = tmp_path / "mini-diverse.jsonl"
    res = build_split(DATASETS_DIR / "manifests" / "qualitative-mini-diverse.yaml", out)
    prompts = read_jsonl_prompts(out)  # valid split file
    assert len(prompts) == 44 and {p.category for p in prompts} == set(CATEGORIES)
    for sel in res.report.values():
        assert sel.objective <= sel.random_mean
    assert "random" in format_report(res)


def _manifest(tmp_path, rows, **extra):
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    m = {
        "name": "t",
        "per_category": 2,
        "sources": [{"path": "src.jsonl", "category": "Math", "id_field": "qid", "text_field": "question"}],
    }
    m.update(extra)
    path = tmp_path / "m.yaml"
    path.write_text(json.dumps(m))
    return path


def test_single_category_source_with_field_mapping(tmp_path):
    rows = [{"qid": i, "question": q} for i, q in enumerate(["1+1?", "integrate x^2", "2+2?", "prove sqrt 2"])]
    res = build_split(_manifest(tmp_path, rows), tmp_path / "o.jsonl")
    assert len(res.rows) == 2 and all(r["category"] == "Math" for r in res.rows)


def test_bad_sources(tmp_path):
    with pytest.raises(ConfigError, match="field 'question'"):
        build_split(_manifest(tmp_path, [{"qid": 1, "text": "x"}] * 2))
    with pytest.raises(ConfigError, match="1 candidates < 2"):
        build_split(_manifest(tmp_path, [{"qid": 1, "question": "x"}]))
    res = build_split(_manifest(tmp_path, [{"qid": 1, "question": "x"}], allow_short=True))
    assert len(res.rows) == 1
    m = _manifest(tmp_path, [{"qid": 1, "question": "x"}])
    bad = json.loads(m.read_text())
    bad["sources"][0]["category"] = "Poetry"
    m.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="unknown category"):
        build_split(m)
