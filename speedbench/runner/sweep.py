"""BenchmarkRunner: the one orchestrator of a sweep (SD settings x concurrencies on one prompt set, results
made durable). The point itself is speedbench.runner.point, the server's launch speedbench.runner.server."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from speedbench import preflight
from speedbench.config import BenchmarkConfig, ConfigError, SDConfig
from speedbench.core.acceptance import SpecDecodeCounters
from speedbench.core.point_id import planned_points, point_name
from speedbench.core.writer_lock import WriterLock, lock_folder
from speedbench.data.pretokenize import PromptSet, cache_path
from speedbench.data.tokenization import release_tokenizers
from speedbench.engines.container import prepare_sweep
from speedbench.engines.image_release import check_release, release_fields
from speedbench.engines.server import ServerProcess, pick_free_port
from speedbench.load.eventloop import run_async
from speedbench.measure import probe_sd
from speedbench.metrics.category import category_acceptance
from speedbench.metrics.speedup import speedup_rows
from speedbench.metrics.summary import PointSummary
from speedbench.outcome import Speedup, SweepResult
from speedbench.preflight import EndpointError
from speedbench.quality.post_sweep import write_post_sweep
from speedbench.results import ResultsDir, new_run_dir
from speedbench.resume import check_resumable, prepare_resume
from speedbench.runner.manifest import (
    close_manifest,
    default_name,
    now_iso,
    read_json,
    resume_hint,
    sweep_manifest,
    write_failure,
)
from speedbench.runner.planning import SweepPlanner
from speedbench.runner.point import PointRunner
from speedbench.runner.server import ServerGone, build_server, check_ready, record_server_info
from speedbench.runner.signals import sigterm_as_interrupt

log = logging.getLogger(__name__)


class BenchmarkRunner(SweepPlanner):
    """Runs one sweep of a BenchmarkConfig: every SD setting x concurrency (x repeat) point on one prompt set,
    each point's records and summary written to a results folder as it ends.

    Lifecycle: ``BenchmarkRunner(config)`` picks the engine adapter; ``validate()`` (SweepPlanner) checks
    everything that needs no server (``speedbench sweep --dry-run`` stops there); ``run()`` builds the
    prompts, opens the results folder (or continues one with ``resume``), then per SD setting starts the
    server (or checks the attached one), runs its points, tears it down, and returns a SweepResult.
    Finished points stay on disk whatever ends the sweep (a failure, Ctrl-C, SIGTERM). One instance runs one
    sweep.

    ``on_point`` is called with each point's summary as it ends (the REST service's progress). While a sweep
    runs, ``results`` is its folder, ``server``/``base_url`` the server being measured.
    """

    def __init__(
        self, config: BenchmarkConfig, *, progress: bool = True, on_point: Callable[[PointSummary], None] | None = None
    ) -> None:
        super().__init__(config)
        self.progress = progress and sys.stderr.isatty()
        self.on_point = on_point
        self.results: ResultsDir | None = None
        self.server: ServerProcess | None = None
        self.base_url: str | None = None  # the server being measured, while a sweep runs
        self._prompt_lens: list[int] = []
        self._sd_probe: list[SpecDecodeCounters] = []  # attach mode: the server's SD evidence before the sweep
        self._sd_unverified: str | None = None  # attach mode: why the probe could not confirm SD-on (--sd-unverified)
        self._resuming = False

    # ---- running --------------------------------------------------------------------------------------
    def run(self, results_dir: str | Path | None = None, resume: bool = False) -> SweepResult:
        """Run the sweep; with ``resume`` continue the sweep in ``results_dir``, skipping finished points."""
        cfg = self.config
        self._resuming = resume  # an attached server's SD mismatch then has other advice (_check_attached_sd)
        prompts = self._prepare()
        planned = planned_points(cfg)
        made_here = not resume and not (results_dir and Path(results_dir).exists())  # never remove what was there
        lock = self._lock(results_dir, resume)  # one writer per folder, for the whole run (points to quality)
        try:
            return self._run_locked(lock.folder, resume, prompts, planned, made_here)
        except OSError as e:  # disk full, read-only: bad ground for results, one line (exit 2), points kept
            why = write_failure(e, lock.folder)
            if why is None:
                raise
            raise ConfigError(f"{why}; finished points are kept: {resume_hint(lock.folder)}") from None
        finally:
            lock.release()

    def _lock(self, results_dir: str | Path | None, resume: bool) -> WriterLock:
        """The writer lock of the folder this run writes: refused (one line, exit 2) while another writes it."""
        cfg = self.config
        if not resume:
            path = Path(results_dir) if results_dir else new_run_dir(cfg.output_dir, cfg.name or default_name(cfg))
            return lock_folder(path, "create the results folder")
        if results_dir is None:
            raise ConfigError("resume needs the results folder of the sweep to continue")
        return lock_folder(ResultsDir.open(results_dir).path, "resume in the results folder", create=False)

    def _run_locked(
        self, path: Path, resume: bool, prompts: PromptSet, planned: list[str], made_here: bool
    ) -> SweepResult:
        cfg = self.config
        if resume:
            results, done = self._resume(path, prompts, planned)
        else:
            results, done = self._create(path, prompts), set()
        result = SweepResult(path, prompts_fingerprint=prompts.fingerprint, skipped=sorted(done & set(planned)))
        points = PointRunner(cfg, self.adapter, results, self.tokenizer(), self.progress)
        status, ending = "failed", None
        refused = False  # a refusal (bad input found only now) before any point ended: no folder is left behind
        try:
            with sigterm_as_interrupt():
                if cfg.engine.launcher != "venv":  # leftovers of a killed harness go; the image pulled, recorded
                    prepare_sweep(cfg.engine, results)
                    self.image_release, _ = check_release(  # read now if the image was pulled just now
                        self.adapter, cfg.engine, cfg.sd, max(cfg.load.concurrency), known=self.image_release
                    )
                    results.update_manifest(**release_fields(results.manifest(), self.image_release))
                for sd in cfg.sd:
                    todo = [
                        (c, r)
                        for c in cfg.load.concurrency
                        for r in range(1, cfg.load.repeats + 1)
                        if point_name(sd, c, r, cfg.load.repeats) not in done
                    ]
                    if todo and not self._run_sd(sd, todo, prompts, result, points):
                        break
            status = "failed" if result.stopped_reason else "complete"
        except BaseException as e:
            ending = e
            if isinstance(e, KeyboardInterrupt):
                status = "interrupted"
            result.stopped_reason = write_failure(e, path) or result.stopped_reason
            refused = isinstance(e, ConfigError) and made_here and not result.points
            raise
        finally:
            if refused:  # nothing was measured: a `failed` folder would only be clutter to report and merge
                shutil.rmtree(path, ignore_errors=True)
                self.results = None
            else:
                result.status = status
                close_manifest(results, status, result.stopped_reason, best_effort=ending is not None)
        # a failed point (cut short) is reported, never used for a speedup
        result.speedups = [Speedup.from_row(s) for s in speedup_rows(result.rows(), results.prompt_units)]
        # read without ids and text (unused here): most of a large point's decoding
        result.categories = {
            p.point_id: category_acceptance(results.records(p.point_id, ids_and_text=False)) for p in result.points
        }
        if cfg.quality.enabled:
            write_post_sweep(path, cfg)
            result.quality = read_json(path / "quality.json")
            result.recommendation = read_json(path / "recommendation.json")
        return result

    def _prepare(self) -> PromptSet:
        """Every check before a results folder exists, and the prompt set they need."""
        cfg = self.config
        self.validate()
        if cfg.engine.endpoint:  # unreachable, wrong model, too small: one clear line before any prompt is built
            self._check_endpoint(cfg.engine.endpoint)
        prompts = self._checked_prompts()
        release_tokenizers()  # built: the tokenizer's memory is not the client's while it measures
        self._prompt_lens = self._input_lens(prompts)  # attach mode checks them per server
        self._reply_end_id = prompts.meta.get("reply_end_id")
        if cfg.engine.endpoint:  # ... and before a results folder exists
            self._check_endpoint(cfg.engine.endpoint)
            self._check_attached_sd(cfg.engine.endpoint, prompts)
        return prompts

    def _create(self, path: Path, prompts: PromptSet) -> ResultsDir:
        """The new results folder (made and locked by _lock) with its manifest (and the prompt set when cached)."""
        cfg = self.config
        try:
            self.results = results = ResultsDir(path).create(self._manifest(prompts))
        except OSError as e:  # a file in the way, read-only, no such parent: bad input, nothing ran
            raise ConfigError(f"cannot create the results folder {path}: {e.strerror or e}") from None
        cache_file = cache_path(cfg.data, prompts.fingerprint)
        if cache_file.is_file():
            results.save_prompts(cache_file)
        return results

    def _resume(
        self, results_dir: str | Path | None, prompts: PromptSet, planned: list[str]
    ) -> tuple[ResultsDir, set[str]]:
        """The folder of the sweep to continue, checked against this config, and its finished points."""
        if results_dir is None:
            raise ConfigError("resume needs the results folder of the sweep to continue")
        self.results = results = ResultsDir.open(results_dir)
        manifest = results.manifest()
        check_resumable(manifest, self.config, prompts.fingerprint)
        rp = prepare_resume(results, planned)
        done = rp.done
        results.update_manifest(
            status="running",
            resumes=[
                *manifest.get("resumes", []),
                {
                    "at": now_iso(),
                    "command": sys.argv,
                    "points_done": sorted(done),
                    "moved_aside": rp.moved_aside,
                    "repaired": rp.repaired,
                },
            ],
        )
        log.info("resuming %s: %d of %d points done", results.path, len(done & set(planned)), len(planned))
        return results, done

    def _run_sd(
        self,
        sd: SDConfig,
        todo: list[tuple[int, int]],
        prompts: PromptSet,
        result: SweepResult,
        points: PointRunner,
    ) -> bool:
        """Run ``todo`` (concurrency, repeat) points of one SD setting, restarting a dead server per policy.

        Returns False when the sweep must stop (server gone, no restart left); the reason is in ``result``.
        """
        ec = self.config.engine
        restarts = 0
        todo = list(todo)
        while todo:
            try:
                with self._server(sd, points.results) as base_url:
                    while todo:
                        self._check_ready(base_url)
                        conc, repeat = todo[0]
                        summary = points.run(
                            point_name(sd, conc, repeat, self.config.load.repeats),
                            base_url,
                            self.server,
                            sd,
                            conc,
                            prompts,
                            self.load_plan(conc, len(prompts.prompts)),
                        )
                        todo.pop(0)
                        result.points.append(summary)
                        if self.on_point:
                            self.on_point(summary)
                        if summary.status != "complete":
                            # the point was cut short; go on with this server only if it still answers
                            self._check_ready(base_url)
                            if not summary.ok and not summary.not_sent:  # every request sent, none ended ok,
                                # the server still answers: it rejects them, and would every later point's
                                result.stopped_reason = f"{summary.point_id}: {summary.abort_reason}; sweep stopped"
                                log.info(result.stopped_reason)
                                return False
                return True
            except (ServerGone, EndpointError) as e:
                why = str(e)
            if not todo:  # it died after (or during) the last point of this setting: nothing left to rerun
                log.info("%s; no points left for %s", why, sd.label)
                return True
            if ec.endpoint or ec.on_server_death == "stop" or restarts >= ec.max_restarts:
                policy = (
                    "attached server"
                    if ec.endpoint
                    else f"on_server_death={ec.on_server_death}, {restarts} of {ec.max_restarts} restarts used"
                )
                result.stopped_reason = f"{why} ({policy}); sweep stopped"
                log.info(result.stopped_reason)
                return False
            restarts += 1
            log.info(
                "%s; restarting %s (%s), restart %d of %d", why, self.adapter.name, sd.label, restarts, ec.max_restarts
            )
        return True

    def _check_endpoint(self, endpoint: str) -> None:
        lens = self._prompt_lens or ([self.config.data.isl] if self.config.data.isl else [])
        preflight.check_endpoint(endpoint, self.adapter, self.config.engine, lens, self.config.load.output_len)

    def _check_attached_sd(self, endpoint: str, prompts: PromptSet) -> None:
        """The attached server's SD setting is whoever started it: check the declared one against what a short
        probe shows (its counters, per-request SD metrics) so an SD-on server is never stored as the baseline."""
        plan = self.load_plan(1, len(prompts.prompts))
        self._sd_probe, exported = run_async(
            probe_sd(self.adapter, endpoint, self.config.engine.auth_headers(), prompts.prompts, plan)
        )
        sd = self.config.sd[0]
        try:
            self._sd_unverified = preflight.check_sd_matches(
                sd,
                self._sd_probe,
                endpoint,
                self.adapter.sd_counters_show_config,
                exported,
                unverified_ok=self.config.engine.sd_unverified,
            )
        except ConfigError as e:
            if not self._resuming:
                raise
            # "give --sd X" cannot be followed here: the folder fixes the SD setting, and --resume with another
            # one is refused as a changed config; the finding stays, the advice is what can be done
            finding = re.split(r"[;:] give ", str(e))[0]
            spec = f"{sd.method}:{sd.num_speculative_tokens}" if sd.enabled else "off"
            raise ConfigError(
                f"{finding}; the sweep being resumed measured --sd {spec}: restart the server with that SD "
                "setting to resume it, or start a new sweep (without --resume) with the server's setting"
            ) from None

    def _check_ready(self, base_url: str) -> None:
        check_ready(self.adapter, self.server, base_url, self.config.engine.auth_headers())

    @contextlib.contextmanager
    def _server(self, sd: SDConfig, results: ResultsDir) -> Iterator[str]:
        """The base URL of a ready server for ``sd``: the attached one, or one launched here and torn down
        on exit (its log in the results folder)."""
        ec = self.config.engine
        if ec.endpoint:
            self._check_endpoint(ec.endpoint)
            record_server_info(self.adapter, sd, ec.endpoint, ec.auth_headers(), results)
            self.base_url = ec.endpoint
            try:
                yield ec.endpoint
            finally:
                self.base_url = None
            return
        port = ec.port or pick_free_port(ec.host)
        server = build_server(self.adapter, ec, sd, port, max(self.config.load.concurrency), results)
        with server:
            log.info("starting %s (%s) on port %d; log: %s", self.adapter.name, sd.label, port, server.log_path)
            waited = server.wait_ready()
            log.info("%s (%s) ready after %.0f s", self.adapter.name, sd.label, waited)
            record_server_info(self.adapter, sd, f"http://{ec.host}:{port}", ec.auth_headers(), results)
            self.server = server
            self.base_url = f"http://{ec.host}:{port}"
            try:
                yield self.base_url
            finally:
                self.server = self.base_url = None

    def _manifest(self, prompts: PromptSet) -> dict:
        return sweep_manifest(self.config, self.adapter, prompts, self._engine_env, self._sd_probe, self._sd_unverified)
