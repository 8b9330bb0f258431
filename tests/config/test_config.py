import pytest

from speedbench.config import BenchmarkConfig, ConfigError, load_preset, parse_isl, parse_sd_list


@pytest.mark.parametrize("spec,tokens", [("1k", 1024), ("8K", 8192), ("32k", 32768), ("1000", 1000), (512, 512)])
def test_isl_buckets_and_integers(spec, tokens):
    assert parse_isl(spec) == tokens


@pytest.mark.parametrize("spec", ["8q", "k", "-1", "0", "1.5k"])
def test_bad_isl_is_a_clear_error(spec):
    with pytest.raises(ConfigError, match="ISL"):
        parse_isl(spec)


def test_unknown_key_and_bad_concurrency_named_in_one_message():
    with pytest.raises(ConfigError) as e:
        BenchmarkConfig.from_dict({"engine": {"model": "/m", "bogus": 1}, "load": {"concurrency": "1,0,-2"}})
    msg = str(e.value)
    assert "engine.bogus: unknown key" in msg
    assert "load.concurrency" in msg and "positive" in msg


def test_sd_list_syntax():
    assert parse_sd_list("off,ngram:5,eagle3@/heads/e3", draft_length=2) == [
        {"method": "off"},
        {"method": "ngram", "num_speculative_tokens": 5},
        {"method": "eagle3", "num_speculative_tokens": 2, "draft_model": "/heads/e3"},
    ]
    with pytest.raises(ConfigError):
        parse_sd_list("ngram:x")


def test_sd_methods_needing_a_draft_model_say_so():
    with pytest.raises(ConfigError, match="draft_model"):
        BenchmarkConfig.from_dict({"engine": {"model": "/m"}, "sd": [{"method": "eagle3"}]})


def test_duplicate_sd_settings_rejected():
    with pytest.raises(ConfigError, match="duplicate"):
        BenchmarkConfig.from_dict({"engine": {"model": "/m"}, "sd": [{"method": "off"}, {"method": "off"}]})


def test_cpu_demo_preset_expands_speedbench_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SPEEDBENCH_HOME", str(tmp_path))
    cfg = BenchmarkConfig.from_dict(load_preset("cpu-demo"))
    assert cfg.engine.model == f"{tmp_path}/models/gemma3-270m-bf16"
    assert [s.label for s in cfg.sd] == ["sd-off", "ngram-k3"]


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ConfigError, match="cpu-demo"):
        load_preset("nope")
