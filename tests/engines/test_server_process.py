import os
import socket
import sys
import time

import pytest

from speedbench.config import ConfigError
from speedbench.engines.server import EngineError, ServerProcess, pick_free_port


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); treat it as gone if its state is Z
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] == "Z"
    except OSError:
        return True


def _group_gone(pgid: int, wait_s: float = 5.0) -> bool:
    """True once no live (non-zombie) process is left in the group."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        live = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as fh:
                        fields = fh.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == pgid and fields[0] != "Z":
                    live.append(entry)
        if not live:
            return True
        time.sleep(0.1)
    return False


def _python_server(code: str, tmp_path, startup_timeout_s: float) -> ServerProcess:
    """A "server" running ``python -c code`` on a free port, whose health URL nothing answers unless code does."""
    port = pick_free_port()
    return ServerProcess(
        [sys.executable, "-c", code],
        tmp_path / "s.log",
        f"http://127.0.0.1:{port}/health",
        port=port,
        startup_timeout_s=startup_timeout_s,
    )


def test_never_ready_times_out_and_kills_the_whole_group(tmp_path):
    # parent spawns a child, then both sleep: neither answers health checks
    code = "import subprocess,sys,time; subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); time.sleep(60)"
    srv = _python_server(code, tmp_path, startup_timeout_s=1.5)
    with pytest.raises(EngineError, match="not ready after"):
        with srv:
            pgid = srv.proc.pid
            srv.wait_ready(poll_s=0.2)
    assert _group_gone(pgid)


def test_exit_during_startup_reports_code_and_log_tail(tmp_path):
    code = "import sys; print('CUDA out of memory (simulated)'); sys.exit(3)"
    srv = _python_server(code, tmp_path, startup_timeout_s=30)
    with pytest.raises(EngineError) as e:
        with srv:
            srv.wait_ready(poll_s=0.1)
    assert "exited with code 3" in str(e.value) and "out of memory" in str(e.value)


def test_ready_server_is_stopped_on_exit(tmp_path):
    port = pick_free_port()
    srv = ServerProcess(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        tmp_path / "s.log",
        f"http://127.0.0.1:{port}/",
        port=port,
        startup_timeout_s=30,
    )
    with srv:
        srv.wait_ready(poll_s=0.1)
        pid = srv.proc.pid
    assert _gone(pid)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_port_in_use_is_a_config_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        srv = ServerProcess([sys.executable, "-c", "pass"], tmp_path / "s.log", "http://x", port=port)
        with pytest.raises(ConfigError, match=f"port {port}.*in use"):
            srv.start()


def test_missing_engine_python_is_a_config_error(tmp_path):
    srv = ServerProcess(["/nonexistent/python", "-m", "vllm"], tmp_path / "s.log", "http://x")
    with pytest.raises(ConfigError, match="not found"):
        srv.start()


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path):
    code = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    srv = ServerProcess([sys.executable, "-c", code], tmp_path / "s.log", "http://x").start()
    pid = srv.proc.pid
    deadline = time.monotonic() + 10
    while "up" not in (tmp_path / "s.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.stop(grace_s=0.5)
    assert _gone(pid)
