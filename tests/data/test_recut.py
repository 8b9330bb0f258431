"""Re-cutting SPEED-Bench throughput rows to another ISL keeps the task (issue 17, item 3): the middle of the
context goes, the question at the end stays last; a short row is padded before its question, not after."""

import pyarrow as pa
import pyarrow.parquet as pq

from speedbench.config import DataConfig
from speedbench.data.pretokenize import prepare_prompts
from speedbench.data.tokenization import load_tokenizer, split_instruction

QUESTION = "Question: which river did the second paragraph name, and why did the author mention it?"


def _rows():
    paras = [
        f"Paragraph {i}: the archive records that the {i}th ledger names the river Ouse {i} times, "
        f"and the clerk wrote each entry by hand in the year {1700 + i}."
        for i in range(400)
    ]
    long_row = "\n".join(paras) + "\n\n" + QUESTION
    short_row = "A short note about the river Ouse.\n\n" + QUESTION
    return [
        {"question_id": "long", "category": "low_entropy", "turns": [long_row]},
        {"question_id": "short", "category": "low_entropy", "turns": [short_row]},
    ]


def _prep(tmp_path, tok, isl):
    path = tmp_path / "speed" / "data" / "speed" / "throughput_8k" / "test.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(_rows()), path)
    cfg = DataConfig(
        split="speed-bench:throughput_8k", source=str(tmp_path / "speed"), isl=isl, cache_dir=str(tmp_path / "cache")
    )
    return {p.id: p for p in prepare_prompts(cfg, tok).prompts}


def test_split_instruction():
    assert split_instruction("ctx ctx ctx\n\nQ?") == ("ctx ctx ctx", "\n\nQ?")
    assert split_instruction("a bare question?\n") == ("", "a bare question?")


def test_recut_keeps_head_and_question_and_drops_the_middle(byte_bpe, tmp_path):
    tok = load_tokenizer(byte_bpe)
    prompts = _prep(tmp_path, byte_bpe, 512)
    long, short = prompts["long"], prompts["short"]
    assert long.num_tokens == short.num_tokens == 512
    text = tok.decode(list(long.token_ids))
    body = text.split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]
    assert body.startswith("Paragraph 0:")  # the head of the context stays
    assert body.endswith(QUESTION)  # the question stays last
    assert "Paragraph 399:" in body  # the end of the context stays
    assert "Paragraph 200:" not in body  # the middle went
    assert long.truncated and not long.padded
    # a short row is padded with real text before its question, never after it
    sbody = tok.decode(list(short.token_ids)).split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]
    assert sbody.startswith("A short note about the river Ouse.") and sbody.endswith(QUESTION)
    assert short.padded and not short.truncated
