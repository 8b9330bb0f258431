"""Which runs may stand side by side: the one rule behind `compare`, `merge` and REST ``/compare``.

1. Same prompts, always: the same prompt fingerprint and token-ids sha256 in every manifest (no override).
2. Same generation: output length, EOS policy (``ignore_eos``), sampling (temperature) and, for runs of the
   same engine, the engine's package versions. A difference is refused, naming each setting and each run's
   value, unless the caller explicitly allows it (``--allow-generation-mismatch``); then it is returned so
   the caller can say so beside the numbers.

Manifests from before the runner recorded ``generation``: their output length comes from the config, and
their sampling is what every adapter has sent since speedbench's first commit (greedy, ignore_eos).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from speedbench.report.load import ReportError

# Adapters' request sampling before it was written to the manifest (speedbench.engines.base.EngineAdapter.sampling)
LEGACY_SAMPLING = {"temperature": 0.0, "ignore_eos": True}
MIXED = "mixed"  # a merged folder whose sources differ in a setting (merged with the override)
OVERRIDE_FLAG = "--allow-generation-mismatch"


class NotComparable(ReportError):
    """Runs that must not be compared or merged; the message names what differs."""


def prompt_identity(manifest: dict) -> tuple[str | None, str | None]:
    p = manifest.get("prompts") or {}
    return p.get("fingerprint"), p.get("ids_sha256")


def _sources(manifest: dict) -> list[dict]:
    """The manifests a folder was measured under: itself, or every source of a merged folder."""
    merged = manifest.get("merged_from")
    if merged:
        return [m for s in merged for m in _sources(s.get("manifest") or {})]
    return [manifest]


def _own_generation(manifest: dict) -> dict[str, Any]:
    recorded = manifest.get("generation")
    if recorded:
        return dict(recorded)
    load = (manifest.get("config") or {}).get("load") or {}
    return {"output_len": load.get("output_len"), **LEGACY_SAMPLING}


def generation_settings(manifest: dict) -> dict[str, Any]:
    """Output length, EOS policy and sampling of a run; a merged folder's sources that differ give 'mixed'."""
    per_source = [_own_generation(m) for m in _sources(manifest)]
    keys = [k for g in per_source for k in g]
    out: dict[str, Any] = {}
    for k in dict.fromkeys(keys):
        values = {repr(g.get(k)) for g in per_source}
        out[k] = per_source[0].get(k) if len(values) == 1 else MIXED
    return out


def engine_versions(manifest: dict) -> dict[str, dict[str, str]]:
    """Engine name -> its environment's package versions (the interpreter's own version left out); attached
    runs record none and are not checked."""
    out: dict[str, dict[str, str]] = {}
    for m in _sources(manifest):
        eng = m.get("engine") or {}
        name = eng.get("name") or ((m.get("config") or {}).get("engine") or {}).get("name") or "?"
        versions = {k: v for k, v in (eng.get("versions") or {}).items() if k != "python"}
        for pkg, v in versions.items():
            seen = out.setdefault(name, {}).get(pkg)
            out[name][pkg] = v if seen in (None, v) else MIXED
    return out


def check_comparable(runs: Sequence[tuple[str, dict]], *, allow_generation_mismatch: bool = False) -> list[str]:
    """``runs`` = (label, manifest) pairs. Raise NotComparable when the prompts differ, or when generation
    settings differ and that is not allowed; return the allowed differences (one line each)."""
    ids: list[tuple[str, str, str]] = []
    missing: list[str] = []
    for label, m in runs:
        fp, sha = prompt_identity(m)
        if fp and sha:
            ids.append((label, fp, sha))
        else:
            missing.append(label)
    if missing:
        raise NotComparable("cannot compare: no prompt fingerprint in the manifest of " + ", ".join(missing))
    if len({(fp, sha) for _, fp, sha in ids}) > 1:
        detail = "; ".join(f"{label}: fingerprint {fp[:12]} ids {sha[:12]}" for label, fp, sha in ids)
        raise NotComparable("cannot compare runs with different prompt sets (token ids differ): " + detail)
    diffs = _generation_differences(runs)
    if diffs and not allow_generation_mismatch:
        raise NotComparable(
            "cannot compare runs with different generation settings: "
            + "; ".join(diffs)
            + f" (to compare anyway: {OVERRIDE_FLAG}; over REST allow_generation_mismatch=true)"
        )
    return diffs


def _generation_differences(runs: Sequence[tuple[str, dict]]) -> list[str]:
    gens = [(label, generation_settings(m)) for label, m in runs]
    diffs = []
    for key in dict.fromkeys(k for _, g in gens for k in g):
        values = [(label, g.get(key)) for label, g in gens]
        if len({repr(v) for _, v in values}) > 1 or MIXED in (v for _, v in values):
            diffs.append(f"{key} " + ", ".join(f"{label}={v}" for label, v in values))
    by_engine: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for label, m in runs:
        for engine, versions in engine_versions(m).items():
            by_engine.setdefault(engine, []).append((label, versions))
    for engine, entries in by_engine.items():
        for pkg in dict.fromkeys(p for _, v in entries for p in v):
            have = [(label, v[pkg]) for label, v in entries if pkg in v]
            if len(have) > 1 and (len({v for _, v in have}) > 1 or MIXED in (v for _, v in have)):
                diffs.append(f"{engine} version ({pkg}) " + ", ".join(f"{label}={v}" for label, v in have))
    return diffs
