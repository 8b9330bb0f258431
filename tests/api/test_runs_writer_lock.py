"""The REST runner respects a results folder's writer lock: a run whose folder another process writes fails
with the one line naming that writer, and writes nothing into it (issue 30)."""

from __future__ import annotations

import os

from speedbench.api.runs import RunManager, RunState
from speedbench.config import BenchmarkConfig
from speedbench.core.writer_lock import WriterLock
from speedbench.runner import BenchmarkRunner


def test_a_rest_run_into_a_locked_folder_fails_and_writes_nothing(
    tmp_path, tiny_tokenizer, attach_config, fake_off_server
):
    cfg = BenchmarkConfig.model_validate(
        attach_config(fake_off_server.url, tiny_tokenizer, tmp_path, sd="off", concurrency=[1])
    )
    manager = RunManager(tmp_path / "results")
    folder = tmp_path / "results" / "held"
    folder.mkdir(parents=True)
    state = RunState("held", cfg, folder, "default", runner=BenchmarkRunner(cfg, progress=False))
    with WriterLock(folder):
        manager._execute(state)
        assert state.status == "failed"
        assert f"pid {os.getpid()}" in state.error and "being written by another speedbench" in state.error
        assert [p.name for p in folder.iterdir()] == [".writer.lock"]
    state = RunState("held", cfg, folder, "default", runner=BenchmarkRunner(cfg, progress=False))
    manager._execute(state)  # the writer is gone: the same folder now takes the run
    assert state.status == "complete", state.error
    assert (folder / "points.jsonl").is_file() and not (folder / ".writer.lock").exists()
