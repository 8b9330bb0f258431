"""A local fake of vLLM's OpenAI server that misbehaves on a seeded schedule (fault injection for tests).

It speaks the shapes the vLLM adapter reads: ``POST /v1/completions`` streaming with continuous usage
(``prompt_token_ids`` echoed on the first chunk, ``token_ids`` per chunk, a usage-only chunk, ``[DONE]``),
``GET /health``, ``GET /v1/models`` (with ``max_model_len``) and ``GET /metrics`` with the
``vllm:spec_decode_*`` counters. Faults, chosen per request index from ``--seed`` so a run is repeatable:

    http_<code>   answer with that status and a JSON error body
    disconnect    a few chunks, then the connection is cut (no chunked terminator)
    malformed     a few chunks, then a ``data:`` line that is not JSON
    truncate      a few chunks, then a clean end of stream without ``[DONE]``
    stall         a few chunks, then silence (the client's idle timeout must fire)
    error_event   a ``data: {"error": ...}`` event mid-stream

``--kill-after N`` SIGKILLs the server itself when request N arrives (the engine dying mid-point).
Every request and its fault are appended to ``--fault-log`` (JSONL) so tests can count what was injected.

    python -m speedbench.testing.fault_server --port 8123 --faults http_500=0.1,stall=0.02 --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from speedbench.engines.server import _die_with_parent

FAULT_KINDS = ("disconnect", "malformed", "truncate", "stall", "error_event")


def parse_faults(spec: str) -> list[tuple[str, float]]:
    """``http_500=0.1,stall=0.02`` -> [("http_500", 0.1), ("stall", 0.02)] (rates must sum to <= 1)."""
    out: list[tuple[str, float]] = []
    for item in (x.strip() for x in (spec or "").split(",")):
        if not item:
            continue
        kind, _, rate = item.partition("=")
        if not (kind in FAULT_KINDS or (kind.startswith("http_") and kind[5:].isdigit())):
            raise ValueError(f"unknown fault {kind!r}: use http_<code> or one of {', '.join(FAULT_KINDS)}")
        out.append((kind, float(rate) if rate else 1.0))
    if sum(r for _, r in out) > 1.0 + 1e-9:
        raise ValueError("fault rates sum to more than 1")
    return out


def fault_for(index: int, faults: list[tuple[str, float]], seed: int) -> str | None:
    """The fault of request ``index``: depends only on (seed, index), never on arrival order or timing."""
    u = random.Random(f"{seed}:{index}").random()
    acc = 0.0
    for kind, rate in faults:
        acc += rate
        if u < acc:
            return kind
    return None


@dataclass
class FakeState:
    faults: list[tuple[str, float]]
    seed: int = 0
    sd_k: int = 0
    token_delay_s: float = 0.001
    max_model_len: int = 4096
    model_name: str = "fake"
    also_served: list[str] = field(default_factory=list)  # more /v1/models entries (a multi-model server)
    kill_after: int | None = None
    stall_s: float = 3600.0
    fault_log: Path | None = None
    kill_marker: Path | None = None
    requests: int = 0
    counters: dict = field(default_factory=lambda: {"drafts": 0, "draft_tokens": 0, "accepted": 0})
    per_pos: list[int] = field(default_factory=list)

    def log(self, **entry) -> None:
        if self.fault_log is not None:
            # flushed per line (not fsynced): survives our own SIGKILL, which is what the tests need
            with self.fault_log.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")


def _already_killed(marker: Path | None) -> bool:
    """With a marker file, --kill-after strikes once across restarts (the file records that it did)."""
    if marker is None:
        return False
    try:
        marker.touch(exist_ok=False)
        return False
    except FileExistsError:
        return True


def _chunk(
    rid: str, model: str, ids: list[int], cum: int, n_prompt: int, finish: str | None, prompt_ids: list[int] | None
) -> bytes:
    choice = {
        "index": 0,
        "text": "".join(f" t{i}" for i in ids),
        "logprobs": None,
        "finish_reason": finish,
        "stop_reason": None,
        "token_ids": ids,
    }
    if prompt_ids is not None:
        choice["prompt_token_ids"] = prompt_ids
    body = {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": n_prompt, "total_tokens": n_prompt + cum, "completion_tokens": cum},
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


async def completions(request: web.Request) -> web.StreamResponse:
    st: FakeState = request.app["state"]
    index = st.requests
    st.requests += 1
    if st.kill_after is not None and index >= st.kill_after and not _already_killed(st.kill_marker):
        st.log(index=index, fault="kill")
        os.kill(os.getpid(), signal.SIGKILL)
    fault = fault_for(index, st.faults, st.seed)
    st.log(index=index, fault=fault)
    body = await request.json()
    if body.get("model") not in (st.model_name, *st.also_served):  # as vLLM answers an unknown model
        return web.json_response(
            {"error": {"message": f"The model `{body.get('model')}` does not exist.", "code": 404}}, status=404
        )
    prompt = body.get("prompt")
    if not isinstance(prompt, list) or not all(isinstance(x, int) for x in prompt):
        return web.json_response({"error": {"message": "prompt must be a list of token ids"}}, status=400)
    max_tokens = int(body.get("max_tokens") or 16)
    if len(prompt) + max_tokens > st.max_model_len:
        return web.json_response(
            {"error": {"message": f"{len(prompt)} + {max_tokens} tokens exceed max_model_len {st.max_model_len}"}},
            status=400,
        )
    if fault and fault.startswith("http_"):
        code = int(fault[5:])
        return web.json_response({"error": {"message": f"injected fault {fault}", "code": code}}, status=code)

    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    rng = random.Random(f"{st.seed}:{index}:tokens")
    rid = f"cmpl-fake-{index}"
    base = sum(prompt) % 997
    cum, step = 0, 0
    echo = prompt if body.get("return_token_ids") else None
    while cum < max_tokens:
        if fault is not None and step == 1:  # faults strike mid-stream, after the first tokens arrived
            if fault == "disconnect":
                request.transport.abort() if request.transport else None
                return resp
            if fault == "malformed":
                await resp.write(b'data: {"choices": [{"text": "oops"\n\n')
                await resp.write_eof()
                return resp
            if fault == "truncate":
                await resp.write_eof()
                return resp
            if fault == "stall":
                await asyncio.sleep(st.stall_s)
                return resp
            if fault == "error_event":
                await resp.write(b'data: {"error": {"message": "injected engine error", "code": 500}}\n\n')
                await resp.write_eof()
                return resp
        n = 1
        if st.sd_k:
            accepted = rng.randint(0, st.sd_k)
            st.counters["drafts"] += 1
            st.counters["draft_tokens"] += st.sd_k
            st.counters["accepted"] += accepted
            while len(st.per_pos) < st.sd_k:
                st.per_pos.append(0)
            for p in range(accepted):
                st.per_pos[p] += 1
            n = accepted + 1
        n = min(n, max_tokens - cum)
        if fault is not None and step == 0 and max_tokens > 1:
            n = min(n, max_tokens - 1)  # leave room for the fault to strike before the stream could end
        ids = [(base + cum + j) % 1000 + 10 for j in range(n)]
        cum += n
        await asyncio.sleep(st.token_delay_s)
        await resp.write(
            _chunk(rid, st.model_name, ids, cum, len(prompt), "length" if cum >= max_tokens else None, echo)
        )
        echo = None
        step += 1
    usage = {"prompt_tokens": len(prompt), "total_tokens": len(prompt) + cum, "completion_tokens": cum}
    await resp.write(
        b"data: "
        + json.dumps(
            {"id": rid, "object": "text_completion", "model": st.model_name, "choices": [], "usage": usage}
        ).encode()
        + b"\n\n"
    )
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def health(request: web.Request) -> web.Response:
    return web.Response(text="")


async def models(request: web.Request) -> web.Response:
    st: FakeState = request.app["state"]
    return web.json_response(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "owned_by": "speedbench", "max_model_len": st.max_model_len}
                for name in (st.model_name, *st.also_served)
            ],
        }
    )


async def metrics(request: web.Request) -> web.Response:
    st: FakeState = request.app["state"]
    mode = request.app.get("metrics_mode", "sd")
    if mode == "none":  # a server without Prometheus metrics
        raise web.HTTPNotFound()
    lines = [
        "# TYPE vllm:spec_decode_num_drafts_total counter",
        f'vllm:spec_decode_num_drafts_total{{engine="0",model_name="{st.model_name}"}} {st.counters["drafts"]}',
        "# TYPE vllm:spec_decode_num_draft_tokens_total counter",
        f'vllm:spec_decode_num_draft_tokens_total{{engine="0",model_name="{st.model_name}"}} '
        f"{st.counters['draft_tokens']}",
        "# TYPE vllm:spec_decode_num_accepted_tokens_total counter",
        f'vllm:spec_decode_num_accepted_tokens_total{{engine="0",model_name="{st.model_name}"}} '
        f"{st.counters['accepted']}",
        "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter",
    ]
    lines += [
        f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{engine="0",model_name="{st.model_name}",'
        f'position="{p}"}} {v}'
        for p, v in enumerate(st.per_pos)
    ]
    shown = st.sd_k or mode == "zero"  # zero: the counters exported although nothing is drafted
    return web.Response(text="\n".join(lines) + "\n" if shown else "", content_type="text/plain")


def build_app(state: FakeState) -> web.Application:
    app = web.Application()
    app["state"] = state
    app.add_routes(
        [
            web.post("/v1/completions", completions),
            web.get("/health", health),
            web.get("/v1/models", models),
            web.get("/metrics", metrics),
        ]
    )
    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m speedbench.testing.fault_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--faults", default="", help="kind=rate,...  (http_<code>, " + ", ".join(FAULT_KINDS) + ")")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kill-after", type=int, help="SIGKILL ourselves when request N (0-based) arrives")
    ap.add_argument("--sd-k", type=int, default=0, help="draft length of the simulated SD (0 = SD off)")
    ap.add_argument("--token-delay-ms", type=float, default=1.0)
    ap.add_argument("--max-model-len", type=int, default=4096)
    ap.add_argument("--model-name", default="fake")
    ap.add_argument("--also-serve", action="append", default=[], help="list another model in /v1/models")
    ap.add_argument("--stall-s", type=float, default=3600.0)
    ap.add_argument("--startup-delay-s", type=float, default=0.0)
    ap.add_argument("--kill-marker", type=Path, help="kill only once: skip if this file exists, else create it")
    ap.add_argument("--fault-log", type=Path)
    ap.add_argument("--pid-file", type=Path, help="append {pid, pgid, port, child} here once listening")
    ap.add_argument(
        "--metrics",
        choices=("sd", "zero", "none"),
        default="sd",
        help="/metrics: SD counters when --sd-k (sd), SD counters always, at 0 with SD off (zero), 404 (none)",
    )
    ap.add_argument(
        "--spawn-child",
        action="store_true",
        help="start a worker child in our process group, as vLLM starts its engine core",
    )
    a = ap.parse_args(argv)
    state = FakeState(
        parse_faults(a.faults),
        a.seed,
        a.sd_k,
        a.token_delay_ms / 1e3,
        a.max_model_len,
        a.model_name,
        a.also_serve,
        a.kill_after,
        a.stall_s,
        a.fault_log,
        a.kill_marker,
    )
    if a.startup_delay_s:
        time.sleep(a.startup_delay_s)
    child = None
    if a.spawn_child:
        # like vLLM's engine core, the worker exits when its parent (the API server) dies
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(3600)"],
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
    app = build_app(state)
    app["metrics_mode"] = a.metrics

    async def on_startup(_app: web.Application) -> None:
        if a.pid_file:  # one line per launch: a restarted server adds its own
            with a.pid_file.open("a") as fh:
                fh.write(
                    json.dumps(
                        {
                            "pid": os.getpid(),
                            "pgid": os.getpgid(0),
                            "port": a.port,
                            "child": child.pid if child else None,
                        }
                    )
                    + "\n"
                )

    async def on_cleanup(_app: web.Application) -> None:
        if child is not None:
            child.terminate()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    # short shutdown: stalled handlers must not hold a SIGTERM'd server for aiohttp's default 60 s
    web.run_app(
        app, host=a.host, port=a.port, shutdown_timeout=0.5, handler_cancellation=True, print=None, access_log=None
    )


if __name__ == "__main__":
    main()
