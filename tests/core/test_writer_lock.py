"""One writer per results folder: the kernel lock, its refusal line, a dead holder's file taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from speedbench.config import ConfigError
from speedbench.core.writer_lock import LOCK_NAME, FolderLocked, WriterLock, lock_folder

HOLD = "import sys, time; from speedbench.core.writer_lock import WriterLock; WriterLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)"


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderLocked) as e:
            WriterLock(tmp_path).acquire()
        line = str(e.value)
        assert f"pid {holder.pid} on {socket.gethostname()}" in line and "\n" not in line
        holder.kill()  # SIGKILL: no cleanup ran, the file stays behind naming a dead pid
        holder.wait(10)
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid
        with WriterLock(tmp_path):  # the kernel dropped the dead writer's lock: taken over
            assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        assert not (tmp_path / LOCK_NAME).exists()  # released: nothing left in the folder
    finally:
        holder.kill()
        holder.wait(10)


def test_the_lock_is_held_until_released_even_in_one_process(tmp_path):
    lock = WriterLock(tmp_path).acquire()
    with pytest.raises(FolderLocked):
        WriterLock(tmp_path).acquire()
    lock.release()
    WriterLock(tmp_path).acquire().release()


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as e:
        lock_folder(tmp_path / "file" / "run", "create the results folder")
    assert "cannot create the results folder" in str(e.value) and "give a folder you can write" in str(e.value)
