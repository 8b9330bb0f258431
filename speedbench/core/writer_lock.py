"""One writer per results folder: an OS lock (``flock``) on ``<folder>/.writer.lock``, held for a run's life.

Two sweeps writing one folder (a second ``sweep --resume`` beside a running one, a ``merge --out`` into it)
would interleave their records and load the server twice, and nothing afterwards could tell. The lock is
the kernel's: it goes with the process however that ends (even SIGKILL), so a lock file left by a dead
writer is never an obstacle; the pid and host it names are only for the refusal message. The file is removed
when the writer releases it; a writer that finds the path replaced after it locked (the previous holder
removed it meanwhile) locks the new file instead, so two writers never hold locks on two different files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
from pathlib import Path

from speedbench.config import ConfigError

LOCK_NAME = ".writer.lock"
log = logging.getLogger(__name__)


class FolderLocked(ConfigError):
    """Another live process writes this folder (one line naming it, exit 2)."""


class WriterLock:
    """``with WriterLock(folder):`` (or ``acquire()``/``release()``): the folder's only writer meanwhile."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        """Take the lock or raise FolderLocked naming the holder's pid and host (OSError: cannot write)."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    raise
                raise FolderLocked(self._held_message()) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file between our open and our lock: lock the new one
        stale = _read_holder(fd)
        if stale and stale.get("pid") != os.getpid():
            log.info(
                "taking over %s left by pid %s on %s (no longer running)",
                self.path,
                stale.get("pid"),
                stale.get("host"),
            )
        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder, 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # a read-only or vanished folder: the kernel lock still goes
            os.unlink(self.path)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def _held_message(self) -> str:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            holder = {}
        pid, host = holder.get("pid", "unknown"), holder.get("host", "unknown host")
        return (
            f"{self.folder} is being written by another speedbench (pid {pid} on {host}); "
            f"wait for it to end, or stop it, then run this again"
        )

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def lock_folder(folder: str | Path, action: str, create: bool = True) -> WriterLock:
    """The folder's lock (the folder made first when ``create``): FolderLocked while another process writes
    it; ConfigError (one line, exit 2) when it cannot be written (read-only, a file in the way). ``action``
    says what could not be done, e.g. "resume in the results folder"."""
    path = Path(folder)
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return WriterLock(path).acquire()
    except OSError as e:
        raise ConfigError(f"cannot {action} {path}: {e.strerror or e}; give a folder you can write") from None
