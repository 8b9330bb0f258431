"""Shared fixtures: a tiny self-made tokenizer (no downloads) and emulator servers on loopback."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from speedbench.testing import fake_container_runtime as fake

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "engines"


def sse_payloads(path: Path) -> list:
    """Parsed ``data:`` payloads of a captured SSE stream ([DONE] excluded)."""
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            out.append(json.loads(line[5:]))
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> str:
    """A word-level tokenizer trained on the bundled split, saved as a transformers directory."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from speedbench.data.prompts import load_split

    texts = [t for p in load_split("qualitative-mini") for t in p.turns]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=4000, special_tokens=["[UNK]", "<s>", "</s>"]))
    out = tmp_path_factory.mktemp("tokenizer")
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "[UNK]",
            }
        )
    )
    return str(out)


@pytest.fixture
def start_emulator(tmp_path):
    """Start an emulator subprocess (own process group, torn down after the test); returns its base URL."""
    from speedbench.engines.server import ServerProcess, pick_free_port

    servers = []

    def start(engine: str, *args: str) -> str:
        port = pick_free_port()
        health = "/health"
        srv = ServerProcess(
            [sys.executable, "-m", "speedbench.testing.emulators", "--engine", engine, "--port", str(port), *args],
            tmp_path / f"{engine}-{port}.log",
            f"http://127.0.0.1:{port}{health}",
            port=port,
            startup_timeout_s=30,
        )
        servers.append(srv.start())
        srv.wait_ready(poll_s=0.1)
        return f"http://127.0.0.1:{port}"

    yield start
    for srv in servers:
        srv.stop(grace_s=5)


@pytest.fixture
def fake_runtime(tmp_path, monkeypatch):
    """Fake docker and enroot first on PATH, their state and call log in ``tmp_path`` (returned); every
    container process they started is killed afterwards, even when the test fails."""
    bin_dir = tmp_path / "bin"
    for name in ("docker", "enroot"):
        fake.write_fake_runtime(bin_dir, name)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_RUNTIME_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("FAKE_RUNTIME_LOG", str(tmp_path / "calls.jsonl"))
    yield tmp_path
    for c in fake.containers().values():  # never leave a process behind, even when a test fails
        if c.get("pid", -1) > 0:
            try:
                os.killpg(c["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
