"""Check a results folder a real sweep wrote against the typed documents (speedbench.core.documents)."""

from __future__ import annotations

import json

from pydantic import BaseModel

from speedbench.core.documents import Manifest
from speedbench.metrics.point_doc import PointDoc
from speedbench.results import ResultsDir, document_models


def unnamed_keys(doc: BaseModel, where: str = "") -> list[str]:
    """Keys of ``doc`` and of its nested documents that their model does not name."""
    out = [f"{where}{k}" for k in doc.model_extra or {}]
    for name in type(doc).model_fields:
        value = getattr(doc, name)
        if isinstance(value, BaseModel):
            out += unnamed_keys(value, f"{where}{name}.")
    return out


def check_written(rd: ResultsDir) -> tuple[Manifest, list[BaseModel]]:
    """Every file validates, and the manifest and points hold no key their model does not name: a writer
    that adds or renames a key fails until the model (and so the generated docs/schema/) says so too."""
    manifest = Manifest.model_validate_json((rd.path / "manifest.json").read_text(encoding="utf-8"))
    assert unnamed_keys(manifest) == []
    points = []
    for line in (rd.path / "points.jsonl").read_text(encoding="utf-8").splitlines():
        point = PointDoc.model_validate_json(line)
        assert unnamed_keys(point) == []
        assert set(json.loads(line)) == set(PointDoc.model_fields)  # the writer writes every field
        points.append(point)
    for name, model in document_models().items():
        if name.endswith(".json") and (rd.path / name).is_file():
            model.model_validate_json((rd.path / name).read_text(encoding="utf-8"))
    return manifest, points
