"""REST service over the runner: start sweeps, watch progress, read reports, compare runs.

    speedbench serve-api [--host 127.0.0.1 --port 8080 --token T --output-dir results]

POST /runs (BenchmarkConfig JSON; ``?preset=cpu-demo`` layers it over a preset) -> run id
GET /runs, GET /runs/{id} (progress), GET /runs/{id}/report?format=json|md|csv, GET /compare?ids=a,b
OpenAPI docs at /docs. Binds loopback by default; a bearer token is required on any other address.
"""
from __future__ import annotations

import ipaddress
from dataclasses import asdict
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from speedbench.api.runs import RunManager
from speedbench.config import BenchmarkConfig, ConfigError


class RunInfo(BaseModel):
    id: str
    status: str
    queue: Optional[str] = None
    results_dir: str
    created_at: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    points_planned: int
    points_finished: int
    current_point: Optional[str] = None
    error: Optional[str] = None
    source: str
    config: Optional[dict[str, Any]] = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname: may resolve anywhere, treat as exposed


def create_app(output_dir: str | Path = "results", token: Optional[str] = None,
               manager: Optional[RunManager] = None) -> FastAPI:
    manager = manager or RunManager(output_dir)
    bearer = HTTPBearer(auto_error=False)

    def check_token(creds: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if token is None:
            return
        if creds is None or not secrets.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        manager.shutdown()

    app = FastAPI(title="speedbench", description=__doc__, dependencies=[Depends(check_token)], lifespan=lifespan)
    app.state.manager = manager

    def results_or_404(run_id: str) -> Path:
        path = manager.results_path(run_id)
        if path is None:
            raise HTTPException(404, f"no run or results folder {run_id!r}")
        return path

    @app.post("/runs", status_code=202, response_model=RunInfo, openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BenchmarkConfig"}}}}})
    async def create_run(request: Request, preset: Optional[str] = None) -> dict:
        """Queue a sweep. The body is a BenchmarkConfig (partial when ``preset`` supplies the rest)."""
        from speedbench.api.config_sources import resolve_config

        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(422, "request body must be JSON (a BenchmarkConfig object)") from None
        try:
            cfg = resolve_config(preset=preset, use_env=False, overrides=body or {},
                                 overrides_name="request body").config
            state = manager.submit(cfg)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        return state.info()

    @app.get("/runs", response_model=list[RunInfo], response_model_exclude={"__all__": {"config"}})
    def list_runs() -> list[dict]:
        """Runs of this service and every results folder under its output dir."""
        return manager.list()

    @app.get("/runs/{run_id}", response_model=RunInfo)
    def get_run(run_id: str) -> dict:
        info = manager.get(run_id)
        if info is None:
            raise HTTPException(404, f"no run or results folder {run_id!r}")
        return info

    @app.get("/runs/{run_id}/report", response_model=None)
    def report(run_id: str, format: str = Query("json", pattern="^(json|md|csv)$")):
        """Summary rows (one per SD setting × concurrency) with speedups and per-category acceptance."""
        from speedbench.api.python import load_result

        result = load_result(results_or_404(run_id))
        return _render(result.rows(), format, extra={
            "id": run_id, "status": result.status, "prompts_fingerprint": result.prompts_fingerprint,
            "speedups": [asdict(s) for s in result.speedups],
            "categories": {k: [c.to_dict() for c in v] for k, v in result.categories.items()}})

    @app.get("/compare", response_model=None)
    def compare(ids: str = Query(..., description="comma-separated run ids"),
                format: str = Query("json", pattern="^(json|md|csv)$")):
        """Side-by-side rows of several runs; 409 when they were measured on different prompts."""
        from speedbench.api.merge import check_same_prompts
        from speedbench.metrics.summary import speedup_rows
        from speedbench.results import ResultsDir

        run_ids = [x.strip() for x in ids.split(",") if x.strip()]
        if len(run_ids) < 2:
            raise HTTPException(422, "give at least two run ids: /compare?ids=a,b")
        dirs = [ResultsDir(results_or_404(r)) for r in run_ids]
        try:
            fingerprint = check_same_prompts(dirs)
        except ConfigError as e:
            raise HTTPException(409, str(e)) from None
        rows = [{"run": rid, **row} for rid, rd in zip(run_ids, dirs) for row in rd.summary_rows()]
        rows.sort(key=lambda r: (r["engine"], r["isl"] or 0, r["sd_label"], r["concurrency"], run_ids.index(r["run"])))
        speedups = [{"run": rid, **s} for rid, rd in zip(run_ids, dirs) for s in speedup_rows(rd.summary_rows())]
        if format == "md":  # one table: name each row's run in the engine column so speedups stay per run
            rows = [{**r, "engine": f"{r['engine']}@{r['run']}"} for r in rows]
        return _render(rows, format, extra={"ids": run_ids, "prompts_fingerprint": fingerprint, "speedups": speedups})

    _document_config_body(app)
    return app


def _render(rows: list[dict], fmt: str, extra: dict) -> Any:
    if fmt == "md":
        from speedbench.report.table import render_markdown

        return PlainTextResponse(render_markdown(rows), media_type="text/markdown")
    if fmt == "csv":
        import pandas as pd

        return PlainTextResponse(pd.DataFrame(rows).to_csv(index=False), media_type="text/csv")
    return _json_safe({**extra, "rows": rows})


def _json_safe(obj: Any) -> Any:
    """NaN (empty distributions) is not JSON: send null."""
    import math

    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


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


def serve_api(host: str = "127.0.0.1", port: int = 8080, token: Optional[str] = None,
              output_dir: str | Path = "results") -> None:
    if not token and not is_loopback(host):
        raise ConfigError(f"refusing to serve on non-loopback address {host!r} without a token: "
                          "pass --token (or SPEEDBENCH_API_TOKEN)")
    import uvicorn

    uvicorn.run(create_app(output_dir, token), host=host, port=port, log_level="info")
