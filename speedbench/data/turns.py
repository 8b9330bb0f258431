"""Multi-turn conversations: every user turn is sent, each with the model's own earlier replies in context.

SPEED-Bench's framework (``specdec_bench`` run.py) re-applies the chat template over the conversation so
far, with each reply decoded to text, and re-encodes the whole string.  speedbench builds the same
conversation by ids instead:

    ids(turn k+1) = ids(turn k) + the reply's output ids, as the engine returned them + tail(k+1)

where ``tail(k+1)`` is the template's text between the reply and the next generation prompt (the end of
the assistant turn, the next user message, the generation prompt), tokenized here at data preparation
time and cached and fingerprinted with the first turn's ids.  Why ids: re-encoding decoded text need not
give back the ids the model produced (BPE merges across the boundary, templates that ``trim`` the reply),
so the next turn's context would not be exactly what the model wrote, and SD off and on could see
different contexts for the same output.  Only the reply is unknown until run time; splicing it costs a
list concatenation in the load client, no tokenizer.  An engine that streams no output ids (trtllm-serve
without ``detokenize: false``) falls back to the reply text, tokenized by the harness.

Earlier turns stay exactly as they were sent and generated.  Most templates render a conversation
append-only (adding a turn leaves the earlier text unchanged: Llama 3, Qwen, Gemma, Mistral), and then the
result is the template over the whole conversation.  Some re-render history (gpt-oss drops the reasoning
channel of earlier replies; a template may move the generation prompt); there the model still sees its
own earlier context unchanged, and the prompt set records ``template_append_only: false``.
"""

from __future__ import annotations

from collections.abc import Sequence

from speedbench.config import ConfigError
from speedbench.data.tokenization import encode, load_tokenizer

# Stand-ins for replies while the template is rendered: invisible separators no template rewrites.
_REPLY = "\u2063SPEEDBENCH_REPLY_{}\u2063"
# Between turns of a conversation sent without a chat template (plain text the base model continues).
PLAIN_SEPARATOR = "\n\n"

TURNS_RULE = (
    "every user turn in order; turn k+1 = turn k's ids + the model's reply ids as the engine returned "
    "them (its text tokenized when the engine returns no ids) + the chat template's ids from the end "
    "of the reply to the next generation prompt; a reply that ends with the template's end-of-turn "
    "token (reply_end_id) drops it, as the template writes it itself. SPEED-Bench instead re-applies "
    "the template to the decoded reply text and re-encodes the whole conversation"
)


def _messages(turns: Sequence[str], upto: int) -> list[dict]:
    """User turns 0..upto with a placeholder reply after each but the last."""
    msgs: list[dict] = []
    for j in range(upto + 1):
        if j:
            msgs.append({"role": "assistant", "content": _REPLY.format(j - 1)})
        msgs.append({"role": "user", "content": turns[j]})
    return msgs


def conversation_tails(
    tokenizer, turns: Sequence[str], use_template: bool, prompt_id: str = ""
) -> tuple[tuple[tuple[int, ...], ...], bool]:
    """(ids to append after reply k to make turn k+2's prompt, one per later turn; whether the template
    rendered the earlier turns exactly as they were sent)."""
    if len(turns) < 2:
        return (), True
    if not use_template:
        return tuple(tuple(encode(tokenizer, PLAIN_SEPARATOR + t)) for t in turns[1:]), True
    render = [
        tokenizer.apply_chat_template(_messages(turns, k), tokenize=False, add_generation_prompt=True)
        for k in range(len(turns))
    ]
    tails, append_only = [], True
    for k in range(1, len(turns)):
        before, found, after = render[k].partition(_REPLY.format(k - 1))
        if not found:
            raise ConfigError(
                f"prompt {prompt_id or '?'}: the chat template drops the assistant's reply from "
                "the conversation, so later turns cannot carry it; set data.turns: first"
            )
        append_only = append_only and before == render[k - 1]
        tails.append(tuple(encode(tokenizer, after)))
    return tuple(tails), append_only


def reply_end_id(tokenizer, tails: Sequence[Sequence[Sequence[int]]]) -> int | None:
    """The special token the template writes right after every reply (Gemma's <end_of_turn>, Llama 3's
    <|eot_id|>, ChatML's <|im_end|>): the token a model emits to end its turn.  None when the tails start
    differently or with ordinary text (plain format: a reply ending in a blank line keeps it)."""
    firsts = {t[0] for per_prompt in tails for t in per_prompt if t}
    if len(firsts) != 1:
        return None
    (first,) = firsts
    added = (getattr(tokenizer, "added_tokens_decoder", None) or {}).get(first)
    special = bool(getattr(added, "special", False)) or first in set(getattr(tokenizer, "all_special_ids", []))
    return first if special else None


def last_turn_tokens(prompt, output_len: int) -> int:
    """Input ids of a conversation's last turn at most: every earlier reply at full length is in it."""
    return prompt.num_tokens + sum(len(t) for t in prompt.turn_tails) + len(prompt.turn_tails) * output_len


class NextTurn:
    """The load client's per-turn callback: the next turn's ids from this turn's ids and reply.

    Picklable (a path, nothing loaded), so multi-process load workers get it with the plan.
    """

    def __init__(self, tokenizer_path: str | None = None, end_id: int | None = None) -> None:
        self.tokenizer_path = tokenizer_path  # only for engines that stream text without ids
        self.end_id = end_id  # the prompt set's reply_end_id

    def __call__(self, tail: Sequence[int], sent_ids: Sequence[int], output_ids: Sequence[int], text: str) -> list[int]:
        reply = list(output_ids)
        if not reply and text:
            if not self.tokenizer_path:
                raise ConfigError(
                    "the engine returned a reply without token ids and no tokenizer is known to "
                    "tokenize its text; set data.turns: first"
                )
            reply = encode(load_tokenizer(self.tokenizer_path), text)
        # a reply that ended its turn is followed by the template's own end-of-turn token: not twice
        if self.end_id is not None and reply and reply[-1] == self.end_id and tail and tail[0] == self.end_id:
            reply.pop()
        return [*sent_ids, *reply, *tail]
