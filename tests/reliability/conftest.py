"""Fixtures for the fault-injection suite: a tiny local tokenizer, a fake model folder, the fake engine.

Everything is local and loopback-only; no real engine, model or network is needed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from speedbench.config import REPO_ROOT
from speedbench.engines.server import group_alive, port_is_free
from tests.reliability.fake_engine import register

register()

SPLIT = REPO_ROOT / "datasets" / "qualitative" / "mini.jsonl"


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> Path:
    """A word-level tokenizer trained on the bundled split (fast to load; ids vary with the words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t for line in SPLIT.read_text().splitlines() if line.strip() for t in json.loads(line)["turns"]]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=4000, special_tokens=["<unk>", "<bos>"]))
    out = tmp_path_factory.mktemp("tiny-tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", unk_token="<unk>").save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def fake_model(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fake-model")
    (d / "config.json").write_text(json.dumps({"architectures": ["FakeForCausalLM"], "max_position_embeddings": 4096}))
    return d


@pytest.fixture(scope="session")
def prompt_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prompt-cache")


def sweep_config(tmp_path: Path, tokenizer: Path, model: Path, cache: Path, *, server_args=(),
                 concurrency=(1, 4), sd=("off", "ngram"), requests=12, **load) -> dict:
    """A small fake-engine sweep: 11 prompts, 16 output tokens, short timeouts."""
    return {
        "engine": {"name": "fake", "model": str(model), "python": sys.executable, "startup_timeout_s": 20,
                   "extra_args": [str(a) for a in server_args]},
        "sd": [{"method": m} if m == "off" else {"method": m, "num_speculative_tokens": 3} for m in sd],
        "data": {"split": "qualitative-mini", "prompts_per_category": 1, "tokenizer": str(tokenizer),
                 "cache_dir": str(cache)},
        "load": {"concurrency": list(concurrency), "output_len": 16, "requests_per_point": requests,
                 "warmup_requests": 2, "stream_idle_timeout_s": 2, "request_timeout_s": 20, **load},
        "output_dir": str(tmp_path / "results"),
    }


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg))
    return path


def run_cli(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess (with the fake engine registered)."""
    return subprocess.run([sys.executable, "-m", "tests.reliability.fake_cli", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, **kw)


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.fake_cli", *args], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(pred, timeout: float, what: str, proc: Optional[subprocess.Popen] = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def records_of(results: Path) -> list[dict]:
    out = []
    for f in sorted((results / "records").glob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def orphans(pid_info: dict, port: Optional[int] = None, host: str = "127.0.0.1") -> list[str]:
    """What a torn-down fake server left behind: live processes in its group, a bound port."""
    left = []
    if group_alive(pid_info["pgid"]):
        left.append(f"process group {pid_info['pgid']}")
    if pid_info.get("child"):
        try:
            os.kill(pid_info["child"], 0)
            if Path(f"/proc/{pid_info['child']}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                left.append(f"child {pid_info['child']}")
        except (ProcessLookupError, FileNotFoundError):
            pass
    if port is not None and not port_is_free(host, port):
        left.append(f"port {port}")
    return left


def kill_group(pid_info: dict) -> None:
    """Test cleanup only: never leave a fake server behind, whatever the test found."""
    try:
        os.killpg(pid_info["pgid"], signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class FaultReport:
    """The suite's summary: faults injected, survived, requests lost, orphans left (printed at the end)."""
    rows: list[dict] = []

    @classmethod
    def add(cls, name: str, injected: int, survived: int, lost: int, orphans_left: int) -> None:
        cls.rows.append({"test": name, "injected": injected, "survived": survived, "lost": lost,
                         "orphans": orphans_left})


def pytest_terminal_summary(terminalreporter):
    if not FaultReport.rows:
        return
    tr = terminalreporter
    tr.section("fault injection summary")
    for r in FaultReport.rows:
        tr.write_line(f"{r['test']:<40} faults injected {r['injected']:>4}  survived {r['survived']:>4}  "
                      f"requests lost {r['lost']}  orphans left {r['orphans']}")
    tot = {k: sum(r[k] for r in FaultReport.rows) for k in ("injected", "survived", "lost", "orphans")}
    tr.write_line(f"{'TOTAL':<40} faults injected {tot['injected']:>4}  survived {tot['survived']:>4}  "
                  f"requests lost {tot['lost']}  orphans left {tot['orphans']}")
