"""Throughput split: fixed-ISL prompts cut from the bundled long-text pool, per entropy tier.

Each prompt = template prefix (+BOS once) + a fixed instruction header + a window of real tier text +
template suffix, exactly ``isl`` ids of the target tokenizer. Each tier's documents are tokenized once and
joined in pool order into one id stream; prompt *i* of a tier takes the window that starts at the *i*-th of
``n`` evenly spaced offsets (moved forward to the next line start when one is near), so prompts are distinct
and long buckets run across document boundaries in a fixed order. Nothing is random: same pool +
tokenizer + ISL + count => same ids.
"""
from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from speedbench.config import ConfigError
from speedbench.data.prompts import DATASETS_DIR
from speedbench.data.tokenization import Wrapper, sha256_file

log = logging.getLogger(__name__)

POOL_PATH = DATASETS_DIR / "throughput" / "pool.jsonl.gz"
TIERS = ("low", "mixed", "high")
DEFAULT_PER_TIER = 512
BUCKETS = {"1k": 1024, "2k": 2048, "8k": 8192, "16k": 16384, "32k": 32768}
# One header for every tier, so only the body's entropy differs between tiers.
HEADER = "Read the following document excerpt carefully, then continue it from where it stops.\n\n"
DOC_SEP = "\n\n"
BUILDER_VERSION = 2  # bump when the window rule changes: it is part of the fingerprint


@dataclass(frozen=True)
class PoolDoc:
    id: str
    tier: str
    text: str


@dataclass(frozen=True)
class Window:
    id: str
    tier: str
    body: np.ndarray  # int32 ids of the text window (without template/header)
    text: str  # the source text those ids were cut from (for the entropy proxy; no decode needed)
    wrapped: bool  # the window ran past the end of the tier stream and restarted at its beginning


@dataclass(frozen=True)
class TierStream:
    """A tier's documents joined in pool order: ids plus each token's character span in ``text``."""

    text: str
    ids: np.ndarray  # int32
    start: np.ndarray  # int64 char offset of each token in text
    end: np.ndarray


def pool_digest(path: Path = POOL_PATH) -> str:
    return sha256_file(path)


def read_pool(path: Path = POOL_PATH) -> list[PoolDoc]:
    if not path.is_file():
        raise ConfigError(f"throughput pool not found: {path}")
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            for key in ("id", "tier", "text"):
                if not isinstance(row.get(key), str) or not row[key]:
                    raise ConfigError(f"{path}:{n}: pool row without the needed field {key!r}")
            if row["tier"] not in TIERS:
                raise ConfigError(f"{path}:{n}: unknown tier {row['tier']!r} (expected one of {TIERS})")
            docs.append(PoolDoc(row["id"], row["tier"], row["text"]))
    return docs


def _encode_with_offsets(tokenizer, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError("the throughput split needs a fast (Rust) tokenizer: tokenizer.json in the tokenizer dir")
    out = []
    for enc in backend.encode_batch(texts, add_special_tokens=False):  # one parallel call for all docs
        offs = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
        out.append((np.asarray(enc.ids, dtype=np.int32), offs[:, 0], offs[:, 1]))
    return out


def tier_streams(tokenizer, docs: Sequence[PoolDoc], cache_file: Optional[Path] = None
                 ) -> tuple[dict[str, TierStream], np.ndarray]:
    """Each tier's documents tokenized (one batch call) and joined with a separator, in pool order; plus the
    ids of newline-bearing pieces. Depends only on pool + tokenizer, so it is cached (npz) for every bucket.
    """
    texts = {t: DOC_SEP.join(d.text for d in docs if d.tier == t) for t in TIERS}
    if cache_file is not None and cache_file.is_file():
        try:
            with np.load(cache_file) as z:
                streams = {t: TierStream(texts[t], z[f"{t}.ids"], z[f"{t}.start"], z[f"{t}.end"])
                           for t in TIERS if f"{t}.ids" in z.files}
                return streams, z["newline_ids"]
        except Exception as e:  # a corrupt cache entry is rebuilt, not trusted
            log.warning("ignoring unreadable pool token cache %s: %s", cache_file, e)
    enc = _encode_with_offsets(tokenizer, [d.text for d in docs] + [DOC_SEP])
    sep_ids, sep_start, sep_end = enc.pop()
    streams: dict[str, TierStream] = {}
    for tier in TIERS:
        ids, start, end, base = [], [], [], 0
        for d, (i, s0, e0) in zip(docs, enc):
            if d.tier != tier:
                continue
            if ids:  # separator between documents, at its own character span
                ids.append(sep_ids), start.append(sep_start + base), end.append(sep_end + base)
                base += len(DOC_SEP)
            ids.append(i), start.append(s0 + base), end.append(e0 + base)
            base += len(d.text)
        if ids:
            streams[tier] = TierStream(texts[tier], np.concatenate(ids), np.concatenate(start), np.concatenate(end))
    nl = newline_ids(tokenizer)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{t}.{k}": getattr(st, k) for t, st in streams.items() for k in ("ids", "start", "end")}
        tmp = cache_file.with_name(cache_file.name + ".tmp.npz")
        np.savez(tmp, newline_ids=nl, **arrays)
        tmp.replace(cache_file)
    return streams, nl


_BYTE_LEVEL_NEWLINE = "\u010a"  # "Ċ": how byte-level BPE vocabularies (Llama 3, Qwen, GPT-OSS) store "\n"


def newline_ids(tokenizer) -> np.ndarray:
    """Vocabulary ids whose text contains a newline: a window starting right after one starts a line.

    SentencePiece vocabularies hold "\n" in the piece itself; byte-level BPE ones hold "Ċ". Each candidate is
    decoded to confirm it (a byte-level vocabulary's "Ċ" is a newline, a SentencePiece one's is a letter).
    """
    cand = [i for piece, i in tokenizer.get_vocab().items() if "\n" in piece or _BYTE_LEVEL_NEWLINE in piece]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    texts = (backend.decode_batch([[i] for i in cand], skip_special_tokens=False) if backend is not None
             else [tokenizer.decode([i]) for i in cand])
    return np.asarray(sorted(i for i, t in zip(cand, texts) if "\n" in t), dtype=np.int64)


def window_offsets(stream_len: int, budget: int, n: int, line_starts: np.ndarray) -> np.ndarray:
    """``n`` increasing start offsets spread evenly over the stream, each moved to the next line start
    if one lies before the following offset (keeps offsets distinct and windows starting on a line)."""
    span = max(stream_len - budget, 0)
    base = np.linspace(0, span, num=n).round().astype(np.int64) if n > 1 else np.zeros(1, dtype=np.int64)
    out = base.copy()
    if len(line_starts):
        nxt = np.append(base[1:], span + 1)
        k = np.searchsorted(line_starts, base)
        ok = k < len(line_starts)
        cand = np.where(ok, line_starts[np.minimum(k, len(line_starts) - 1)], -1)
        snap = ok & (cand < nxt) & (cand <= span)
        out[snap] = cand[snap]
    return out


def build_windows(streams: dict[str, TierStream], budget: int, per_tier: int, tiers: Sequence[str],
                  nl_ids: np.ndarray, isl: int) -> list[Window]:
    if budget <= 0:
        raise ConfigError(f"ISL {isl} leaves no room for text after the template and header")
    out: list[Window] = []
    for tier in tiers:
        st = streams.get(tier)
        if st is None or not len(st.ids):
            raise ConfigError(f"the throughput pool has no {tier!r} documents: no padding source for this tier")
        ids, start, end = st.ids, st.start, st.end
        reps = 1
        if len(ids) < budget:
            # Real text only: repeat the tier's own stream rather than inventing tokens.
            log.warning("tier %s: %d pool tokens < ISL budget %d; windows repeat the tier text",
                        tier, len(ids), budget)
            reps = budget // len(ids) + 1
            ids = np.tile(ids, reps)
        if len(ids) - budget + 1 < per_tier:
            log.warning("tier %s: only %d distinct windows for %d prompts", tier, len(ids) - budget + 1, per_tier)
        line_starts = np.flatnonzero(np.isin(ids[:-1], nl_ids)) + 1
        n, length = len(st.ids), len(st.text)
        whole = st.text * reps  # tiled ids map to tiled text: token k sits at span[k % n] + (k // n) * length
        for i, off in enumerate(window_offsets(len(ids), budget, per_tier, line_starts)):
            last = off + budget - 1
            text = whole[start[off % n] + (off // n) * length:end[last % n] + (last // n) * length]
            out.append(Window(f"tp-{tier}-{isl}-{i:04d}", tier, ids[off:off + budget], text, reps > 1))
    return out


def build_throughput_ids(tokenizer, wrapper: Wrapper, isl: int, per_tier: int, tiers: Sequence[str],
                         cache_file: Optional[Path] = None) -> list[tuple[Window, np.ndarray]]:
    """Exactly-``isl`` id lists for ``per_tier`` prompts of each tier (wrapper already holds the header)."""
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise ConfigError(f"unknown throughput tier(s) {unknown}; tiers are {', '.join(TIERS)}")
    streams, nl_ids = tier_streams(tokenizer, read_pool(), cache_file)
    windows = build_windows(streams, isl - wrapper.overhead, per_tier, tiers, nl_ids, isl)
    pre, suf = np.asarray(wrapper.prefix, dtype=np.int32), np.asarray(wrapper.suffix, dtype=np.int32)
    return [(w, np.concatenate([pre, w.body, suf])) for w in windows]


def bucket_isl(name: str) -> int:
    if name not in BUCKETS:
        raise ConfigError(f"unknown throughput bucket {name!r}; buckets are {', '.join(BUCKETS)}")
    return BUCKETS[name]
