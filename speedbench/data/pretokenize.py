"""Pre-tokenization outside the engine: chat template + BOS applied here, token ids sent to every engine.

The result is cached as parquet under a fingerprint of everything that can change the ids: tokenizer
files (vocab, BOS, chat template), template/BOS policy, tokenizer library versions, the split's source
content, the selection and the ISL. Same fingerprint => byte-identical ids for every engine.
The fingerprint is computed from files alone, so a cache hit never loads the tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from speedbench.config import ConfigError, DataConfig
from speedbench.core.paths import cache_root
from speedbench.data import splits, throughput
from speedbench.data.entropy import unigram_entropy_bits, zlib_ratio
from speedbench.data.inspect import overlap_refusal
from speedbench.data.overlap import BOUND, overlap_by_group
from speedbench.data.prompts import Prompt
from speedbench.data.promptset import PromptSet, TokenizedPrompt, ids_digest, read_prompt_set, write_prompt_set
from speedbench.data.tasks import quotes_window
from speedbench.data.tokenization import (
    apply_bos,
    build_exact_isl,
    chat_template,
    chat_template_from_files,
    check_tokenizer_dir,
    encode,
    encode_batch,
    load_tokenizer,
    own_padding,
    render_text,
    split_instruction,
    template_bos,
    template_wrapper,
    tokenizer_files_digest,
)
from speedbench.data.turns import TURNS_RULE, conversation_tails, reply_end_id

log = logging.getLogger(__name__)

FORMAT_VERSION = 4  # 3: turn_tails (later turns of a conversation); 4: BOS follows the template
BOS_RULE = (
    "once: one BOS when the chat template renders one (plain text: when the tokenizer defines one), "
    "none otherwise; none: never"
)

__all__ = [
    "FORMAT_VERSION",
    "PromptSet",
    "TokenizedPrompt",
    "default_cache_dir",
    "fingerprint",
    "ids_digest",
    "prepare_prompts",
    "read_prompt_set",
    "write_prompt_set",
]


def default_cache_dir() -> Path:
    return cache_root() / "prompts"


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "absent"


def fingerprint_spec(cfg: DataConfig, tokenizer_path: str, spec: splits.SplitSpec | None = None) -> dict:
    spec = spec or splits.resolve(cfg)
    return {
        "format": FORMAT_VERSION,
        "tokenizer_files": tokenizer_files_digest(tokenizer_path),
        "chat_template": chat_template_from_files(tokenizer_path) if cfg.chat_template == "auto" else None,
        "chat_template_mode": cfg.chat_template,
        "bos_policy": cfg.bos,
        # the same files can tokenize differently across library versions
        "libs": {p: _version(p) for p in ("tokenizers", "transformers")},
        "split_kind": spec.kind,
        "split": cfg.split,
        "split_content": splits.content_digest(spec, cfg),
        "categories": cfg.categories,
        "per_category": cfg.prompts_per_category,
        "placeholders": cfg.placeholders,
        "isl": cfg.isl,
        "turns": cfg.turns,
        # the pool's content is in split_content; auto is recorded as what it resolved to
        **({"pool": splits.throughput_pool(cfg)} if spec.kind == "throughput" else {}),
    }


def fingerprint(cfg: DataConfig, tokenizer_path: str, spec: splits.SplitSpec | None = None) -> str:
    fp_spec = fingerprint_spec(cfg, tokenizer_path, spec)
    if cfg.isl and fp_spec["split_kind"] != "throughput":
        fp_spec["isl_padding"] = "own-slice"  # padded ids changed when shared padding was dropped
    blob = json.dumps(fp_spec, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(cfg: DataConfig, fp: str, cache_dir: Path | None = None) -> Path:
    root = Path(cfg.cache_dir) if cfg.cache_dir else (cache_dir or default_cache_dir())
    return root / f"{fp[:24]}.parquet"


def filler_text(prompts: Sequence[Prompt]) -> str:
    """Real text used to pad prompts up to the ISL: the split's own prompts, in order (never random tokens)."""
    return "\n\n".join(t for p in prompts for t in p.turns)


def prepare_prompts(
    cfg: DataConfig, tokenizer_path: str | None, cache_dir: Path | None = None, refresh: bool = False
) -> PromptSet:
    """Tokenize (or load from cache) the configured split for one tokenizer (None: none was configured)."""
    spec = splits.resolve(cfg)
    if tokenizer_path is None:
        raise ConfigError("no tokenizer: set data.tokenizer (--tokenizer)")
    check_tokenizer_dir(tokenizer_path)
    fp = fingerprint(cfg, tokenizer_path, spec)
    cached = cache_path(cfg, fp, cache_dir)
    if cached.is_file() and not refresh:
        try:
            pset = read_prompt_set(cached)  # verifies the ids against their recorded hash
            if pset.fingerprint != fp:
                raise ValueError(f"{cached}: holds fingerprint {pset.fingerprint[:16]}, not {fp[:16]}")
        except Exception as e:  # a corrupt, edited or misplaced cache entry is rebuilt, not trusted
            log.warning("ignoring prompt cache %s and rebuilding it: %s", cached, e)
        else:
            return check_overlap(pset, cfg)

    tokenizer = load_tokenizer(tokenizer_path)
    template = chat_template(tokenizer, cfg.chat_template)
    use_template = template is not None
    bos_id = template_bos(tokenizer, use_template, cfg.bos)
    meta = {
        "split": cfg.split,
        "split_kind": spec.kind,
        "tokenizer": str(tokenizer_path),
        "chat_template_applied": use_template,
        "bos_policy": cfg.bos,
        "bos_id": bos_id,
        "bos_rule": BOS_RULE,
        "isl": cfg.isl,
        "format": FORMAT_VERSION,
        "fingerprint_spec": fingerprint_spec(cfg, tokenizer_path, spec),
    }
    if spec.kind == "throughput":
        out, texts = _throughput_prompts(cfg, tokenizer, use_template, bos_id, cached, meta)
    else:
        out = _text_prompts(cfg, spec, tokenizer, use_template, bos_id, meta)
        texts = _decode(tokenizer, out)
    out = _with_entropy(out, texts)
    meta["num_prompts"] = len(out)
    pset = PromptSet(fp, out, meta)
    pset.meta["ids_sha256"] = pset.ids_sha256
    try:
        write_prompt_set(pset, cached)
    except OSError as e:  # a file in the way, read-only: the cache only saves time next run
        if cfg.cache_dir:  # ... but one named explicitly was asked for
            raise ConfigError(f"cannot write the prompt cache in {cfg.cache_dir}: {e.strerror or e}") from None
        log.warning("prompt cache not written (%s: %s); going on without it", cached.parent, e.strerror or e)
    return check_overlap(pset, cfg)


def check_overlap(pset: PromptSet, cfg: DataConfig) -> PromptSet:
    """A throughput bucket over the overlap bound is refused with its figures, unless ``allow_overlap``
    accepts it; then ``overlap.over_bound_accepted`` says so in the manifest. Checked on cache hits too (the
    cache entry is written first, so an accepted rerun does not rebuild)."""
    ov = pset.meta.get("overlap")
    if not ov or ov.get("within_bound"):
        return pset
    if not cfg.allow_overlap:
        raise ConfigError(overlap_refusal(pset.meta))
    ov["over_bound_accepted"] = True
    log.warning("accepted with --allow-overlap: %s", overlap_refusal(pset.meta).split(";")[0])
    return pset


def _text_prompts(
    cfg: DataConfig, spec: splits.SplitSpec, tokenizer, use_template: bool, bos_id: int | None, meta: dict
) -> list[TokenizedPrompt]:
    prompts = splits.load_prompts(spec, cfg)
    if cfg.turns == "all":
        meta["turns_used"] = "every user turn"
        meta["turns_rule"] = TURNS_RULE
        built_tails = [conversation_tails(tokenizer, p.turns, use_template, p.id) for p in prompts]
        tails = [t for t, _ in built_tails]
        meta["reply_end_id"] = reply_end_id(tokenizer, tails)
        # false: the template re-renders history (see data.turns); earlier turns are kept as sent regardless
        meta["template_append_only"] = all(ok for _, ok in built_tails)
    else:
        meta["turns_used"] = "first user turn"
        tails = [() for _ in prompts]
    meta["turns_planned"] = sum(1 + len(t) for t in tails)  # requests one pass over the prompts sends
    firsts = [p.turns[0] for p in prompts]
    if cfg.isl:
        if not (cfg.pad_to_isl or (spec.config or "").startswith("throughput")):
            raise ConfigError(
                f"--isl with split {cfg.split!r} would pad its prompts to {cfg.isl} tokens; an ISL "
                "means the throughput split (drop --split), or opt in with data.pad_to_isl: true "
                "(an ISL from a preset: --isl none runs the split at its natural length)"
            )
        wrapper = template_wrapper(tokenizer, use_template, bos_id)
        parts = [split_instruction(t) for t in firsts]
        encoded = encode_batch(tokenizer, [c for c, _ in parts] + [q for _, q in parts])
        contexts, questions = encoded[: len(parts)], encoded[len(parts) :]
        budget = cfg.isl - wrapper.overhead
        lens = [len(c) + len(q) for c, q in zip(contexts, questions)]
        filler = encode(tokenizer, filler_text(prompts)) if any(n < budget for n in lens) else []
        sep = encode(tokenizer, "\n\n")
        # every short prompt gets its own slice of the split's text: no two prompts share their padding
        pads = own_padding([range(n) for n in lens], filler, sep, budget)
        built = [build_exact_isl(wrapper, c, q, pad, sep, cfg.isl) for c, q, pad in zip(contexts, questions, pads)]
        meta["isl_rule"] = (
            "template prefix + context (its middle cut when too long; when too short, its own "
            "slice of the split's text, shared with no other prompt, added after it) + the "
            "instruction (last paragraph) + template suffix"
        )
    else:
        texts = [render_text(tokenizer, t, use_template) for t in firsts]
        built = [
            (apply_bos(ids, bos_id, tokenizer.bos_token_id), False, False) for ids in encode_batch(tokenizer, texts)
        ]
    return [
        TokenizedPrompt(p.id, p.category, tuple(ids), tr, pd, num_turns=len(p.turns), turn_tails=t)
        for p, (ids, tr, pd), t in zip(prompts, built, tails)
    ]


def _throughput_prompts(
    cfg: DataConfig, tokenizer, use_template: bool, bos_id: int | None, cached: Path, meta: dict
) -> tuple[list[TokenizedPrompt], list[str]]:
    isl = splits.throughput_isl(cfg)
    per_tier = cfg.prompts_per_category or throughput.DEFAULT_PER_TIER
    tiers = cfg.categories or list(throughput.TIERS)
    wrapper = template_wrapper(tokenizer, use_template, bos_id)
    pool_name = splits.throughput_pool(cfg)
    pool = throughput.pool_path(pool_name)
    pool_sha = throughput.pool_digest(pool)
    # The tokenized pool depends only on tokenizer + pool, so every bucket shares one cache entry.
    tok_fp = hashlib.sha256(
        json.dumps(
            [
                tokenizer_files_digest(str(meta["tokenizer"])),
                pool_sha,
                _version("tokenizers"),
                throughput.STREAM_VERSION,
            ]
        ).encode()
    ).hexdigest()
    pool_cache = cached.parent / f"pool-{tok_fp[:24]}.npz"
    built, pool_tokens = throughput.build_throughput_ids(tokenizer, wrapper, isl, per_tier, tiers, pool_cache, pool)
    meta.update(
        per_tier=per_tier,
        tiers=tiers,
        order="tiers interleaved (" + ", ".join(tiers) + ", ...)",
        isl_rule="template prefix + window of the tier's pool text + task instruction + template suffix",
        pool=pool_name,
        pool_sha256=pool_sha,
    )
    meta["zlib_text"] = "the window's source text + the instruction (equal to the decoded ids; template left out)"
    meta["tasks"] = task_share(w for w, _ in built)
    meta["overlap"] = measured_overlap(built, wrapper, tiers, isl, per_tier)
    meta["overlap"]["pool_tokens"] = pool_tokens
    # truncated: every window is a cut of longer real text; padded: the tier text had to repeat to reach ISL
    prompts = [TokenizedPrompt(w.id, w.tier, ids, True, w.wrapped) for w, ids in built]
    return prompts, [w.text + w.instruction for w, _ in built]


def task_share(windows) -> dict:
    """How many tasks quote their window (the rest are fixed requests such as "Summarise the text above")."""
    by_tier: dict[str, list[int]] = {}
    for w in windows:
        by_tier.setdefault(w.tier, [0, 0])
        by_tier[w.tier][0] += quotes_window(w.instruction)
        by_tier[w.tier][1] += 1
    quoting, total = sum(q for q, _ in by_tier.values()), sum(n for _, n in by_tier.values())
    return {
        "quoting_window": quoting,
        "prompts": total,
        "share": round(quoting / max(total, 1), 4),
        "per_tier": {t: {"quoting_window": q, "prompts": n} for t, (q, n) in by_tier.items()},
        "rule": "a task quoting its window names something found in it; the others are fixed requests",
    }


def measured_overlap(built, wrapper, tiers: Sequence[str], isl: int, per_tier: int) -> dict:
    """Pairwise overlap of the text windows, per tier and over the bucket, with what disjoint windows need.
    Template and instruction ids are left out: they are shared by design (one template, a few task phrasings)."""
    bodies = [ids[len(wrapper.prefix) : len(wrapper.prefix) + w.text_ids] for w, ids in built]
    total, by_tier = overlap_by_group(bodies, [w.tier for w, _ in built])
    whole = total.as_dict()
    whole["per_tier"] = {t: by_tier[t].as_dict() for t in tiers if t in by_tier}
    whole["needed_tokens_per_tier"] = per_tier * (isl - wrapper.overhead)
    whole["within_bound"] = whole["max"] <= BOUND
    whole["measured_on"] = "the text windows (template and instruction ids left out)"
    return whole


def _decode(tokenizer, prompts: list[TokenizedPrompt]) -> list[str]:
    seqs = [list(p.token_ids) for p in prompts]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # one parallel Rust call; transformers' batch_decode loops in Python
        return backend.decode_batch(seqs, skip_special_tokens=True)
    return tokenizer.batch_decode(seqs, skip_special_tokens=True)


def _with_entropy(prompts: list[TokenizedPrompt], texts: list[str]) -> list[TokenizedPrompt]:
    """Add the entropy proxies: zlib ratio of the prompt text and unigram entropy of its ids."""
    return [
        TokenizedPrompt(
            p.id,
            p.category,
            p.ids_array(),
            p.truncated,
            p.padded,
            zlib_ratio(t),
            unigram_entropy_bits(p.ids_array()),
            p.num_turns,
            p.turn_tails,
        )
        for p, t in zip(prompts, texts)
    ]
