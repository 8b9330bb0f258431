"""One config schema from preset, file, environment and flags, in the documented precedence."""

import json

import pytest
import yaml
from click.testing import CliRunner

from speedbench.api.config_sources import env_layer, render_with_origins, resolve_config
from speedbench.cli import main
from speedbench.config import ConfigError

MODEL = {"engine": {"model": "/models/m"}}


def write(tmp_path, data, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return str(p)


def test_precedence_defaults_preset_file_env_flags(tmp_path):
    f = write(tmp_path, {"load": {"concurrency": [3], "output_len": 11, "seed": 5}, "name": "from-file"})
    env = {"SPEEDBENCH_LOAD__CONCURRENCY": "1,2,4", "SPEEDBENCH_LOAD__OUTPUT_LEN": "9"}
    r = resolve_config(preset="cpu-demo", config_file=f, environ=env, flags={"output_len": 5})
    c = r.config
    assert c.load.output_len == 5  # flag > env > file > preset
    assert c.load.concurrency == [1, 2, 4]  # env > file > preset
    assert c.load.seed == 5 and c.name == "from-file"  # file > default
    assert c.engine.served_model_name == "gemma3-270m"  # preset > default
    assert c.load.request_timeout_s == 600.0  # default
    assert r.origin("load.output_len") == "flag --output-len"
    assert r.origin("load.concurrency") == "env SPEEDBENCH_LOAD__CONCURRENCY"
    assert r.origin("load.seed") == f"file {f}"
    assert r.origin("engine.served_model_name") == "preset cpu-demo"
    assert r.origin("load.request_timeout_s") == "default"


def test_env_nesting_types_and_dict_keys():
    env = {
        "SPEEDBENCH_ENGINE__PYTHON": "/opt/venv/bin/python",
        "SPEEDBENCH_ENGINE__ENFORCE_EAGER": "true",
        "SPEEDBENCH_ENGINE__ENV__CUDA_VISIBLE_DEVICES": "2,3",
        "SPEEDBENCH_DATA__CATEGORIES": "Coding, Math",
        "SPEEDBENCH_DATA__ISL": "8k",
        "SPEEDBENCH_SD": "off,ngram:5",
        "SPEEDBENCH_ENGINE__EXTRA_ARGS": '["--a", "b,c"]',
        "SPEEDBENCH_HOME": "/not/a/config/field",
        "SPEEDBENCH_ENGINE_PYTHON": "/loses/to/the/nested/spelling",
        "OTHER": "x",
    }
    c = resolve_config(environ=env, overrides=MODEL).config
    assert c.engine.python == "/opt/venv/bin/python" and c.engine.enforce_eager is True
    assert c.engine.env == {"CUDA_VISIBLE_DEVICES": "2,3"}  # keys inside dict fields keep their case
    assert c.data.categories == ["Coding", "Math"] and c.data.isl == 8192
    assert [s.label for s in c.sd] == ["sd-off", "ngram-k5"]
    assert c.engine.extra_args == ["--a", "b,c"]


def test_legacy_engine_python_env_sits_in_the_env_layer(tmp_path):
    f = write(tmp_path, {**MODEL, "engine": {"model": "/m", "python": "/from/file"}})
    env = {"SPEEDBENCH_ENGINE_PYTHON": "/legacy/python"}
    r = resolve_config(config_file=f, environ=env)
    assert r.config.engine.python == "/legacy/python" and r.origin("engine.python") == "env SPEEDBENCH_ENGINE_PYTHON"
    r = resolve_config(config_file=f, environ=env, flags={"engine_python": "/flag/python"})
    assert r.config.engine.python == "/flag/python"  # a flag still beats any environment variable


def test_unknown_key_and_wrong_type_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"load\.concurency: unknown key \(from env SPEEDBENCH_LOAD__CONCURENCY\)"):
        resolve_config(environ={"SPEEDBENCH_LOAD__CONCURENCY": "2"}, overrides=MODEL)
    with pytest.raises(ConfigError, match=r"unknown config section 'laod'"):
        env_layer({"SPEEDBENCH_LAOD__CONCURRENCY": "2"})
    f = write(tmp_path, {**MODEL, "load": {"output_len": "many"}}, "c.json")
    with pytest.raises(ConfigError, match=rf"load\.output_len: .*integer.*\(from file {f}\)"):
        resolve_config(config_file=f, environ={})
    f2 = write(tmp_path, {**MODEL, "engin": {}}, "c2.yaml")
    with pytest.raises(ConfigError, match=r"engin: unknown key"):
        resolve_config(config_file=f2, environ={})


def test_config_show_prints_sources_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEEDBENCH_LOAD__CONCURRENCY", "2,4")
    res = CliRunner().invoke(main, ["config", "show", "--preset", "cpu-demo", "--output-len", "8"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "  concurrency: [2, 4]  # env SPEEDBENCH_LOAD__CONCURRENCY" in lines
    assert "  output_len: 8  # flag --output-len" in lines
    assert any(line.startswith("  served_model_name:") and line.endswith("# preset cpu-demo") for line in lines)
    saved = tmp_path / "effective.yaml"
    saved.write_text(res.output)
    monkeypatch.delenv("SPEEDBENCH_LOAD__CONCURRENCY")
    again = resolve_config(config_file=str(saved), environ={}).config
    assert (
        again
        == resolve_config(
            preset="cpu-demo", flags={"output_len": 8}, environ={"SPEEDBENCH_LOAD__CONCURRENCY": "2,4"}
        ).config
    )


def test_cli_errors_exit_2_with_one_line(monkeypatch):
    monkeypatch.setenv("SPEEDBENCH_LOAD__OUTPUT_LEN", "abc")
    res = CliRunner().invoke(main, ["config", "show", "--preset", "cpu-demo"])
    assert res.exit_code == 2
    assert "load.output_len" in res.output and "SPEEDBENCH_LOAD__OUTPUT_LEN" in res.output


def test_sweep_dry_run_uses_the_shared_resolution(monkeypatch):
    monkeypatch.setenv("SPEEDBENCH_LOAD__CONCURRENCY", "3")
    res = CliRunner().invoke(main, ["sweep", "--preset", "cpu-demo", "--draft-length", "5", "--dry-run"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output[: res.output.index("\n}\n") + 2])
    assert cfg["load"]["concurrency"] == [3]
    assert [(s["method"], s["num_speculative_tokens"]) for s in cfg["sd"]][1] == ("ngram", 5)
    assert "--speculative-config" in res.output


def test_render_is_valid_yaml():
    r = resolve_config(preset="cpu-demo", environ={})
    assert yaml.safe_load(render_with_origins(r)) == r.config.model_dump(mode="json")
