"""The REST run queue: one sweep at a time per GPU set, progress while running (stub runner, no network)."""

import threading
import time
from pathlib import Path

import pytest

from speedbench.api.runs import RunManager, gpu_queue_key
from speedbench.config import BenchmarkConfig
from speedbench.runner import SweepResult


class StubRunner:
    """Runner-shaped: plans points from the config, reports each finished point, waits on a gate to finish."""

    active: dict = {}
    peak: dict = {}
    lock = threading.Lock()
    gate = threading.Event()

    def __init__(self, config, progress=False, on_point=None):
        self.config, self.on_point = config, on_point

    def validate(self):
        pass

    def points(self):
        return [(sd, c) for sd in self.config.sd for c in self.config.load.concurrency]

    def run(self, results_dir):
        key = gpu_queue_key(self.config)
        with self.lock:
            self.active[key] = self.active.get(key, 0) + 1
            self.peak[key] = max(self.peak.get(key, 0), self.active[key])
        try:
            Path(results_dir).mkdir(parents=True, exist_ok=True)
            self.on_point(None)  # first point done
            assert self.gate.wait(30), "test never opened the gate"
            for _ in self.points()[1:]:
                self.on_point(None)
            return SweepResult(Path(results_dir), status="complete")
        finally:
            with self.lock:
                self.active[key] -= 1


def cfg(gpus=None, name="r"):
    env = {"CUDA_VISIBLE_DEVICES": gpus} if gpus else {}
    return BenchmarkConfig.model_validate(
        {"engine": {"model": "/m", "env": env}, "name": name, "load": {"concurrency": [1, 2]}}
    )


def wait_for(pred, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_queue_per_gpu_set_and_progress(tmp_path):
    StubRunner.gate.clear()
    m = RunManager(tmp_path, runner_factory=StubRunner)
    a = m.submit(cfg(name="a"))
    b = m.submit(cfg(name="b"))
    c = m.submit(cfg(gpus="1", name="c"))
    assert (a.queue, b.queue, c.queue) == ("default", "default", "1")
    wait_for(lambda: m.get(a.id)["points_finished"] == 1 and m.get(c.id)["points_finished"] == 1)
    ia = m.get(a.id)
    assert ia["status"] == "running" and ia["points_planned"] == 4 and ia["current_point"] == "sd-off-c2"
    assert m.get(b.id)["status"] == "queued"  # same GPU set as a: waits
    StubRunner.gate.set()
    wait_for(lambda: all(m.get(x.id)["status"] == "complete" for x in (a, b, c)))
    assert StubRunner.peak == {"default": 1, "1": 1}
    assert m.get(b.id)["started_at"] >= m.get(a.id)["finished_at"]
    assert {r["id"] for r in m.list()} == {a.id, b.id, c.id}  # service runs and their folders listed once
    m.shutdown()


@pytest.mark.parametrize("bad", ["../x", "/etc", ".hidden", "a/b"])
def test_run_ids_are_folder_names_only(tmp_path, bad):
    m = RunManager(tmp_path)
    assert m.get(bad) is None and m.results_path(bad) is None


def test_progress_counts_every_repeat(tmp_path):
    """With load.repeats > 1 the service plans every repeat, with the runner's own point ids."""
    from speedbench.core.point_id import planned_points

    StubRunner.gate.clear()
    m = RunManager(tmp_path, runner_factory=StubRunner)
    config = cfg(name="rep")
    config.load.repeats = 2
    state = m.submit(config)
    wait_for(lambda: m.get(state.id)["points_finished"] == 1)
    info = m.get(state.id)
    assert info["points_planned"] == 8  # 2 SD settings x 2 concurrencies x 2 repeats
    assert info["current_point"] == "sd-off-c1-r2"  # the runner's second point, not 'sd-off-c2'
    assert state.points_planned == planned_points(config)  # the same function the runner's manifest uses
    StubRunner.gate.set()
    wait_for(lambda: m.get(state.id)["status"] == "complete")
    m.shutdown()
