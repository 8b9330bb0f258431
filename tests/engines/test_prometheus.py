"""The Prometheus reader keeps every sample, whatever its label values hold."""

from pathlib import Path

import pytest

from speedbench.engines.prometheus import parse_prometheus, sum_metric

FIXTURES = Path(__file__).parent.parent / "fixtures" / "engines"

# label values with `}` and an escaped quote are legal exposition (a model name, a path); each engine index
# contributes to the sum, so a dropped line is a wrong counter delta, not a missing one
EXPOSITION = r"""# HELP vllm:spec_decode_num_draft_tokens Number of draft tokens.
# TYPE vllm:spec_decode_num_draft_tokens counter
vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="plain"} 40.0
vllm:spec_decode_num_draft_tokens_total{engine="1",model_name="tmpl-{x}"} 60.0
vllm:spec_decode_num_draft_tokens_total{engine="2",model_name="say \"hi\"\\"} 100.0
"""


def test_labels_with_brace_and_escaped_quote_keep_their_samples():
    samples = parse_prometheus(EXPOSITION)
    assert sum_metric(samples, "vllm:spec_decode_num_draft_tokens_total") == 200.0
    labels = {lab["engine"]: lab["model_name"] for _, lab, _ in samples}
    assert labels == {"0": "plain", "1": "tmpl-{x}", "2": 'say "hi"\\'}  # escapes undone
    assert sum_metric(samples, "vllm:spec_decode_num_draft_tokens_total", engine="1") == 60.0


@pytest.mark.parametrize("fixture", ["trtllm/prometheus_metrics_sd.txt", "sglang/metrics_sd_v0.5.23.txt"])
def test_engine_fixtures_every_sample_line_is_read(fixture):
    text = (FIXTURES / fixture).read_text()
    sample_lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    samples = parse_prometheus(text)
    assert len(samples) == len(sample_lines) > 0
    assert [n for n, _, _ in samples] == [ln.split("{")[0].split()[0] for ln in sample_lines]


def test_malformed_exposition_is_an_error_not_a_partial_sum():
    with pytest.raises(ValueError, match="unreadable Prometheus text"):
        parse_prometheus('good_total{engine="0"} 1\nbad_total{engine="0" 2\n')
