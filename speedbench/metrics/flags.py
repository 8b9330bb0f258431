"""What is wrong with a point, from its summary row: the one rule the table, the runner's warnings and
speedup.csv all use. Each flag is (tag shown in tables, sentence for warnings and notes); a healthy point
has none."""

from __future__ import annotations

import math

from speedbench.core.documents import point_complete

Flag = tuple[str, str]


def _n(row: dict, key: str) -> int:
    v = row.get(key)
    return int(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else 0


def latency_unmeasured(row: dict) -> bool:
    """Requests ended ok but not one carried a timed token chunk: TTFT/ITL/TPOT/user TPS are empty.
    ``row`` is a summary row (``ttft_mean_ms``) or a points.jsonl dict (``ttft_s`` distribution)."""
    if isinstance(row.get("ttft_s"), dict):
        return _n(row, "ok") > 0 and not row["ttft_s"].get("count")
    if "ttft_mean_ms" not in row:
        return False  # a row that does not say: nothing to claim
    ttft = row["ttft_mean_ms"]
    return _n(row, "ok") > 0 and (ttft is None or (isinstance(ttft, float) and math.isnan(ttft)))


def point_flags(row: dict) -> list[Flag]:
    pid = row.get("point_id", "?")
    out: list[Flag] = []
    if not point_complete(row):
        out.append(("POINT FAILED", f"{pid}: cut short ({row.get('abort_reason') or 'server gone'})"))
    bad = _n(row, "failed") + _n(row, "cancelled") + _n(row, "not_sent")
    if bad:
        out.append(
            (
                f"{bad} NOT OK",
                f"{pid}: {bad} of {_n(row, 'sent') + _n(row, 'not_sent')} measured requests "
                "did not end ok; its rates count only the ones that did",
            )
        )
    eff, conc = row.get("effective_concurrency"), row.get("concurrency")
    if eff is not None and conc is not None and eff < conc:
        out.append(
            (
                f"IN FLIGHT {eff}",
                f"{pid}: concurrency {conc} above the {eff} conversations measured: all {eff} were in flight at "
                f"once, so this point measures that load, not concurrency {conc}",
            )
        )
    if row.get("client_saturated"):
        # the reason says what the lag cost (load the server did not get, or token times); a folder written
        # before reasons were stored says only that it fell behind
        why = f": {row['client_bound_reason']}" if row.get("client_bound_reason") else ""
        out.append(("CLIENT-BOUND", f"{pid}: the load generator fell behind{why}"))
    connects = _n(row, "measured_connects")
    if connects:
        out.append(
            (
                f"CONNECT {connects}",
                f"{pid}: {connects} measured requests had to open a connection (connections are opened "
                "before the window, so the server closed some): their TTFT excludes the connect, but the "
                "server saw it",
            )
        )
    if latency_unmeasured(row):
        out.append(
            (
                "NO LATENCY",
                f"{pid}: no streamed token chunk was timed: TTFT, ITL, TPOT and user TPS could not be measured",
            )
        )
    merged = _n(row, "merged_chunk_requests")
    if merged:
        out.append(
            (
                f"MERGED {merged}",
                f"{pid}: {merged} requests streamed several engine steps in one chunk: "
                "AL SPEED-Bench and tok/step over-count for them",
            )
        )
    mism = _n(row, "chunk_step_mismatches")
    if mism:
        out.append(
            (
                f"CHUNK≠STEP {mism}",
                f"{pid}: {mism} requests' chunk sizes match no grouping of the "
                "server's per-step accepted counts: chunk-based AL is suspect",
            )
        )
    if row.get("acceptance_agree") is False:
        out.append(("ACCEPTANCE ≠", f"{pid}: acceptance sources disagree: {row.get('acceptance_check_text')}"))
    return out


def flag_tags(row: dict) -> str:
    return " ".join(tag for tag, _ in point_flags(row))


def pair_flags(sd_on: dict, sd_off: dict | None) -> str:
    """The flags of both points a speedup divides, as one text ('' when both are healthy)."""
    rows = [sd_on] + ([sd_off] if sd_off is not None else [])
    return "; ".join(text for r in rows for _, text in point_flags(r))
