"""Pre-tokenization outside the engine: chat template + BOS applied here, token ids sent to every engine.

The result is cached as parquet under a fingerprint of everything that can change the ids: tokenizer
files, chat template, BOS policy, split file, selection and ISL. Same fingerprint => byte-identical ids.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from speedbench.config import ConfigError, DataConfig
from speedbench.data.prompts import Prompt, load_split, resolve_split_path

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_BODY_SENTINEL = "\u2063SPEEDBENCH_BODY\u2063"
_TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "added_tokens.json", "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt",
)


@dataclass(frozen=True)
class TokenizedPrompt:
    id: str
    category: str
    token_ids: tuple[int, ...]
    truncated: bool = False
    padded: bool = False

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass
class PromptSet:
    fingerprint: str
    prompts: list[TokenizedPrompt]
    meta: dict = field(default_factory=dict)

    @property
    def ids_sha256(self) -> str:
        """Hash of the exact id sequences, to prove two engines received the same input."""
        return ids_digest(self.prompts)


def ids_digest(prompts: Sequence[TokenizedPrompt]) -> str:
    h = hashlib.sha256()
    for p in prompts:
        h.update(p.id.encode())
        h.update(b"\0")
        h.update(",".join(map(str, p.token_ids)).encode())
        h.update(b"\n")
    return h.hexdigest()


def default_cache_dir() -> Path:
    root = os.environ.get("SPEEDBENCH_CACHE") or (Path.home() / ".cache" / "speedbench")
    return Path(root) / "prompts"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_tokenizer(path: str):
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"tokenizer/model path not found: {path} (give a local directory)")
    # keyed by the files' content digest: an edited template or vocab is a different tokenizer
    return _load_tokenizer_cached(str(p.resolve()), json.dumps(tokenizer_files_digest(str(p)), sort_keys=True))


@functools.lru_cache(maxsize=4)
def _load_tokenizer_cached(path: str, _digest: str):
    """Loading a large tokenizer.json takes seconds; a sweep, the tests and the REST service reuse it."""
    from transformers import AutoTokenizer  # lazy: keeps `--help` fast
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "PyTorch was not found" is expected: we only tokenize
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as e:  # transformers raises many types here
        raise ConfigError(f"could not load a tokenizer from {path}: {e}") from None


def tokenizer_files_digest(path: str) -> dict[str, str]:
    p = Path(path)
    return {name: _sha256_file(p / name) for name in _TOKENIZER_FILES if (p / name).is_file()}


def _chat_template(tokenizer, mode: str) -> Optional[str]:
    if mode == "none":
        return None
    return getattr(tokenizer, "chat_template", None) or None


def render_text(tokenizer, user_text: str, use_template: bool) -> str:
    """The prompt string before tokenization: the chat template with one user turn, or the plain text.

    Plain format (no template): the user's text as-is; the base model continues it.
    """
    if use_template:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True)
    return user_text


def apply_bos(ids: list[int], bos_id: Optional[int], policy: str) -> list[int]:
    """BOS exactly once: drop any leading BOS the template produced, then prepend one."""
    if policy == "none":
        return ids
    if bos_id is None:
        raise ConfigError("the tokenizer defines no BOS token; set data.bos: none to send prompts without one")
    i = 0
    while i < len(ids) and ids[i] == bos_id:
        i += 1
    return [bos_id] + ids[i:]


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def build_exact_isl(tokenizer, prompt_text: str, filler_ids: Sequence[int], isl: int,
                    use_template: bool, bos_id: Optional[int], bos_policy: str) -> tuple[list[int], bool, bool]:
    """Exactly ``isl`` ids: template prefix + body (prompt, then real filler text) cut to fit + template suffix.

    The body is tokenized on its own and spliced between the template's own ids, so the count is exact
    by construction. Deterministic: same inputs, same ids.
    """
    wrapper = render_text(tokenizer, _BODY_SENTINEL, use_template)
    prefix_text, _, suffix_text = wrapper.partition(_BODY_SENTINEL)
    prefix = apply_bos(_encode(tokenizer, prefix_text), bos_id, bos_policy)
    suffix = _encode(tokenizer, suffix_text)
    budget = isl - len(prefix) - len(suffix)
    if budget <= 0:
        raise ConfigError(f"ISL {isl} is shorter than the chat template itself ({len(prefix) + len(suffix)} tokens)")
    body = _encode(tokenizer, prompt_text)
    padded = False
    if len(body) < budget:
        if not filler_ids:
            raise ConfigError(f"prompt has {len(body)} body tokens < ISL budget {budget} and no padding text is available")
        padded = True
        sep = _encode(tokenizer, "\n\n")
        while len(body) < budget:
            body = body + sep + list(filler_ids)
    truncated = not padded and len(body) > budget
    return prefix + body[:budget] + suffix, truncated, padded


def filler_text(prompts: Sequence[Prompt]) -> str:
    """Real text used to pad prompts up to the ISL: the split's own prompts, in order (never random tokens)."""
    return "\n\n".join(t for p in prompts for t in p.turns)


def fingerprint(cfg: DataConfig, tokenizer_path: str, chat_template: Optional[str], bos_id: Optional[int]) -> str:
    spec = {
        "format": FORMAT_VERSION,
        "tokenizer_files": tokenizer_files_digest(tokenizer_path),
        "chat_template": chat_template,
        "chat_template_mode": cfg.chat_template,
        "bos_policy": cfg.bos,
        "bos_id": bos_id,
        "split_sha256": _sha256_file(resolve_split_path(cfg.split)),
        "categories": cfg.categories,
        "per_category": cfg.prompts_per_category,
        "isl": cfg.isl,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def prepare_prompts(cfg: DataConfig, tokenizer_path: str, cache_dir: Optional[Path] = None) -> PromptSet:
    """Tokenize (or load from cache) the configured split for one tokenizer."""
    tokenizer = load_tokenizer(tokenizer_path)
    template = _chat_template(tokenizer, cfg.chat_template)
    bos_id = tokenizer.bos_token_id
    if cfg.bos == "once" and bos_id is None:
        raise ConfigError("the tokenizer defines no BOS token; set data.bos: none to send prompts without one")
    fp = fingerprint(cfg, tokenizer_path, template, bos_id)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else (cache_dir or default_cache_dir())
    cached = cache_dir / f"{fp[:24]}.parquet"
    if cached.is_file():
        try:
            return read_prompt_set(cached)
        except Exception as e:  # a corrupt cache entry is rebuilt, not trusted
            log.warning("ignoring unreadable prompt cache %s: %s", cached, e)

    prompts = load_split(cfg.split, cfg.categories, cfg.prompts_per_category)
    use_template = template is not None
    out: list[TokenizedPrompt] = []
    filler_ids: list[int] = _encode(tokenizer, filler_text(prompts)) if cfg.isl else []
    for p in prompts:
        if cfg.isl:
            ids, trunc, pad = build_exact_isl(tokenizer, p.turns[0], filler_ids, cfg.isl, use_template, bos_id, cfg.bos)
        else:
            ids = apply_bos(_encode(tokenizer, render_text(tokenizer, p.turns[0], use_template)), bos_id, cfg.bos)
            trunc = pad = False
        out.append(TokenizedPrompt(p.id, p.category, tuple(ids), trunc, pad))
    meta = {
        "split": cfg.split, "tokenizer": str(tokenizer_path), "chat_template_applied": use_template,
        "bos_policy": cfg.bos, "bos_id": bos_id, "isl": cfg.isl, "turns_used": "first user turn",
        "num_prompts": len(out), "format": FORMAT_VERSION,
    }
    pset = PromptSet(fp, out, meta)
    pset.meta["ids_sha256"] = pset.ids_sha256
    write_prompt_set(pset, cached)
    return pset


def write_prompt_set(pset: PromptSet, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "id": [p.id for p in pset.prompts],
        "category": [p.category for p in pset.prompts],
        "token_ids": pa.array([list(p.token_ids) for p in pset.prompts], type=pa.list_(pa.int32())),
        "num_tokens": [p.num_tokens for p in pset.prompts],
        "truncated": [p.truncated for p in pset.prompts],
        "padded": [p.padded for p in pset.prompts],
    })
    table = table.replace_schema_metadata({
        b"speedbench.fingerprint": pset.fingerprint.encode(),
        b"speedbench.meta": json.dumps(pset.meta).encode(),
    })
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # atomic: readers never see a half-written cache entry


def read_prompt_set(path: Path) -> PromptSet:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    md = table.schema.metadata or {}
    cols = table.to_pydict()
    prompts = [
        TokenizedPrompt(i, c, tuple(t), bool(tr), bool(pa_))
        for i, c, t, tr, pa_ in zip(cols["id"], cols["category"], cols["token_ids"], cols["truncated"], cols["padded"])
    ]
    return PromptSet(md[b"speedbench.fingerprint"].decode(), prompts, json.loads(md[b"speedbench.meta"]))
