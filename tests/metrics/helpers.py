"""Points and speedup-input rows built alike by the metrics tests: SD off against ngram k=3 on vLLM, no ISL."""

from speedbench.metrics.summary import PointSummary, summarize_point


def sd_label(sd: str) -> str:
    return "sd-off" if sd == "off" else "ngram-k3"


def summarize(sd: str, concurrency: int, records, point_id: str | None = None, **kw) -> PointSummary:
    """summarize_point over ``records`` as the point of this SD method (k=3 when on) at this concurrency."""
    label = sd_label(sd)
    return summarize_point(
        records,
        point_id=point_id or f"{label}-c{concurrency}",
        engine="vllm",
        sd_label=label,
        sd_method=sd,
        draft_length=None if sd == "off" else 3,
        concurrency=concurrency,
        isl=None,
        **kw,
    )


def speedup_input(sd: str, repeat: int, tps: float, **extra) -> dict:
    """One repeat's point row at concurrency 4 as speedup_rows reads it (output and user TPS alike)."""
    label = sd_label(sd)
    return {
        "engine": "vllm",
        "isl": None,
        "concurrency": 4,
        "sd_method": sd,
        "sd_label": label,
        "point_id": f"{label}-c4-r{repeat}",
        "output_tps": tps,
        "user_tps_mean": tps,
        **extra,
    }
