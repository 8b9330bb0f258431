"""Shared fixtures: a tiny local tokenizer (no hub, no model) and a fake vLLM-shaped server on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speedbench.resources import DATASETS_DIR
from speedbench.testing.fake_openai import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[2]
MINI = DATASETS_DIR / "qualitative" / "mini.jsonl"


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> str:
    """A word-level tokenizer trained on the bundled mini split: loads with AutoTokenizer, has a BOS."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [
        t for line in MINI.read_text(encoding="utf-8").splitlines() if line.strip() for t in json.loads(line)["turns"]
    ]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=2000, special_tokens=["<unk>", "<s>"]))
    out = tmp_path_factory.mktemp("tok")
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", unk_token="<unk>").save_pretrained(out)
    return str(out)


@pytest.fixture()
def fake_sd_server():
    with FakeOpenAIServer(sd_k=3) as srv:
        yield srv


@pytest.fixture()
def fake_off_server():
    with FakeOpenAIServer(sd_k=0) as srv:
        yield srv


@pytest.fixture()
def attach_config():
    return make_attach_config


def make_attach_config(url: str, tokenizer: str, out: Path, sd: str = "ngram", k: int = 3, **load) -> dict:
    """A small attach-mode sweep config (dict form) against a fake server."""
    sd_entry = {"method": "off"} if sd == "off" else {"method": sd, "num_speculative_tokens": k}
    return {
        "engine": {"name": "vllm", "endpoint": url, "served_model_name": "fake-model"},
        "sd": [sd_entry],
        "data": {
            "split": "qualitative-mini",
            "tokenizer": tokenizer,
            "prompts_per_category": 1,
            "cache_dir": str(out / "prompt-cache"),
        },
        "load": {"concurrency": [1, 2], "output_len": 12, **load},
        "output_dir": str(out / "results"),
    }


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real one-node Slurm cluster (munged + slurmctld + slurmd) for the session, torn down after it."""
    import os

    from tests.api.slurm_cluster import SlurmCluster, missing_programs

    missing = missing_programs()
    if os.geteuid() != 0:
        pytest.skip(
            "a one-node Slurm cluster needs root (its daemons run as root here)"
            + (f"; also missing: {', '.join(missing)} (Debian slurm-wlm, munge)" if missing else "")
        )
    if missing:  # as root `make slurm` installs them: never a silent pass where the test could run
        pytest.fail(f"Slurm programs missing: {', '.join(missing)}: run `make slurm` (Debian slurm-wlm, munge)")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
