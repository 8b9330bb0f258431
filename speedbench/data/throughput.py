"""Throughput split: fixed-ISL *tasks* over the long-text pool, per entropy tier.

Each prompt = template prefix (+BOS when the template renders one) + a window of real tier text + a task
instruction about that window (``tasks.py``) + template suffix: exactly ``isl`` ids of the target tokenizer,
the question last, as SPEED-Bench builds its throughput rows. Each tier's documents are tokenized once and
joined in pool order into one id stream; prompt *i* of a tier takes the window that starts at the *i*-th of
``n`` evenly spaced offsets (moved forward to the next line start when one is near), so the windows are
disjoint whenever the tier holds ``n`` × ISL tokens, and overlap as little as the pool allows otherwise
(measured: ``overlap.py``). Tiers are interleaved (low, mixed, high, low, …) so that a point sending fewer
requests than prompts still sees every tier. Nothing is random: same pool + tokenizer + ISL + count => same ids.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speedbench.config import ConfigError
from speedbench.core.paths import cache_root
from speedbench.data.overlap import BOUND, spread_pick
from speedbench.data.pool_build import ensure_full_pool
from speedbench.data.prompts import DATASETS_DIR
from speedbench.data.sources import FetchError
from speedbench.data.tasks import SEP, instruction_for
from speedbench.data.tokenization import Wrapper, encode_batch, sha256_file

log = logging.getLogger(__name__)

POOL_PATH = DATASETS_DIR / "throughput" / "pool.jsonl.gz"
TIERS = ("low", "mixed", "high")
DEFAULT_PER_TIER = 512
BUCKETS = {"1k": 1024, "2k": 2048, "8k": 8192, "16k": 16384, "32k": 32768}
DOC_SEP = "\n\n"
STREAM_VERSION = 3  # bump when the tokenized-stream cache (ids, spans, newline ids) changes
BUILDER_VERSION = 7  # bump when the window or task rule changes: it is part of the fingerprint
INSTRUCTION_ROOM = 128  # tokens kept free for the instruction while the window is placed
ENCODE_BATCH = 64  # pool documents (~48k characters each) tokenized per call
CANDIDATES = 4  # candidate windows per prompt (when the tier holds them): room to skip repeated text


@dataclass(frozen=True)
class PoolDoc:
    id: str
    tier: str
    text: str
    kind: str = "text"


@dataclass(frozen=True)
class Window:
    id: str
    tier: str
    body: np.ndarray  # int32 ids of the text window (without template/instruction)
    text: str  # the source text those ids were cut from (for the entropy proxy; no decode needed)
    wrapped: bool  # the window ran past the end of the tier stream and restarted at its beginning
    kind: str = "text"  # document kind at the window's end: picks the task
    index: int = 0  # position of the window within its tier
    instruction: str = ""  # SEP + the task, sent after the window
    text_ids: int = 0  # how many of ``body``'s ids are the window's text (the rest is the instruction)


@dataclass(frozen=True)
class TierStream:
    """A tier's documents joined in pool order: ids plus each token's character span in ``text``."""

    text: str
    ids: np.ndarray  # int32
    start: np.ndarray  # char offset of each token in text (int32 per document, int64 once joined)
    end: np.ndarray
    doc_starts: tuple[int, ...] = (0,)  # char offset of each document in text
    doc_kinds: tuple[str, ...] = ("text",)

    def kind_at(self, char: int) -> tuple[str, int]:
        """(kind, char offset where it starts) of the document holding character ``char``."""
        k = max(int(np.searchsorted(self.doc_starts, char, side="right")) - 1, 0)
        return self.doc_kinds[k], self.doc_starts[k]


AUTO_CHARS_PER_TOKEN = 8  # auto: the bundled pool when its smallest tier holds ~2x the windows' text (~4 chars/token)


@functools.lru_cache(maxsize=1)
def _bundled_tier_chars() -> dict[str, int]:
    chars = dict.fromkeys(TIERS, 0)
    for d in read_pool(POOL_PATH):
        chars[d.tier] += len(d.text)
    return chars


def resolve_pool(pool: str, per_tier: int, isl: int) -> str:
    """``auto``: the bundled pool when every tier holds the bucket's windows about twice over (tests, the CPU
    demo, small points), else the full pool, built once: what a user gets by default meets the bound where
    the pools can. The measured overlap decides afterwards (``pretokenize``: refused over the bound)."""
    if pool != "auto":
        return pool
    return "bundled" if min(_bundled_tier_chars().values()) >= AUTO_CHARS_PER_TOKEN * per_tier * isl else "full"


def pool_path(pool: str = "bundled") -> Path:
    """The pool file: the bundled one, or the full one (built once from pinned artifacts, then cached)."""
    if pool == "bundled":
        return POOL_PATH

    root = cache_root() / "pool"
    try:
        return Path(ensure_full_pool(str(root), log.warning))
    except (FetchError, OSError) as e:
        raise ConfigError(
            f"could not build the full throughput pool: {e}; set data.pool: bundled to use the "
            "part bundled with speedbench"
        ) from None


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
            docs.append(PoolDoc(row["id"], row["tier"], row["text"], str(row.get("kind") or "text")))
    return docs


def _encode_with_offsets(tokenizer, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError("the throughput split needs a fast (Rust) tokenizer: tokenizer.json in the tokenizer dir")
    out = []
    # parallel calls of ENCODE_BATCH docs: the tokenizer's Encoding objects (token strings, masks, 64-bit
    # offsets) cost ~100 bytes a token, so one call for the whole full pool (~63 M tokens) held gigabytes
    for k in range(0, len(texts), ENCODE_BATCH):
        for enc in backend.encode_batch(texts[k : k + ENCODE_BATCH], add_special_tokens=False):
            offs = np.asarray(enc.offsets, dtype=np.int32).reshape(-1, 2)  # char offsets: int32 halves the cache
            out.append((np.asarray(enc.ids, dtype=np.int32), offs[:, 0], offs[:, 1]))
    return out


def tier_streams(
    tokenizer, docs: Sequence[PoolDoc], cache_file: Path | None = None
) -> tuple[dict[str, TierStream], np.ndarray]:
    """Each tier's documents tokenized (one batch call) and joined with a separator, in pool order; plus the
    ids of newline-bearing pieces. Depends only on pool + tokenizer, so it is cached (npz) for every bucket.
    """
    texts = {t: DOC_SEP.join(d.text for d in docs if d.tier == t) for t in TIERS}
    layout = {t: _doc_layout([d for d in docs if d.tier == t]) for t in TIERS}
    if cache_file is not None and cache_file.is_file():
        try:
            with np.load(cache_file) as z:
                cached: dict[str, TierStream] = {
                    t: TierStream(texts[t], z[f"{t}.ids"], z[f"{t}.start"], z[f"{t}.end"], *layout[t])
                    for t in TIERS
                    if f"{t}.ids" in z.files
                }
                return cached, z["newline_ids"]
        except Exception as e:  # a corrupt cache entry is rebuilt, not trusted
            log.warning("ignoring unreadable pool token cache %s: %s", cache_file, e)
    enc = _encode_with_offsets(tokenizer, [d.text for d in docs] + [DOC_SEP])
    sep_ids, sep_start, sep_end = enc.pop()
    streams: dict[str, TierStream] = {}
    for tier in TIERS:
        ids: list[np.ndarray] = []
        start: list[np.ndarray] = []
        end: list[np.ndarray] = []
        base = 0
        for d, (i, s0, e0) in zip(docs, enc):
            if d.tier != tier:
                continue
            if ids:  # separator between documents, at its own character span
                ids.append(sep_ids)
                start.append(sep_start + base)
                end.append(sep_end + base)
                base += len(DOC_SEP)
            ids.append(i)
            start.append(s0 + base)
            end.append(e0 + base)
            base += len(d.text)
        if ids:
            streams[tier] = TierStream(
                texts[tier], np.concatenate(ids), np.concatenate(start), np.concatenate(end), *layout[tier]
            )
    nl = newline_ids(tokenizer)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{t}.{k}": getattr(st, k) for t, st in streams.items() for k in ("ids", "start", "end")}
        tmp = cache_file.with_name(cache_file.name + ".tmp.npz")
        np.savez(tmp, newline_ids=nl, **arrays)
        tmp.replace(cache_file)
    return streams, nl


_BYTE_LEVEL_NEWLINE = "\u010a"  # "Ċ": how byte-level BPE vocabularies (Llama 3, Qwen, GPT-OSS) store "\n"


def _doc_layout(docs: Sequence[PoolDoc]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    starts, at = [], 0
    for d in docs:
        starts.append(at)
        at += len(d.text) + len(DOC_SEP)
    return tuple(starts) or (0,), tuple(d.kind for d in docs) or ("text",)


def newline_ids(tokenizer) -> np.ndarray:
    """Vocabulary ids whose text contains a newline: a window starting right after one starts a line.

    SentencePiece vocabularies hold "\n" in the piece itself; byte-level BPE ones hold "Ċ". Each candidate is
    decoded to confirm it (a byte-level vocabulary's "Ċ" is a newline, a SentencePiece one's is a letter).
    """
    cand = [i for piece, i in tokenizer.get_vocab().items() if "\n" in piece or _BYTE_LEVEL_NEWLINE in piece]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    texts = (
        backend.decode_batch([[i] for i in cand], skip_special_tokens=False)
        if backend is not None
        else [tokenizer.decode([i]) for i in cand]
    )
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


class _Tiled:
    """A tier stream repeated ``reps`` times (only when it is shorter than one window): ids and their text."""

    def __init__(self, st: TierStream, budget: int):
        self.st, self.n, self.length = st, len(st.ids), len(st.text)
        self.reps = budget // self.n + 1 if self.n < budget else 1
        if self.reps > 1:  # real text only: repeat the tier's own stream rather than inventing tokens
            log.warning("tier text of %d tokens < ISL budget %d; windows repeat the tier text", self.n, budget)
        self.ids = np.tile(st.ids, self.reps) if self.reps > 1 else st.ids
        self.whole = st.text * self.reps

    def char(self, k: int, ends: bool) -> int:  # token k of the tiled stream sits at span[k % n] + lap offset
        arr = self.st.end if ends else self.st.start
        return int(arr[k % self.n]) + (k // self.n) * self.length

    def text(self, off: int, count: int) -> str:
        return self.whole[self.char(off, False) : self.char(off + count - 1, True)]


def build_windows(
    tokenizer,
    streams: dict[str, TierStream],
    budget: int,
    per_tier: int,
    tiers: Sequence[str],
    nl_ids: np.ndarray,
    isl: int,
) -> list[Window]:
    """``per_tier`` tasks of exactly ``budget`` ids (window + instruction) per tier, tiers interleaved.

    Windows are placed for ``budget`` ids (so they are disjoint whenever the tier holds per_tier × budget
    ids); the task is chosen from the first ``budget - room`` ids, then the window keeps exactly
    ``budget - len(instruction)`` ids, so the quoted text is always inside it.
    """
    if budget <= 1:
        raise ConfigError(f"ISL {isl} leaves no room for text after the template and the instruction")
    room = min(INSTRUCTION_ROOM, budget // 2)
    placed = []
    owners: dict[int, list[int]] = {}  # windows already taken in any tier of this bucket, by sampled k-gram
    for tier in tiers:
        st = streams.get(tier)
        if st is None or not len(st.ids):
            raise ConfigError(f"the throughput pool has no {tier!r} documents: no text source for this tier")
        tiled = _Tiled(st, budget)
        line_starts = np.flatnonzero(np.isin(tiled.ids[:-1], nl_ids)) + 1
        # more candidate windows than prompts when the tier holds them, so repeated source text can be skipped
        slots = max(per_tier, min(len(tiled.ids) // budget, CANDIDATES * per_tier))
        cands = window_offsets(len(tiled.ids), budget, slots, line_starts)
        picks = spread_pick(tiled.ids, cands, budget, per_tier, BOUND / 2, owners)  # BOUND / 2: sampling margin
        for i, off in enumerate(picks):
            end_char = int(st.start[(off + budget - room - 1) % tiled.n])
            kind, doc_start = st.kind_at(end_char)
            head = tiled.text(int(off), budget - room)
            if tiled.reps == 1:  # quote only from the window's last document: "the code above" is that one
                head = head[max(0, doc_start - tiled.char(int(off), False)) :]
            placed.append((tier, i, int(off), tiled, kind, SEP + instruction_for(kind, head, i)))
    instr = encode_batch(tokenizer, [p[-1] for p in placed])
    out = []
    for (tier, i, off, tiled, kind, text), q in zip(placed, instr):
        q = list(q)[:room]  # an instruction over its room is cut; MAX_QUOTE keeps this from happening
        keep = budget - len(q)
        body = np.concatenate([tiled.ids[off : off + keep], np.asarray(q, dtype=np.int32)])
        out.append(
            Window(f"tp-{tier}-{isl}-{i:04d}", tier, body, tiled.text(off, keep), tiled.reps > 1, kind, i, text, keep)
        )
    order = {t: k for k, t in enumerate(tiers)}
    return sorted(out, key=lambda w: (w.index, order[w.tier]))


def build_throughput_ids(
    tokenizer,
    wrapper: Wrapper,
    isl: int,
    per_tier: int,
    tiers: Sequence[str],
    cache_file: Path | None = None,
    pool: Path = POOL_PATH,
) -> tuple[list[tuple[Window, np.ndarray]], dict[str, int]]:
    """Exactly-``isl`` id lists for ``per_tier`` prompts of each tier, tiers interleaved; and the pool's
    token count per tier (what the windows were cut from)."""
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise ConfigError(f"unknown throughput tier(s) {unknown}; tiers are {', '.join(TIERS)}")
    streams, nl_ids = tier_streams(tokenizer, read_pool(pool), cache_file)
    windows = build_windows(tokenizer, streams, isl - wrapper.overhead, per_tier, tiers, nl_ids, isl)
    pre, suf = np.asarray(wrapper.prefix, dtype=np.int32), np.asarray(wrapper.suffix, dtype=np.int32)
    sizes = {t: int(len(streams[t].ids)) for t in tiers}
    return [(w, np.concatenate([pre, w.body, suf])) for w in windows], sizes


def bucket_isl(name: str) -> int:
    if name not in BUCKETS:
        raise ConfigError(f"unknown throughput bucket {name!r}; buckets are {', '.join(BUCKETS)}")
    return BUCKETS[name]
