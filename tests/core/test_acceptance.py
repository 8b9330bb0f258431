"""The speculative-decoding counters every engine adapter fills (``core.acceptance``)."""

import pytest

from speedbench.core.acceptance import SpecDecodeCounters, counters_from_histogram


def test_counters_from_histogram_and_deltas():
    c = counters_from_histogram([2, 1, 0, 3], draft_tokens=18, source="t")  # 6 drafted steps, k=3
    assert (c.drafts, c.accepted_tokens, c.accepted_per_position) == (6, 1 + 9, (4, 3, 3))
    assert c.acceptance_length == pytest.approx(1 + 10 / 6)
    assert c.per_position_rate == pytest.approx((4 / 6, 3 / 6, 3 / 6))
    before = SpecDecodeCounters(1, 3, 2, (1, 1, 0))
    assert (c - before).accepted_per_position == (3, 2, 3)
    assert (c + before).drafts == 7
    with pytest.raises(ValueError):
        SpecDecodeCounters(1, 2, 3)  # accepted > drafted is impossible
