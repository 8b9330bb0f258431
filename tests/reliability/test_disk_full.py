"""A results folder that stops taking writes (disk full, read-only): one line and exit 2, finished points kept,
no temporary files left behind, and `--resume` completes once there is room again (issue 30)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from speedbench.results import ResultsDir
from tests.reliability.conftest import error_line, sweep_config, write_config
from tests.reliability.test_attach import fault_server


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp*"))


@pytest.fixture
def two_points(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    cfg = sweep_config(tmp_path, tiny_tokenizer, fake_model, prompt_cache, sd=("off",), concurrency=(1, 2), requests=4)
    del cfg["engine"]["model"]
    cfg["quality"] = {"enabled": False}
    return write_config(tmp_path / "cfg.json", cfg)


def test_disk_full_mid_sweep_exits_2_and_resume_completes(two_points, tmp_path, monkeypatch):
    full = {"on": False}
    real_fsync, real_append = os.fsync, ResultsDir.append_point

    def fsync(fd):  # the disk fills up: every flush to it fails from now on
        if full["on"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    def append_point(self, summary):
        real_append(self, summary)
        full["on"] = True  # the first point is durable; the disk is full after it

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(ResultsDir, "append_point", append_point)
    with fault_server() as url:
        res = CliRunner().invoke(main, ["sweep", "--config", str(two_points), "--endpoint", url])
        assert res.exit_code == 2, res.stderr
        line = error_line(res)
        (run,) = (tmp_path / "results").iterdir()
        assert f"cannot write the results folder {run}: No space left on device" in line
        assert f"speedbench sweep --resume {run}" in line
        assert _temps(run) == []  # the failed atomic writes cleaned up after themselves
        assert [p["point_id"] for p in ResultsDir(run).points()] == ["sd-off-c1"]
        assert not (run / ".writer.lock").exists()

        full["on"] = False  # space freed
        monkeypatch.setattr(ResultsDir, "append_point", real_append)
        (run / ".manifest.json.tmp99999").write_text("{")  # what a crashed write of an older release left
        res = CliRunner().invoke(main, ["sweep", "--resume", str(run), "--endpoint", url])
    assert res.exit_code == 0, res.stderr
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert [p["point_id"] for p in ResultsDir(run).points()] == ["sd-off-c1", "sd-off-c2"]
    assert _temps(run) == []


@pytest.fixture
def read_only():
    """Make a folder read-only for real: permissions for a normal user, a read-only bind mount for root."""
    mounted: list[Path] = []

    def make(folder: Path) -> None:
        if os.geteuid() != 0:
            for p in [folder, *folder.rglob("*")]:
                if p.is_dir():
                    p.chmod(0o555)
            return
        try:
            subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as e:
            pytest.skip(f"root without mount: cannot make a folder read-only ({e})")
        mounted.append(folder)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True, capture_output=True)

    yield make
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)


def test_resume_of_a_read_only_folder_exits_2_in_one_line(two_points, tmp_path, read_only):
    with fault_server() as url:
        res = CliRunner().invoke(main, ["sweep", "--config", str(two_points), "--endpoint", url])
        assert res.exit_code == 0, res.stderr
        (run,) = (tmp_path / "results").iterdir()
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        read_only(run)
        res = CliRunner().invoke(main, ["sweep", "--resume", str(run), "--endpoint", url])
    assert res.exit_code == 2, res.stderr
    line = error_line(res)
    assert f"cannot resume in the results folder {run}" in line and "give a folder you can write" in line
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
