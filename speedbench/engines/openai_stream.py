"""The OpenAI-compatible streaming completion chunk, as vLLM and trtllm-serve send it with
``stream_options: {include_usage, continuous_usage_stats}``: one choice per chunk with its text (and token
ids when asked), cumulative ``usage.completion_tokens`` on every chunk, and a final usage-only chunk."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from speedbench.core.records import RequestRecord


def fold_chunk_tokens(
    rec: RequestRecord, t_ns: int, cumulative: int | None, ids: list | None, text: str | None
) -> None:
    """Count one chunk's tokens, from the best the server sent: cumulative usage (vLLM's continuous usage),
    else the token ids it carried, else (a plain OpenAI-compatible server: text only, usage once at the end)
    one token per chunk with text, so the chunk is still timed; the request's total then comes from the
    final usage (``completion_tokens``) or the tokenizer, and ``rec.token_source`` says which was used."""
    prev = rec.chunk_tokens[-1] if rec.chunk_tokens else 0
    if cumulative is not None:
        rec.token_source = rec.token_source or "usage"
        rec.add_chunk(t_ns, cumulative)
    elif ids:
        rec.token_source = rec.token_source or "ids"
        rec.add_chunk(t_ns, prev + len(ids))
    elif text:
        rec.token_source = "text"
        rec.add_chunk(t_ns, prev + 1)


def fold_completion_chunk(event: dict, rec: RequestRecord, t_ns: int, sent_ids: list[int] | None) -> None:
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
        fold_chunk_tokens(rec, t_ns, usage.get("completion_tokens") if usage else None, ids, ch.get("text"))
        if ch.get("finish_reason"):
            rec.finish_reason = ch["finish_reason"]
    elif usage:
        rec.completion_tokens = usage.get("completion_tokens")
