"""Bad input through the real CLI: one clear error line, a non-zero exit, no server left behind."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SB = [sys.executable, "-m", "speedbench.cli"]


def run_cli(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    # hermetic: SPEEDBENCH_* variables are a config source and would override the test's own config
    base = {k: v for k, v in os.environ.items() if not k.startswith("SPEEDBENCH_") or k == "SPEEDBENCH_HOME"}
    return subprocess.run([*SB, *args], capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})})


def error_line(res: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("speedbench: error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["--engine", "nope"], 2, "unknown engine 'nope'"),
        (["--isl", "8q"], 2, "bad ISL '8q'"),
        (["--concurrency", "4,0"], 2, "positive"),
        (["--model", "/does/not/exist"], 2, "model path not found: /does/not/exist"),
        (["--sd", "off,medusa:3"], 2, "medusa"),
    ],
)
def test_bad_input_is_one_clear_line(args, code, needle, tmp_path):
    res = run_cli("sweep", "--preset", "cpu-demo", "--output-dir", str(tmp_path), *args)
    assert res.returncode == code
    assert needle in error_line(res)


def test_bad_yaml_config_file(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("engine: [unclosed\n")
    res = run_cli("sweep", "--config", str(cfg))
    assert res.returncode == 2 and "bad YAML" in error_line(res)


def _fake_engine(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-engine-python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def _config(tmp_path: Path, gemma_dir: Path, python: str, **engine) -> str:
    cfg = {
        "engine": {"model": str(gemma_dir), "python": python, "startup_timeout_s": 3, **engine},
        "sd": [{"method": "off"}],
        "data": {"prompts_per_category": 1, "cache_dir": str(tmp_path / "cache")},
        "load": {"concurrency": [1], "output_len": 4},
        "output_dir": str(tmp_path / "results"),
    }
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_server_that_never_becomes_ready(tmp_path, gemma_dir):
    marker = tmp_path / "engine.pid"
    python = _fake_engine(tmp_path, f"echo $$ > {marker}; exec sleep 120")
    res = run_cli("sweep", "--config", _config(tmp_path, gemma_dir, python))
    assert res.returncode == 3  # EXIT_ENGINE (speedbench.outcome)
    assert "not ready after 3 s" in error_line(res)
    pid = int(marker.read_text())
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    manifest = json.loads(next((tmp_path / "results").glob("*/manifest.json")).read_text())
    assert manifest["status"] == "failed"


def test_server_that_exits_during_startup(tmp_path, gemma_dir):
    python = _fake_engine(tmp_path, "echo 'RuntimeError: no usable device' >&2; exit 7")
    res = run_cli("sweep", "--config", _config(tmp_path, gemma_dir, python))
    assert res.returncode == 3 and "server exited with code 7" in error_line(res)


def test_port_already_in_use(tmp_path, gemma_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        python = _fake_engine(tmp_path, "exec sleep 120")
        res = run_cli("sweep", "--config", _config(tmp_path, gemma_dir, python, port=port))
    assert res.returncode == 2 and f"port {port} on 127.0.0.1 is already in use" in error_line(res)


def test_cli_warnings_follow_the_current_stderr(monkeypatch):
    """basicConfig bound the first command's stderr for good; under CliRunner that stream is closed after
    the command and every later warning failed.  The handler writes to whatever stderr is now."""
    import io
    import logging
    import sys

    from speedbench.cli.options import setup_logging

    first, second = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging()
    setup_logging()  # once per process, however many commands run
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("speedbench.test").warning("after the first command")
    assert len(root.handlers) == 1
    assert second.getvalue() == "speedbench: WARNING: after the first command\n"
