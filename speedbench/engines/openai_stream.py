"""The OpenAI-compatible streaming completion chunk, as vLLM and trtllm-serve send it with
``stream_options: {include_usage, continuous_usage_stats}``: one choice per chunk with its text (and token
ids when asked), cumulative ``usage.completion_tokens`` on every chunk, and a final usage-only chunk."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from speedbench.core.records import RequestRecord


def fold_completion_chunk(event: dict, rec: "RequestRecord", t_ns: int, sent_ids: Optional[list[int]]) -> None:
    usage = event.get("usage")
    choices = event.get("choices")
    if usage and usage.get("prompt_tokens") is not None:
        rec.server_prompt_tokens = usage["prompt_tokens"]
    if choices:
        ch = choices[0]
        echoed = ch.get("prompt_token_ids")  # vLLM with return_token_ids: first chunk only
        if echoed is not None and sent_ids is not None:
            rec.server_prompt_ids_match = list(echoed) == list(sent_ids)
        ids = ch.get("token_ids")
        if ids:
            rec.output_ids.extend(ids)
        if ch.get("text"):
            rec.text += ch["text"]
        prev = rec.chunk_tokens[-1] if rec.chunk_tokens else 0
        if usage and usage.get("completion_tokens") is not None:
            rec.add_chunk(t_ns, usage["completion_tokens"])
        else:  # without continuous usage, count the ids the chunk carried
            rec.add_chunk(t_ns, prev + (len(ids) if ids else 0))
        if ch.get("finish_reason"):
            rec.finish_reason = ch["finish_reason"]
    elif usage:
        rec.completion_tokens = usage.get("completion_tokens")
