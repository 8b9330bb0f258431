"""Launch an engine server as an argv list in its own process group; always tear the whole group down."""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import BinaryIO

from speedbench.config import ConfigError


class EngineError(RuntimeError):
    """The engine server failed (start-up, readiness, death mid-run)."""


_LIVE: set[ServerProcess] = set()


@atexit.register
def _kill_leftovers() -> None:  # last line of defence; normal paths stop servers explicitly
    for srv in list(_LIVE):
        srv.stop()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        # as servers bind (uvicorn sets it): connections of a stopped server in TIME_WAIT do not make
        # the port busy; a process still listening on it does
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tail_file(path: Path, lines: int = 15) -> str:
    try:
        with path.open("r", errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except OSError:
        return ""


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _stop_group(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the group, wait, SIGKILL whatever is left (also when the leader already died on its own)."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        if not _killpg(proc.pid, sig):
            return  # nobody left in the group
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; stragglers in its group (engine workers) go too, and are waited for
        deadline = time.monotonic() + 10.0
        while group_alive(proc.pid) and time.monotonic() < deadline:
            _killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.05)
        return


def group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process left in the group? Zombies hold no GPU, port or memory."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # not Linux: signal 0 tells whether anyone is left
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # fields after the ")" that ends the command name: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if the harness is SIGKILLed (no other cleanup can run then)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except Exception:  # not Linux, no libc symbol: the atexit hook and the process group still apply
        pass


class ServerProcess:
    """Context manager around one server process group.

    The child runs with ``start_new_session=True`` so that SIGTERM/SIGKILL to its process group reaches
    every worker it spawns (vLLM starts an engine-core process; TRT-LLM and SGLang spawn per-GPU workers).
    """

    def __init__(
        self,
        argv: list[str],
        log_path: Path,
        health_url: str,
        *,
        env: dict | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout_s: float = 900.0,
        cwd: Path | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.health_url = health_url
        self.env = env
        self.host, self.port = host, port
        self.startup_timeout_s = startup_timeout_s
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self._log: BinaryIO | None = None

    def start(self) -> ServerProcess:
        if self.port is not None and not port_is_free(self.host, self.port):
            raise ConfigError(f"port {self.port} on {self.host} is already in use; pick another with --port")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log = self.log_path.open("ab")
        log.write(f"$ {' '.join(self.argv)}\n".encode())
        log.flush()
        env = {**os.environ, **(self.env or {})}
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        except FileNotFoundError as e:
            log.close()
            raise ConfigError(f"cannot start engine: {e.filename} not found (check engine.python)") from None
        _LIVE.add(self)
        return self

    def wait_ready(self, poll_s: float = 1.0) -> float:
        """Block until the health URL answers 200; return seconds waited. Fails fast if the process dies."""
        t0 = time.monotonic()
        deadline = t0 + self.startup_timeout_s
        while True:
            self.assert_alive("during start-up")
            try:
                with urllib.request.urlopen(self.health_url, timeout=5) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise EngineError(
                    f"server not ready after {self.startup_timeout_s:.0f} s ({self.health_url}); "
                    f"log: {self.log_path}\n{tail_file(self.log_path)}"
                )
            time.sleep(poll_s)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self, when: str = "") -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise EngineError(
                f"server exited with code {self.proc.returncode} {when}; log: {self.log_path}\n"
                f"{tail_file(self.log_path)}"
            )

    def stop(self, grace_s: float = 20.0) -> None:
        proc = self.proc
        if proc is not None:
            try:
                _stop_group(proc, grace_s)
            except BaseException:
                # a second Ctrl-C / SIGTERM during the grace period: skip it, never leave the group behind
                _killpg(proc.pid, signal.SIGKILL)
                raise
            finally:
                # forget the process only now: if teardown was cut short, atexit still knows it
                self.proc = None
                _LIVE.discard(self)
        if self._log is not None and not self._log.closed:
            self._log.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
