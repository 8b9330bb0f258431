"""The typed results documents (speedbench.core.documents): the checked-in JSON Schema is generated from
them, they read folders written before them, and ResultsDir.open is the one way into a results folder."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from speedbench.core.documents import Manifest, QualityDocument, manifest_status, point_complete, point_status
from speedbench.metrics.point_doc import DistributionDoc, PointDoc
from speedbench.metrics.summary import PointSummary
from speedbench.results import ResultsDir, ResultsError, find_results, schema_texts

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "docs" / "schema"
SAMPLE = ROOT / "tests" / "fixtures" / "results" / "vllm-cpu-sample"
REGENERATE = "regenerate with: python scripts/gen_results_schema.py (then commit docs/schema/)"


def test_checked_in_schemas_are_generated_from_the_models():
    texts = schema_texts()
    on_disk = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert on_disk == set(texts), f"docs/schema/ holds {sorted(on_disk)}, the models {sorted(texts)}: {REGENERATE}"
    for name, text in texts.items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == text, f"docs/schema/{name} is stale: {REGENERATE}"


def test_results_schema_doc_links_every_schema():
    doc = (ROOT / "docs" / "results-schema.md").read_text(encoding="utf-8")
    for name in schema_texts():
        assert f"schema/{name}" in doc, name


def test_point_doc_is_derived_from_the_point_summary():
    """The point model is built from the dataclass the runner writes: fields, order, defaults, nesting."""
    assert list(PointDoc.model_fields) == [f.name for f in dataclasses.fields(PointSummary)]
    defaults = {f.name: f.default for f in dataclasses.fields(PointSummary) if f.default is not dataclasses.MISSING}
    assert {k: PointDoc.model_fields[k].default for k in defaults} == defaults
    assert PointDoc.model_fields["ttft_s"].annotation is DistributionDoc
    assert PointDoc.model_fields["point_id"].is_required()  # no default: a line must name its point


def test_a_folder_written_before_reads(tmp_path):
    """The bundled sample (an older run) validates; unknown keys are kept, missing ones take defaults."""
    rd = ResultsDir.open(SAMPLE)
    m = rd.manifest_doc()
    assert m.status == "complete" and m.prompts and m.prompts.fingerprint
    for p in rd.points():
        PointDoc.model_validate(p)
    old = tmp_path / "old"
    shutil.copytree(SAMPLE, old)
    raw = json.loads((old / "manifest.json").read_text())
    for key in ("status", "generation", "token_counts", "launch_differences"):
        raw.pop(key, None)
    raw["from_the_future"] = {"x": 1}
    (old / "manifest.json").write_text(json.dumps(raw))
    m = ResultsDir.open(old).manifest_doc()
    assert m.status == "unknown" and m.generation is None and m.token_counts == {} and m.launch_differences == {}
    assert m.model_extra == {"from_the_future": {"x": 1}}
    assert m.model_dump(exclude_unset=True)["from_the_future"] == {"x": 1}  # kept, not dropped


def test_a_point_without_status_is_complete():
    """The default lives on the model; every reader asks point_complete/point_status."""
    assert point_status({}) == "complete" and point_complete({"point_id": "x"})
    assert not point_complete({"status": "failed"})
    assert PointDoc.model_fields["status"].default == "complete"
    assert manifest_status({}) == Manifest().status == "unknown"


def test_open_refuses_a_folder_without_manifest(tmp_path):
    with pytest.raises(ResultsError, match="not a speedbench results folder \\(no manifest.json\\)"):
        ResultsDir.open(tmp_path)
    assert find_results(tmp_path) is None
    assert find_results(SAMPLE).path == SAMPLE


def test_a_manifest_of_the_wrong_shape_is_one_line(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"points_planned": "sd-off-c1"}))
    with pytest.raises(ResultsError, match="damaged manifest.json .*points_planned"):
        ResultsDir.open(tmp_path).manifest_doc()


def test_writers_validate_what_they_write(tmp_path):
    rd = ResultsDir(tmp_path).create({"status": "running", "points_planned": ["a"]})
    with pytest.raises(ValidationError):
        rd.update_manifest(points_planned="a")  # never a manifest the readers could not read
    assert json.loads((tmp_path / "manifest.json").read_text())["points_planned"] == ["a"]
    with pytest.raises(ValidationError):
        rd.write_document("quality.json", {"rows": [{"concurrency": "many"}]})
    assert not (tmp_path / "quality.json").exists()
    rd.write_document("quality.json", {"rows": [{"concurrency": 1, "bleu_vs_off": 3.5}], "notes": ["n"]})
    doc = QualityDocument.model_validate_json((tmp_path / "quality.json").read_text())
    assert doc.rows[0].concurrency == 1 and doc.rows[0].model_extra == {"bleu_vs_off": 3.5}


def test_manifest_written_keeps_the_writers_key_order(tmp_path):
    """Validation does not rewrite: the file holds the writer's keys in its order (reports show them)."""
    ResultsDir(tmp_path).create({"status": "running", "zeta": 1, "alpha": 2})
    assert list(json.loads((tmp_path / "manifest.json").read_text())) == ["schema_version", "status", "zeta", "alpha"]
    assert Manifest.model_validate_json((tmp_path / "manifest.json").read_text()).status == "running"
