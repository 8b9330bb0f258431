"""Shared fixtures: the Gemma tokenizer dir (tests skip without it) and one prompt cache per session, so the
throughput pool is tokenized once per test session."""
from pathlib import Path

import pytest

GEMMA = Path.home() / ".cache" / "speedbench" / "models" / "gemma3-270m-bf16"


@pytest.fixture(scope="session")
def gemma() -> str:
    if not (GEMMA / "tokenizer.json").is_file():
        pytest.skip(f"Gemma tokenizer not found at {GEMMA} (run `speedbench model prepare`)")
    return str(GEMMA)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("prompt-cache"))
