from speedbench.core.records import RequestRecord
from speedbench.metrics import request as rq


def _rec(start, times, cum, warmup=False, status="ok"):
    return RequestRecord(
        "r",
        "p",
        "c",
        1,
        cum[-1],
        warmup=warmup,
        t_start_ns=start,
        t_first_ns=times[0],
        t_end_ns=times[-1],
        chunk_times_ns=list(times),
        chunk_tokens=list(cum),
        status=status,
    )


S = 1_000_000_000


def test_window_tps_counts_only_tokens_inside_the_window_from_any_request():
    warm = _rec(0, [S // 2, 2 * S], [1, 5], warmup=True)  # 4 tokens arrive inside [1 s, 3 s]
    meas = _rec(S, [2 * S, 3 * S, 4 * S], [2, 4, 6])  # 2 + 2 inside, 2 after
    assert rq.window_output_tps([warm, meas], S, 3 * S) == 4.0  # 8 tokens / 2 s


def test_goodput_applies_both_bounds():
    fast = _rec(0, [S // 10, S // 10 + S], [1, 11])  # TTFT 0.1 s, user TPS 10
    slow_first = _rec(0, [2 * S, 3 * S], [1, 11])  # TTFT 2 s
    failed = _rec(0, [S // 10, S], [1, 2], status="failed")
    recs = [fast, slow_first, failed]
    assert rq.goodput(recs, 0, 2 * S) == (1.0, 2 / 3)  # no SLO: every OK request counts
    assert rq.goodput(recs, 0, 2 * S, ttft_max_s=0.5) == (0.5, 1 / 3)
    assert rq.goodput(recs, 0, 2 * S, user_tps_min=20) == (0.0, 0.0)
