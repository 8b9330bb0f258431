"""The records appender writes off the caller's thread (the load client's event loop), in order, and a failed
write reaches the caller."""

import threading

import pytest

from speedbench.results import ResultsDir
from speedbench.runner.appender import RecordsAppender
from tests.conftest import make_record


def test_a_slow_write_does_not_hold_the_caller_and_every_record_lands_in_order(tmp_path, monkeypatch):
    rd = ResultsDir(tmp_path / "run").create({"status": "running"})
    real_append = rd.append_records
    gate, threads = threading.Event(), []

    def slow_append(point_id, records, **kw):
        threads.append(threading.current_thread().name)
        assert gate.wait(10)  # a disk that takes its time: the caller must not be the one waiting
        real_append(point_id, records, **kw)

    monkeypatch.setattr(rd, "append_records", slow_append)
    app = RecordsAppender(rd, "sd-off-c1", every=2, every_s=1e9)
    for i in range(5):
        app.add(make_record(request_id=f"r{i}"))  # two batches handed over while the first write is held
    assert not gate.is_set() and rd.records("sd-off-c1") == []
    gate.set()
    app.close()  # the last, partial batch too, then compaction
    assert [r.request_id for r in rd.records("sd-off-c1")] == [f"r{i}" for i in range(5)]
    assert threads and all(name.startswith("records-") for name in threads)


def test_a_failed_write_is_raised_to_the_caller(tmp_path, monkeypatch):
    rd = ResultsDir(tmp_path / "run").create({"status": "running"})

    def full_disk(point_id, records, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rd, "append_records", full_disk)
    app = RecordsAppender(rd, "sd-off-c1", every=1, every_s=1e9)
    app.add(make_record(request_id="r0"))
    with pytest.raises(OSError, match="No space left"):
        app.close()
