"""One writer per results folder (issue 30): a second `sweep --resume` beside a running sweep is refused in one
line naming the running one, before it writes anything; the running sweep's records stay its own."""

from __future__ import annotations

import json
import socket

import pytest

from tests.reliability.conftest import (
    accounting,
    kill_launches,
    run_cli,
    start_cli,
    sweep_config,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow


def test_a_second_writer_is_refused_and_the_records_are_unchanged(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    pids = tmp_path / "pid.json"
    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        fake_model,
        prompt_cache,
        sd=("off",),
        concurrency=(1, 2),
        requests=12,
        server_args=["--token-delay-ms", "10", "--pid-file", pids],
    )
    first = start_cli("sweep", "--config", str(write_config(tmp_path / "c.json", cfg)))
    try:
        points = wait_for(lambda: next((tmp_path / "results").glob("*/points.jsonl"), None), 90, "first point", first)
        out = points.parent
        second = run_cli("sweep", "--resume", str(out))
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {first.pid} on {socket.gethostname()}" in lines[0], second.stderr
        assert "Traceback" not in second.stderr
        _, stderr = first.communicate(timeout=90)
        assert first.returncode == 0, stderr
    finally:
        first.kill()
        kill_launches(pids)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and "resumes" not in manifest  # the refused writer wrote nothing
    acc = accounting(out)
    assert sorted(acc) == ["sd-off-c1", "sd-off-c2"]
    assert len((out / "points.jsonl").read_text().splitlines()) == 2  # each point once
    for a in acc.values():  # every measured request once: no second load mixed in
        assert a["records"] == a["planned"] == 12 and a["ok"] == 12
    assert not (out / ".writer.lock").exists()
    # the folder is free again once its writer ended: a resume now runs (nothing left to do)
    assert run_cli("sweep", "--resume", str(out)).returncode == 0
