"""REST service over the runner: start sweeps, watch progress, read reports, compare runs.

    speedbench serve-api [--host 127.0.0.1 --port 8080 --token T --output-dir results
                          --allow-root DIR --preset-dir DIR --config FILE --allow-origin URL]

POST /runs (BenchmarkConfig JSON; ``?preset=cpu-demo`` layers it over a preset) -> run id
GET /runs, GET /runs/{id} (progress), GET /runs/{id}/report?format=json|md|csv,
GET /compare?ids=a,b[&allow_generation_mismatch=true], GET /health (no token). OpenAPI docs at /docs.
Every route but /health needs the bearer token (one is generated and printed when none is given); what a
request may choose is in speedbench.api.policy, the front-door checks in speedbench.api.access. Reports
and comparisons are the CLI's own (speedbench.report.render.report_output).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.middleware.cors import CORSMiddleware

from speedbench.api.access import HEALTH_PATH, RequestGuard, is_loopback, token_problem
from speedbench.api.config_sources import resolve_config
from speedbench.api.policy import Forbidden, SubmitPolicy
from speedbench.api.runs import RunManager
from speedbench.config import BenchmarkConfig, ConfigError, load_config_file
from speedbench.report.load import ReportError
from speedbench.report.render import report_output

log = logging.getLogger(__name__)

MEDIA = {"json": "application/json", "md": "text/markdown", "csv": "text/csv"}


class RunInfo(BaseModel):
    """One run as the service reports it: its state, its results folder and how far its points are."""

    id: str
    status: str
    queue: str | None = None
    results_dir: str
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    points_planned: int
    points_finished: int
    current_point: str | None = None
    error: str | None = None
    source: str
    config: dict[str, Any] | None = None


def create_app(
    output_dir: str | Path = "results",
    *,
    token: str,
    manager: RunManager | None = None,
    policy: SubmitPolicy = SubmitPolicy(),
    service_config: str | None = None,
    allow_origins: Sequence[str] = (),
    loopback_only_hosts: bool = False,
) -> FastAPI:
    """The service's app: runs of ``manager`` (one over ``output_dir`` by default), every route but /health
    behind ``token``; ``policy`` says what a request body may set, ``service_config`` lies under every body."""
    manager = manager or RunManager(output_dir)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        manager.shutdown()

    app = FastAPI(title="speedbench", description=__doc__, lifespan=lifespan)
    app.state.manager = manager
    _add_guards(app, token, allow_origins, loopback_only_hosts)
    app.add_api_route(HEALTH_PATH, health, methods=["GET"])
    app.include_router(_runs_router(manager, policy, service_config))
    app.include_router(_reports_router(manager))
    _document_config_body(app)
    return app


def health() -> dict:
    """Liveness, without a token (it tells nothing about runs)."""
    return {"status": "ok"}


def _add_guards(app: FastAPI, token: str, allow_origins: Sequence[str], loopback_only_hosts: bool) -> None:
    """The bearer token, host and origin checks (speedbench.api.access); CORS for the origins listed."""
    app.add_middleware(RequestGuard, token=token, allow_origins=allow_origins, loopback_only_hosts=loopback_only_hosts)
    if allow_origins:  # outermost: answers the browser's preflight for the origins the operator listed
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(allow_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )


def _runs_router(manager: RunManager, policy: SubmitPolicy, service_config: str | None) -> APIRouter:
    """POST /runs (queue a sweep), GET /runs, GET /runs/{id}."""
    router = APIRouter()

    @router.post(
        "/runs",
        status_code=202,
        response_model=RunInfo,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BenchmarkConfig"}}},
            }
        },
    )
    async def create_run(request: Request, preset: str | None = None) -> dict:
        """Queue a sweep. The body is a BenchmarkConfig (partial when ``preset`` supplies the rest); fields only
        the operator may set (engine.python, extra_args, env, output_dir, paths outside the allowed roots) are
        refused with 403."""
        body = await _config_body(request)
        try:
            policy.check(body)
        except Forbidden as e:
            raise HTTPException(403, str(e)) from None

        try:
            cfg = resolve_config(
                preset=preset,
                config_file=service_config,
                use_env=False,
                overrides=body,
                overrides_name="request body",
                preset_dirs=policy.preset_dirs,
            ).config
            state = manager.submit(cfg)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        return state.info()

    @router.get("/runs", response_model=list[RunInfo], response_model_exclude={"__all__": {"config"}})
    def list_runs() -> list[dict]:
        """Runs of this service and every results folder under its output dir."""
        return manager.list()

    @router.get("/runs/{run_id}", response_model=RunInfo)
    def get_run(run_id: str) -> dict:
        """One run's state and progress (points finished of planned, the point running now)."""
        info = manager.get(run_id)
        if info is None:
            raise HTTPException(404, f"no run or results folder {run_id!r}")
        return info

    return router


async def _config_body(request: Request) -> dict:
    """The request's JSON object; 422 when the body is not one."""
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(422, "request body must be JSON (a BenchmarkConfig object)") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "request body must be a JSON object (a BenchmarkConfig)")
    return body


def _reports_router(manager: RunManager) -> APIRouter:
    """GET /runs/{id}/report and GET /compare: the CLI's report and compare over the runs' results folders."""
    router = APIRouter()

    def results_or_404(run_id: str) -> Path:
        path = manager.results_path(run_id)
        if path is None:
            raise HTTPException(404, f"no run or results folder {run_id!r}")
        return path

    @router.get("/runs/{run_id}/report", response_class=Response)
    def report(run_id: str, format: str = Query("json", pattern="^(json|md|csv)$")) -> Response:
        """`speedbench report --format json|md|csv` of the run's results folder."""
        return _report([results_or_404(run_id)], format, "report")

    @router.get("/compare", response_class=Response)
    def compare(
        ids: str = Query(..., description="comma-separated run ids"),
        format: str = Query("json", pattern="^(json|md|csv)$"),
        allow_generation_mismatch: bool = False,
    ) -> Response:
        """`speedbench compare` of several runs (labelled by run id); 409 when they sent different token ids or
        generated differently (output length, EOS policy, sampling, engine version) unless allowed."""
        run_ids = [x.strip() for x in ids.split(",") if x.strip()]
        if len(run_ids) < 2:
            raise HTTPException(422, "give at least two run ids: /compare?ids=a,b")
        paths = [results_or_404(r) for r in run_ids]
        return _report(paths, format, "compare", run_ids, allow_generation_mismatch)

    return router


def _report(
    paths: list[Path], fmt: str, kind: str, labels: list[str] | None = None, allow_generation_mismatch: bool = False
) -> Response:

    try:
        res = report_output(paths, fmt, None, kind, labels, allow_generation_mismatch=allow_generation_mismatch)
    except ReportError as e:  # runs that must not be compared, or nothing finished yet
        raise HTTPException(409, str(e)) from None
    # what the CLI prints on stderr; header values are latin-1 and one line each
    warnings = {
        f"x-speedbench-warning-{i}": w.encode("ascii", "replace").decode() for i, w in enumerate(res.warnings, 1)
    }
    return Response(res.text or "", media_type=MEDIA[fmt], headers=warnings)


def _document_config_body(app: FastAPI) -> None:
    """Put BenchmarkConfig's JSON schema into the OpenAPI components so /docs shows the POST /runs body."""
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        cfg = BenchmarkConfig.model_json_schema(ref_template="#/components/schemas/{model}")
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        comps.update(cfg.pop("$defs", {}))
        comps["BenchmarkConfig"] = cfg
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def serve_api(
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    output_dir: str | Path = "results",
    *,
    allow_roots: Sequence[str | Path] = (),
    preset_dirs: Sequence[str | Path] = (),
    service_config: str | None = None,
    allow_origins: Sequence[str] = (),
) -> None:
    """Serve until stopped. Without a token, one is generated and printed once (as Jupyter does)."""
    for d in (*allow_roots, *preset_dirs):
        if not Path(d).is_dir():
            raise ConfigError(f"not a folder: {d}")
    if service_config:
        load_config_file(service_config)  # a bad file fails at start, not on the first request
    if token and (why := token_problem(token)):
        raise ConfigError(why)
    if not token:
        token = secrets.token_urlsafe(32)
        log.warning(
            "serve-api: no --token given; clients must send 'Authorization: Bearer <token>' with "
            "this session's token (shown once): %s",
            token,
        )
    policy = SubmitPolicy(tuple(Path(r) for r in allow_roots), tuple(Path(p) for p in preset_dirs))

    app = create_app(
        output_dir,
        token=token,
        policy=policy,
        service_config=service_config,
        allow_origins=allow_origins,
        loopback_only_hosts=is_loopback(host),
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
