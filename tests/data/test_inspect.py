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
