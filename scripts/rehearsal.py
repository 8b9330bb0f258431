#!/usr/bin/env python3
"""A rehearsal of the full SPEED-Bench matrix on CPU: the client's limits, the records' size, the readers' cost.

One `speedbench sweep` per workload (Throughput split at each ISL, Qualitative) over the concurrencies,
SD off and SD on (EAGLE-3, k=3), against the SGLang emulator (speedbench/testing, launched through the real
adapter by engine shims; continuous batching, one iteration every --step-ms). The emulator runs pinned to
core 0, the client (the sweep process) to core 1 (taskset). Then `report` of each sweep, `merge` of the first
sweep with itself (merge takes folders of the same prompts), `report` of the merged folder and `compare` of
the sweep with it, each timed with its peak RSS.

Per point: CLIENT-BOUND (the client's own verdict, points.jsonl `client_saturated`), the client's CPU share
and peak RSS over the point's window (/proc samples of the sweep process every 0.1 s), output tokens/s,
bytes per output token of its records file; per sweep: wall time vs the sum of the measured windows.

    .venv/bin/python scripts/rehearsal.py --scale small        # ~5 min: the scale docs/rehearsal.md shows
    .venv/bin/python scripts/rehearsal.py --scale full         # the GPU presets' matrix: hours on 2 cores

Not part of `make test`; run it alone on the machine (it pins two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEEDBENCH = [sys.executable, "-m", "speedbench.cli"]  # with PYTHONPATH = this tree
MODEL = Path(os.environ.get("SPEEDBENCH_HOME", Path.home() / ".cache" / "speedbench")) / "models" / "gemma3-270m-bf16"
SCALES = {
    # name: (throughput ISLs, throughput prompts per tier (3 tiers), qualitative conversations per point,
    #        concurrencies, output cap)
    "full": ([8192, 32768], 512, 880, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], 4096),
    "small": ([8192], 48, 96, [1, 8, 64], 512),
    "tiny": ([], 0, 8, [1, 4], 64),
}
# Qualitative: the bundled mini split (88 prompts, 11 categories, 8 two-turn), each point measuring the given
# number of conversations (repeats allowed: SPEED-Bench's 880 are not bundled)


def sample_proc(pid: int, out: list[tuple[int, float, int]], stop: threading.Event) -> None:
    """(monotonic ns, CPU seconds, RSS bytes) of ``pid`` every 0.1 s until it exits."""
    tick = os.sysconf("SC_CLK_TCK")
    while not stop.is_set():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            rss = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
            out.append((time.monotonic_ns(), (int(stat[11]) + int(stat[12])) / tick, rss))
        except (OSError, IndexError, ValueError):
            return
        time.sleep(0.1)


def emulator_python(work: Path) -> Path:
    """The engine's python: the emulator, pinned to core 0."""
    p = work / "python-core0"
    p.write_text(f'#!/bin/sh\nexec taskset -c 0 {sys.executable} "$@"\n')
    p.chmod(0o755)
    return p


def sweep(
    work: Path, name: str, data: dict, conc: list[int], out_cap: int, step_ms: float, load: dict | None = None
) -> dict:
    shims = work / "shims"
    if not shims.exists():
        from speedbench.testing.emulators import write_engine_shims

        write_engine_shims(shims)
    cfg = {
        "name": name,
        "output_dir": str(work / "results"),
        "engine": {
            "name": "sglang",
            "model": str(work),
            "python": str(emulator_python(work)),
            "startup_timeout_s": 120,
            "env": {"PYTHONPATH": f"{shims}:{REPO}"},
            "extra_args": ["--accept", "0.8,0.6,0.4", "--step-ms", str(step_ms)],
        },
        "sd": [{"method": "off"}, {"method": "eagle3", "num_speculative_tokens": 3, "draft_model": str(work)}],
        "data": {"tokenizer": str(MODEL), "cache_dir": str(work / "cache"), **data},
        # exactly the cap: the emulator's "EOS" (a token id divisible by 50) ends outputs after ~50 tokens,
        # far from the natural lengths (hundreds to 4,096) whose volume the rehearsal is about
        "load": {"concurrency": conc, "output_len": out_cap, "fixed_length": True, **(load or {})},
        "quality": {"enabled": False},
        "telemetry": {"gpu": False},
    }
    path = work / f"{name}.json"
    path.write_text(json.dumps(cfg))
    samples: list[tuple[int, float, int]] = []
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["taskset", "-c", "1", *SPEEDBENCH, "sweep", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    stop = threading.Event()
    th = threading.Thread(target=sample_proc, args=(proc.pid, samples, stop), daemon=True)
    th.start()
    _, err = proc.communicate(timeout=6 * 3600)
    stop.set()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        print(f"sweep {name} exited {proc.returncode}: {err.strip().splitlines()[-3:]}", file=sys.stderr)
    (run,) = [d for d in (work / "results").iterdir() if d.name.endswith(f"-{name}")]
    return {"name": name, "dir": run, "wall_s": wall, "points": point_rows(run, samples)}


def point_rows(run: Path, samples: list[tuple[int, float, int]]) -> list[dict]:
    from speedbench.results import ResultsDir

    rd = ResultsDir(run)
    rows = []
    for p in rd.points():
        recs = [r for r in rd.records(p["point_id"]) if not r.warmup]
        if not recs:
            continue
        t0, t1 = min(r.t_start_ns for r in recs), max(r.t_end_ns for r in recs)
        inside = [s for s in samples if t0 <= s[0] <= t1]
        cpu = (inside[-1][1] - inside[0][1]) / ((inside[-1][0] - inside[0][0]) / 1e9) if len(inside) > 1 else None
        tokens = sum(r.output_tokens for r in rd.records(p["point_id"]))
        rows.append(
            {
                "point": p["point_id"],
                "client_bound": bool(p.get("client_saturated")),
                "client_cpu": cpu,
                "client_rss_mb": max((s[2] for s in inside), default=0) / 2**20,
                "window_s": (t1 - t0) / 1e9,
                "output_tps": p.get("output_tps"),
                "bytes_per_token": rd.records_path(p["point_id"]).stat().st_size / max(tokens, 1),
                "tokens": tokens,
            }
        )
    return rows


def timed(args: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one speedbench command, in a fresh process."""
    wrap = (
        "import resource, subprocess, sys, time; t = time.monotonic(); "
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
        "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrap, *SPEEDBENCH, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    s, mb, rc = out.stdout.split()
    return float(s), float(mb), int(rc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="small")
    ap.add_argument("--step-ms", type=float, default=1.0, help="emulator iteration time (SD off)")
    ap.add_argument("--keep", type=Path, help="keep the results here (default: a temporary folder, removed)")
    args = ap.parse_args()
    isls, n_tp, n_qual, conc, cap = SCALES[args.scale]
    work = Path(tempfile.mkdtemp(prefix="sb-rehearsal-"))
    try:
        t_all = time.monotonic()
        run_args = (conc, cap, args.step_ms)
        sweeps = [
            sweep(work, f"tp{isl}", {"split": "throughput", "isl": isl, "prompts_per_category": n_tp}, *run_args)
            for isl in isls
        ]
        qual = {"split": "qualitative-mini"}
        sweeps.append(
            sweep(work, "qualitative", qual, *run_args, load={"requests_per_point": n_qual, "allow_repeats": True})
        )
        print(f"# rehearsal, scale {args.scale}: ISLs {isls or '-'}, concurrency {conc}, output cap {cap}")
        print("| sweep | point | CLIENT-BOUND | client CPU | client peak RSS MB | window s | output tok/s | B/token |")
        print("|---|---|---|---|---|---|---|---|")
        for s in sweeps:
            for r in s["points"]:
                cpu = f"{r['client_cpu']:.0%}" if r["client_cpu"] is not None else "n/a"
                print(
                    f"| {s['name']} | {r['point']} | {'YES' if r['client_bound'] else 'no'} | {cpu} | "
                    f"{r['client_rss_mb']:.0f} | {r['window_s']:.1f} | {r['output_tps'] or 0:,.0f} | "
                    f"{r['bytes_per_token']:.2f} |"
                )
        print("\n| sweep | wall s | measured windows s | wall / windows |")
        print("|---|---|---|---|")
        for s in sweeps:
            win = sum(r["window_s"] for r in s["points"])
            print(f"| {s['name']} | {s['wall_s']:.0f} | {win:.0f} | {s['wall_s'] / max(win, 1e-9):.2f} |")
        # merge takes folders measured on the same prompts (one workload from several jobs, as `plan` makes):
        # the first sweep with itself; report each sweep and the merged folder; compare a sweep with it
        merged = work / "merged"
        first = str(sweeps[0]["dir"])
        steps = [(f"report ({s['name']})", ["report", str(s["dir"]), "--format", "md"]) for s in sweeps]
        steps += [
            (f"merge ({sweeps[0]['name']} twice)", ["merge", first, first, "--out", str(merged)]),
            ("report (merged)", ["report", str(merged), "--format", "md"]),
            ("compare (sweep, merged)", ["compare", first, str(merged)]),
        ]
        print("\n| command | s | peak RSS MB | exit |")
        print("|---|---|---|---|")
        for label, cmd in steps:
            s, mb, rc = timed(cmd)
            print(f"| {label} | {s:.1f} | {mb:.0f} | {rc} |")
        print(f"\n(total {time.monotonic() - t_all:.0f} s)")
        if args.keep:
            shutil.copytree(work / "results", args.keep / "results", dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
