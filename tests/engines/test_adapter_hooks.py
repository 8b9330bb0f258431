"""EngineAdapter's optional hooks are declared on the base class: the load client reads them as attributes."""

from __future__ import annotations

from speedbench.config import EngineConfig
from speedbench.core.records import RequestRecord
from speedbench.engines.base import EngineAdapter
from speedbench.engines.sglang import SGLangAdapter
from speedbench.engines.trtllm import TRTLLMAdapter
from speedbench.engines.vllm import VLLMAdapter
from speedbench.load.client import _Fold


def _rec() -> RequestRecord:
    return RequestRecord("r1", "p1", "qa", 4, 8)


def test_fast_event_is_a_declared_hook_none_by_default():
    assert EngineAdapter.fast_event is None
    cfg = EngineConfig(model="m")
    assert SGLangAdapter(cfg).fast_event is None and TRTLLMAdapter(cfg).fast_event is None
    vllm = VLLMAdapter(cfg)
    assert vllm.fast_event is not None and _Fold(vllm, _rec(), []).fast == vllm.fast_event


def test_without_the_hook_every_payload_takes_the_generic_path():
    rec = _rec()
    fold = _Fold(SGLangAdapter(EngineConfig(model="m")), rec, [])
    assert fold.fast is None
    assert fold(b"{not json", 1) is True  # the stream is over for us: recorded as malformed
    assert rec.error_kind == "malformed_sse"
