"""The results folder: the only thing reports read. Every finished point is durable the moment it ends.

<dir>/manifest.json            config, versions, machine, prompt fingerprint, timestamps
<dir>/prompts.parquet          the exact token ids sent (copy of the fingerprinted cache entry)
<dir>/records/<point>.arrows   raw per-request records, columnar (Arrow IPC stream: speedbench.core.records_arrow),
                               appended + fsynced as requests finish; folders written before it hold
                               records/<point>.jsonl (one record per line), still read
<dir>/records/attempts/        records of earlier, unfinished attempts at a point (moved aside on resume)
<dir>/points.jsonl             one full PointSummary per ended point (appended + fsynced); a point that
                               was re-run has several lines and the last one wins
<dir>/summary.csv|.parquet     flat table of all finished points (rewritten atomically)
<dir>/speedup.csv              SD-on / SD-off ratios per concurrency
<dir>/logs/<server>.log        engine server logs
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ValidationError

from speedbench.config import ConfigError
from speedbench.core.documents import (
    SCHEMA_VERSION,
    GammaValidationDocument,
    Manifest,
    QualityDocument,
    RecommendationDocument,
)
from speedbench.core.records import COLUMNAR_SUFFIX, RequestRecord
from speedbench.metrics.paired import PromptUnits, prompt_units
from speedbench.metrics.point_doc import PointDoc
from speedbench.metrics.speedup import speedup_rows
from speedbench.metrics.summary import point_from_dict


class ResultsError(ConfigError):
    """A results folder that cannot be read as one (damaged manifest): one line, exit 2."""


def document_models() -> dict[str, type[BaseModel]]:
    """File name -> the model of that results document (docs/schema/<stem>.schema.json is generated from it)."""

    return {
        "manifest.json": Manifest,
        "points.jsonl": PointDoc,
        "quality.json": QualityDocument,
        "recommendation.json": RecommendationDocument,
        "gamma_validation.json": GammaValidationDocument,
    }


def schema_texts() -> dict[str, str]:
    """``docs/schema/<name>`` -> its text: the JSON Schema of each document, generated from its model."""
    out = {}
    for filename, model in document_models().items():
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}
        out[filename.split(".")[0] + ".schema.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return out


def _fsync_append(path: Path, lines: Iterable[str]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def repair_jsonl_tail(path: Path) -> bool:
    """Cut a torn last line (a crash mid-append) so the next append starts on a line of its own.

    Returns True when something was cut. Appends are whole lines ending in a newline, so anything after
    the last newline is a partial write.
    """
    if not path.is_file():
        return False
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return False
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return False
        # find the last newline, reading backwards in blocks
        pos, keep = size, 0
        while pos > 0:
            step = min(1 << 16, pos)
            pos -= step
            fh.seek(pos)
            block = fh.read(step)
            i = block.rfind(b"\n")
            if i >= 0:
                keep = pos + i + 1
                break
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _atomic_write(path: Path, write) -> None:
    """``write(tmp)`` then fsync and rename over ``path``. A failed write (disk full, read-only) removes its
    temporary file; a successful one removes those earlier failures or crashes left (the folder has one
    writer: speedbench.core.writer_lock)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{glob.escape(path.name)}.tmp*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def new_run_dir(output_dir: str | Path, name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    # letters and digits of any script stay ("résumé-日本" was "r-sum"); separators and spaces become "-"
    safe = re.sub(r"[^\w.-]+", "-", name).strip("-") or "run"
    path = Path(output_dir) / f"{stamp}-{safe}"
    n = 1
    while path.exists():
        n += 1
        path = Path(output_dir) / f"{stamp}-{safe}-{n}"
    return path


class ResultsDir:
    """One results folder: what a sweep (or a merge) wrote, and the only thing reports read.

    A folder is a results folder when it holds ``manifest.json`` (the files are listed in this module's
    docstring; their documents are typed in ``speedbench.core.documents``, described in
    docs/results-schema.md). Readers get one with ``ResultsDir.open(path)``, which refuses anything else
    with one clear line; a writer starts one with ``ResultsDir(path).create(manifest)``.

    Durability, so that a crash, a kill or a full disk never loses a finished point:
    - appends (records, points.jsonl) are whole lines, flushed and fsynced before the call returns: a point
      is durable the moment ``append_point`` returns; a crash mid-append leaves at most a torn last line,
      which readers skip and ``repair_jsonl_tail`` cuts before the next append;
    - whole files (manifest.json, the tables, the quality documents) are replaced atomically (written to a
      temporary file, fsynced, renamed): a reader sees the old file or the new one, never half of one;
    - nothing is deleted: an unfinished attempt's records are moved to records/attempts/ on resume, and a
      re-run point appends a new line to points.jsonl (the last line of a point id wins);
    - readers accept folders written before them: unknown keys are kept, missing ones take their defaults.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # point id -> (records file size, mtime, its per-prompt sums): write_tables runs after every point,
        # so a finished point's records are read once, not once per later point
        self._units: dict[str, tuple[int, int, PromptUnits]] = {}

    @classmethod
    def open(cls, path: str | Path) -> ResultsDir:
        """The results folder at ``path`` for reading; ResultsError (one line) when it holds no manifest."""
        rd = cls(path)
        if not (rd.path / "manifest.json").is_file():
            raise ResultsError(f"not a speedbench results folder (no manifest.json): {path}")
        return rd

    # ---- writing ----------------------------------------------------------------------------------
    def create(self, manifest: dict) -> ResultsDir:
        (self.path / "records").mkdir(parents=True, exist_ok=True)
        (self.path / "logs").mkdir(exist_ok=True)
        self.write_manifest(manifest)
        return self

    def write_manifest(self, manifest: dict) -> None:
        manifest = {"schema_version": SCHEMA_VERSION, **manifest}
        # validated, not rewritten: the file keeps the writer's keys in the writer's order
        Manifest.model_validate(json.loads(json.dumps(manifest, default=str)))
        atomic_write_text(self.path / "manifest.json", json.dumps(manifest, indent=2, default=str))

    def update_manifest(self, **fields) -> None:
        m = self.manifest()
        m.update(fields)
        self.write_manifest(m)

    def save_prompts(self, source: Path) -> None:
        shutil.copyfile(source, self.path / "prompts.parquet")

    def log_path(self, name: str) -> Path:
        return self.path / "logs" / f"{name}.log"

    def records_path(self, point_id: str) -> Path:
        """The point's records file: the one it has (columnar, or JSONL in a folder written before the
        columnar format), else where a new one goes (columnar)."""
        folder = self.path / "records"
        columnar, jsonl = folder / f"{point_id}{COLUMNAR_SUFFIX}", folder / f"{point_id}.jsonl"
        return jsonl if jsonl.is_file() and not columnar.is_file() else columnar

    def append_records(
        self, point_id: str, records: Sequence[RequestRecord], *, output_ids: bool = True, text: str = "auto"
    ) -> None:
        """Append ``records`` durably (flushed and fsynced on return) to the point's records file.
        output_ids / text: what the columnar file keeps (see ``RecordsConfig``); a JSONL file keeps all."""
        path = self.records_path(point_id)
        if path.suffix == ".jsonl":
            _fsync_append(path, (r.to_json() for r in records))
            return
        from speedbench.core import records_arrow  # pyarrow: only where records are written or read

        records_arrow.append(path, records, output_ids=output_ids, text=text)

    def compact_records(self, point_id: str) -> None:
        """A point ended: its records file as few large batches (smaller on disk, faster to read)."""
        path = self.records_path(point_id)
        if path.suffix == COLUMNAR_SUFFIX and path.is_file():
            from speedbench.core import records_arrow

            records_arrow.compact(path)

    def move_records_aside(self, point_id: str) -> Path | None:
        """Move an unfinished attempt's records to records/attempts/<point>.<n>.<suffix> (never deleted)."""
        src = self.records_path(point_id)
        if not src.is_file():
            return None
        dest_dir = self.path / "records" / "attempts"
        dest_dir.mkdir(exist_ok=True)
        n = 1
        while any((dest_dir / f"{point_id}.{n}{sfx}").exists() for sfx in (".jsonl", COLUMNAR_SUFFIX)):
            n += 1
        dest = dest_dir / f"{point_id}.{n}{src.suffix}"
        os.replace(src, dest)
        return dest

    def append_point(self, summary) -> None:
        line = json.dumps(asdict(summary), default=str)
        document_models()["points.jsonl"].model_validate_json(line)  # a point the readers could not read fails
        _fsync_append(self.path / "points.jsonl", [line])
        self.write_tables()

    def write_document(self, name: str, doc: dict) -> None:
        """Write quality.json, recommendation.json or gamma_validation.json (validated by its model)."""
        text = json.dumps(doc, indent=2, default=str)
        document_models()[name].model_validate_json(text)
        atomic_write_text(self.path / name, text)

    def write_tables(self) -> None:
        # pandas (~270 ms) only here: the report readers, the API and resume import this module to read
        import pandas as pd

        rows = self.summary_rows()
        if not rows:
            return
        df = pd.DataFrame(rows)
        atomic_write_text(self.path / "summary.csv", df.to_csv(index=False))
        _atomic_write(self.path / "summary.parquet", lambda tmp: df.to_parquet(tmp, index=False))
        # a failed point (server died mid-point) is shown, but never used as a speedup baseline or numerator
        sp = speedup_rows(rows, self.prompt_units)
        if sp:
            atomic_write_text(self.path / "speedup.csv", pd.DataFrame(sp).to_csv(index=False))

    # ---- reading ----------------------------------------------------------------------------------
    def manifest(self) -> dict:
        try:
            m = json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ResultsError(f"unreadable manifest.json in {self.path}: {e}") from None
        if not isinstance(m, dict):
            raise ResultsError(f"damaged manifest.json in {self.path}: a JSON object expected")
        return m

    def manifest_doc(self) -> Manifest:
        """The manifest, typed; keys it does not know are kept as extras, missing ones take defaults."""
        try:
            return Manifest.model_validate(self.manifest())
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(map(str, err["loc"]))
            raise ResultsError(f"damaged manifest.json in {self.path}: {where}: {err['msg']}") from None

    def points(self, all_attempts: bool = False) -> list[dict]:
        """Ended points; a point that was re-run (resume) appears once, as its last attempt."""
        p = self.path / "points.jsonl"
        if not p.is_file():
            return []
        out: list[dict] = []
        for line in _read_text(p).splitlines():
            if line.strip():
                try:
                    d = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a crash: the point is simply not finished
                if isinstance(d, dict) and isinstance(d.get("point_id"), str):
                    out.append(d)  # anything else is damage: that point is not finished either
        if all_attempts:
            return out
        last = {d.get("point_id"): i for i, d in enumerate(out)}
        return [d for i, d in enumerate(out) if last[d.get("point_id")] == i]

    def summary_rows(self) -> list[dict]:
        return [point_from_dict(p).to_row() for p in self.points()]

    def prompt_units(self, row: dict) -> PromptUnits | None:
        """Per-prompt sums of a point's measured requests (metrics.paired), for paired speedup intervals;
        None when the point has no records file."""
        path = self.records_path(str(row.get("point_id")))
        try:
            st = path.stat()
        except OSError:
            return None
        hit = self._units.get(path.name)
        if hit and hit[:2] == (st.st_size, st.st_mtime_ns):
            return hit[2]
        units = prompt_units(self.records(str(row["point_id"]), ids_and_text=False))
        self._units[path.name] = (st.st_size, st.st_mtime_ns, units)
        return units

    def records(self, point_id: str, ids_and_text: bool = True) -> list[RequestRecord]:
        """The point's request records, from whichever format its file has; torn or damaged tails skipped.

        ids_and_text False: output ids and text read back empty from a columnar file (a reader that needs
        neither skips their decoding, most of a large point's read time)."""
        path = self.records_path(point_id)
        if not path.is_file():
            return []
        if path.suffix == COLUMNAR_SUFFIX:
            from speedbench.core import records_arrow

            return records_arrow.read_records(path, () if ids_and_text else records_arrow.IDS_AND_TEXT)
        out = []
        for line in _read_text(path).splitlines():
            if line.strip():
                try:
                    out.append(RequestRecord.from_dict(json.loads(line)))
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue  # a torn or damaged line: not a record
        return out


def _read_text(path: Path) -> str:
    """A JSONL file of the folder; one that is not UTF-8 text is damage, not a torn line (ResultsError)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ResultsError(
            f"damaged results folder: {path} is not UTF-8 text (byte {e.start}); restore it or leave this folder out"
        ) from None


def find_results(path: str | Path) -> ResultsDir | None:
    """The results folder at ``path``, or None (kept for callers outside speedbench; readers use open)."""
    try:
        return ResultsDir.open(path)
    except ResultsError:
        return None
