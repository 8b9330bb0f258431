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
from dataclasses import asdict
from pathlib import Path

import pytest

from speedbench.engines.server import group_alive, port_is_free
from speedbench.resources import DATASETS_DIR
from speedbench.results import ResultsDir
from tests.conftest import sigint_as_at_a_terminal
from tests.reliability.fake_engine import register

register()

REPO_ROOT = Path(__file__).resolve().parents[2]
SPLIT = DATASETS_DIR / "qualitative" / "mini.jsonl"


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


def sweep_config(
    tmp_path: Path,
    tokenizer: Path,
    model: Path,
    cache: Path,
    *,
    server_args=(),
    concurrency=(1, 4),
    sd=("off", "ngram"),
    requests=12,
    **load,
) -> dict:
    """A small fake-engine sweep: 11 prompts, 16 output tokens, short timeouts.  First turns only, so one
    request index is one request and the fault accounting below counts requests exactly (multi-turn
    accounting: tests/api/test_multi_turn.py); points send more requests than there are prompts
    (allow_repeats), as fault tests need load more than distinct prompts."""
    return {
        "engine": {
            "name": "fake",
            "model": str(model),
            "python": sys.executable,
            "startup_timeout_s": 20,
            "extra_args": [str(a) for a in server_args],
        },
        "sd": [{"method": m} if m == "off" else {"method": m, "num_speculative_tokens": 3} for m in sd],
        "data": {
            "split": "qualitative-mini",
            "prompts_per_category": 1,
            "tokenizer": str(tokenizer),
            "cache_dir": str(cache),
            "turns": "first",
        },
        "load": {
            "concurrency": list(concurrency),
            "output_len": 16,
            "requests_per_point": requests,
            "warmup_requests": 2,
            "allow_repeats": True,
            "stream_idle_timeout_s": 2,
            "request_timeout_s": 20,
            **load,
        },
        "output_dir": str(tmp_path / "results"),
    }


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg))
    return path


def run_cli(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess (with the fake engine registered)."""
    return subprocess.run(
        [sys.executable, "-m", "tests.reliability.fake_cli", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def start_cli(*args: str) -> subprocess.Popen:
    """The real CLI, running, for a test to signal (SIGINT as at a terminal however the suite was started)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.fake_cli", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )


def wait_for(pred, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"process exited ({proc.returncode}) while waiting for {what}: "
                f"{proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def records_of(results: Path) -> list[dict]:
    """Every point's records (not earlier attempts'), as dicts, whatever the records files' format."""
    rd = ResultsDir(results)
    return [asdict(r) for f in sorted((results / "records").glob("*.*")) for r in rd.records(f.stem)]


def launches(pid_file: Path) -> list[dict]:
    """Every fake server launched for a test (the fault server appends one line per launch)."""
    return (
        [json.loads(line) for line in pid_file.read_text().splitlines() if line.strip()] if pid_file.is_file() else []
    )


def orphans(pid_file: Path, host: str = "127.0.0.1") -> list[str]:
    """What the torn-down fake servers left behind: live processes in their groups, bound ports."""
    left = []
    for info in launches(pid_file):
        if group_alive(info["pgid"]):
            left.append(f"process group {info['pgid']}")
        if info.get("child") and alive(info["child"]):
            left.append(f"child {info['child']}")
        if not port_is_free(host, info["port"]):
            left.append(f"port {info['port']}")
    return left


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie), from /proc; a process that vanishes while read is not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def kill_launches(pid_file: Path) -> None:
    """Test cleanup only: never leave a fake server behind, whatever the test found."""
    for info in launches(pid_file):
        for target in (info["pgid"],):
            try:
                os.killpg(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if info.get("child") and alive(info["child"]):
            os.kill(info["child"], signal.SIGKILL)


@pytest.fixture(scope="session")
def baseline(tmp_path_factory, tiny_tokenizer, fake_model, prompt_cache):
    """Uninterrupted fault-free sweeps (run in-process, cached by shape) to compare resumed ones with."""
    from speedbench.config import BenchmarkConfig
    from speedbench.runner import BenchmarkRunner

    cache: dict = {}

    def get(concurrency=(1, 2), requests=12, sd=("off",)) -> dict:
        key = (tuple(concurrency), requests, tuple(sd))
        if key not in cache:
            tmp = tmp_path_factory.mktemp("baseline")
            cfg = BenchmarkConfig.from_dict(
                sweep_config(
                    tmp, tiny_tokenizer, fake_model, prompt_cache, concurrency=concurrency, requests=requests, sd=sd
                )
            )
            result = BenchmarkRunner(cfg, progress=False).run()
            cache[key] = accounting(result.results_dir)
        return cache[key]

    return get


class FaultReport:
    """The suite's summary: faults injected, survived, requests lost, orphans left (printed at the end)."""

    rows: list[dict] = []

    @classmethod
    def add(cls, name: str, injected: int, survived: int, lost: int, orphans_left: int) -> None:
        cls.rows.append(
            {"test": name, "injected": injected, "survived": survived, "lost": lost, "orphans": orphans_left}
        )


def pytest_terminal_summary(terminalreporter):
    if not FaultReport.rows:
        return
    tr = terminalreporter
    tr.section("fault injection summary")
    for r in FaultReport.rows:
        tr.write_line(
            f"{r['test']:<40} faults injected {r['injected']:>4}  survived {r['survived']:>4}  "
            f"requests lost {r['lost']}  orphans left {r['orphans']}"
        )
    tot = {k: sum(r[k] for r in FaultReport.rows) for k in ("injected", "survived", "lost", "orphans")}
    tr.write_line(
        f"{'TOTAL':<40} faults injected {tot['injected']:>4}  survived {tot['survived']:>4}  "
        f"requests lost {tot['lost']}  orphans left {tot['orphans']}"
    )


# what each injected fault must be recorded as by the load client
EXPECTED_KIND = {
    "disconnect": "transport",
    "malformed": "malformed_sse",
    "truncate": "truncated_stream",
    "stall": "timeout",
    "error_event": "server_error_event",
}


def expected_kind(fault: str) -> str:
    return fault if fault.startswith("http_") else EXPECTED_KIND[fault]


def fault_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _request_order(r) -> tuple[int, int]:
    """(conversation index, turn): a multi-turn prompt's later turns follow its first."""
    return int(r.conversation_id.rsplit("#", 1)[1]), r.turn


def accounting(results: Path) -> dict:
    """Per point: planned measured requests vs what the records and summary account for."""

    rd = ResultsDir(results)
    out = {}
    for p in rd.points():
        recs = [r for r in rd.records(p["point_id"]) if not r.warmup]
        statuses = {r.status for r in recs}
        assert statuses <= {"ok", "failed", "cancelled"}, statuses
        out[p["point_id"]] = {
            "planned": p["sent"] + p["not_sent"],
            "records": len(recs),
            "sent": p["sent"],
            "ok": p["ok"],
            "failed": p["failed"],
            "cancelled": p["cancelled"],
            "not_sent": p["not_sent"],
            "status": p["status"],
            "prompt_order": [r.prompt_id for r in sorted(recs, key=_request_order)],
        }
    return out


def lost_requests(results: Path) -> int:
    """Planned measured requests that neither ended as a record (ok/failed/cancelled) nor were counted as
    not sent, plus any mismatch between records on disk and the point's summary."""
    lost = 0
    for a in accounting(results).values():
        lost += abs(a["planned"] - (a["ok"] + a["failed"] + a["cancelled"] + a["not_sent"]))
        lost += abs(a["records"] - a["sent"])
    return lost


def error_line(res) -> str:
    """The one `speedbench: error:` line a refused command printed (and no traceback)."""
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("speedbench: error:")]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]
