"""The one orchestrator of a sweep: SD settings × concurrencies on one prompt set, results made durable."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from speedbench import preflight
from speedbench.config import BenchmarkConfig, ConfigError, SDConfig
from speedbench.core.documents import point_complete
from speedbench.core.point_id import planned_points, point_name
from speedbench.core.records import RequestRecord
from speedbench.data.pretokenize import PromptSet, cache_path, prepare_prompts
from speedbench.data.turns import NextTurn, last_turn_tokens
from speedbench.engines import get_adapter
from speedbench.engines.base import EngineAdapter
from speedbench.engines.server import ServerProcess, pick_free_port
from speedbench.engines.versions import version_of
from speedbench.env_info import engine_python_versions, harness_versions, machine_info
from speedbench.guard import PointGuard
from speedbench.load.eventloop import run_async
from speedbench.load.plan import LoadPlan, planned_requests
from speedbench.load.schedule import PromptBudget, prompt_budget
from speedbench.measure import measure_point, probe_sd
from speedbench.metrics.category import category_acceptance
from speedbench.metrics.flags import point_flags
from speedbench.metrics.speedup import speedup_rows
from speedbench.metrics.summary import PointSummary, summarize_point
from speedbench.outcome import Speedup, SweepResult  # noqa: F401  (re-exported: the API returns them)
from speedbench.preflight import EndpointError
from speedbench.quality.post_sweep import write_post_sweep
from speedbench.results import ResultsDir, new_run_dir
from speedbench.resume import check_resumable, config_hash, prepare_resume
from speedbench.telemetry.point import PointTelemetry

log = logging.getLogger(__name__)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: finished points are on disk, the server is torn down, the exit is non-zero."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class _ServerGone(Exception):
    """The server died or stopped answering between or during points (handled by the restart policy)."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into an exception so every ``finally`` (flush records, server teardown) runs."""

    def handler(signum, frame):
        raise SweepInterrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a REST worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class BenchmarkRunner:
    def __init__(
        self, config: BenchmarkConfig, *, progress: bool = True, on_point: Callable[[PointSummary], None] | None = None
    ) -> None:
        self.config = config
        self.progress = progress and sys.stderr.isatty()
        self.on_point = on_point
        self.adapter: EngineAdapter = get_adapter(config.engine)
        self.results: ResultsDir | None = None
        self.server: ServerProcess | None = None
        self.base_url: str | None = None  # the server being measured, while a sweep runs
        self._prompt_lens: list[int] = []
        self._engine_env: dict | None = None  # versions in the engine's environment, read by validate()
        self._reply_end_id: int | None = None  # multi-turn: the template's end-of-turn token (prompts meta)
        self._sd_probe: list = []  # attach mode: the SD evidence the server showed before the sweep

    # ---- planning -------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Everything that can be checked before a server starts."""
        cfg = self.config
        for sd in cfg.sd:
            self.adapter.check_sd(sd)
        if cfg.engine.endpoint and len(cfg.sd) != 1:
            raise ConfigError(
                "with --endpoint the server's SD setting is fixed by whoever started it: "
                "give exactly one SD setting (e.g. --sd off or --sd ngram:3)"
            )
        if (
            not cfg.engine.endpoint
            and cfg.engine.model
            and not Path(cfg.engine.model).exists()
            and not _looks_like_hub_id(cfg.engine.model)
        ):
            raise ConfigError(f"model path not found: {cfg.engine.model}")
        if not self.tokenizer_path():
            raise ConfigError("no tokenizer: set data.tokenizer (--tokenizer) when attaching with --endpoint")
        if not cfg.engine.endpoint:
            preflight.check_port(cfg.engine.host, cfg.engine.port)
            if cfg.engine.launcher == "venv":
                # asked once (an interpreter that hangs costs its timeout once); the manifest records the same
                # answer. In a container the engine's Python is inside the image: the digest is recorded instead.
                self._engine_env = engine_python_versions(cfg.engine.python)
                self.adapter.installed_version = version_of(self._engine_env, self.adapter.dists)
                for sd in cfg.sd:  # every flag of every setting, before any server starts
                    self.adapter.check_version(sd, max(cfg.load.concurrency))
        if cfg.engine.launcher != "venv":
            if cfg.engine.endpoint:
                raise ConfigError("engine.launcher starts a server; with --endpoint nothing is launched")
            from speedbench.engines.container import check_launch

            check_launch(cfg.engine)  # a pinned image and a runtime on PATH, one clear line otherwise
        if cfg.data.isl:  # every prompt is exactly isl tokens: refuse before building a prompt that cannot fit
            preflight.check_context([cfg.data.isl], cfg.load.output_len, self._local_context())

    def check_prompts_fit(self, prompts: PromptSet) -> None:
        """Prompt + output within the served context: from the launch flags or the model's config.json."""
        preflight.check_context(self._input_lens(prompts), self.config.load.output_len, self._local_context())

    def _input_lens(self, prompts: PromptSet) -> list[int]:
        """Longest input each prompt sends: its last turn, with the earlier replies in context."""
        return [last_turn_tokens(p, self.config.load.output_len) for p in prompts.prompts]

    def _local_context(self) -> tuple[int, str] | None:
        """The served context as known without a server: launch flags, else the model's config.json."""
        ec = self.config.engine
        return preflight.flag_context_len(ec.extra_args) or (
            None if ec.endpoint else preflight.model_context_len(ec.model)
        )

    def tokenizer_path(self) -> str | None:
        return self.config.data.tokenizer or self.config.engine.model

    def points(self) -> list[tuple[SDConfig, int]]:
        return [(sd, c) for sd in self.config.sd for c in self.config.load.concurrency]

    def prompt_budget(self, concurrency: int, num_prompts: int) -> PromptBudget:
        """The point's warm-up and measured requests; ConfigError when it would have to repeat prompts."""
        lc = self.config.load
        warm = concurrency if lc.warmup_requests is None else lc.warmup_requests
        try:
            return prompt_budget(
                num_prompts,
                concurrency,
                warm,
                lc.requests_per_point,
                allow_repeats=lc.allow_repeats,
                by_duration=lc.duration_s is not None,
                closed_loop=lc.mode == "closed",
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def load_plan(self, concurrency: int, num_prompts: int) -> LoadPlan:
        lc = self.config.load
        b = self.prompt_budget(concurrency, num_prompts)
        return LoadPlan(
            concurrency=concurrency,
            num_requests=b.measured,
            warmup_requests=b.warmup,
            warmup_pool=b.warmup_pool,
            max_tokens=lc.output_len,
            fixed_length=lc.fixed_length,
            request_timeout_s=lc.request_timeout_s,
            mode=lc.mode,
            request_rate=lc.request_rate,
            arrival=lc.arrival,
            duration_s=lc.duration_s,
            cooldown=lc.cooldown,
            shuffle=lc.shuffle_prompts,
            seed=lc.seed,
            workers=lc.client_workers,
            stream_idle_timeout_s=lc.stream_idle_timeout_s,
            http_client=lc.http_client,
            headers=self.config.engine.auth_headers(),
            next_turn=NextTurn(self.tokenizer_path(), self._reply_end_id) if self.config.data.turns == "all" else None,
        )

    # ---- running --------------------------------------------------------------------------------------
    def run(self, results_dir: str | Path | None = None, resume: bool = False) -> SweepResult:
        """Run the sweep; with ``resume`` continue the sweep in ``results_dir``, skipping finished points."""
        cfg = self.config
        self.validate()
        if cfg.engine.endpoint:  # unreachable, wrong model, too small: one clear line before any prompt is built
            self._check_endpoint(cfg.engine.endpoint)
        prompts = prepare_prompts(cfg.data, self.tokenizer_path())
        self.check_prompts_fit(prompts)
        for c in cfg.load.concurrency:  # refused up front: never a repeated prompt found half-way through a sweep
            self.prompt_budget(c, len(prompts.prompts))
        self._prompt_lens = self._input_lens(prompts)  # attach mode checks them per server
        self._reply_end_id = prompts.meta.get("reply_end_id")
        if cfg.engine.endpoint:  # ... and before a results folder exists
            self._check_endpoint(cfg.engine.endpoint)
            self._check_attached_sd(cfg.engine.endpoint, prompts)
        planned = planned_points(cfg)
        done: set[str] = set()
        if resume:
            if results_dir is None:
                raise ConfigError("resume needs the results folder of the sweep to continue")
            self.results = ResultsDir.open(results_dir)
            path = self.results.path
            manifest = self.results.manifest()
            check_resumable(manifest, cfg, prompts.fingerprint)
            rp = prepare_resume(self.results, planned)
            done = rp.done
            self.results.update_manifest(
                status="running",
                resumes=[
                    *manifest.get("resumes", []),
                    {
                        "at": _now_iso(),
                        "command": sys.argv,
                        "points_done": sorted(done),
                        "moved_aside": rp.moved_aside,
                        "repaired": rp.repaired,
                    },
                ],
            )
            self._say(f"resuming {path}: {len(done & set(planned))} of {len(planned)} points done")
        else:
            path = Path(results_dir) if results_dir else new_run_dir(cfg.output_dir, cfg.name or self._default_name())
            try:
                self.results = ResultsDir(path).create(self._manifest(prompts))
            except OSError as e:  # a file in the way, read-only, no such parent: bad input, nothing ran
                raise ConfigError(f"cannot create the results folder {path}: {e.strerror or e}") from None
            cache_file = cache_path(cfg.data, prompts.fingerprint)
            if cache_file.is_file():
                self.results.save_prompts(cache_file)
        result = SweepResult(path, prompts_fingerprint=prompts.fingerprint, skipped=sorted(done & set(planned)))
        status = "failed"
        try:
            with _sigterm_as_interrupt():
                if cfg.engine.launcher != "venv":  # leftovers of a killed harness go; the image pulled, recorded
                    from speedbench.engines.container import prepare_sweep

                    prepare_sweep(cfg.engine, self.results, self._say)
                for sd in cfg.sd:
                    todo = [
                        (c, r)
                        for c in cfg.load.concurrency
                        for r in range(1, cfg.load.repeats + 1)
                        if point_name(sd, c, r, cfg.load.repeats) not in done
                    ]
                    if todo and not self._run_sd(sd, todo, prompts, result):
                        break
            status = "failed" if result.stopped_reason else "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            result.status = status
            ended = self.results.points()
            self.results.update_manifest(
                status=status,
                finished_at=_now_iso(),
                stopped_reason=result.stopped_reason,
                points_finished=sum(point_complete(p) for p in ended),
                points_failed=sorted(p["point_id"] for p in ended if not point_complete(p)),
            )
            self.results.write_tables()
        # a failed point (cut short) is reported, never used for a speedup
        result.speedups = [Speedup.from_row(s) for s in speedup_rows(result.rows())]
        result.categories = {p.point_id: category_acceptance(self.results.records(p.point_id)) for p in result.points}
        if cfg.quality.enabled:
            write_post_sweep(path, cfg, self._say)
            result.quality = _read_json(path / "quality.json")
            result.recommendation = _read_json(path / "recommendation.json")
        return result

    def _run_sd(self, sd: SDConfig, todo: list[tuple[int, int]], prompts: PromptSet, result: SweepResult) -> bool:
        """Run ``todo`` (concurrency, repeat) points of one SD setting, restarting a dead server per policy.

        Returns False when the sweep must stop (server gone, no restart left); the reason is in ``result``.
        """
        ec = self.config.engine
        restarts = 0
        todo = list(todo)
        while todo:
            try:
                with self._server(sd) as base_url:
                    while todo:
                        self._check_ready(base_url)
                        summary = self._run_point(base_url, sd, todo[0][0], prompts, todo[0][1])
                        todo.pop(0)
                        result.points.append(summary)
                        if self.on_point:
                            self.on_point(summary)
                        if summary.status != "complete":
                            # the point was cut short; go on with this server only if it still answers
                            self._check_ready(base_url)
                return True
            except (_ServerGone, EndpointError) as e:
                why = str(e)
            if not todo:  # it died after (or during) the last point of this setting: nothing left to rerun
                self._say(f"{why}; no points left for {sd.label}")
                return True
            if ec.endpoint or ec.on_server_death == "stop" or restarts >= ec.max_restarts:
                policy = (
                    "attached server"
                    if ec.endpoint
                    else f"on_server_death={ec.on_server_death}, {restarts} of {ec.max_restarts} restarts used"
                )
                result.stopped_reason = f"{why} ({policy}); sweep stopped"
                self._say(result.stopped_reason)
                return False
            restarts += 1
            self._say(f"{why}; restarting {self.adapter.name} ({sd.label}), restart {restarts} of {ec.max_restarts}")
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
        preflight.check_sd_matches(
            self.config.sd[0], self._sd_probe, endpoint, self.adapter.sd_counters_show_config, exported
        )

    def _check_ready(self, base_url: str) -> None:
        """Before each point: the launched process lives and the health URL answers 200."""
        if self.server is not None and not self.server.is_alive():
            raise _ServerGone(f"server exited (code {self.server.returncode}); log: {self.server.log_path}")
        try:
            preflight.check_health(base_url + self.adapter.health_path, headers=self.config.engine.auth_headers())
        except EndpointError as e:
            if self.server is not None:
                raise _ServerGone(str(e)) from None
            raise

    @contextlib.contextmanager
    def _server(self, sd: SDConfig) -> Iterator[str]:
        ec = self.config.engine
        if ec.endpoint:
            self._check_endpoint(ec.endpoint)
            self.base_url = ec.endpoint
            try:
                yield ec.endpoint
            finally:
                self.base_url = None
            return
        port = ec.port or pick_free_port(ec.host)
        argv = self.adapter.launch_argv(sd, ec.host, port, max(self.config.load.concurrency))
        log_path = self.results.log_path(f"{self.adapter.name}-{sd.label}")
        health = f"http://{ec.host}:{port}{self.adapter.health_path}"
        if ec.launcher != "venv":
            from speedbench.engines import container

            files = list(self.adapter.launch_files(sd, max(self.config.load.concurrency)))
            server: ServerProcess = container.launch(
                ec,
                argv,
                files,
                sd.draft_model,
                self.results.path,
                sd.label,
                port,
                log_path,
                health,
                self.adapter.launch_env(sd),
            )
        else:
            server = ServerProcess(
                argv,
                log_path,
                health,
                env=self.adapter.launch_env(sd),
                host=ec.host,
                port=port,
                startup_timeout_s=ec.startup_timeout_s,
            )
        with server:
            self._say(f"starting {self.adapter.name} ({sd.label}) on port {port}; log: {server.log_path}")
            waited = server.wait_ready()
            self._say(f"{self.adapter.name} ({sd.label}) ready after {waited:.0f} s")
            self.server = server
            self.base_url = f"http://{ec.host}:{port}"
            try:
                yield self.base_url
            finally:
                self.server = self.base_url = None

    def _run_point(self, base_url: str, sd: SDConfig, conc: int, prompts: PromptSet, repeat: int = 1) -> PointSummary:
        point_id = point_name(sd, conc, repeat, self.config.load.repeats)
        plan = self.load_plan(conc, len(prompts.prompts))
        # measured conversations start at request index 0 (warm-up is its own wave: see run_point)
        planned = planned_requests(prompts.prompts, plan)
        results = self.results
        results.move_records_aside(point_id)  # never append to an earlier attempt's records
        records: list[RequestRecord] = []
        pending: list[RequestRecord] = []
        server = self.server
        guard = PointGuard(
            server.is_alive if server is not None else None, self.config.load.abort_after_transport_errors
        )

        def sink(rec: RequestRecord) -> None:
            self._count_text_tokens(rec)
            records.append(rec)
            pending.append(rec)
            guard.observe(rec)
            if len(pending) >= 64:
                results.append_records(point_id, pending)
                pending.clear()
            if bar is not None and not rec.warmup:
                bar.advance(task)

        task = None  # the progress bar (below) is created before any record arrives
        with self._progress() as bar:
            if bar is not None:
                task = bar.add_task(f"{sd.label} c={conc}", total=planned)
            t0 = time.monotonic()
            try:
                with PointTelemetry(self.config) as telemetry:  # GPU samples on a side thread, n/a without NVML
                    before, run, after = run_async(
                        measure_point(
                            self.adapter,
                            base_url,
                            self.config.engine.auth_headers(),
                            prompts.prompts,
                            plan,
                            sink,
                            point_id,
                            guard,
                        )
                    )
            finally:
                results.append_records(point_id, pending)  # also on Ctrl-C / SIGTERM: what ended is kept
        counters = (after - before) if (before is not None and after is not None) else None
        if sd.enabled and counters is None and not any(r.sd for r in records) and guard.reason is None:
            log.warning("SD is on but %s exposed no acceptance counters for %s", self.adapter.name, point_id)
        lc = self.config.load
        summary = summarize_point(
            records,
            point_id=point_id,
            engine=self.adapter.name,
            sd_label=sd.label,
            sd_method=sd.method,
            draft_length=sd.num_speculative_tokens if sd.enabled else None,
            concurrency=conc,
            isl=self.config.data.isl,
            counters=counters if sd.enabled else None,
            slo_ttft_s=lc.slo_ttft_ms / 1e3 if lc.slo_ttft_ms else None,
            slo_user_tps=lc.slo_min_user_tps,
        )
        summary.not_sent = max(0, planned - summary.sent)
        if guard.reason is not None:
            summary.status, summary.abort_reason = "failed", guard.reason
        if run is not None and run.client is not None:  # how well the client kept up (load layer)
            summary.client_lag_p99_ms = run.client.client_lag_p99_ms
            summary.mean_in_flight = run.client.mean_in_flight
            summary.client_saturated = run.client.client_saturated
            summary.client_timestamps, summary.client_lag_limit_ms = run.client.timestamps, run.client.lag_limit_ms
            if run.client.client_saturated:
                log.warning(
                    "%s: the client fell behind (%s): latencies include client delay", point_id, run.client.reason
                )
        telemetry.apply(summary, records, results.path)
        results.append_point(summary)
        if summary.token_counts:
            results.update_manifest(
                token_counts={**results.manifest().get("token_counts", {}), point_id: summary.token_counts}
            )
        for tag, text in point_flags(summary.to_row()):
            if tag != "CLIENT-BOUND":  # said above, with its reason
                log.warning("%s", text)
        errs = ", ".join(f"{k} {v}" for k, v in sorted(summary.errors_by_kind.items()))
        self._say(
            f"{point_id}: {summary.ok}/{summary.sent} ok"
            + (f" ({errs})" if errs else "")
            + (f", {summary.cancelled} cancelled" if summary.cancelled else "")
            + (f", {summary.not_sent} not sent" if summary.not_sent else "")
            + f", {summary.output_tps:.1f} tok/s in {time.monotonic() - t0:.0f} s"
            + (f"; POINT FAILED: {guard.reason}" if guard.reason else "")
        )
        return summary

    # ---- helpers ------------------------------------------------------------------------------------
    def _count_text_tokens(self, rec: RequestRecord) -> None:
        """A server that streamed text only and sent no usage: count the output with the tokenizer."""
        if rec.token_source != "text" or rec.completion_tokens is not None or not rec.text:
            return
        from speedbench.data.tokenization import encode, load_tokenizer  # cached after the first load

        rec.completion_tokens = len(encode(load_tokenizer(self.tokenizer_path()), rec.text))
        rec.token_source = "tokenizer"

    def _progress(self):
        if not self.progress:
            return contextlib.nullcontext(None)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        return Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
        )

    def _say(self, msg: str) -> None:
        print(f"[speedbench] {msg}", file=sys.stderr, flush=True)

    def _default_name(self) -> str:
        isl = f"-isl{self.config.data.isl}" if self.config.data.isl else ""
        return f"{self.config.engine.name}{isl}"

    def _manifest(self, prompts: PromptSet) -> dict:
        cfg = self.config
        return {
            "created_at": _now_iso(),
            "status": "running",
            "command": sys.argv,
            "config": cfg.model_dump(mode="json"),
            "config_hash": config_hash(cfg),
            "prompts": {"fingerprint": prompts.fingerprint, **prompts.meta},
            "machine": machine_info(),
            "harness": harness_versions(),
            "engine": {
                "name": self.adapter.name,
                "attached": bool(cfg.engine.endpoint),
                "served_model": self.adapter.served_model_name,
                "sd_probe": [c.to_dict() for c in self._sd_probe],
                "version": self.adapter.installed_version,
                "version_pinned": cfg.engine.version,
                "versions": {}
                if cfg.engine.endpoint or cfg.engine.launcher != "venv"
                else self._engine_env
                if self._engine_env is not None
                else engine_python_versions(cfg.engine.python),
            },
            # how every request generated (compare/merge refuse runs that differ: speedbench.report.comparable)
            "generation": {
                "output_len": cfg.load.output_len,
                **self.adapter.sampling,
                "ignore_eos": cfg.load.fixed_length,
            },
            # what a speedup compares besides SD itself (unknown for a server someone else started)
            "launch_differences": {}
            if cfg.engine.endpoint
            else {sd.label: self.adapter.launch_differences(sd) for sd in cfg.sd if sd.enabled},
            "points_planned": planned_points(cfg),
        }


def _read_json(path: Path) -> dict | None:
    import json

    return json.loads(path.read_text()) if path.is_file() else None


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _looks_like_hub_id(model: str) -> bool:
    return model.count("/") == 1 and not model.startswith((".", "/", "~"))
