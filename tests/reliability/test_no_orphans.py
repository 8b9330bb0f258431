"""`kill -9` of a sweep with two client worker processes leaves no process of its own behind: the workers,
the multiprocessing resource tracker and the launched server all go with it (issue 30)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import alive, fault_log, kill_launches, start_cli, sweep_config, wait_for, write_config

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children's children included), from /proc."""
    parent_of: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] not in ("Z", "X"):
                parent_of[int(d.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent_of.items() if pp in frontier} - found
        found |= frontier
    return found


def test_kill_9_with_two_client_workers_leaves_no_process(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    pids, log = tmp_path / "pid.json", tmp_path / "requests.jsonl"
    cfg = sweep_config(
        tmp_path,
        tiny_tokenizer,
        fake_model,
        prompt_cache,
        sd=("off",),
        concurrency=(2,),
        requests=40,
        client_workers=2,
        server_args=["--token-delay-ms", "20", "--pid-file", pids, "--fault-log", log],
    )
    proc = start_cli("sweep", "--config", str(write_config(tmp_path / "c.json", cfg)))
    try:
        wait_for(lambda: len(fault_log(log)) >= 6, 90, "measured requests from the workers", proc)
        tree = _descendants(proc.pid)
        cmdlines = {p: Path(f"/proc/{p}/cmdline").read_bytes() for p in tree if alive(p)}
        workers = [p for p, c in cmdlines.items() if b"multiprocessing" in c and b"resource_tracker" not in c]
        assert len(workers) >= 2, cmdlines  # the two client workers are there to be orphaned
        assert any(b"resource_tracker" in c for c in cmdlines.values()), cmdlines
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in tree):
            time.sleep(0.1)
        left = {p: cmdlines.get(p, b"")[:120] for p in tree if alive(p)}
        assert left == {}, left
    finally:
        proc.kill()
        for p, c in (locals().get("cmdlines") or {}).items():  # orphans are no longer our descendants
            if alive(p) and Path(f"/proc/{p}/cmdline").read_bytes() == c:
                os.kill(p, 9)
        kill_launches(pids)
