"""Tokenization for BLEU and ROUGE-L that keeps every script, chosen per text pair from the script it is in.

Why: rouge-score's default tokenizer keeps only ``[a-z0-9]``, so two identical Chinese or Russian texts
score ROUGE-L 0; sacrebleu's default ``13a`` tokenizer leaves a Chinese sentence as one "word", so a short
CJK text gets BLEU 0. sacrebleu ships the right tokenizers; which one fits is a property of the script:

* Latin (and any text with no other letters): ``13a``, sacrebleu's default (comparable with published BLEU);
* Han without kana (Chinese): ``zh`` (one token per ideograph, the rest as 13a);
* kana (Japanese) or a script written without spaces (Thai, Lao, Khmer, Myanmar): ``char``;
* every other script (Cyrillic, Arabic, Devanagari, Greek, Hebrew, Hangul, ...): ``intl`` (Unicode
  punctuation and symbols split off, words kept whole with their combining marks).

ROUGE-L uses one Unicode-aware tokenizer: lower-cased words made of letters, marks and digits of any script,
and single characters for the scripts written without spaces.
"""

from __future__ import annotations

from collections import Counter
from functools import cache

import regex

_NO_SPACE = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
# one token per no-space character; otherwise a run of letters/marks/digits of the other scripts
_ROUGE_TOKEN = regex.compile(rf"(?V1)[{_NO_SPACE}]|[[\p{{L}}\p{{M}}\p{{N}}]--[{_NO_SPACE}]]+")
_SCRIPT_OF = (
    ("han", regex.compile(r"\p{Han}")),
    ("kana", regex.compile(r"[\p{Hiragana}\p{Katakana}]")),
    ("nospace", regex.compile(r"[\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]")),
    ("latin", regex.compile(r"\p{Latin}")),
    (
        "other",
        regex.compile(
            r"(?V1)[\p{L}--[\p{Latin}"
            rf"{_NO_SPACE}]]"
        ),
    ),
)


def script_counts(text: str) -> Counter:
    """Letters per script family (han, kana, nospace, latin, other)."""
    return Counter({name: len(rx.findall(text)) for name, rx in _SCRIPT_OF})


def bleu_tokenizer_for(*texts: str) -> str:
    """The sacrebleu tokenizer name for texts in one language (a hypothesis and its reference)."""
    c = sum((script_counts(t) for t in texts), Counter())
    if c["kana"] or c["nospace"] > c["latin"] + c["other"]:
        return "char"
    if c["han"] and c["han"] >= c["latin"] + c["other"]:
        return "zh"
    if c["other"] and c["other"] >= c["latin"]:
        return "intl"
    return "13a"


@cache
def _sacrebleu_tokenizer(name: str):
    # sacrebleu is the [quality] extra; the rest of this module needs only regex (a transformers dependency)
    from sacrebleu.metrics.bleu import BLEU

    return BLEU(tokenize=name).tokenizer


def bleu_tokenize(text: str, name: str) -> str:
    return _sacrebleu_tokenizer(name)(text.rstrip())


class UnicodeRougeTokenizer:
    """rouge-score tokenizer (``tokenize(text) -> list[str]``) that keeps every script; see the module doc."""

    def tokenize(self, text: str) -> list[str]:
        return _ROUGE_TOKEN.findall(text.lower())
