"""`speedbench data inspect`: a plain-text account of a prepared PromptSet. Pure: PromptSet in, text out."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from speedbench.data.entropy import summarize
from speedbench.data.promptset import PromptSet

_BAR = 40


def length_histogram(lengths: list[int], bins: int = 10) -> list[str]:
    """Text histogram of token lengths; one line per bin: range, count, bar."""
    if not lengths:
        return ["  (no prompts)"]
    lo, hi = min(lengths), max(lengths)
    if lo == hi:
        return [f"  {lo:>7} tokens  {len(lengths):>6}  {'#' * _BAR}"]
    counts, edges = np.histogram(lengths, bins=min(bins, hi - lo + 1), range=(lo, hi))
    top = counts.max()
    return [
        f"  {int(math.ceil(a)):>7}-{int(b):<7} {c:>6}  {'#' * int(round(_BAR * c / top))}"
        for a, b, c in zip(edges[:-1], edges[1:], counts)
    ]


def describe(ps: PromptSet) -> str:
    by_cat: dict[str, list] = defaultdict(list)
    for p in ps.prompts:
        by_cat[p.category].append(p)
    lengths = [p.num_tokens for p in ps.prompts]
    meta = ps.meta
    lines = [
        f"split           {meta.get('split')} ({meta.get('split_kind', 'prompts')})",
        f"tokenizer       {meta.get('tokenizer')}",
        f"template        {'chat template applied' if meta.get('chat_template_applied') else 'plain text'}; "
        f"BOS policy {meta.get('bos_policy')} (id {meta.get('bos_id')})",
        f"isl             {meta.get('isl') or 'natural length'}"
        + (f"  [{meta['isl_rule']}]" if meta.get("isl_rule") else ""),
        f"fingerprint     {ps.fingerprint}",
        f"ids sha256      {ps.ids_sha256}",
        f"prompts         {len(ps.prompts)}; tokens min/mean/max {min(lengths)}/{np.mean(lengths):.0f}/{max(lengths)}; "
        f"truncated {sum(p.truncated for p in ps.prompts)}, padded {sum(p.padded for p in ps.prompts)}, "
        f"multi-turn sources {sum(p.num_turns > 1 for p in ps.prompts)}; requests per pass "
        f"{sum(p.turns_to_send for p in ps.prompts)} ({meta.get('turns_used', 'first user turn')})",
        "",
        f"{'category':<14}{'n':>6}{'tok mean':>10}{'trunc':>7}{'pad':>6}{'zlib ratio':>12}{'unigram H':>11}",
    ]
    for cat, ps_ in by_cat.items():
        z = summarize([p.zlib_ratio for p in ps_ if not math.isnan(p.zlib_ratio)])
        h = summarize([p.token_entropy for p in ps_ if not math.isnan(p.token_entropy)])
        lines.append(
            f"{cat:<14}{len(ps_):>6}{np.mean([p.num_tokens for p in ps_]):>10.0f}"
            f"{sum(p.truncated for p in ps_):>7}{sum(p.padded for p in ps_):>6}"
            f"{z['mean']:>12.3f}{h['mean']:>11.2f}"
        )
    lines += [
        "",
        "  (zlib ratio: compressed/raw bytes of the decoded text, lower = more repetitive; unigram H: bits/token)",
    ]
    lines += throughput_lines(ps)
    lines += ["", "token lengths:"] + length_histogram(lengths)
    return "\n".join(lines)


def throughput_lines(ps: PromptSet) -> list[str]:
    """Tier order and the measured pairwise overlap of a throughput bucket (empty for other splits)."""
    ov = ps.meta.get("overlap")
    if not ov:
        return []
    order = [p.category for p in ps.prompts[:6]]
    lines = [
        "",
        f"pool            {ps.meta.get('pool', 'bundled')} (sha256 {str(ps.meta.get('pool_sha256'))[:16]})",
        f"order           {ps.meta.get('order', '')}: first prompts {', '.join(order)}",
        f"overlap         pairwise share of a prompt's tokens found in another ({ov['method']}); "
        f"bound {ov['bound']:.0%}",
        f"  {'':<12}{'prompts':>8}{'max':>9}{'mean':>9}{'pairs > bound':>16}{'elsewhere max':>15}{'mean':>8}",
    ]
    rows = list(ov.get("per_tier", {}).items()) + [("bucket", ov)]
    for name, o in rows:
        lines.append(
            f"  {name:<12}{o['prompts']:>8}{o['max']:>9.1%}{o['mean']:>9.2%}{o['pairs_over_bound']:>8} of "
            f"{o['pairs']:<7}{o.get('elsewhere_max', math.nan):>14.1%}{o.get('elsewhere_mean', math.nan):>8.1%}"
        )
    lines.append(
        "  (elsewhere: the share of a prompt's 16-token runs found in any other prompt of the bucket; max: in "
        "one other prompt)"
    )
    lines.append(
        "  " + overlap_verdict(ov) + ("; accepted with --allow-overlap" if ov.get("over_bound_accepted") else "")
    )
    tasks = ps.meta.get("tasks")
    if tasks:
        lines.append(
            f"tasks           {tasks['quoting_window']} of {tasks['prompts']} ({tasks['share']:.0%}) quote their "
            "window; " + ", ".join(f"{t} {v['quoting_window']}/{v['prompts']}" for t, v in tasks["per_tier"].items())
        )
    return lines


def overlap_verdict(ov: dict) -> str:
    """One line: within the bound, or over it and why (pool too small for disjoint windows, or repeated text)."""
    pool = ov.get("pool_tokens", {})
    sizes = ", ".join(f"{t} {n:,}" for t, n in pool.items())
    need = ov["needed_tokens_per_tier"]
    if ov.get("within_bound"):
        return f"within the bound; disjoint windows need {need:,} tokens per tier, the pool holds {sizes}"
    short = [t for t, n in pool.items() if n < need]
    if short:
        return (
            f"OVER the bound: the pool is too small for disjoint windows in tier(s) {', '.join(short)} "
            f"(need {need:,} tokens per tier, the pool holds {sizes})"
        )
    return (
        f"OVER the bound: the pool holds enough tokens ({sizes}; need {need:,} per tier), but its sources "
        "repeat text that no choice of windows avoided"
    )


def overlap_refusal(meta: dict) -> str:
    """One line: why a throughput bucket is refused, with its measured figures and what to do."""
    ov = meta["overlap"]
    tiers = ", ".join(
        f"{t} {o['max']:.1%} / {o.get('elsewhere_mean', 0.0):.1%}" for t, o in ov.get("per_tier", {}).items()
    )
    return (
        f"throughput ISL {meta.get('isl')} ({meta.get('pool')} pool, {meta.get('per_tier')} prompts per tier): "
        f"prompts share up to {ov['max']:.1%} of their 16-token runs with one other prompt (bound "
        f"{ov['bound']:.0%}); per tier max pairwise / mean text found elsewhere: {tiers}; {overlap_verdict(ov)}. "
        "Use fewer --prompts-per-category or a smaller --isl, or accept it with --allow-overlap (recorded in the "
        "manifest)"
    )
