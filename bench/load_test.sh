#!/usr/bin/env bash
# Load test of the HTTP decision service: `aftersale serve` with 2 workers, wrk at a fixed
# concurrency POSTing /v1/decide bodies (bench/decide_bodies.jsonl) through bench/decide.lua.
# Needs wrk (`apt-get install -y wrk`). Prints wrk's report and one RESULT line.
#
#   bench/load_test.sh                      # 2 workers, 32 connections, 2 threads, 20 s
#   WORKERS=1 CONNECTIONS=16 DURATION=10s bench/load_test.sh
#   DECISION_LOG=/tmp/decisions.jsonl bench/load_test.sh     # with the decision log on
#   OFFLOAD=1 bench/load_test.sh            # engine calls in the threadpool (for comparison)
#   RULES=/path/to/rules bench/load_test.sh # another policy directory (default: the bundled rules/)
#   BATCH=1 bench/load_test.sh              # POST /v1/decide/batch, 20 decisions per request
#   REPEAT=3 bench/load_test.sh             # the same run 3 times on one server (the CPU is shared: look at the spread)
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-2}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
DURATION=${DURATION:-20s}
PYTHON=${PYTHON:-.venv/bin/python}

command -v wrk >/dev/null || { echo "load_test.sh: wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }

log=$(mktemp /tmp/aftersale-serve.XXXXXX.log)
args=(serve --port 0 --workers "$WORKERS" --log-level warning --poll 0)
[[ -n "${RULES:-}" ]] && args+=(--rules "$RULES")
[[ -n "${DECISION_LOG:-}" ]] && args+=(--decision-log "$DECISION_LOG")
[[ "${OFFLOAD:-0}" == 1 ]] && export AFTERSALE_SERVE_OFFLOAD=1
"$PYTHON" -m engine.cli.main "${args[@]}" 2>"$log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT

url=""
for _ in $(seq 100); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*' "$log" | head -1 || true)
  [[ -n "$url" ]] && break
  sleep 0.1
done
[[ -n "$url" ]] || { echo "server did not start:" >&2; cat "$log" >&2; exit 1; }
# every worker must be up: ask until /readyz answers from $WORKERS distinct processes
for _ in $(seq 200); do
  pids=$(for _ in $(seq $((WORKERS * 4))); do curl -s "$url/readyz" | grep -o '"pid":[0-9]*'; done | sort -u | wc -l)
  [[ "$pids" -ge "$WORKERS" ]] && break
  sleep 0.1
done

echo "server $url, workers $WORKERS; wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
curl -s -X POST "$url/v1/decide" -H 'Content-Type: application/json' -d "$(head -1 bench/decide_bodies.jsonl)" \
  | "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print("warm-up decision:", d["policy"]["version"], d["decision_id"])'
if [[ "${BATCH:-0}" == 1 ]]; then
  export ENDPOINT=/v1/decide/batch BODIES=bench/decide_batch_bodies.jsonl ITEMS=20
fi
for run in $(seq "${REPEAT:-1}"); do
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/decide.lua "$url" | { [[ "${QUIET:-0}" == 1 ]] && grep RESULT || cat; }
done
