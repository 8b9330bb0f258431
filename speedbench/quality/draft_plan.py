"""`--draft-lengths auto`: the fewest extra draft lengths that make the draft-length model identifiable.

The model needs (speedbench.quality.gamma_model) two distinct measured k for the step-cost line, and a
measured position 2 or beyond for the acceptance trend. Adding the largest k of interest gives both with one
point, and measures acceptance at every position up to it (no extrapolation inside the range); only when the
configured k already is that largest one does the smallest k of interest become the second point. Draft
lengths that already identify the model (two distinct, one of them 2 or more) get nothing added.
"""

from __future__ import annotations

K_OF_INTEREST = (1, 8)  # draft lengths a recommendation ranges over (vLLM n-gram / EAGLE use 1-8 in practice)


def plan_draft_lengths(
    configured: list[int], lo: int = K_OF_INTEREST[0], hi: int = K_OF_INTEREST[1]
) -> tuple[list[int], list[int]]:
    """(draft lengths to measure, the ones added to ``configured``)."""
    ks = set(configured)
    if len(ks) >= 2 and max(ks) >= 2:
        return sorted(ks), []
    k = max(ks)
    added = [hi] if k < hi else [lo if lo not in ks else hi]
    return sorted(ks | set(added)), added


def describe(configured: list[int], added: list[int]) -> str:
    have = ",".join(map(str, sorted(set(configured))))
    if not added:
        return f"--draft-lengths auto: configured k={have} already identify the model; nothing added"
    why = {K_OF_INTEREST[1]: "largest k of interest", K_OF_INTEREST[0]: "smallest k of interest"}
    extra = ", ".join(f"k={k} ({why.get(k, 'second k')})" for k in added)
    return (
        f"--draft-lengths auto: configured k={have}; added {extra}: a second draft length for the step-cost "
        f"line and acceptance measured to position {max(set(configured) | set(added))}"
    )
