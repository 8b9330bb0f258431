"""A small ``trtllm-serve`` look-alike (PyTorch backend wire format) for tests: never a benchmark target.

Parses ``trtllm-serve [serve] MODEL`` flags and the ``--extra_llm_api_options`` YAML (strict keys, the
``speculative_config`` discriminated by ``decoding_type``), serves ``/health``, ``/health_generate``,
``/version``, ``/v1/models``, streaming ``/v1/completions`` (delta text, cumulative usage per chunk with
continuous_usage_stats, a final ``choices: []`` usage chunk), ``/metrics`` JSON iteration stats removed
once read from a bounded queue (only with enable_iter_perf_stats), and ``/prometheus/metrics`` (only with
return_perf_metrics). Shapes follow tests/fixtures/engines/trtllm/.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections import deque
from datetime import datetime

import yaml
from aiohttp import web

from speedbench.testing.emulator_core import (
    AcceptanceModel,
    BatchEngine,
    EmuRequest,
    IterationStats,
    add_common_args,
    check_loopback,
    parse_accept,
    token_text,
)

_YAML_KEYS = {
    "max_batch_size",
    "max_num_tokens",
    "max_seq_len",
    "enable_iter_perf_stats",
    "return_perf_metrics",
    "kv_cache_config",
    "disable_overlap_scheduler",
    "speculative_config",
    "enable_attention_dp",
    "iter_stats_max_iterations",
    "perf_metrics_max_requests",
    "print_iter_log",
    "cuda_graph_config",
    "enable_chunked_prefill",
    "stream_interval",
    "per_request_spec_decode_stats",
}
_SPEC_TYPES = {"Eagle3", "Eagle", "MTP", "NGram", "Draft_Target"}
_REQUEST_KEYS = {
    "model",
    "prompt",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "ignore_eos",
    "stream",
    "stream_options",
    "add_special_tokens",
    "detokenize",
    "min_tokens",
    "stop",
    "seed",
    "n",
    "echo",
    "logprobs",
    "user",
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="trtllm-serve-emulator", allow_abbrev=False)
    ap.add_argument("args", nargs="*", help="[serve] MODEL")
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--backend", choices=("pytorch", "tensorrt", "_autodeploy"), default="pytorch")
    ap.add_argument("--tp_size", "--tensor_parallel_size", type=int, default=1)
    ap.add_argument("--ep_size", "--moe_expert_parallel_size", type=int, default=None)
    ap.add_argument("--max_batch_size", type=int, default=None)
    ap.add_argument("--kv_cache_free_gpu_memory_fraction", "--free_gpu_memory_fraction", type=float, default=0.9)
    ap.add_argument("--extra_llm_api_options", "--config", default=None)
    ap.add_argument("--log_level", default="info")
    ap.add_argument("--return-perf-metrics", action="store_true", help="emulator shorthand for the YAML key")
    add_common_args(ap)
    return ap


def load_options(a: argparse.Namespace) -> dict:
    opts: dict = {}
    if a.extra_llm_api_options:
        with open(a.extra_llm_api_options) as fh:
            opts = yaml.safe_load(fh) or {}
        unknown = set(opts) - _YAML_KEYS
        if unknown:  # LlmArgs is a strict pydantic model
            raise SystemExit(f"ValidationError: extra fields not permitted: {sorted(unknown)}")
    if a.sd_k is not None and "speculative_config" not in opts:
        opts["speculative_config"] = {"decoding_type": "NGram", "max_draft_len": a.sd_k}
        opts.setdefault("enable_iter_perf_stats", True)
    spec = opts.get("speculative_config")
    if spec is not None:
        if spec.get("decoding_type") not in _SPEC_TYPES:
            raise SystemExit(f"ValidationError: decoding_type {spec.get('decoding_type')!r} not in {_SPEC_TYPES}")
        if spec["decoding_type"] == "MTP":
            # MTPDecodingConfig.set_max_total_draft_tokens: max_draft_len = num_nextn_predict_layers (default 1)
            spec["max_draft_len"] = int(spec.get("num_nextn_predict_layers", 1))
        if int(spec.get("max_draft_len") or 0) <= 0:
            raise SystemExit("ValidationError: max_draft_len must be > 0")
        if spec["decoding_type"] in ("Eagle3", "Eagle", "Draft_Target") and not (
            spec.get("speculative_model") or spec.get("speculative_model_dir")
        ):
            raise SystemExit(f"ValidationError: {spec['decoding_type']} needs speculative_model")
    if a.return_perf_metrics:
        opts["return_perf_metrics"] = True
    return opts


def iteration_row(s: IterationStats, max_batch: int) -> dict:
    """One ``/metrics`` row with the key set of jsonSerialization.cpp (sorted, as nlohmann dumps objects)."""
    al = (s.accepted_tokens + s.drafted_requests) / s.drafted_requests if s.drafted_requests else 0.0
    return {
        "cpuMemUsage": 0,
        "gpuMemUsage": 0,
        "inflightBatchingStats": {
            "avgNumDecodedTokensPerIter": al,
            "microBatchId": 0,
            "numContextRequests": s.context_requests,
            "numCtxTokens": s.context_tokens,
            "numGenRequests": s.generation_requests,
            "numPausedRequests": 0,
            "numScheduledRequests": s.context_requests + s.generation_requests,
        },
        "iter": s.iteration,
        "iterLatencyMS": s.latency_ms,
        "kvCacheStats": {
            "allocNewBlocks": 0,
            "allocTotalBlocks": 0,
            "cacheHitRate": 0.0,
            "freeNumBlocks": 0,
            "maxNumBlocks": 0,
            "missedBlocks": 0,
            "reusedBlocks": 0,
            "tokensPerBlock": 32,
            "usedNumBlocks": 0,
        },
        "maxBatchSizeRuntime": max_batch,
        "maxBatchSizeStatic": max_batch,
        "maxBatchSizeTunerRecommended": 0,
        "maxNumActiveRequests": max_batch,
        "maxNumTokensRuntime": 8192,
        "maxNumTokensStatic": 8192,
        "maxNumTokensTunerRecommended": 0,
        "newActiveRequestsQueueLatencyMS": 0.0,
        "numActiveRequests": s.active,
        "numCompletedRequests": s.completed,
        "numNewActiveRequests": s.context_requests,
        "numQueuedRequests": s.queued,
        "pinnedMemUsage": 0,
        "specDecodingStats": {
            "acceptanceLength": al,
            "draftOverhead": 0.0,
            "iterLatencyMS": 0.0,
            "numAcceptedTokens": s.accepted_tokens,
            "numDraftTokens": s.draft_tokens,
            "numRequestsWithDraftTokens": s.drafted_requests,
        },
        "staticBatchingStats": {
            "emptyGenSlots": 0,
            "numContextRequests": 0,
            "numCtxTokens": 0,
            "numGenTokens": 0,
            "numScheduledRequests": 0,
        },
        "timestamp": datetime.now().strftime("%m-%d-%Y %H:%M:%S"),
    }


class TRTLLMEmulator:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        pos = [x for x in a.args if x != "serve"]
        if len(pos) != 1:
            raise SystemExit("usage: trtllm-serve [serve] MODEL [options]")
        self.model_arg = pos[0]
        self.name = self.model_arg.rstrip("/").split("/")[-1]
        self.opts = load_options(a)
        spec = self.opts.get("speculative_config")
        self.k = int(spec["max_draft_len"]) if spec else 0
        self.max_batch = int(self.opts.get("max_batch_size") or a.max_batch_size or 2048)
        self.rows: deque = deque(maxlen=int(self.opts.get("iter_stats_max_iterations", 1000)))
        self.prom = {"draft": 0, "accepted": 0, "gen": 0, "ok": 0}
        self.prom_pos: dict[str, list[int]] = {"drafted": [0] * self.k, "accepted": [0] * self.k}
        self.engine = BatchEngine(
            AcceptanceModel(self.k, parse_accept(a.accept)),
            a.step_ms / 1e3,
            self.max_batch,
            a.seed,
            a.draft_cost,
            on_iteration=self._iteration,
            on_finish=self._finished,
        )
        self.t_ready = time.monotonic() + a.startup_delay

    def _iteration(self, s: IterationStats) -> None:
        if self.opts.get("enable_iter_perf_stats"):
            self.rows.append(iteration_row(s, self.max_batch))  # bounded: unread rows fall off the front
        self.prom["draft"] += s.draft_tokens
        self.prom["accepted"] += s.accepted_tokens

    def _finished(self, req: EmuRequest) -> None:
        self.prom["gen"] += len(req.output)
        self.prom["ok"] += 1
        for i in range(len(req.drafted_per_pos)):
            self.prom_pos["drafted"][i] += req.drafted_per_pos[i]
            self.prom_pos["accepted"][i] += req.accepted_per_pos[i]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/health_generate", self.health)
        app.router.add_get("/version", self.version)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.metrics)
        if self.opts.get("return_perf_metrics"):
            app.router.add_get("/prometheus/metrics", self.prometheus)
        app.router.add_post("/v1/completions", self.completions)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app) -> None:
        self.engine.start()

    async def _stop(self, app) -> None:
        await self.engine.stop()

    async def health(self, request: web.Request) -> web.Response:
        if time.monotonic() < self.t_ready:
            return web.Response(status=503, text="LLM is unavailable. Please check the server logs for more details.")
        return web.Response(status=200)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "1.2.0-emulated"})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": self.name, "object": "model", "created": int(time.time()), "owned_by": "tensorrt_llm"}],
            }
        )

    async def metrics(self, request: web.Request) -> web.Response:
        rows = list(self.rows)
        self.rows.clear()  # "removed once retrieved"
        return web.json_response(rows)

    async def prometheus(self, request: web.Request) -> web.Response:
        lab = 'engine_type="undefined",model_name="undefined"'
        p = self.prom
        lines = [
            "# TYPE trtllm_spec_decode_num_draft_tokens_total counter",
            f"trtllm_spec_decode_num_draft_tokens_total{{{lab}}} {float(p['draft'])}",
            "# TYPE trtllm_spec_decode_num_accepted_tokens_total counter",
            f"trtllm_spec_decode_num_accepted_tokens_total{{{lab}}} {float(p['accepted'])}",
        ]
        for kind in ("drafted", "accepted"):
            lines.append(f"# TYPE trtllm_spec_decode_{kind}_tokens_total counter")
            lines += [
                f'trtllm_spec_decode_{kind}_tokens_total{{{lab},token_position="{i}"}} {float(v)}'
                for i, v in enumerate(self.prom_pos[kind])
            ]
        lines += [
            "# TYPE trtllm_generation_tokens_total counter",
            f"trtllm_generation_tokens_total{{{lab}}} {float(p['gen'])}",
            "# TYPE trtllm_request_success_total counter",
            f'trtllm_request_success_total{{engine_type="undefined",finished_reason="length",'
            f'model_name="undefined"}} {float(p["ok"])}',
        ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    def _spec_stats(self, req: EmuRequest) -> dict:
        """postprocess_handlers ``_build_spec_decode_stats``: histogram padded to the draft budget k + 1."""
        hist = list(req.histogram) + [0] * (self.k + 1 - len(req.histogram))
        drafted = req.verify_ct * self.k
        return {
            "acceptance_rate": req.accepted / drafted,
            "total_accepted_draft_tokens": req.accepted,
            "total_draft_tokens": drafted,
            "num_spec_steps": req.verify_ct,
            "acceptance_histogram": hist,
            "num_spec_tokens": self.k,
        }

    def _parse(self, body) -> EmuRequest | str:
        if not isinstance(body, dict):
            return "request body must be a JSON object"
        if set(body) - _REQUEST_KEYS:
            return f"extra fields not permitted: {sorted(set(body) - _REQUEST_KEYS)}"
        if not body.get("model"):
            return "model: field required"
        ids = body.get("prompt")
        if not isinstance(ids, list) or not ids or not all(isinstance(x, int) for x in ids):
            return "this emulator takes prompt as a non-empty list of token ids"
        if body.get("stream_options") and not body.get("stream"):
            return "Stream options can only be defined when `stream=True`."
        temp = body.get("temperature")
        return EmuRequest(
            ids,
            int(body.get("max_tokens") or 32),
            bool(body.get("ignore_eos", False)),
            1.0 if temp is None else float(temp),
            f"cmpl-{uuid.uuid4().hex}",
            self.a.eos_every,
        )

    async def completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"object": "error", "message": "invalid JSON", "code": 400}, status=400)
        req = self._parse(body)
        if isinstance(req, str):
            return web.json_response(
                {"object": "error", "message": req, "type": "BadRequestError", "code": 400}, status=400
            )
        self.engine.submit(req)
        so = body.get("stream_options") or {}
        ids_out = body.get("detokenize") is False
        created = int(time.time())

        def usage(n: int) -> dict:
            p = len(req.prompt_ids)
            return {
                "prompt_tokens": p,
                "total_tokens": p + n,
                "completion_tokens": n,
                "prompt_tokens_details": {"cached_tokens": 0},
            }

        def chunk(choices: list, n: int | None) -> bytes:
            obj = {
                "id": req.rid,
                "object": "text_completion",
                "created": created,
                "model": body["model"],
                "choices": choices,
                "usage": usage(n) if n is not None else None,
            }
            return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

        if not body.get("stream"):
            while await req.steps.get() is not None:
                pass
            return web.json_response(
                {
                    "id": req.rid,
                    "object": "text_completion",
                    "created": created,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "text": "".join(map(token_text, req.output)), "finish_reason": req.finish_reason}
                    ],
                    "usage": usage(len(req.output)),
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        continuous = bool(so.get("include_usage") and so.get("continuous_usage_stats"))
        n = 0
        while (new := await req.steps.get()) is not None:  # one chunk per engine iteration with output
            n += len(new)
            # the end marker is queued with the last step: only it is left when this is the last chunk
            finish = req.finish_reason if req.finish_reason and req.steps.qsize() == 1 else None
            choice = {
                "index": 0,
                "text": "" if ids_out else "".join(map(token_text, new)),
                "token_ids": new if ids_out else None,
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
                "avg_decoded_tokens_per_iter": None,
            }
            if finish and self.opts.get("per_request_spec_decode_stats") and req.verify_ct:
                choice["speculative_decoding"] = self._spec_stats(req)  # terminal choice only
            await resp.write(chunk([choice], n if continuous else None))
        if so.get("include_usage"):
            await resp.write(chunk([], n))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    host = check_loopback(a.host)
    web.run_app(TRTLLMEmulator(a).app(), host=host, port=a.port, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
