import json

import pytest

from speedbench.config import EngineConfig
from speedbench.core.records import RequestRecord
from speedbench.engines.vllm import VLLMAdapter
from speedbench.load.sse import SSESplitter


def test_lines_split_across_reads_are_joined():
    s = SSESplitter()
    assert s.feed(b'data: {"a":') == []
    assert s.feed(b"1}\n") == [b'{"a":1}']
    assert s.pending == b""


def test_many_events_in_one_read_crlf_and_no_space():
    s = SSESplitter()
    out = s.feed(b'data: {"a":1}\r\n\r\ndata:{"a":2}\n\ndata: [DONE]\n\n')
    assert out == [b'{"a":1}', b'{"a":2}', b"[DONE]"]


def test_comments_keepalives_and_other_fields_dropped():
    s = SSESplitter()
    out = s.feed(b": keepalive\n\nevent: message\nid: 7\nretry: 10\ndata: x\n\n:\n")
    assert out == [b"x"]


def test_unfinished_line_stays_pending():
    s = SSESplitter()
    s.feed(b"data: [DO")
    assert s.pending == b"data: [DO"


def _chunk(k, n=5, text=" tok", echo=None, usage=True, fin=None):
    d = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": fin,
                "stop_reason": None,
                "token_ids": [900 + k],
                "prompt_token_ids": echo,
            }
        ],
    }
    if usage:
        d["usage"] = {"prompt_tokens": n, "total_tokens": n + k, "completion_tokens": k}
    return json.dumps(d, separators=(",", ":")).encode()


STREAMS = [
    [_chunk(1, echo=[1, 2, 3, 4, 5])] + [_chunk(k) for k in range(2, 6)] + [_chunk(6, fin="length")],
    [_chunk(k, text='é "quoted" \\ \n', usage=False) for k in range(1, 5)],
    [_chunk(1), _chunk(1), _chunk(3)],  # a chunk with no new tokens, then a 2-token (SD) step
]


@pytest.mark.parametrize("stream", STREAMS)
def test_fast_parser_equals_json_parser(stream):
    ad = VLLMAdapter(EngineConfig(model="m"))
    slow, fast = RequestRecord("r", "p", "c", 5, 6), RequestRecord("r", "p", "c", 5, 6)
    used_fast = 0
    for t, payload in enumerate(stream):
        ad.on_event(json.loads(payload), slow, t, [1, 2, 3, 4, 5])
        event = ad.fast_event(payload, fast, t)
        if event is None:
            used_fast += 1
        else:
            ad.on_event(event, fast, t, [1, 2, 3, 4, 5])
    assert used_fast > 0
    assert fast == slow


def test_fast_parser_hands_back_first_final_and_error_chunks_untouched():
    ad = VLLMAdapter(EngineConfig(model="m"))
    rec = RequestRecord("r", "p", "c", 5, 6)
    for payload in (
        _chunk(1, echo=[1, 2]),
        _chunk(6, fin="length"),
        b'{"error":{"message":"x"}}',
        b'{"id":"x","choices":[],"usage":{"completion_tokens":3}}',
    ):
        assert ad.fast_event(payload, rec, 0) == json.loads(payload)
    assert rec == RequestRecord("r", "p", "c", 5, 6)
    with pytest.raises(ValueError):
        ad.fast_event(b"{not json", rec, 0)
