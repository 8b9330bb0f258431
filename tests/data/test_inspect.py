from speedbench.config import DataConfig
from speedbench.data.inspect import describe, length_histogram
from speedbench.data.pretokenize import prepare_prompts


def test_describe_shows_counts_hashes_and_entropy(gemma, cache_dir):
    ps = prepare_prompts(DataConfig(split="throughput", isl="1k", prompts_per_category=6, cache_dir=cache_dir), gemma)
    text = describe(ps)
    assert ps.fingerprint in text and ps.ids_sha256 in text
    for tier in ("low", "mixed", "high"):
        assert any(line.startswith(tier) and " 6 " in line for line in text.splitlines())
    assert "truncated 18, padded 0" in text


def test_length_histogram_counts_everything():
    lines = length_histogram([10, 11, 12, 50, 100], bins=4)
    assert sum(int(line.split()[1]) for line in lines) == 5


def test_cli_inspect_prints_tier_order_and_overlap(byte_bpe, cache_dir):
    from click.testing import CliRunner

    from speedbench.cli import main

    res = CliRunner().invoke(
        main,
        [
            "data",
            "inspect",
            "--split",
            "throughput",
            "--isl",
            "1k",
            "--prompts-per-category",
            "4",
            "--tokenizer",
            byte_bpe,
            "--cache-dir",
            cache_dir,
        ],
    )
    assert res.exit_code == 0, res.output
    out = res.output
    assert "order           tiers interleaved (low, mixed, high, ...): first prompts low, mixed, high, low" in out
    for tier in ("low", "mixed", "high", "bucket"):
        assert any(line.split()[:1] == [tier] and "%" in line for line in out.splitlines()), tier
    assert "within the bound" in out and "pool            bundled" in out
