"""Multi-turn data: the template ids that follow each reply, cached and fingerprinted with the first turn."""

import json
import shutil

import pytest

from speedbench.config import ConfigError, DataConfig
from speedbench.data.inspect import describe
from speedbench.data.pretokenize import cache_path, fingerprint, prepare_prompts, read_prompt_set
from speedbench.data.prompts import load_split
from speedbench.data.tokenization import apply_bos, encode, load_tokenizer
from speedbench.data.turns import PLAIN_SEPARATOR, NextTurn, conversation_tails, reply_end_id

# Gemma 3's own chat template (trims every message, as the real one does)
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (m['content'] | trim) + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
# re-renders the whole conversation when a turn is added: replies cannot be spliced into it by id
COUNTING_TEMPLATE = (
    "{{ messages | length }} messages\n{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


# renders only the user turns: a reply has nowhere to go
DROPPING_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def _with_template(gemma, tmp_path, template: str) -> str:
    d = tmp_path / "tok"
    d.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{gemma}/{name}", d / name)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = template
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    return str(d)


@pytest.mark.slow  # loads a second copy of the tokenizer: seconds
def test_spliced_turn_equals_the_template_over_the_conversation(gemma, tmp_path):
    tok = load_tokenizer(_with_template(gemma, tmp_path, GEMMA_TEMPLATE))
    turns = ["What is the capital of France?", "And of Italy?", "Which is larger?"]
    tails, append_only = conversation_tails(tok, turns, use_template=True)
    assert len(tails) == 2 and append_only
    first = apply_bos(
        encode(
            tok,
            tok.apply_chat_template(
                [{"role": "user", "content": turns[0]}], tokenize=False, add_generation_prompt=True
            ),
        ),
        2,
        "once",
    )
    replies = ["Paris.", "Rome."]
    ids, msgs = first, [{"role": "user", "content": turns[0]}]
    for k, reply in enumerate(replies):
        ids = NextTurn()(tails[k], ids, encode(tok, reply), "")
        msgs += [{"role": "assistant", "content": reply}, {"role": "user", "content": turns[k + 1]}]
        # the same ids as SPEED-Bench's rule (template over the conversation with the reply text, re-encoded)
        # whenever the reply's ids are what its text encodes to
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        assert ids == apply_bos(encode(tok, text), 2, "once")
    # a reply that ended its turn with <end_of_turn> does not get a second one from the template
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    assert reply_end_id(tok, [tails]) == eot
    assert NextTurn(end_id=eot)(tails[0], first, [*encode(tok, "Paris."), eot], "") == NextTurn(end_id=eot)(
        tails[0], first, encode(tok, "Paris."), ""
    )


@pytest.mark.slow  # loads a second copy of the tokenizer: seconds
def test_a_template_that_rewrites_earlier_turns_keeps_them_as_sent(gemma, tmp_path):
    tok = load_tokenizer(_with_template(gemma, tmp_path, COUNTING_TEMPLATE))
    (tail,), append_only = conversation_tails(tok, ["a?", "b?"], use_template=True, prompt_id="q1")
    assert not append_only  # "1 messages" became "3 messages": the template re-rendered the first turn
    # the tail is what follows the reply in the template's rendering: the next user turn and the generation prompt
    assert tok.decode(list(tail)) == "\nuser: b?\nassistant: "
    assert conversation_tails(tok, ["only one turn"], use_template=True) == ((), True)
    with pytest.raises(ConfigError, match="prompt q2: the chat template drops the assistant's reply.*turns: first"):
        conversation_tails(
            load_tokenizer(_with_template(gemma, tmp_path / "x", DROPPING_TEMPLATE)),
            ["a?", "b?"],
            use_template=True,
            prompt_id="q2",
        )


def test_every_turn_by_default_first_turn_on_request(gemma, cache_dir):
    every = DataConfig(split="qualitative-mini", cache_dir=cache_dir)
    assert every.turns == "all"
    first = every.model_copy(update={"turns": "first"})
    assert fingerprint(every, gemma) != fingerprint(first, gemma)
    a, b = prepare_prompts(every, gemma), prepare_prompts(first, gemma)
    tok = load_tokenizer(gemma)
    rows = {p.id: p for p in load_split("qualitative-mini")}
    multi = [p for p in a.prompts if p.num_turns > 1]
    assert len(multi) == 42 and all(len(p.turn_tails) == p.num_turns - 1 for p in a.prompts)
    for p in multi[:5]:  # this tokenizer has no chat template: plain text, turns separated by a blank line
        assert list(p.turn_tails[0]) == encode(tok, PLAIN_SEPARATOR + rows[p.id].turns[1])
    assert all(p.turn_tails == () for p in b.prompts)
    assert [p.token_ids for p in a.prompts] == [p.token_ids for p in b.prompts]  # first turns unchanged
    assert a.meta["turns_used"] == "every user turn" and b.meta["turns_used"] == "first user turn"
    assert a.meta["turns_planned"] == 88 + 42 and b.meta["turns_planned"] == 88
    assert "reply ids" in a.meta["turns_rule"]
    assert a.meta["template_append_only"] is True
    assert a.meta["reply_end_id"] is None  # plain format: "\n\n" starts every tail but is ordinary text
    assert a.ids_sha256 != b.ids_sha256  # the tails are part of what the digest proves
    assert "multi-turn sources 42; requests per pass 130 (every user turn)" in describe(a)
    assert "requests per pass 88 (first user turn)" in describe(b)
    # the cache entry keeps the tails
    again = read_prompt_set(cache_path(every, a.fingerprint))
    assert [p.turn_tails for p in again.prompts] == [p.turn_tails for p in a.prompts]


def test_the_context_check_sees_a_conversations_last_turn():
    from speedbench.data.promptset import TokenizedPrompt
    from speedbench.data.turns import last_turn_tokens

    three_turns = TokenizedPrompt("m", "c", (1, 2, 3), turn_tails=((7, 8), (9,)))
    assert last_turn_tokens(three_turns, 10) == 3 + (10 + 2) + (10 + 1)  # both earlier replies at full length
    assert last_turn_tokens(TokenizedPrompt("s", "c", (1, 2, 3)), 10) == 3
