"""Folding OpenAI-style stream chunks into a request record (``engines.openai_stream``)."""

import pytest

from speedbench.core.records import RequestRecord
from speedbench.engines.openai_stream import fold_completion_chunk
from speedbench.metrics import request as rq


def test_text_only_chunks_are_timed_and_counted_from_the_final_usage():
    rec = RequestRecord("r", "p", "QA", 3, 8)
    for t, text in enumerate((" a", " b c", "", " d")):
        fold_completion_chunk({"choices": [{"index": 0, "text": text}]}, rec, 1000 * (t + 1), [1, 2, 3])
    fold_completion_chunk({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 8}}, rec, 9000, None)
    assert rec.chunk_times_ns == [1000, 2000, 4000]  # the empty chunk carried no token
    assert rec.output_tokens == 8 and rq.ttft(rec) is not None
    assert rq.tpot(rec) == pytest.approx(3000e-9 / 7)
    assert rq.token_count_source(rec) == "final usage"
    assert not rq.merged_chunks(rec, 0)  # sizes were not counted: no merge claimed
