"""The server of one SD setting: launched from the engine's venv or a container image, checked before each
point. (An attached server, ``--endpoint``, is checked the same way but never launched.)"""

from __future__ import annotations

import logging

from speedbench import preflight
from speedbench.config import EngineConfig, SDConfig
from speedbench.engines import container
from speedbench.engines.base import EngineAdapter
from speedbench.engines.server import ServerProcess
from speedbench.load.eventloop import run_async
from speedbench.measure import read_server_info
from speedbench.preflight import EndpointError
from speedbench.results import ResultsDir
from speedbench.runner.manifest import store_server_info

log = logging.getLogger(__name__)


class ServerGone(Exception):
    """The server died or stopped answering between or during points (handled by the restart policy)."""


def build_server(
    adapter: EngineAdapter, ec: EngineConfig, sd: SDConfig, port: int, max_concurrency: int, results: ResultsDir
) -> ServerProcess:
    """The server process of one SD setting, not started yet (``with server:`` starts it and tears it down).
    Its log goes to the results folder."""
    argv = adapter.launch_argv(sd, ec.host, port, max_concurrency)
    log_path = results.log_path(f"{adapter.name}-{sd.label}")
    health = f"http://{ec.host}:{port}{adapter.health_path}"
    if ec.launcher == "venv":
        return ServerProcess(
            argv,
            log_path,
            health,
            env=adapter.launch_env(sd),
            host=ec.host,
            port=port,
            startup_timeout_s=ec.startup_timeout_s,
        )

    files = list(adapter.launch_files(sd, max_concurrency))
    return container.launch(
        ec, argv, files, sd.draft_model, results.path, sd.label, port, log_path, health, adapter.launch_env(sd)
    )


def check_ready(adapter: EngineAdapter, server: ServerProcess | None, base_url: str, headers: dict) -> None:
    """Before each point: the launched process lives and the health URL answers 200.

    Raises ServerGone for a launched server (a restart may help), EndpointError for an attached one."""
    if server is not None and not server.is_alive():
        raise ServerGone(f"server exited (code {server.returncode}); log: {server.log_path}")
    try:
        preflight.check_health(base_url + adapter.health_path, headers=headers)
    except EndpointError as e:
        if server is not None:
            raise ServerGone(str(e)) from None
        raise


def record_server_info(adapter: EngineAdapter, sd: SDConfig, base_url: str, headers: dict, results: ResultsDir) -> None:
    """Once a server is ready: what it says about itself, stored in the manifest under its SD label (a restarted
    server's replaces it), and a warning for each point where it contradicts the setting it serves."""
    info = run_async(read_server_info(adapter, base_url, headers))
    if info.get("error"):
        log.info("%s (%s): its server info is incomplete: %s", adapter.name, sd.label, info["error"])
    for line in adapter.sd_contradictions(sd, info):
        log.warning("%s at %s: %s", adapter.name, base_url, line)
    store_server_info(results, sd.label, info)
