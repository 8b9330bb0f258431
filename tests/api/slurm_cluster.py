"""A real one-node Slurm cluster for the tests: munged + slurmctld + slurmd from Debian's ``munge`` and
``slurm-wlm`` (``make slurm`` installs them), every file in one temporary folder, torn down by pid.

Settings that work in this sandbox (shared/notes/real-parts-here.md): root runs both daemons,
``proctrack/linuxproc`` and ``task/none`` (no cgroups), ``select/cons_tres`` with ``CR_CPU``, ports picked
free. munged gets its own socket, key and pid file in the folder (``AuthInfo=socket=...``), so nothing of
the machine's own munge is touched. Nothing here is how a production cluster is configured.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scancel")


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None and not Path("/usr/sbin", p).exists()]


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SlurmCluster:
    root: Path
    cpus: int = 2
    env: dict[str, str] = field(default_factory=dict)  # SLURM_CONF for every client call
    pid_files: list[Path] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def start(self, timeout_s: float = 60.0) -> SlurmCluster:
        r = self.root
        for d in ("state", "spool", "log", "munge"):
            (r / d).mkdir(parents=True, exist_ok=True)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        sock = r / "munge" / "munge.socket"
        munge_pid = r / "munge" / "munged.pid"
        subprocess.run(
            [
                _exe("munged"),
                "--force",
                f"--socket={sock}",
                f"--key-file={key}",
                f"--pid-file={munge_pid}",
                f"--log-file={r / 'log' / 'munged.log'}",
                f"--seed-file={r / 'munge' / 'munged.seed'}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.pid_files.append(munge_pid)
        host = socket.gethostname()
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=speedbench-test",
                    f"SlurmctldHost={host}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={sock}",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'slurmd.pid'}",
                    f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU",
                    "ReturnToService=2",
                    "MpiDefault=none",
                    f"NodeName={host} CPUs={self.cpus} RealMemory=2000 State=UNKNOWN",
                    f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        self.env = {"SLURM_CONF": str(self.conf)}
        env = {**os.environ, **self.env}
        for daemon in ("slurmctld", "slurmd"):  # both daemonize and write their pid files
            subprocess.run([_exe(daemon)], env=env, check=True, capture_output=True, timeout=30)
            self.pid_files.append(r / f"{daemon}.pid")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = subprocess.run(
                [_exe("sinfo"), "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=10
            ).stdout.split()
            if out and all(s == "idle" for s in out):
                return self
            time.sleep(0.5)
        raise RuntimeError(f"slurm node not idle after {timeout_s} s: see {r / 'log'}")

    def stop(self) -> None:
        for pid_file in reversed(self.pid_files):  # slurmd, slurmctld, then munged
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.1)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
