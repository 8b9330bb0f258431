"""Runs started over REST: a queue and one worker thread per GPU set, so sweeps never share GPUs.

A run's id is its results folder name under the service's output dir, so runs started here and folders
left by earlier CLI sweeps are listed and reported the same way.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from speedbench.config import BenchmarkConfig, ConfigError
from speedbench.core.documents import manifest_status
from speedbench.core.point_id import planned_points
from speedbench.results import ResultsDir, new_run_dir
from speedbench.runner import BenchmarkRunner

log = logging.getLogger(__name__)
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a folder name, never a path


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def gpu_queue_key(cfg: BenchmarkConfig) -> str:
    """Runs with the same visible GPUs share one queue; the default GPU set is 'default'."""
    return cfg.engine.env.get("CUDA_VISIBLE_DEVICES") or "default"


@dataclass
class RunState:
    id: str
    config: BenchmarkConfig
    results_dir: Path
    queue: str
    status: str = "queued"  # queued | running | complete | failed | interrupted
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    points_planned: list[str] = field(default_factory=list)
    points_finished: int = 0
    error: str | None = None
    runner: Any = None

    @property
    def current_point(self) -> str | None:
        # the runner walks points in plan order (SD outer, concurrency inner)
        if self.status == "running" and self.points_finished < len(self.points_planned):
            return self.points_planned[self.points_finished]
        return None

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "queue": self.queue,
            "results_dir": str(self.results_dir),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "points_planned": len(self.points_planned),
            "points_finished": self.points_finished,
            "current_point": self.current_point,
            "error": self.error,
            "source": "service",
            "config": self.config.model_dump(mode="json"),
        }


def disk_info(path: Path) -> dict[str, Any] | None:
    """Status of a results folder written by anyone (CLI, an earlier service, a merge)."""

    try:
        rd = ResultsDir.open(path)
        m = rd.manifest()
    except (OSError, ValueError):  # not a results folder, or an unreadable manifest: not listed
        return None
    return {
        "id": path.name,
        "status": manifest_status(m),
        "queue": None,
        "results_dir": str(path),
        "created_at": m.get("created_at"),
        "started_at": m.get("created_at"),
        "finished_at": m.get("finished_at"),
        "points_planned": len(m.get("points_planned") or []),
        "points_finished": len(rd.points()),
        "current_point": None,
        "error": None,
        "source": "disk",
        "config": m.get("config"),
    }


class RunManager:
    def __init__(self, output_dir: str | Path, runner_factory: Callable[..., Any] | None = None) -> None:
        self.output_dir = Path(output_dir)
        self._runner_factory = runner_factory
        self._runs: dict[str, RunState] = {}
        self._queues: dict[str, queue.Queue] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def _factory(self):
        if self._runner_factory is None:
            self._runner_factory = BenchmarkRunner
        return self._runner_factory

    # ---- submitting ------------------------------------------------------------------------------
    def submit(self, cfg: BenchmarkConfig) -> RunState:
        cfg.output_dir = str(self.output_dir)  # the service owns where results go (and lists them there)
        runner = self._factory()(cfg, progress=False)
        runner.validate()  # bad configs fail the request, not a worker later
        with self._lock:
            path = new_run_dir(self.output_dir, cfg.name or f"{cfg.engine.name}-api")
            path.mkdir(parents=True)  # reserve the name: two requests in one second get distinct ids
            state = RunState(
                path.name, cfg, path, gpu_queue_key(cfg), runner=runner, points_planned=planned_points(cfg)
            )
            self._runs[state.id] = state
            q = self._queues.get(state.queue)
            if q is None:
                q = self._queues[state.queue] = queue.Queue()
                t = threading.Thread(target=self._worker, args=(q,), name=f"speedbench-{state.queue}", daemon=True)
                self._threads[state.queue] = t
                t.start()
        q.put(state)
        return state

    def _worker(self, q: queue.Queue) -> None:
        while True:
            state = q.get()
            if state is None:
                return
            self._execute(state)

    def _execute(self, state: RunState) -> None:
        def on_point(_summary) -> None:
            state.points_finished += 1

        state.status, state.started_at = "running", _now()
        runner = state.runner
        runner.on_point = on_point
        try:
            result = runner.run(state.results_dir)
            state.status = result.status
        except KeyboardInterrupt:  # SIGTERM is not routed to worker threads, but be safe
            state.status = "interrupted"
        except ConfigError as e:
            state.status, state.error = "failed", str(e)
        except Exception as e:  # one line for the client; the engine log in the results folder has details
            state.status, state.error = "failed", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            log.exception("run %s failed", state.id)
        finally:
            state.finished_at = _now()
            state.runner = None

    # ---- reading ---------------------------------------------------------------------------------
    def _folder(self, run_id: str) -> Path | None:
        """The results folder a run id names: a plain name whose real path stays inside the output dir (a
        symlink pointing elsewhere is not followed out)."""
        if not RUN_ID.match(run_id):
            return None
        path = self.output_dir / run_id
        return path if path.resolve().is_relative_to(self.output_dir.resolve()) else None

    def get(self, run_id: str) -> dict[str, Any] | None:
        state = self._runs.get(run_id)
        if state is not None:
            return state.info()
        path = self._folder(run_id)
        return disk_info(path) if path else None

    def results_path(self, run_id: str) -> Path | None:
        state = self._runs.get(run_id)
        path = state.results_dir if state else self._folder(run_id)
        return path if path is not None and (path / "manifest.json").is_file() else None

    def list(self) -> list[dict[str, Any]]:
        out = {rid: s.info() for rid, s in list(self._runs.items())}
        if self.output_dir.is_dir():
            for p in sorted(self.output_dir.iterdir()):
                if p.is_dir() and p.name not in out and self._folder(p.name):
                    info = disk_info(p)
                    if info:
                        out[p.name] = info
        return sorted(out.values(), key=lambda r: (r.get("created_at") or "", r["id"]))

    def shutdown(self) -> None:
        """Stop the workers; a running sweep's engine server is stopped so no GPU process is orphaned."""
        for q in self._queues.values():
            q.put(None)
        for s in self._runs.values():
            server = getattr(s.runner, "server", None) if s.runner else None
            if server is not None:
                server.stop()
