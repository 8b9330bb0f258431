"""Columnar request records (records/<point>.arrows): round trip, deltas, optional ids/text, torn tails."""

import dataclasses
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from speedbench.core import records_arrow as ra
from speedbench.core.records import FAILED, TIMEOUT, RequestRecord
from speedbench.metrics.summary import summarize_point
from tests.conftest import make_record

FIXTURE_RECORDS = Path(__file__).parents[1] / "fixtures" / "results" / "vllm-cpu-sample" / "records"


def _jsonl(path: Path) -> list[RequestRecord]:
    return [RequestRecord.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _full_record() -> RequestRecord:
    """Every field set to something other than its default, with ns stamps that are not whole microseconds."""
    rec = make_record(chunk_tokens=(1, 3, 4, 8), chunk_gap_ms=12.3456789, ttft_ms=41.0000007, start_ns=10**15 + 7)
    rec.output_ids = [0, 5, 262143, 2**31 - 1, 7, 7, 7, 1]
    rec.text = "héllo\nwörld"
    rec.server_prompt_tokens, rec.server_prompt_ids_match = 11, False
    rec.completion_tokens, rec.finish_reason = 8, "length"
    rec.http_status, rec.warmup = 200, True
    rec.sd = {"drafts": 3, "draft_tokens": 9, "accepted_tokens": 5, "accepted_per_position": [3, 1, 1], "source": "x"}
    rec.sd_per_step_accepted, rec.sd_per_step_drafted = [3, 0, 2], [3, 3, 3]
    rec.conversation_id, rec.turn, rec.prompt_sha256 = "c#1", 2, "ab" * 32
    rec.token_source = "usage"
    return rec


def _assert_same(a: RequestRecord, b: RequestRecord) -> None:
    """Equal field by field; chunk times after the first within 0.5 us (kept to the microsecond)."""
    for f in dataclasses.fields(RequestRecord):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if f.name == "chunk_times_ns":
            assert len(va) == len(vb) and va[:1] == vb[:1]
            assert all(abs(x - y) <= 500 for x, y in zip(va, vb)), (va, vb)
        else:
            assert va == vb, (f.name, va, vb)


def test_every_field_round_trips(tmp_path):
    failed = RequestRecord("r2", "p2", "Coding", 5, 16, status=FAILED, error_kind=TIMEOUT, error="idle 60 s")
    failed.t_start_ns, failed.t_end_ns = 123, 456  # no chunk at all
    recs = [_full_record(), failed, make_record(request_id="r3", chunk_tokens=(2,))]
    path = tmp_path / "p.arrows"
    ra.append(path, recs, text="always")
    back = ra.read_records(path)
    assert len(back) == 3
    for a, b in zip(recs, back):
        _assert_same(a, b)
    assert back[1].chunk_times_ns == [] and back[1].sd is None and back[1].sd_per_step_accepted is None


def test_stamps_are_deltas_on_disk(tmp_path):
    """What a pandas user sees: gaps in microseconds (n-1 per request) and tokens per chunk (n)."""
    rec = make_record(chunk_tokens=(1, 3, 4), chunk_gap_ms=10.0, ttft_ms=50.0, start_ns=5_000_000_000)
    path = tmp_path / "p.arrows"
    ra.append(path, [rec])
    df = ipc.open_stream(str(path)).read_all().to_pandas()  # pyarrow + pandas only: no speedbench reader
    row = df.iloc[0]
    assert list(row["chunk_gaps_us"]) == [10_000, 10_000]
    assert list(row["chunk_ntok"]) == [1, 2, 1]
    assert row["t_first_ns"] - row["t_start_ns"] == 50_000_000
    assert ra.schema().field("chunk_gaps_us").type == pa.list_(pa.int64())


def test_every_record_field_has_a_column():
    """A field added to RequestRecord becomes a column with no change to the writer (one line: the field)."""
    names = set(ra.schema().names)
    for f in dataclasses.fields(RequestRecord):
        assert f.name in names or f.name in ("chunk_times_ns", "chunk_tokens"), f.name


@pytest.mark.parametrize(
    ("output_ids", "text", "with_ids_text", "without_ids_text", "ids_kept"),
    [
        (True, "auto", "", "streamed", True),  # default: text only where there are no ids
        (True, "always", "a b", "streamed", True),
        (True, "never", "", "", True),
        (False, "auto", "", "streamed", False),  # text "auto" looks at the record, not at what is stored
    ],
)
def test_ids_and_text_are_optional(tmp_path, output_ids, text, with_ids_text, without_ids_text, ids_kept):
    with_ids = make_record(request_id="a", output_ids=[4, 5], text="a b")
    without_ids = make_record(request_id="b", text="streamed")
    path = tmp_path / "p.arrows"
    ra.append(path, [with_ids, without_ids], output_ids=output_ids, text=text)
    a, b = ra.read_records(path)
    assert (a.text, b.text) == (with_ids_text, without_ids_text)
    assert a.output_ids == ([4, 5] if ids_kept else [])


def test_torn_last_batch_is_dropped(tmp_path):
    path = tmp_path / "p.arrows"
    ra.append(path, [make_record(request_id="a")])
    whole = path.stat().st_size
    ra.append(path, [make_record(request_id="b"), make_record(request_id="c")])
    for cut in (1, 9, path.stat().st_size - whole - 1):  # a crash anywhere inside the second batch
        torn = tmp_path / f"torn{cut}.arrows"
        torn.write_bytes(path.read_bytes()[:-cut])
        assert [r.request_id for r in ra.read_records(torn)] == ["a"]
    empty = tmp_path / "schema-only.arrows"
    empty.write_bytes(path.read_bytes()[:20])  # torn inside the schema message
    assert ra.read_records(empty) == []


def test_compact_keeps_records_in_fewer_smaller_batches(tmp_path):
    path = tmp_path / "p.arrows"
    recs = [
        make_record(request_id=f"r{i}", chunk_tokens=tuple(range(1, 40)), output_ids=list(range(39))) for i in range(30)
    ]
    for r in recs:  # a slow point: one batch per record
        ra.append(path, [r])
    before = path.stat().st_size
    ra.compact(path, rows_per_batch=16)
    assert len(ra.read_batches(path)) == 2 and path.stat().st_size < before / 2
    for a, b in zip(recs, ra.read_records(path)):
        _assert_same(a, b)
    ra.append(path, [make_record(request_id="late")])  # still appendable after compaction
    assert ra.read_records(path)[-1].request_id == "late"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURE_RECORDS.glob("*.jsonl")))
def test_fixture_metrics_equal_through_columnar(tmp_path, name):
    """Records of the real vLLM-CPU sample, JSONL -> columnar -> metrics, equal the JSONL path's."""
    recs = _jsonl(FIXTURE_RECORDS / name)
    path = tmp_path / "p.arrows"
    ra.append(path, recs[:5])
    ra.append(path, recs[5:])
    back = ra.read_records(path)
    assert len(back) == len(recs)
    for a, b in zip(recs, back):
        # what quality reads: ids kept, text decoded from them (texts_from_ids) unless the record had none
        _assert_same(dataclasses.replace(a, text=a.text if not a.output_ids else ""), b)
    kw = dict(point_id="x", engine="vllm", sd_label="s", sd_method="ngram", draft_length=3, concurrency=4, isl=None)
    want, got = summarize_point(recs, **kw).to_row(), summarize_point(back, **kw).to_row()
    assert want.keys() == got.keys()
    for k, v in want.items():
        if isinstance(v, float) and not math.isnan(v):
            # latencies in ms: chunk times kept to the microsecond, so a few 1e-6 of an ITL at most
            assert got[k] == pytest.approx(v, rel=1e-5, abs=1e-6), k
        elif isinstance(v, float):
            assert math.isnan(got[k]), k
        else:
            assert got[k] == v, k
