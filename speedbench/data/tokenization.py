"""Tokenizer access for pre-tokenization: loading, chat-template wrapping, the BOS rule, batch encoding.

Everything that turns text into ids lives here, so every split kind (prompt files, SPEED-Bench rows, the
throughput pool) gets the same template and BOS handling and therefore comparable ids.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from speedbench.config import ConfigError

_BODY_SENTINEL = "\u2063SPEEDBENCH_BODY\u2063"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
)


def check_tokenizer_dir(path: str) -> Path:
    """The tokenizer's local directory; ConfigError naming what was given instead."""
    p = Path(path)
    if p.is_file():  # e.g. .../tokenizer.json: the loader wants the folder with its config beside it
        raise ConfigError(f"tokenizer {path} is a file; give the directory that holds it ({p.parent})")
    if not p.is_dir():
        raise ConfigError(f"tokenizer/model path not found: {path} (give a local directory)")
    return p


def load_tokenizer(path: str):
    p = check_tokenizer_dir(path)
    # Loading a large tokenizer takes seconds; reuse it while its files are unchanged (same path, sizes, mtimes).
    stamp = tuple((n, f.stat().st_size, f.stat().st_mtime_ns) for n in TOKENIZER_FILES if (f := p / n).is_file())
    return _load_tokenizer(str(p.resolve()), stamp)


@lru_cache(maxsize=4)
def _load_tokenizer(path: str, stamp: tuple):
    # transformers costs ~0.5 s to import; only loading a tokenizer needs it, not importing the data package.
    # Its import-time advisory "PyTorch was not found" (printed once per process: three times with two
    # client workers) is expected where we only tokenize; advisories only, its warnings and errors still show.
    # Set in os.environ before the import, so spawned client workers inherit it.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "PyTorch was not found" is expected: we only tokenize
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as e:  # transformers raises many types here
        if isinstance(e, (KeyError, ValueError, TypeError)) and "tokenizer" not in str(e).lower():
            # a bare "'added_tokens'" (KeyError) said nothing: a file holds JSON that is no HF tokenizer
            raise ConfigError(
                f"could not load a tokenizer from {path}: its tokenizer files are damaged or incomplete "
                f"({type(e).__name__}: {e}); copy tokenizer.json and tokenizer_config.json from the model again"
            ) from None
        raise ConfigError(f"could not load a tokenizer from {path}: {e}") from None


def release_tokenizers() -> None:
    """Drop the loaded tokenizers and hand their memory back to the OS (glibc's malloc_trim).

    A sweep loads one to build its prompts and measured with it still held: Gemma 3's 262k vocabulary kept
    ~300-450 MB in the client process through every point (issue 29: ~650 MB client RSS on tiny runs). One
    needed later (a reply streamed as text without ids) is loaded again."""
    _load_tokenizer.cache_clear()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tokenizer_files_digest(path: str) -> dict[str, str]:
    """sha256 of every tokenizer file present: covers vocab, merges, special tokens, BOS and chat template."""
    p = Path(path)
    return {name: sha256_file(p / name) for name in TOKENIZER_FILES if (p / name).is_file()}


def chat_template_from_files(path: str) -> str | None:
    """The chat template as stored in the tokenizer dir, read without loading the tokenizer (fast cache hits)."""
    p = Path(path)
    if (p / "chat_template.jinja").is_file():
        return (p / "chat_template.jinja").read_text(encoding="utf-8")
    for name in ("chat_template.json", "tokenizer_config.json"):
        f = p / name
        if f.is_file():
            try:
                tpl = json.loads(f.read_text(encoding="utf-8")).get("chat_template")
            except (json.JSONDecodeError, AttributeError):
                continue
            if tpl:
                return tpl if isinstance(tpl, str) else json.dumps(tpl, sort_keys=True)
    return None


def chat_template(tokenizer, mode: str) -> str | None:
    if mode == "none":
        return None
    return getattr(tokenizer, "chat_template", None) or None


def render_text(tokenizer, user_text: str, use_template: bool) -> str:
    """The prompt string before tokenization: the chat template with one user turn, or the plain text.

    Plain format (no template): the user's text as-is; the base model continues it.
    """
    if use_template:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True
        )
    return user_text


def template_bos(tokenizer, use_template: bool, policy: str) -> int | None:
    """The BOS id prompts start with, or None. With a chat template: the BOS the template renders, if any
    (SPEED-Bench's framework tokenizes the rendered template with ``add_special_tokens=False``, so BOS comes
    from the template alone): never one it does not render. Plain text (no template): the tokenizer's BOS
    when it defines one (a base model is trained with it; some tokenizer files omit the rule that adds it).
    No error for a tokenizer without BOS (Qwen-style); ``none`` sends no BOS at all.
    """
    bos_id = tokenizer.bos_token_id
    if policy == "none" or bos_id is None:
        return None
    if use_template:
        return bos_id if encode(tokenizer, render_text(tokenizer, "x", True))[:1] == [bos_id] else None
    return bos_id


def apply_bos(ids: Sequence[int], bos_id: int | None, tokenizer_bos: int | None) -> list[int]:
    """Drop any leading BOS (``tokenizer_bos``) the rendering produced, then prepend ``bos_id`` once if it is
    not None (``template_bos`` decides which)."""
    i = 0
    while tokenizer_bos is not None and i < len(ids) and ids[i] == tokenizer_bos:
        i += 1
    return ([bos_id] if bos_id is not None else []) + list(ids[i:])


def encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def encode_batch(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """One call for many texts: the fast tokenizer encodes a list in parallel (Rust), far faster than a loop."""
    if not texts:
        return []
    return list(tokenizer(list(texts), add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class Wrapper:
    """Template (and BOS) ids around a prompt body: ids = prefix + body + suffix."""

    prefix: list[int]
    suffix: list[int]

    @property
    def overhead(self) -> int:
        return len(self.prefix) + len(self.suffix)


def template_wrapper(tokenizer, use_template: bool, bos_id: int | None, header: str = "") -> Wrapper:
    """Tokenize the template once around a sentinel body, so bodies can be spliced in by id.

    ``header`` is fixed text placed inside the user message before the body (the throughput instruction).
    """
    wrapper = render_text(tokenizer, header + _BODY_SENTINEL, use_template)
    prefix_text, found, suffix_text = wrapper.partition(_BODY_SENTINEL)
    if not found:
        raise ConfigError("the chat template dropped the user message; cannot splice prompt bodies into it")
    prefix = apply_bos(encode(tokenizer, prefix_text), bos_id, tokenizer.bos_token_id)
    return Wrapper(prefix, encode(tokenizer, suffix_text))


def split_instruction(text: str) -> tuple[str, str]:
    """(context, instruction): the instruction is the last paragraph (after the last blank line), where a
    long-input task puts its question (SPEED-Bench's throughput rows, RAG and summarisation prompts); a text
    of one paragraph is all instruction (a bare question)."""
    body = text.rstrip()
    k = body.rfind("\n\n")
    return (body[:k], body[k:]) if k > 0 else ("", body)


def own_padding(
    bodies: Sequence[Sequence[int]], filler_ids: Sequence[int], sep_ids: Sequence[int], budget: int
) -> list[list[int]]:
    """Padding for each body up to ``budget`` ids: consecutive, non-overlapping slices of the filler text, so
    no two prompts share their padding (a shared tail would make every prompt mostly the same text).

    Raises ConfigError when the filler is too short to give every short prompt a slice of its own.
    """
    need = [max(1, budget - len(b) - len(sep_ids)) if len(b) < budget else 0 for b in bodies]
    if sum(need) > len(filler_ids):
        short = sum(n > 0 for n in need)
        raise ConfigError(
            f"padding {short} prompts to the ISL needs {sum(need)} tokens of distinct text, but the "
            f"split holds {len(filler_ids)}: use the throughput split (drop --split) or a lower ISL"
        )
    out, pos = [], 0
    for n in need:
        out.append(list(filler_ids[pos : pos + n]))
        pos += n
    return out


def build_exact_isl(
    wrapper: Wrapper,
    context: Sequence[int],
    instruction: Sequence[int],
    filler_ids: Sequence[int],
    sep_ids: Sequence[int],
    isl: int,
) -> tuple[list[int], bool, bool]:
    """Exactly ``isl`` ids: template prefix + context fitted to the room + instruction + template suffix.

    The task survives the fit: a long context loses its *middle* (its head and its end stay), a short one
    is padded with real filler text *before* the instruction, so the question is always last. Ids are
    spliced, so the count is exact by construction. Deterministic. Returns (ids, truncated, padded).
    """
    budget = isl - wrapper.overhead
    if budget <= 0:
        raise ConfigError(f"ISL {isl} is shorter than the chat template itself ({wrapper.overhead} tokens)")
    context, instruction = list(context), list(instruction)
    if len(instruction) > budget // 2:  # too long to keep whole: all of it is context, its end survives the cut
        context, instruction = context + instruction, []
    room = budget - len(instruction)
    truncated = padded = False
    if len(context) > room:
        head = (room + 1) // 2
        context, truncated = context[:head] + context[len(context) - (room - head) :], True
    elif len(context) < room:
        if not filler_ids:
            raise ConfigError(
                f"prompt has {len(context) + len(instruction)} body tokens < ISL budget {budget} "
                "and no padding text is available"
            )
        padded = True
        while len(context) < room:
            context += list(sep_ids) + list(filler_ids)
        context = context[:room]
    return wrapper.prefix + context + instruction + wrapper.suffix, truncated, padded
