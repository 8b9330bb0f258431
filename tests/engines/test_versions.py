"""Version floors: every flag a preset emits has one, the pinned release admits them, an old engine is refused."""

from __future__ import annotations

import sys

import pytest

from speedbench.config import PRESETS_DIR, BenchmarkConfig, ConfigError, EngineConfig, SDConfig, load_preset
from speedbench.engines import get_adapter
from speedbench.engines.versions import Floor, check_floors, installed_version

PRESETS = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_emitted_flag_has_a_floor_the_pinned_release_meets(preset, tmp_path):
    cfg = BenchmarkConfig.from_dict(load_preset(preset))
    assert cfg.engine.version, f"{preset} pins no engine version"
    a = get_adapter(cfg.engine)
    a.files_dir = tmp_path
    for sd in cfg.sd:
        for k in [sd.num_speculative_tokens] if not sd.enabled else range(1, 8):
            s = sd.model_copy(update={"num_speculative_tokens": k})
            flags = a.emitted_flags(s, max(cfg.load.concurrency))
            assert flags and not [f for f in flags if f not in a.floors], f"{preset} {s.label}: flags without a floor"
            check_floors(a.name, cfg.engine.version, [a.floors[f] for f in flags])


def test_old_release_is_refused_with_one_line_naming_flag_and_floor():
    a = get_adapter(EngineConfig(name="sglang", model="/m", python="/py"))
    a.installed_version = "0.4.10.post2"
    with pytest.raises(ConfigError) as e:
        a.check_version(SDConfig(method="ngram"), 8)
    msg = str(e.value)
    assert msg.startswith(
        "sglang 0.4.10.post2 does not accept --speculative-algorithm=NGRAM (needs sglang >= 0.5.12; "
        "read in sglang/srt/server_args.py (wheel 0.5.12)), --speculative-ngram-min-bfs-breadth (needs"
    )
    # every flag the release lacks, each once, in one line
    assert msg.count("--speculative-ngram-max-bfs-breadth") == 1 and "\n" not in msg


def test_renamed_flag_has_a_ceiling():
    f = Floor("--cuda-graph-max-bs", "0.4.10.post2", "x", until="0.5.18")
    assert f.admits("0.5.18") and not f.admits("0.5.22") and not f.admits("0.4.9")
    # the adapter writes the spelling the release takes, so its own check passes on either side of the rename
    for v in ("0.4.10.post2", "0.5.18", "0.5.23"):
        a = get_adapter(EngineConfig(name="sglang", model="/m", python="/py"))
        a.installed_version = v
        a.check_version(SDConfig(method="eagle3", draft_model="/d"), 8)


def test_installed_version_is_read_without_importing_the_engine(tmp_path, monkeypatch):
    # a distribution's metadata alone (no package to import) is what the harness reads
    meta = tmp_path / "sglang-0.4.10.post2.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: sglang\nVersion: 0.4.10.post2\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert installed_version(sys.executable, ("sglang",)) == "0.4.10.post2"
    assert installed_version(sys.executable, ("no-such-engine",)) is None


def test_runner_refuses_before_any_server_starts(tmp_path, monkeypatch):
    from speedbench.runner import BenchmarkRunner

    meta = tmp_path / "sglang-0.4.10.post2.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: sglang\nVersion: 0.4.10.post2\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    cfg = BenchmarkConfig.model_validate(
        {
            "engine": {"name": "sglang", "model": str(tmp_path), "python": sys.executable, "version": "0.5.23"},
            "sd": [{"method": "off"}, {"method": "ngram", "num_speculative_tokens": 3}],
            "data": {"tokenizer": str(tmp_path)},
        }
    )
    r = BenchmarkRunner(cfg, progress=False)
    with pytest.raises(ConfigError, match="sglang 0.4.10.post2 does not accept"):
        r.validate()
    assert r.adapter.installed_version == "0.4.10.post2"


@pytest.mark.parametrize("preset", PRESETS)
def test_engines_show_writes_what_the_pinned_release_documents(preset):
    from click.testing import CliRunner

    from speedbench.cli import main

    cfg = BenchmarkConfig.from_dict(load_preset(preset))
    top = max(cfg.load.concurrency)
    res = CliRunner().invoke(main, ["engines", "show", preset, "--draft-length", "5"])
    assert res.exit_code == 0, res.output
    commands = [l for l in res.output.splitlines() if not l.startswith("#")]
    assert len(commands) == len(cfg.sd)
    if cfg.engine.name == "sglang":  # deltas and decode graphs sized to the sweep, SD off and on alike
        assert all(
            "--incremental-streaming-output" in c
            and f"--cuda-graph-max-bs-decode {top}" in c
            and f"--max-running-requests {top}" in c
            for c in commands
        )
    if cfg.engine.name == "trtllm":
        assert "eagle3_one_model" not in res.output and "enable_padding: true" in res.output
        assert res.output.count(f"    - {top}\n") == len(cfg.sd)  # the largest concurrency has its graph
        assert "max_draft_len: 5" in res.output and "per_request_spec_decode_stats" not in res.output
