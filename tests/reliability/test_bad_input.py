"""Bad input ends in one clear error line and exit 2 (3 for an unreachable server), before any server starts."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from speedbench.engines.server import pick_free_port
from tests.reliability.conftest import error_line, sweep_config, write_config


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def cfg_file(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    def make(**kw):
        server_args = kw.pop("server_args", ())
        cfg = sweep_config(tmp_path, tiny_tokenizer, fake_model, prompt_cache, server_args=server_args, **kw)
        return str(write_config(tmp_path / "cfg.json", cfg))

    return make


def test_wrong_model_path(cfg_file, tmp_path):
    res = _invoke("sweep", "--config", cfg_file(), "--model", str(tmp_path / "no-such-model"))
    assert res.exit_code == 2
    assert "model path not found" in error_line(res)
    assert not (tmp_path / "results").exists()  # nothing started, nothing written


def test_port_in_use(cfg_file, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        res = _invoke("sweep", "--config", cfg_file(), "--port", str(s.getsockname()[1]))
    assert res.exit_code == 2
    assert "already in use" in error_line(res)
    assert not (tmp_path / "results").exists()


def test_unsupported_sd_method(cfg_file):
    res = _invoke("sweep", "--config", cfg_file(), "--sd", "off,mtp:2")
    assert res.exit_code == 2
    assert "does not support SD method 'mtp'" in error_line(res)


def test_bad_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine:\n  name: [vllm\n  model: x\n")
    res = _invoke("sweep", "--config", str(bad))
    assert res.exit_code == 2
    assert "bad YAML/JSON" in error_line(res)


@pytest.mark.parametrize("spec", ["0,1", "1,-4", "2,,x"])
def test_bad_concurrency_list(cfg_file, spec):
    res = _invoke("sweep", "--config", cfg_file(), f"--concurrency={spec}")
    assert res.exit_code == 2
    assert "concurrency" in error_line(res)


def test_isl_beyond_model_context(cfg_file, tmp_path):
    # fake model: max_position_embeddings 4096 in config.json
    res = _invoke("sweep", "--config", cfg_file(), "--isl", "4k")
    assert res.exit_code == 2
    line = error_line(res)
    assert "exceed the model's context of 4096" in line and "max_position_embeddings" in line
    assert not list((tmp_path / "results").glob("*/logs/*.log"))  # no server was launched


def test_output_beyond_context_from_launch_flag(cfg_file):
    res = _invoke("sweep", "--config", cfg_file(server_args=["--max-model-len", "64"]))
    assert res.exit_code == 2
    assert "--max-model-len in engine.extra_args" in error_line(res)


def test_dead_endpoint_is_one_check_not_thousands_of_requests(cfg_file, tmp_path, tiny_tokenizer):
    port = pick_free_port()
    res = _invoke(
        "sweep",
        "--config",
        cfg_file(sd=("off",)),
        "--endpoint",
        f"http://127.0.0.1:{port}",
        "--tokenizer",
        str(tiny_tokenizer),
    )
    assert res.exit_code == 3
    assert "not reachable" in error_line(res)
    assert not any((tmp_path / "results").glob("*/records/*.*"))


def test_attach_context_from_v1_models(cfg_file, tmp_path, tiny_tokenizer):
    """Attach mode reads max_model_len from /v1/models: a too-small server is refused before load."""
    port = pick_free_port()
    srv = subprocess.Popen(
        [sys.executable, "-m", "speedbench.testing.fault_server", "--port", str(port), "--max-model-len", "48"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from speedbench.engines.server import port_is_free
        from tests.reliability.conftest import wait_for

        wait_for(lambda: not port_is_free("127.0.0.1", port), 20, "fault server", srv)
        res = _invoke(
            "sweep",
            "--config",
            cfg_file(sd=("off",)),
            "--endpoint",
            f"http://127.0.0.1:{port}",
            "--tokenizer",
            str(tiny_tokenizer),
        )
    finally:
        srv.terminate()
        srv.wait(10)
    assert res.exit_code == 2
    assert "max_model_len from" in error_line(res)
    assert not any((tmp_path / "results").glob("*/records/*.*"))
