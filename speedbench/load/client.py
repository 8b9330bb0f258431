"""Closed-loop streaming load at a fixed concurrency (the SPEED-Bench mode) over one aiohttp session.

Timing: ``time.perf_counter_ns`` (monotonic) taken right after each SSE line is read from the socket.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Optional, Sequence

import aiohttp

from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.engines.base import EngineAdapter
from speedbench.load.records import CANCELLED, FAILED, OK, RequestRecord

_now = time.perf_counter_ns


@dataclass
class LoadPlan:
    concurrency: int
    num_requests: int
    warmup_requests: int
    max_tokens: int
    request_timeout_s: float = 600.0
    stream_idle_timeout_s: float = 60.0


@dataclass
class PointRun:
    records: list[RequestRecord] = field(default_factory=list)
    t_measure_start_ns: int = 0
    t_measure_end_ns: int = 0


async def stream_one(session: aiohttp.ClientSession, adapter: EngineAdapter, base_url: str,
                     prompt: TokenizedPrompt, rec: RequestRecord, plan: LoadPlan) -> RequestRecord:
    path, body = adapter.build_request(list(prompt.token_ids), plan.max_tokens)
    sent_ids = body.get("prompt") or body.get("input_ids") or list(prompt.token_ids)
    saw_done = False
    rec.t_start_ns = _now()
    try:
        async with session.post(base_url + path, json=body) as resp:
            rec.http_status = resp.status
            if resp.status != 200:
                snippet = (await resp.text())[:300]
                rec.status, rec.error_kind, rec.error = FAILED, f"http_{resp.status}", snippet
                return rec
            async for raw in resp.content:
                t = _now()
                if not raw.startswith(b"data:"):
                    continue
                payload = raw[5:].strip()
                if payload == b"[DONE]":
                    saw_done = True
                    break
                try:
                    event = json.loads(payload)
                except ValueError:
                    rec.status, rec.error_kind, rec.error = FAILED, "malformed_sse", payload[:200].decode("utf-8", "replace")
                    return rec
                if isinstance(event, dict) and "error" in event and not event.get("choices"):
                    rec.status, rec.error_kind, rec.error = FAILED, "server_error_event", str(event["error"])[:300]
                    return rec
                adapter.on_event(event, rec, t, sent_ids)
        if not saw_done:
            rec.status, rec.error_kind, rec.error = FAILED, "truncated_stream", "stream ended without [DONE]"
    except asyncio.TimeoutError:
        rec.status, rec.error_kind, rec.error = FAILED, "timeout", "request or stream timed out"
    except aiohttp.ClientError as e:
        rec.status, rec.error_kind, rec.error = FAILED, "transport", f"{type(e).__name__}: {e}"[:300]
    except asyncio.CancelledError:
        rec.status, rec.error_kind = CANCELLED, "cancelled"
        raise
    finally:
        rec.t_end_ns = _now()
    return rec


async def run_closed_loop(adapter: EngineAdapter, base_url: str, prompts: Sequence[TokenizedPrompt],
                          plan: LoadPlan, on_record: Optional[Callable[[RequestRecord], None]] = None,
                          point_label: str = "",
                          before_measure: Optional[Callable[[], Awaitable[None]]] = None) -> PointRun:
    """Warm-up wave, then ``num_requests`` measured requests with ``concurrency`` always in flight.

    Prompts are taken in order, cycling, so SD-off and SD-on points send the same ids in the same order.
    ``before_measure`` runs between warm-up and measurement (e.g. to snapshot the server's counters).
    """
    run = PointRun()
    timeout = aiohttp.ClientTimeout(total=plan.request_timeout_s, sock_read=plan.stream_idle_timeout_s)
    connector = aiohttp.TCPConnector(limit=0, force_close=False, enable_cleanup_closed=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, raise_for_status=False) as session:

        async def phase(start: int, count: int, warmup: bool) -> None:
            next_i = start
            end = start + count

            async def worker() -> None:
                nonlocal next_i
                while next_i < end:
                    i = next_i
                    next_i += 1
                    p = prompts[i % len(prompts)]
                    rec = RequestRecord(f"{point_label}#{i}", p.id, p.category, p.num_tokens, plan.max_tokens,
                                        warmup=warmup)
                    try:
                        await stream_one(session, adapter, base_url, p, rec, plan)
                    finally:
                        run.records.append(rec)
                        if on_record is not None:
                            on_record(rec)

            workers = [asyncio.create_task(worker()) for _ in range(min(plan.concurrency, count))]
            try:
                await asyncio.gather(*workers)
            except BaseException:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise

        if plan.warmup_requests:
            await phase(0, plan.warmup_requests, warmup=True)
        if before_measure is not None:
            await before_measure()
        run.t_measure_start_ns = _now()
        await phase(plan.warmup_requests, plan.num_requests, warmup=False)
        run.t_measure_end_ns = _now()
    return run
