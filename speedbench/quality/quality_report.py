"""quality.json: equivalence to SD off next to acceptance length, and text scores, per point and category."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from speedbench.core.records import OK, RequestRecord
from speedbench.data.tokenization import load_tokenizer
from speedbench.quality.equivalence import (
    ALL,
    PairResult,
    by_category,
    compare_records,
    conversation_pairs,
    pairs_without_ids,
)
from speedbench.quality.points import PointData, dataset_references, load_points, off_reference
from speedbench.quality.scores import BertScorer, ScoreUnavailable, score_pairs
from speedbench.results import ResultsDir

log = logging.getLogger(__name__)

QUALITY_FILE = "quality.json"


def _al(records: list[RequestRecord]) -> float | None:
    """1 + accepted / drafts from per-request SD counters (acceptance length over drafted steps)."""
    drafts = sum(int(r.sd.get("drafts", 0)) for r in records if r.sd)
    acc = sum(int(r.sd.get("accepted_tokens", 0)) for r in records if r.sd)
    return 1.0 + acc / drafts if drafts else None


def _measured(records: list[RequestRecord]) -> list[RequestRecord]:
    return [r for r in records if r.status == OK and not r.warmup]


def build_quality(
    points: list[PointData],
    dataset_refs: dict[str, str],
    bert: BertScorer | None = None,
    bert_off_reason: str | None = None,
) -> dict:
    """Rows per (engine, ISL, concurrency, SD setting, category); SD-on rows compare with SD off."""
    # (group, sd_label) -> pooled over repeats: equivalence pairs, (hyp, ref) texts, records
    pairs: dict[tuple, list[PairResult]] = defaultdict(list)
    no_ids: dict[tuple, list[str]] = defaultdict(list)  # categories of pairs refused for lack of token ids
    vs_off: dict[tuple, list[tuple[str, str, str]]] = defaultdict(list)
    recs: dict[tuple, list[RequestRecord]] = defaultdict(list)
    meta: dict[tuple, dict] = {}
    for p in points:
        key = (p.group, p.point["sd_label"])
        meta.setdefault(key, {"draft_length": p.draft_length, "repeats": set(), "al_points": []})
        meta[key]["repeats"].add(p.repeat)
        if p.point.get("al_drafted") is not None:
            meta[key]["al_points"].append(p.point["al_drafted"])
        recs[key] += _measured(p.records)
        ref = off_reference(points, p)
        if ref is None or ref is p:
            continue  # the SD-off reference itself (or no SD-off at this concurrency)
        pairs[key] += compare_records(p.records, ref.records)
        no_ids[key] += pairs_without_ids(p.records, ref.records)
        # text scores compare whole conversations too: every turn's text, joined
        vs_off[key] += [(c.category, c.text, b.text) for c, b in conversation_pairs(p.records, ref.records)]

    rows = []
    for key in sorted(meta, key=lambda k: (str(k[0]), k[1] != "sd-off", k[1])):
        (engine, isl, conc), label = key
        eq = {s.category: s for s in by_category(pairs.get(key, []))}
        cats = sorted({r.category for r in recs[key]}) + [ALL]
        for cat in cats:
            in_cat = [r for r in recs[key] if cat == ALL or r.category == cat]
            e = eq.get(cat)
            row = {
                "engine": engine,
                "isl": isl,
                "concurrency": conc,
                "sd_label": label,
                "draft_length": meta[key]["draft_length"],
                "category": cat,
                "repeats": len(meta[key]["repeats"]),
                "requests": len(in_cat),
                "reference": "sd-off, same concurrency"
                + (" and repeat" if label != "sd-off" else " (repeat 1: noise floor)"),
                "pairs": e.pairs if e else 0,
                "pairs_without_ids": sum(cat == ALL or c == cat for c in no_ids.get(key, [])),
                "exact_match_rate": e.exact_match_rate if e else None,
                "divergence_rate": e.divergence_rate if e else None,
                "first_divergence_min": e.first_divergence_min if e else None,
                "first_divergence_median": e.first_divergence_median if e else None,
                "matched_prefix_frac": e.matched_prefix_frac if e else None,
                "al": _al(in_cat)
                if cat != ALL or not meta[key]["al_points"]
                else sum(meta[key]["al_points"]) / len(meta[key]["al_points"]),
            }
            texts = [t for t in vs_off.get(key, []) if cat == ALL or t[0] == cat]
            _add_scores(row, "vs_off", [t[1] for t in texts], [t[2] for t in texts], bert, bert_off_reason)
            # a split's reference answer answers the first user turn
            with_ref = [r for r in in_cat if r.prompt_id in dataset_refs and r.turn == 1]
            _add_scores(
                row,
                "vs_dataset",
                [r.text for r in with_ref],
                [dataset_refs[r.prompt_id] for r in with_ref],
                bert,
                bert_off_reason,
            )
            rows.append(row)
    notes = [
        "greedy decoding (temperature 0): SD should reproduce SD-off token ids exactly",
        "outputs are paired by prompt id at equal concurrency only: batch shape alone can change bf16 greedy "
        "outputs; SD-off rows compare later repeats with repeat 1 (the noise floor; empty with one repeat)",
        "pairs_without_ids: pairs not compared because a side has no output token ids (never counted as a match)",
        "a pair is a whole conversation: a multi-turn prompt's turns' outputs joined in turn order (a reply "
        "that diverges changes every later turn's context); conversations cut short are left out",
        "first_divergence_*: token index of the first differing output token over the diverging pairs",
        "al: acceptance length over drafted steps, 1 + accepted/drafts (server counters)",
        "scores: BLEU = sacrebleu corpus BLEU (0-100); rouge_l = mean ROUGE-L F (0-1); bertscore = mean F1 "
        "(0-1); *_vs_off against the SD-off output, *_vs_dataset against the split's reference answers "
        "(first turns only)",
        "tokenization per pair by script: BLEU with sacrebleu 13a (Latin), zh (Chinese), char (Japanese, Thai "
        "and other scripts without spaces), intl (Cyrillic, Arabic, Devanagari, Hangul, ...), listed per row as "
        "bleu_tokenize_* (tokenizer:pairs); ROUGE-L on Unicode words (single characters for scripts without "
        "spaces), no stemming",
        (
            "bertscore: model " + bert.label + ", offline; raw F1, NOT rescaled with a baseline: comparable only "
            "between runs with the same encoder, not with published BERTScore; choose the encoder with "
            "--bertscore-model DIR (any local HF encoder, e.g. a multilingual one)"
        )
        if bert is not None
        else ("bertscore: NOT computed: " + (bert_off_reason or "disabled")),
    ]
    if not dataset_refs:
        notes.append("the prompt split carries no reference answers: *_vs_dataset is empty")
    return {"rows": rows, "notes": notes}


def _add_scores(
    row: dict, suffix: str, hyps: list[str], refs: list[str], bert: BertScorer | None, bert_off_reason: str | None
) -> None:
    row.setdefault("scores_unavailable", None)
    if not hyps:
        row.update(
            {
                f"bleu_{suffix}": None,
                f"rouge_l_{suffix}": None,
                f"bertscore_{suffix}": None,
                f"bleu_tokenize_{suffix}": None,
            }
        )
        return
    s = score_pairs(hyps, refs, bert, bert_off_reason)
    row.update(
        {
            f"bleu_{suffix}": s.bleu,
            f"rouge_l_{suffix}": s.rouge_l,
            f"bertscore_{suffix}": s.bertscore_f1,
            f"bleu_tokenize_{suffix}": ",".join(f"{k}:{n}" for k, n in (s.bleu_tokenizers or {}).items()) or None,
        }
    )
    # a disabled BERTScore is said once in the notes; a library that is missing is said on every row it empties
    missing = sorted({w for w in s.unavailable if w != bert_off_reason})
    if missing:
        row["scores_unavailable"] = "; ".join(missing)


def make_bert_scorer(
    enabled: bool, model: str | None = None, num_layers: int | None = None
) -> tuple[BertScorer | None, str | None]:
    """(scorer, None) or (None, why not): an unavailable BERTScore is reported, never silently zero."""
    if not enabled:
        return None, "disabled (enable with --bertscore; it loads torch and an encoder model)"
    try:
        return BertScorer(model=model, num_layers=num_layers), None
    except ScoreUnavailable as e:
        return None, f"unavailable: {e}"


class QualityError(ValueError):
    """Asked for explicitly (the `quality` command), the analysis cannot answer: one line, exit 2."""


def check_inputs(points: list[PointData], path: str | Path) -> None:
    """Refuse what would print empty tables: no request records, or SD-on points without an SD-off baseline."""
    if not any(p.records for p in points):
        raise QualityError(f"no request records in {path} (no records/ files): nothing to compare")
    on = [p for p in points if p.sd_on and p.records]
    if on and not any((ref := off_reference(points, p)) is not None and ref.records for p in on):
        raise QualityError(
            f"no SD-off point with records at the concurrencies of the SD-on points in {path}: "
            f"equivalence needs the SD-off baseline (run --sd off into the same sweep)"
        )


def write_quality(
    path: str | Path,
    *,
    bertscore: bool = False,
    bertscore_model: str | None = None,
    bertscore_layers: int | None = None,
    strict: bool = False,
) -> dict:
    """Write quality.json. ``strict`` (an explicit request): missing inputs or a BERTScore asked for that
    cannot run raise QualityError instead of leaving empty rows and a footnote."""
    rd = ResultsDir.open(path)
    points = load_points(path)
    texts_from_ids(points, rd.manifest())
    if strict:
        check_inputs(points, path)
    bert, why = make_bert_scorer(bertscore, bertscore_model, bertscore_layers)
    if strict and bertscore and bert is None:
        raise QualityError(f"--bertscore cannot run: {why}")
    out = build_quality(points, dataset_references(rd.manifest()), bert, why)
    rd.write_document(QUALITY_FILE, out)
    return out


def texts_from_ids(points: list[PointData], manifest: dict) -> None:
    """Text for records that carry token ids only (trtllm-serve with ``detokenize: false`` streams ids and an
    empty text), decoded with the sweep's tokenizer so text scores compare words, not empty strings."""
    todo = [r for p in points for r in p.records if not r.text and r.output_ids]
    if not todo:
        return
    cfg = manifest.get("config") or {}
    path = (cfg.get("data") or {}).get("tokenizer") or (cfg.get("engine") or {}).get("model")
    if not path:
        log.warning("cannot decode output ids to text: the manifest names no tokenizer and no model")
        return
    try:
        tok = load_tokenizer(path)
    except Exception as e:  # scores of id-only records stay empty; equivalence does not need text
        log.warning("cannot decode output ids to text (tokenizer %s): %s", path, e)
        return
    for r in todo:
        r.text = tok.decode(r.output_ids, skip_special_tokens=False)
