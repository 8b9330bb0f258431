"""A tiny vLLM-shaped OpenAI server on loopback, for tests and offline demos (no model, no GPU).

It speaks exactly the slice of vLLM's ``/v1/completions`` stream that the vLLM adapter reads: token-id
prompts echoed back (``return_token_ids``), one chunk per engine step with continuous usage, a final
usage chunk carrying ``metrics.speculative_decoding`` when SD is on, and Prometheus ``/metrics`` with the
``vllm:spec_decode_*`` counters. Acceptance is deterministic per prompt (seeded by the prompt ids), so
tests can recompute what the harness should report from ``server.log``.

    with FakeOpenAIServer(sd_k=3) as srv:
        ... BenchmarkConfig(engine={"endpoint": srv.url, ...}) ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field

from aiohttp import web

PROM_PREFIX = "vllm:spec_decode_"
WIRES = ("vllm", "plain", "chat")


@dataclass
class FakeRequestLog:
    """What the fake server did for one request: the ground truth a test compares against."""

    prompt_ids: list[int]
    output_tokens: int
    per_step_accepted: list[int] = field(default_factory=list)


class FakeOpenAIServer:
    def __init__(
        self,
        sd_k: int = 0,
        model: str = "fake-model",
        step_delay_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        wire: str = "vllm",
        final_usage: bool = True,
    ) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the fake server binds loopback only")
        if wire not in WIRES:
            raise ValueError(f"wire must be one of {', '.join(WIRES)}")
        # wire "plain": a plain OpenAI-compatible server: text chunks only (no token ids, no prompt echo, no
        # per-chunk usage), one usage block at the end when asked and ``final_usage``;
        # "chat": chat-completions style deltas (``delta.content``), which carry no completion text at all
        self.wire, self.final_usage = wire, final_usage
        self.sd_k, self.model, self.step_delay_s, self.host = sd_k, model, step_delay_s, host
        self._want_port = port
        self.api_key = api_key  # like vLLM --api-key: /v1/* needs "Authorization: Bearer <key>", else 401
        self.port: int | None = None
        self.log: list[FakeRequestLog] = []
        self._drafts = self._draft_tokens = self._accepted = 0
        self._per_pos = [0] * sd_k
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- lifecycle (own event loop in a daemon thread, so sync tests and the runner can use it) ------
    def start(self) -> FakeOpenAIServer:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._want_port))
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._runner = web.AppRunner(self.app(), access_log=None)
                loop.run_until_complete(self._runner.setup())
                loop.run_until_complete(web.SockSite(self._runner, sock).start())
            except BaseException as e:  # surface bind/setup failures to start()
                errors.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10) or errors:
            raise RuntimeError(f"fake server did not start: {errors[0] if errors else 'timeout'}")
        return self

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- HTTP -----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        @web.middleware
        async def auth(request: web.Request, handler):
            if (
                self.api_key
                and request.path.startswith("/v1")
                and request.headers.get("Authorization") != f"Bearer {self.api_key}"
            ):
                return web.json_response({"error": "Unauthorized"}, status=401)
            return await handler(request)

        async def health(_r: web.Request) -> web.Response:
            return web.Response(text="")

        async def version(_r: web.Request) -> web.Response:
            return web.json_response({"version": "fake-0"})

        async def models(_r: web.Request) -> web.Response:
            return web.json_response(
                {"object": "list", "data": [{"id": self.model, "object": "model", "max_model_len": 4096}]}
            )

        app = web.Application(middlewares=[auth])
        app.router.add_get("/health", health)
        app.router.add_get("/version", version)
        app.router.add_get("/v1/models", models)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/v1/completions", self._completions)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        lines = []
        if self.sd_k:  # vLLM exposes spec-decode counters only when SD is configured
            with self._lock:
                vals = {
                    "num_drafts_total": self._drafts,
                    "num_draft_tokens_total": self._draft_tokens,
                    "num_accepted_tokens_total": self._accepted,
                }
                per_pos = list(self._per_pos)
            lab = f'engine="0",model_name="{self.model}"'
            for name, v in vals.items():
                lines += [f"# TYPE {PROM_PREFIX}{name} counter", f"{PROM_PREFIX}{name}{{{lab}}} {float(v)}"]
            lines.append(f"# TYPE {PROM_PREFIX}num_accepted_tokens_per_pos_total counter")
            lines += [
                f'{PROM_PREFIX}num_accepted_tokens_per_pos_total{{{lab},position="{i}"}} {float(v)}'
                for i, v in enumerate(per_pos)
            ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        prompt = body.get("prompt")
        if not isinstance(prompt, list) or not prompt or not all(isinstance(x, int) for x in prompt):
            return web.json_response({"error": {"message": "prompt must be a list of token ids"}}, status=400)
        if body.get("model") != self.model:
            return web.json_response({"error": {"message": f"model {body.get('model')!r} not found"}}, status=404)
        n = int(body.get("max_tokens") or 16)
        usage_on = bool((body.get("stream_options") or {}).get("include_usage"))
        rid = f"cmpl-fake-{len(self.log)}"
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        rng = random.Random(zlib.crc32(json.dumps(prompt).encode()))
        entry = FakeRequestLog(list(prompt), n)
        produced, first = 0, True
        while produced < n:
            if first:
                size = 1  # the prefill step emits one token
            elif self.sd_k:
                acc = rng.randint(0, self.sd_k)
                entry.per_step_accepted.append(acc)
                size = min(acc + 1, n - produced)  # max_tokens cuts the last step
            else:
                size = 1
            ids = [(prompt[-1] + produced + i) % 1000 + 5 for i in range(size)]
            produced += size
            text = "".join(f" t{x}" for x in ids)
            finish = "length" if produced >= n else None
            choice: dict[str, object] = {"index": 0, "text": text, "token_ids": ids, "finish_reason": finish}
            if first:
                choice["prompt_token_ids"] = list(prompt)
            if self.wire == "plain":
                choice = {"index": 0, "text": text, "finish_reason": finish}
            elif self.wire == "chat":
                choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
            chunk: dict[str, object] = {
                "id": rid,
                "object": "text_completion",
                "model": self.model,
                "choices": [choice],
            }
            if usage_on and self.wire == "vllm":
                chunk["usage"] = {
                    "prompt_tokens": len(prompt),
                    "completion_tokens": produced,
                    "total_tokens": len(prompt) + produced,
                }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            first = False
            if self.step_delay_s:
                await asyncio.sleep(self.step_delay_s)
            else:
                await asyncio.sleep(0)
        self._count(entry)
        if usage_on and (self.wire == "vllm" or self.final_usage):
            final = {
                "id": rid,
                "object": "text_completion",
                "model": self.model,
                "choices": [],
                "usage": {"prompt_tokens": len(prompt), "completion_tokens": n, "total_tokens": len(prompt) + n},
            }
            if self.sd_k and self.wire == "vllm":
                final["metrics"] = {"speculative_decoding": self._sd_metrics(entry)}
            await resp.write(f"data: {json.dumps(final)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _count(self, entry: FakeRequestLog) -> None:
        with self._lock:
            self.log.append(entry)
            k, steps = self.sd_k, entry.per_step_accepted
            self._drafts += len(steps)
            self._draft_tokens += k * len(steps)
            self._accepted += sum(steps)
            for i in range(k):
                self._per_pos[i] += sum(1 for a in steps if a > i)

    def _sd_metrics(self, entry: FakeRequestLog) -> dict:
        k, steps = self.sd_k, entry.per_step_accepted
        hist = [0] * (k + 1)
        for a in steps:
            hist[a] += 1
        accepted = sum(steps)
        return {
            "mean_acceptance_length": 1 + accepted / len(steps) if steps else 0.0,
            "draft_acceptance_rate": accepted / (k * len(steps)) if steps else 0.0,
            "acceptance_histogram": hist,
            "num_spec_steps": len(steps),
            "num_accepted_draft_tokens": accepted,
            "num_draft_tokens": k * len(steps),
            "num_spec_tokens": k,
            "per_step_accepted": list(steps),
            "per_step_drafted": [k] * len(steps),
        }


def main() -> None:  # python -m speedbench.testing.fake_openai --port 8001 --sd-k 3

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--sd-k", type=int, default=0, help="draft length; 0 = SD off")
    ap.add_argument("--model", default="fake-model")
    ap.add_argument("--step-delay-s", type=float, default=0.002)
    a = ap.parse_args()
    with FakeOpenAIServer(a.sd_k, a.model, a.step_delay_s, port=a.port) as srv:
        print(f"fake vLLM-shaped server at {srv.url} (SD k={a.sd_k}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
