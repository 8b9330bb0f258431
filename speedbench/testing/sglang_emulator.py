"""A small SGLang look-alike (0.5.23 wire format) for tests: never a benchmark target.

Parses ``sglang.launch_server`` flags (so a wrong argv fails like the real server would), serves
``/health``, ``/health_generate``, ``/ready``, ``/model_info``, ``/server_info``, ``/v1/models``,
``/metrics`` (only with --enable-metrics) and streaming ``/generate`` with cumulative ``text``/``output_ids``
(deltas with --incremental-streaming-output), several queued steps coalesced into one event when the
writer lags, and SD keys on the final ``meta_info``. Shapes follow tests/fixtures/engines/sglang/.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

from aiohttp import web

from speedbench.testing.emulator_core import (
    AcceptanceModel,
    BatchEngine,
    EmuRequest,
    add_common_args,
    check_loopback,
    parse_accept,
    token_text,
)
from speedbench.testing.emulator_stream import DirectStream, EventBuilder

_TOP_KEYS = {
    "input_ids",
    "text",
    "sampling_params",
    "stream",
    "rid",
    "return_logprob",
    "logprob_start_len",
    "top_logprobs_num",
    "return_text_in_logprobs",
    "return_prompt_token_ids",
}
_SAMPLING_KEYS = {
    "max_new_tokens",
    "min_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "ignore_eos",
    "stop",
    "stop_token_ids",
    "skip_special_tokens",
    "n",
    "repetition_penalty",
    "stream_interval",
}
_ALGOS = ("EAGLE", "EAGLE3", "NEXTN", "STANDALONE", "NGRAM")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sglang-emulator", allow_abbrev=False)
    ap.add_argument("--model-path", "--model", default="emulated-model")
    ap.add_argument("--served-model-name", default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=30000)
    ap.add_argument("--tp-size", "--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--dp-size", "--data-parallel-size", type=int, default=1)
    ap.add_argument("--attn-dp-size", "--attention-data-parallel-size", type=int, default=1)
    ap.add_argument("--enable-dp-attention", action="store_true", help="deprecated spelling: --dp-size N = attn DP")
    ap.add_argument("--ep-size", "--expert-parallel-size", type=int, default=1)
    ap.add_argument("--mem-fraction-static", type=float, default=None)
    ap.add_argument("--max-running-requests", type=int, default=None)
    ap.add_argument("--cuda-graph-max-bs-decode", type=int, default=None)  # 0.5.22+: no --cuda-graph-max-bs
    ap.add_argument("--enable-metrics", action="store_true")
    ap.add_argument("--disable-radix-cache", action="store_true")  # no prefix cache to emulate: accepted only
    ap.add_argument("--stream-interval", type=int, default=1)
    ap.add_argument("--incremental-streaming-output", action="store_true")
    ap.add_argument("--speculative-algorithm", type=str.upper, default=None, choices=_ALGOS)
    ap.add_argument("--speculative-draft-model-path", "--speculative-draft-model", default=None)
    ap.add_argument("--speculative-num-steps", type=int, default=None)
    ap.add_argument("--speculative-eagle-topk", type=int, default=None)
    ap.add_argument("--speculative-num-draft-tokens", type=int, default=None)
    ap.add_argument("--speculative-ngram-min-bfs-breadth", type=int, default=1)
    ap.add_argument("--speculative-ngram-max-bfs-breadth", type=int, default=10)
    add_common_args(ap)
    return ap


def draft_length(a: argparse.Namespace) -> int:
    """k as SGLang resolves it (speculative_hook.py in 0.5.23), limited to the chains speedbench asks for."""
    if a.sd_k is not None and a.speculative_algorithm is None:
        a.speculative_algorithm, a.speculative_num_steps, a.speculative_eagle_topk = "EAGLE3", a.sd_k, 1
    algo = a.speculative_algorithm
    if algo is None:
        return 0
    if algo in ("NGRAM", "STANDALONE") and (a.enable_dp_attention or a.attn_dp_size > 1):
        # speculative_hook.py: refused with DP attention only; plain --dp-size replicas are fine
        kind = "ngram" if algo == "NGRAM" else "standalone"
        raise SystemExit(f"ValueError: Currently {kind} speculative decoding does not support dp attention.")
    if algo == "NGRAM":
        if a.speculative_ngram_max_bfs_breadth != 1:
            raise SystemExit("emulator: NGRAM trees are not modelled; pass --speculative-ngram-max-bfs-breadth 1")
        # resolved as SGLang does (speculative_hook.py:1285-1330): topk is the breadth, steps = tokens // topk
        a.speculative_num_draft_tokens = a.speculative_num_draft_tokens or 12
        a.speculative_eagle_topk = a.speculative_ngram_max_bfs_breadth
        a.speculative_num_steps = a.speculative_num_draft_tokens // a.speculative_eagle_topk
        return a.speculative_num_draft_tokens - 1
    if algo in ("EAGLE", "EAGLE3", "STANDALONE") and not a.speculative_draft_model_path and a.sd_k is None:
        raise SystemExit(f"--speculative-draft-model-path is required for {algo}")
    if a.speculative_num_steps is None:
        if a.speculative_eagle_topk is not None or a.speculative_num_draft_tokens is not None:
            raise SystemExit("AssertionError: set --speculative-num-steps together with topk / num-draft-tokens")
        a.speculative_num_steps, a.speculative_eagle_topk = 3, 1  # auto choice for most architectures
    if (a.speculative_eagle_topk or 1) != 1:
        raise SystemExit("emulator: only chains (--speculative-eagle-topk 1) are modelled")
    a.speculative_num_draft_tokens = a.speculative_num_steps + 1  # SGLang rewrites it when topk == 1
    return a.speculative_num_steps


class SGLangEmulator:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.k = draft_length(a)
        self.name = a.served_model_name or a.model_path
        if a.max_running_requests is None:
            a.max_running_requests = 48 if self.k else 1024  # SGLang caps SD runs at 48 when unset
        self.model = AcceptanceModel(self.k, parse_accept(a.accept))
        self.engine = BatchEngine(
            self.model, a.step_ms / 1e3, a.max_running_requests, a.seed, a.draft_cost, on_finish=self._finished
        )
        self.t_ready = time.monotonic() + a.startup_delay
        self.counters = {"prompt_tokens": 0, "generation_tokens": 0, "verify": 0, "requests": 0}
        self.window: list[tuple[int, int, int]] = []  # (verify, accepted, proposed) of recent requests

    # ---- engine callbacks ------------------------------------------------------------------------
    def _finished(self, req: EmuRequest) -> None:
        c = self.counters
        c["prompt_tokens"] += len(req.prompt_ids)
        c["generation_tokens"] += len(req.output)
        c["verify"] += req.verify_ct
        c["requests"] += 1
        self.window = (self.window + [(req.verify_ct, req.accepted, req.verify_ct * self.k)])[-40:]

    # ---- HTTP ------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        for path in ("/health", "/health_generate", "/ready"):
            app.router.add_get(path, self.health)
        app.router.add_get("/model_info", self.model_info)
        app.router.add_get("/server_info", self.server_info)
        app.router.add_get("/v1/models", self.models)
        if self.a.enable_metrics:
            app.router.add_get("/metrics", self.metrics)
        app.router.add_post("/generate", self.generate)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app) -> None:
        self.engine.start()

    async def _stop(self, app) -> None:
        await self.engine.stop()

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if time.monotonic() >= self.t_ready else 503)

    async def model_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "model_path": self.a.model_path,
                "served_model_name": self.name,
                "tokenizer_path": self.a.model_path,
                "is_generation": True,
                "weight_version": "default",
                "model_type": "emulated",
                "architectures": ["EmulatedForCausalLM"],
            }
        )

    async def server_info(self, request: web.Request) -> web.Response:
        a = self.a
        return web.json_response(
            {
                "model_path": a.model_path,
                "tp_size": a.tp_size,
                "dp_size": a.dp_size,
                "ep_size": a.ep_size,
                "max_running_requests": a.max_running_requests,
                "stream_interval": a.stream_interval,
                "speculative_algorithm": a.speculative_algorithm,
                "speculative_num_steps": a.speculative_num_steps,
                "speculative_eagle_topk": a.speculative_eagle_topk,
                "speculative_num_draft_tokens": a.speculative_num_draft_tokens,
                "disable_radix_cache": a.disable_radix_cache,
                "internal_states": [{"avg_spec_accept_length": self._window_al()}] if self.k else [{}],
                "version": "0.5.23-emulated",
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.name,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "sglang",
                        "root": self.name,
                        "parent": None,
                        "max_model_len": 131072,
                    }
                ],
            }
        )

    def _window_al(self) -> float:
        verify = sum(v for v, _, _ in self.window)
        return 1.0 + sum(x for _, x, _ in self.window) / verify if verify else 0.0

    async def metrics(self, request: web.Request) -> web.Response:
        # one scheduler per DP rank, each with its own gauges (labelled dp_rank when DP is on)
        dp = [f'dp_rank="{r}",' for r in range(self.a.dp_size)] if self.a.dp_size > 1 else [""]
        scheds = [
            f'{d}engine_type="unified",model_name="{self.name}",moe_ep_rank="0",pp_rank="0",tp_rank="0"' for d in dp
        ]
        tok = f'engine_type="unified",model_name="{self.name}"'
        stream = f'engine_type="unified",is_streaming="true",model_name="{self.name}"'
        proposed = sum(p for _, _, p in self.window)
        rate = sum(x for _, x, _ in self.window) / proposed if proposed else 0.0
        c = self.counters
        rows: list[tuple[str, str, str, str, float]] = [
            ("sglang:num_running_reqs", "gauge", "The number of running requests.", sched, len(self.engine.running))
            for sched in scheds
        ]
        if self.k:
            rows = [
                row
                for sched in scheds
                for row in (
                    (
                        "sglang:spec_accept_length",
                        "gauge",
                        "Mean acceptance length of speculative decoding.",
                        sched,
                        self._window_al(),
                    ),
                    ("sglang:spec_accept_rate", "gauge", "Speculative acceptance rate.", sched, rate),
                    ("sglang:spec_num_steps", "gauge", "Currently active speculative_num_steps.", sched, self.k),
                    (
                        "sglang:spec_num_draft_tokens",
                        "gauge",
                        "Currently active speculative_num_draft_tokens.",
                        sched,
                        self.k + 1,
                    ),
                )
            ] + rows
        rows += [
            (
                "sglang:prompt_tokens_total",
                "counter",
                "Number of prefill tokens processed.",
                stream,
                c["prompt_tokens"],
            ),
            (
                "sglang:generation_tokens_total",
                "counter",
                "Number of generation tokens processed.",
                stream,
                c["generation_tokens"],
            ),
            (
                "sglang:spec_verify_calls_total",
                "counter",
                "Number of speculative decoding verification calls.",
                tok,
                c["verify"],
            ),
            ("sglang:num_requests_total", "counter", "Number of requests processed.", stream, c["requests"]),
        ]
        first = {r[0]: i for i, r in reversed(list(enumerate(rows)))}
        rows.sort(key=lambda r: first[r[0]])  # a metric's samples together, as the exposition format wants
        lines, seen = [], set()
        for name, kind, help_, labels, value in rows:
            if name not in seen:  # one HELP/TYPE per metric, then a sample per label set
                seen.add(name)
                lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
            lines.append(f"{name}{{{labels}}} {float(value)}")
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    # ---- /generate -------------------------------------------------------------------------------
    def _parse(self, body) -> EmuRequest | str:
        if not isinstance(body, dict):
            return "request body must be a JSON object"
        unknown = set(body) - _TOP_KEYS
        if unknown:
            return f"unknown fields: {sorted(unknown)}"
        ids = body.get("input_ids")
        if body.get("text") is not None:
            return "this emulator takes input_ids only"
        if not isinstance(ids, list) or not ids or not all(isinstance(x, int) for x in ids):
            return "input_ids must be a non-empty list of ints"
        sp = body.get("sampling_params") or {}
        if not isinstance(sp, dict) or set(sp) - _SAMPLING_KEYS:
            return f"unknown sampling_params: {sorted(set(sp) - _SAMPLING_KEYS)}"
        return EmuRequest(
            ids,
            int(sp.get("max_new_tokens", 128)),
            bool(sp.get("ignore_eos", False)),
            float(sp.get("temperature", 1.0)),
            body.get("rid") or uuid.uuid4().hex,
            self.a.eos_every,
        )

    def _meta(self, req: EmuRequest, first: bool, final: bool, t0: float) -> dict:
        finish = None
        if final:
            finish = (
                {"type": "length", "length": len(req.output)}
                if req.finish_reason == "length"
                else {"type": "stop", "matched": req.output[-1]}
            )
        meta: dict[str, object] = {
            "id": req.rid,
            "finish_reason": finish,
            "prompt_tokens": len(req.prompt_ids),
            "weight_version": "default",
            "num_retractions": 0,
            "reasoning_tokens": 0,
            "completion_tokens": len(req.output),
            "cached_tokens": 0,
        }
        if first:
            meta["response_sent_to_client_ts"] = time.time()
        if final:
            meta["e2e_latency"] = time.monotonic() - t0
            if self.k:
                proposed = req.verify_ct * self.k
                meta.update(
                    spec_accept_rate=req.accepted / proposed if proposed else 0.0,
                    spec_accept_length=len(req.output) / req.verify_ct if req.verify_ct else 1.0,
                    spec_num_correct_drafts=req.accepted,
                    spec_num_proposed_drafts=proposed,
                    spec_verify_ct=req.verify_ct,
                    spec_correct_drafts_histogram=list(req.histogram),
                )
        return meta

    async def generate(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "invalid JSON"}}, status=400)
        req = self._parse(body)
        if isinstance(req, str):
            return web.json_response({"error": {"message": req}}, status=400)
        t0 = time.monotonic()
        self.engine.submit(req)
        if not body.get("stream"):
            while await req.steps.get() is not None:
                pass
            return web.json_response(
                {
                    "text": "".join(map(token_text, req.output)),
                    "output_ids": req.output,
                    "meta_info": self._meta(req, True, True, t0),
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        stream = DirectStream(self._event_builder(req, t0), self.a.stream_interval, lambda: bool(req.finish_reason))
        req.on_step = stream.on_step
        return await stream.serve(request, resp)

    def _event_builder(self, req: EmuRequest, t0: float) -> EventBuilder:
        """The SSE payload of the tokens not yet sent (all of them, cumulative, by default). A middle event
        (neither first nor final) differs from the last only in its ids, text and count: it is filled into
        a template made once per request, rather than a dict encoded per event."""
        sent = 0
        parts: list[str] = []

        def build(first: bool, done: bool) -> bytes:
            nonlocal sent, parts
            n = len(req.output)
            ids = req.output[sent:n] if self.a.incremental_streaming_output else req.output[:n]
            sent = n
            if first or done:
                out = {
                    "text": "".join(map(token_text, ids)),
                    "output_ids": ids,
                    "meta_info": self._meta(req, first, done, t0),
                }
                return b"data: " + json.dumps(out, separators=(",", ":")).encode() + b"\n\n"
            if not parts:
                meta = {**self._meta(req, False, False, t0), "completion_tokens": _COUNT}
                tpl = json.dumps({"text": _TEXT, "output_ids": [_IDS], "meta_info": meta}, separators=(",", ":"))
                head, rest = tpl.split(_TEXT, 1)
                mid, rest = rest.split(str(_IDS), 1)
                parts = [head, mid, *rest.split(str(_COUNT), 1)]
            text = "".join(map(token_text, ids))
            return f"data: {parts[0]}{text}{parts[1]}{','.join(map(str, ids))}{parts[2]}{n}{parts[3]}\n\n".encode()

        return build


# placeholders of the middle-event template: values no request produces (token texts are " w<id>")
_TEXT, _IDS, _COUNT = "@@text@@", -987654321, -987654322


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    host = check_loopback(a.host)
    web.run_app(SGLangEmulator(a).app(), host=host, port=a.port, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
