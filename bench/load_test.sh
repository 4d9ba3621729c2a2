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
#   NOFILE=1024 SLOWLORIS=3000 bench/load_test.sh   # server open-file limit 1024, 3000 unfinished
#                                           # connections held by bench/slowloris.py during the run
#   DECISION_LOG_MODE=best-effort DECISION_LOG=/tmp/d.jsonl bench/load_test.sh
#   KILL_AFTER=4 bench/load_test.sh         # SIGKILL one worker 4 s into the run
#   RELOAD_EVERY=0.6 bench/load_test.sh     # POST /admin/reload every 0.6 s (100 a minute) meanwhile
#                                           # (RELOAD_TOUCH=comment|message|condition: and edit the newest
#                                           # policy file before each trigger; needs RULES= a copy of rules/):
#                                           #   comment   its last (comment) line rewritten (1 means this)
#                                           #   message   a deny message rewritten (a declared rule of that version)
#                                           #   condition limits.tracking_fixes set to a value not used before in the
#                                           #             run (a rule's condition compares with it: the cross-check
#                                           #             must run again each time)
#                                           # Prints a RELOADS line: triggers, answers by status, HTTP codes,
#                                           # reloads run, generation
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
[[ -n "${DECISION_LOG_MODE:-}" ]] && args+=(--decision-log-mode "$DECISION_LOG_MODE")
[[ "${OFFLOAD:-0}" == 1 ]] && export AFTERSALE_SERVE_OFFLOAD=1
export AFTERSALE_SERVE_ADMIN_TOKEN=${AFTERSALE_SERVE_ADMIN_TOKEN:-bench-token}
limit=()
[[ -n "${NOFILE:-}" ]] && limit=(prlimit "--nofile=$NOFILE:$NOFILE" --)
"${limit[@]}" "$PYTHON" -m engine.cli.main "${args[@]}" 2>"$log" &
server=$!
helpers=()
cleanup() {
  for pid in "${helpers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"
}
trap cleanup EXIT

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
if [[ -n "${SLOWLORIS:-}" ]]; then
  "$PYTHON" bench/slowloris.py "$url" --connections "$SLOWLORIS" --seconds 3600 > /tmp/slowloris.$$.log &
  helpers+=($!)
  sleep "${SLOWLORIS_RAMP:-8}"   # let it open its connections first
  tail -1 /tmp/slowloris.$$.log
fi
if [[ -n "${RELOAD_EVERY:-}" ]]; then
  reloads=$(mktemp -d /tmp/aftersale-reloads.XXXXXX)
  touch_kind=${RELOAD_TOUCH:-0}
  [[ "$touch_kind" == 1 ]] && touch_kind=comment
  case "$touch_kind" in
    0|comment|message|condition) ;;
    *) echo "load_test.sh: RELOAD_TOUCH must be comment, message or condition (1 = comment)" >&2; exit 2 ;;
  esac
  if [[ "$touch_kind" != 0 && -z "${RULES:-}" ]]; then
    echo "load_test.sh: RELOAD_TOUCH edits policy files: give RULES= a copy of rules/" >&2; exit 2
  fi
  f=$(ls "${RULES:-rules}"/*.yaml | tail -1)
  # each edit keeps the policy valid (the rule and the limit are declared changes of the newest
  # version, 2024-05-31) and removes no version; a kind whose target is missing stops the run here
  message_line='^\(      message: 帮买家修改退货物流的机会已用完\).*$'
  limit_line='^\(  tracking_fixes: {value: \)[0-9]*'
  case "$touch_kind" in
    comment) echo "# reload 0" >> "$f" ;;
    message) grep -q "$message_line" "$f" || { echo "load_test.sh: no '$message_line' in $f" >&2; exit 2; } ;;
    condition) grep -q "$limit_line" "$f" || { echo "load_test.sh: no '$limit_line' in $f" >&2; exit 2; } ;;
  esac
  (
    n=0 t=0
    while true; do
      n=$((n + 1))
      case "$touch_kind" in
        comment) sed -i '$d' "$f"; echo "# reload $n" >> "$f" ;;              # the last (comment) line
        message) sed -i "s/$message_line/\1（修订 $n）/" "$f" ;;                # the text a merchant reads
        condition) sed -i "s/$limit_line/\1$((2 + n))/" "$f" ;;                # what a condition compares with
      esac
      # in the background: the triggers keep their rate even when a reload takes longer than the interval;
      # each answer body kept (its "status": reloaded / unchanged / ...) for the RELOADS line
      t=$((t + 1)); echo "$t" >> "$reloads/sent"
      curl -s -o "$reloads/$t.body" --max-time 120 -w '%{http_code}\n' -X POST \
        -H "Authorization: Bearer $AFTERSALE_SERVE_ADMIN_TOKEN" "$url/admin/reload" >> "$reloads/codes" &
      sleep "$RELOAD_EVERY"
    done
  ) &
  helpers+=($!)
fi
if [[ -n "${KILL_AFTER:-}" ]]; then
  ( sleep "$KILL_AFTER"; victim=$(curl -s -H 'connection: close' "$url/readyz" | grep -o '"pid":[0-9]*' | cut -d: -f2)
    kill -KILL "$victim" && echo "KILLED worker $victim at ${KILL_AFTER}s" ) &
  helpers+=($!)
fi
# CPU seconds used so far by the server and its workers: on a shared machine, CPU per decision
# moves much less with the other load than decisions/s do
server_cpu() {
  local ticks=0 pid
  for pid in $server $(pgrep -P "$server" || true); do
    [[ -r /proc/$pid/stat ]] && ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$ticks"
}
hz=$(getconf CLK_TCK)
for run in $(seq "${REPEAT:-1}"); do
  before=$(server_cpu)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/decide.lua "$url")
  used=$(( $(server_cpu) - before ))
  [[ "${QUIET:-0}" == 1 ]] || echo "$out" | grep -v '^RESULT'
  result=$(echo "$out" | grep '^RESULT')
  requests=$(echo "$result" | grep -o 'requests=[0-9]*' | cut -d= -f2)
  echo "$result server_cpu_us_per_decision=$(( used * 1000000 / hz / (requests * ${ITEMS:-1}) )) load=$(cut -d' ' -f1 /proc/loadavg)"
done
if [[ -n "${RELOAD_EVERY:-}" ]]; then
  # per trigger: its answer's status (a trigger that came while a reload ran shares the follow-up
  # reload and hears its outcome); per reload run (the server's counter): how many moved the
  # generation, and the generation now served
  answers=$(cat "$reloads"/*.body 2>/dev/null | grep -o '"status": *"[a-z]*"' | sed 's/.*"\([a-z]*\)"$/\1/' | sort | uniq -c \
            | awk '{printf "%s=%s ", $2, $1}')
  sent=$(wc -l < "$reloads/sent" 2>/dev/null || echo 0)
  answered=$(wc -l < "$reloads/codes" 2>/dev/null || echo 0)
  runs=$(curl -s "$url/metrics" | grep '^aftersale_reloads_total{' | sed 's/aftersale_reloads_total{outcome="\([a-z]*\)"} \([0-9.]*\)/\1=\2/' \
         | awk -F= '{printf "%s=%d ", $1, $2}')
  generation=$(curl -s -H "Authorization: Bearer $AFTERSALE_SERVE_ADMIN_TOKEN" "$url/readyz" | grep -o '"generation": *[0-9]*' | head -1 | grep -o '[0-9]*$')
  echo "RELOADS triggers=$sent answered=$answered answers: ${answers}http: $(sort "$reloads/codes" 2>/dev/null | uniq -c | awk '{printf "%s×%s ", $2, $1}')runs: ${runs}generation=$generation"
  rm -rf "$reloads"
fi
if [[ -n "${SLOWLORIS:-}" ]]; then
  kill -TERM "${helpers[0]}"; wait "${helpers[0]}" 2>/dev/null || true
  tail -1 /tmp/slowloris.$$.log; rm -f /tmp/slowloris.$$.log
fi
