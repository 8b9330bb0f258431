"""Every mistake a user makes gets one line and exit 2 (README: 2 = bad input), never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from tests.reliability.conftest import SPLIT, error_line, sweep_config, write_config


def _invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def _error_line(res) -> str:
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return error_line(res)


@pytest.fixture
def prepare(tmp_path, tiny_tokenizer):
    """`data prepare` of a JSONL split holding ``lines`` (bytes or str) with the tiny tokenizer."""

    def run(lines=None, *flags, env=None):
        split = SPLIT
        if lines is not None:
            split = tmp_path / "split.jsonl"
            split.write_bytes(lines if isinstance(lines, bytes) else lines.encode())
        return _invoke("data", "prepare", "--split", split, "--tokenizer", tiny_tokenizer, *flags, env=env)

    return run


GOOD_ROW = '{"id": "a", "category": "c", "turns": ["hello there"]}\n'


@pytest.mark.parametrize(
    "lines, why",
    [
        (GOOD_ROW + "[1, 2]\n", "split.jsonl:2: a prompt must be a JSON object, got list"),
        ('{"id": 7, "category": "c", "turns": ["hi"]}\n', "split.jsonl:1: field 'id' must be a string, got int 7"),
        (
            GOOD_ROW.encode() + '{"id": "b", "category": "c", "turns": ["caf\xe9"]}\n'.encode("latin-1"),
            "split.jsonl:2: not UTF-8 text",
        ),
    ],
)
def test_bad_prompt_rows_name_file_and_line(prepare, lines, why):
    res = prepare(lines, "--cache-dir", "cache")
    assert res.exit_code == 2
    assert why in _error_line(res)


def test_data_prepare_cache_dir_naming_a_file(prepare, tmp_path):
    (tmp_path / "a-file").write_text("x")
    res = prepare(None, "--cache-dir", tmp_path / "a-file")
    assert res.exit_code == 2
    assert "cannot write the prompt cache in" in _error_line(res)


def test_cache_env_pointing_at_a_file_warns_and_goes_on(prepare, tmp_path):
    (tmp_path / "a-file").write_text("x")
    res = prepare(None, env={"SPEEDBENCH_CACHE": str(tmp_path / "a-file")})
    assert res.exit_code == 0, res.stderr
    assert "prompt cache not written" in res.stderr and "Traceback" not in res.stderr


def test_data_prepare_bad_option_is_one_line(prepare):
    res = prepare(None, "--prompts-per-category", "0")
    assert res.exit_code == 2
    assert "prompts_per_category: Input should be greater than or equal to 1" in _error_line(res)


@pytest.fixture
def cfg(tmp_path, tiny_tokenizer, fake_model, prompt_cache):
    return str(write_config(tmp_path / "cfg.json", sweep_config(tmp_path, tiny_tokenizer, fake_model, prompt_cache)))


def test_config_file_not_utf8(tmp_path):
    bad = tmp_path / "cfg.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    res = _invoke("sweep", "--config", bad, "--dry-run")
    assert res.exit_code == 2
    assert "is not UTF-8 text" in _error_line(res)


def test_yaml_off_read_as_false_gets_a_hint(tmp_path, fake_model):
    y = tmp_path / "cfg.yaml"
    y.write_text(f"engine: {{model: {fake_model}}}\nsd:\n  - method: off\n")
    res = _invoke("sweep", "--config", y, "--dry-run")
    assert res.exit_code == 2
    assert "quote it, e.g. method: 'off'" in _error_line(res)


@pytest.mark.parametrize(
    "endpoint, why",
    [
        ("http://127.0.0.1:99999", "the port must be 1-65535"),
        ("http://127.0.0.1:8000/?x=1", "without a query"),
        ("http://127.0.0.1:8000/v1", "without /v1 (http://127.0.0.1:8000)"),
    ],
)
def test_bad_endpoint_is_bad_input(cfg, endpoint, why):
    res = _invoke("sweep", "--config", cfg, "--endpoint", endpoint, "--sd", "off", "--dry-run")
    assert res.exit_code == 2
    assert why in _error_line(res)


def test_long_name_is_bad_input(cfg):
    res = _invoke("sweep", "--config", cfg, "--name", "x" * 300, "--dry-run")
    assert res.exit_code == 2
    assert "name: String should have at most 100 characters" in _error_line(res)


def test_output_dir_that_is_a_file(cfg, tmp_path):
    (tmp_path / "a-file").write_text("x")
    res = _invoke("sweep", "--config", cfg, "--output-dir", tmp_path / "a-file")
    assert res.exit_code == 2
    assert "cannot create the results folder" in _error_line(res)
