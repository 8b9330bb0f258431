"""One point's load under its guard, bracketed by the server's SD counters.

The counters are read after warm-up (at a quiet moment the load client makes) and after the last
request; engines whose stats are consumed on read (TRT-LLM's /metrics) are also polled while the
point runs.  Counters are a cross-check, never a reason to lose a point: a failed read is 'no counters'.
The server's own description of itself (``read_server_info``) is read the same way: best effort, bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
from pydantic import ValidationError

from speedbench.config import ConfigError
from speedbench.core.acceptance import SpecDecodeCounters
from speedbench.core.documents import ServerInfo
from speedbench.core.records import OK, RequestRecord
from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.engines.base import EngineAdapter
from speedbench.guard import PointGuard
from speedbench.load.plan import LoadPlan, PointRun
from speedbench.load.point import run_point
from speedbench.preflight import PROBE_REQUESTS

log = logging.getLogger(__name__)


async def measure_point(
    adapter: EngineAdapter,
    base_url: str,
    headers: dict,
    prompts: Sequence[TokenizedPrompt],
    plan: LoadPlan,
    sink: Callable[[RequestRecord], None],
    point_id: str,
    guard: PointGuard,
) -> tuple[SpecDecodeCounters | None, PointRun | None, SpecDecodeCounters | None]:
    """Run the point; returns (counters after warm-up, the run or None if the guard stopped it, counters
    at the end or None)."""

    snap: dict[str, SpecDecodeCounters | None] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=headers) as session:

        async def before_measure() -> None:
            snap["before"] = await scrape_counters(adapter, session, base_url)

        # stopped by an event, never cancelled mid-request, so no drained row is lost in flight
        stop = asyncio.Event()
        poller = asyncio.create_task(_poll(adapter, session, base_url, stop)) if adapter.poll_interval_s else None
        try:
            run = await guard.run(run_point(adapter, base_url, prompts, plan, sink, point_id, before_measure))
        finally:
            stop.set()
            if poller is not None:
                await asyncio.gather(poller, return_exceptions=True)
        after = await scrape_counters(adapter, session, base_url) if run is not None else None
    return snap.get("before"), run, after


_UNREADABLE: set[tuple[str, str]] = set()  # (server, reason) already warned about in this process


async def scrape_counters(adapter: EngineAdapter, session, base_url: str) -> SpecDecodeCounters | None:
    try:
        return await adapter.scrape_counters(session, base_url)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
        # read before and after every point: a server without /metrics would say the same thing each time
        if (base_url, str(e)) not in _UNREADABLE:
            _UNREADABLE.add((base_url, str(e)))
            log.warning("could not read %s counters from %s: %s", adapter.name, base_url, e)
        return None


async def _poll(adapter: EngineAdapter, session, base_url: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=adapter.poll_interval_s)
            return
        except asyncio.TimeoutError:
            pass
        try:
            await adapter.poll_during_point(session, base_url)
        except Exception as e:  # a missed poll must not kill the point; scrape_counters reports gaps
            log.warning("%s: polling %s failed: %r", adapter.name, base_url, e)


async def probe_sd(
    adapter: EngineAdapter,
    base_url: str,
    headers: dict,
    prompts: Sequence[TokenizedPrompt],
    plan: LoadPlan,
    num_requests: int = PROBE_REQUESTS,
) -> tuple[list[SpecDecodeCounters], bool | None]:
    """The attached server's own SD evidence from a few requests sent one at a time before any point: the
    delta of its global counters (when it exposes them) and every per-request SD record the stream carried;
    and whether its /metrics exports SD counters at all (None: /metrics could not be read)."""

    probe = replace(
        plan,
        concurrency=1,
        num_requests=num_requests,
        warmup_requests=0,
        duration_s=None,
        mode="closed",
        cooldown=False,
        workers=1,
        order="file",
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=headers) as session:
        try:
            before = await adapter.scrape_counters(session, base_url)
            exported: bool | None = before is not None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            before, exported = None, None
        run = await run_point(adapter, base_url, prompts, probe, None, "sd-probe")
        after = await scrape_counters(adapter, session, base_url)
    # every probe request refused by the server (HTTP 401, 404...): no answer to judge SD by, so say why rather
    # than "no draft"; timeouts and transport errors are left to the points' own stop rules
    failed = [r for r in run.records if r.status != OK and (r.error_kind or "").startswith("http_")]
    if failed and len(failed) == len(run.records):
        first = failed[0]
        raise ConfigError(
            f"the server at {base_url} answered none of the {len(failed)} SD-probe requests "
            f"({first.error_kind}: {(first.error or '').strip()[:160]}); check the endpoint, the model and "
            "the API key (engine.api_key)"
        )
    evidence = [after - before] if before is not None and after is not None else []
    evidence += [c for c in (SpecDecodeCounters.from_dict(r.sd) for r in run.records) if c is not None]
    return evidence, exported


# What a server's own report may take in the manifest (docs/results-schema.md, ``engine.server_info``): engines
# report their whole configuration (SGLang: every server argument), and one runaway value must not bloat it.
SERVER_INFO_TIMEOUT_S = 10.0
SERVER_INFO_MAX_STR = 1024  # characters of one string value
SERVER_INFO_MAX_ITEMS = 64  # items of one list, keys of one object
SERVER_INFO_MAX_DEPTH = 6  # nesting of objects and lists
SERVER_INFO_MAX_CHARS = 16384  # the whole record as JSON


async def read_server_info(adapter: EngineAdapter, base_url: str, headers: dict) -> dict:
    """What the server says about itself (``adapter.server_info``), bounded in time and size; a failure is
    the record's ``error`` (never raised: the server's self-description is evidence, not a reason to stop)."""
    import aiohttp

    timeout_s = SERVER_INFO_TIMEOUT_S
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s), headers=headers) as session:
            info = await asyncio.wait_for(adapter.server_info(session, base_url), timeout_s)
    except asyncio.TimeoutError:
        info = {"error": f"no answer within {timeout_s:g} s"}
    except Exception as e:  # adapters promise not to raise; one that does still must not end the sweep
        info = {"error": repr(e)}
    info = trim_info(info if isinstance(info, dict) else {"error": f"not an object: {info!r}"})
    try:  # the manifest validates what it stores: a report of an unexpected shape is kept as text
        ServerInfo.model_validate(info)
    except ValidationError as e:
        raw = json.dumps(info, default=str)
        info = {"error": f"unexpected report: {e.errors()[0]['msg']} at {e.errors()[0]['loc']}", "raw": raw}
        return trim_info(info)
    return info


def trim_info(info: dict) -> dict:
    """``info`` within the SERVER_INFO_* bounds: long strings and lists cut (a marker says how much), deep
    nesting replaced by a marker, and keys past SERVER_INFO_MAX_CHARS dropped in order (listed in ``trimmed``)."""
    out: dict = _trim(info, 0)
    if len(json.dumps(out, default=str)) <= SERVER_INFO_MAX_CHARS:
        return out
    kept: dict = {}
    dropped: list[str] = []
    for k, v in out.items():
        if len(json.dumps({**kept, k: v, "trimmed": [*dropped, k]}, default=str)) <= SERVER_INFO_MAX_CHARS:
            kept[k] = v
        else:
            dropped.append(k)
    kept["trimmed"] = dropped
    return kept


def _trim(v: Any, depth: int) -> Any:
    if isinstance(v, str):
        cut = len(v) - SERVER_INFO_MAX_STR
        return v if cut <= 0 else f"{v[:SERVER_INFO_MAX_STR]}...[{cut} chars trimmed]"
    if isinstance(v, (dict, list, tuple)) and depth >= SERVER_INFO_MAX_DEPTH:
        return "...[nested too deep: trimmed]"
    if isinstance(v, dict):
        items = list(v.items())
        out = {str(k): _trim(x, depth + 1) for k, x in items[:SERVER_INFO_MAX_ITEMS]}
        if len(items) > SERVER_INFO_MAX_ITEMS:
            out["..."] = f"[{len(items) - SERVER_INFO_MAX_ITEMS} more keys trimmed]"
        return out
    if isinstance(v, (list, tuple)):
        head = [_trim(x, depth + 1) for x in v[:SERVER_INFO_MAX_ITEMS]]
        return head + (
            [f"...[{len(v) - SERVER_INFO_MAX_ITEMS} more trimmed]"] if len(v) > SERVER_INFO_MAX_ITEMS else []
        )
    return v if v is None or isinstance(v, (bool, int, float)) else repr(v)
