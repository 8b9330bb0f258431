"""vLLM adapter: launch flags and request bodies that decide what a point measures."""

from __future__ import annotations

from speedbench.config import EngineConfig, SDConfig
from speedbench.engines import get_adapter


def adapter(**kw):
    return get_adapter(EngineConfig(name="vllm", model="/m/gemma", python="/py", **kw))


def test_prefix_caching_off_by_default_and_one_switch_turns_it_on():
    argv = adapter().launch_argv(SDConfig(), "h", 1, 8)
    assert "--no-enable-prefix-caching" in argv and "--enable-prefix-caching" not in argv
    argv = adapter(prefix_caching=True).launch_argv(SDConfig(), "h", 1, 8)
    assert "--enable-prefix-caching" in argv and "--no-enable-prefix-caching" not in argv


def test_natural_length_stops_at_eos_fixed_length_is_explicit():
    _, body = adapter().build_request([2, 5, 6], 4096)
    assert body["max_tokens"] == 4096 and "ignore_eos" not in body and "min_tokens" not in body
    _, body = adapter().build_request([2, 5, 6], 32, fixed_length=True)
    assert body["ignore_eos"] is True and body["min_tokens"] == 32
