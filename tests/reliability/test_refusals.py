"""Work that cannot be right is refused before it starts: one line, exit 2, nothing written (dry run included)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from speedbench.cli import main
from tests.reliability.conftest import error_line, sweep_config, write_config


@pytest.fixture
def cfg(tmp_path, tiny_tokenizer, fake_model):
    """A fake-engine sweep config with its own (empty) prompt cache; edit() changes it before writing."""
    cache = tmp_path / "cache"
    cache.mkdir()

    def make(edit=None) -> str:
        c = sweep_config(tmp_path, tiny_tokenizer, fake_model, cache)
        if edit:
            edit(c)
        return str(write_config(tmp_path / "cfg.json", c))

    return make


def _sweep(*args: str, env=None):
    return CliRunner().invoke(main, ["sweep", *args], env=env)


@pytest.mark.parametrize("dry", [True, False])
def test_isl_beyond_context_refused_before_prompts_are_built(cfg, tmp_path, dry):
    res = _sweep("--config", cfg(), "--isl", "5000000", *(["--dry-run"] if dry else []))
    assert res.exit_code == 2
    assert "prompts of up to 5000000 tokens" in error_line(res)
    assert not any((tmp_path / "cache").iterdir())  # no prompt was built
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "flags, why",
    [
        (["--endpoint", "http://127.0.0.1:9", "--sd", "off,ngram:3"], "give exactly one SD setting"),
        (["--model", "/no/such/model"], "model path not found"),
    ],
)
def test_dry_run_runs_the_checks_a_run_would(cfg, tmp_path, flags, why):
    res = _sweep("--config", cfg(), "--dry-run", *flags)
    assert res.exit_code == 2
    assert why in error_line(res)


def test_dry_run_attach_without_tokenizer(cfg):
    def edit(c):
        del c["engine"]["model"], c["data"]["tokenizer"]

    res = _sweep("--config", cfg(edit), "--dry-run", "--endpoint", "http://127.0.0.1:9", "--sd", "off")
    assert res.exit_code == 2
    assert "no tokenizer" in error_line(res)


@pytest.mark.parametrize(
    "flags, why",
    [
        (["--concurrency", "2,2,1"], "2 given more than once"),
        (["--concurrency", "1,8", "--requests-per-point", "4"], "requests_per_point 4 is below concurrency 8"),
        (["--sd", "off:5"], "SD off takes no draft length"),
        (["--sd", "off,ngram:3@/draft"], "takes no draft_model"),
        (["--sd", "off", "--draft-lengths", "1,2"], "--draft-lengths needs an SD-on setting"),
        (["--sd", "off", "--draft-length", "3"], "--draft-length needs an SD-on setting"),
    ],
)
def test_ignored_or_contradictory_flags_refused(cfg, tmp_path, flags, why):
    res = _sweep("--config", cfg(), "--dry-run", *flags)
    assert res.exit_code == 2
    assert why in error_line(res)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "load, why",
    [
        ({"concurrency": [1, True]}, "got [True]"),
        ({"request_rate": 5.0}, "request_rate 5.0 is ignored in closed mode"),
        ({"duration_s": 10.0}, "give duration_s or requests_per_point, not both"),
    ],
)
def test_ignored_or_contradictory_config_refused(cfg, load, why):
    res = _sweep("--config", cfg(lambda c: c["load"].update(load)), "--dry-run")
    assert res.exit_code == 2
    assert why in error_line(res)


def test_misspelled_env_variable_refused(cfg):
    res = _sweep("--config", cfg(), "--dry-run", env={"SPEEDBENCH_LOAD_CONCURRENCY": "1,2"})
    assert res.exit_code == 2
    assert "SPEEDBENCH_LOAD__CONCURRENCY" in error_line(res)


def test_folder_variables_are_not_taken_for_misspelled_config(cfg, tmp_path):
    # SPEEDBENCH_ENGINE_HOME starts like the `engine` section but is the engine-venv folder the Makefile exports
    res = _sweep(
        "--config", cfg(), "--dry-run", env={"SPEEDBENCH_ENGINE_HOME": str(tmp_path), "SPEEDBENCH_HOME": str(tmp_path)}
    )
    assert res.exit_code == 0, res.stderr


def test_dry_run_of_a_good_config_passes(cfg):
    res = _sweep("--config", cfg(), "--dry-run")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout[: res.stdout.index("\n}") + 2])["load"]["concurrency"] == [1, 4]
