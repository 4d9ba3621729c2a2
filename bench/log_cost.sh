#!/usr/bin/env bash
# What the decision log costs under load, as ratios taken in one run: the machine's speed drifts
# between runs by more than the log costs, so log off, `best-effort` and `required` are run
# interleaved, ROUNDS times each, with bench/load_test.sh's settings (2 workers, 32 connections).
# TMPFS=1 adds `required` with the log on tmpfs (/dev/shm: fdatasync returns at once), which
# separates what the disk costs from what the code costs. Needs wrk, as load_test.sh does.
#
#   bench/log_cost.sh                          # 3 rounds × 15 s per mode
#   ROUNDS=2 DURATION=10s TMPFS=1 bench/log_cost.sh
#   CONNECTIONS=64 bench/log_cost.sh           # any load_test.sh setting passes through
#   WARMUP=0 bench/log_cost.sh                 # no warm-up run (default: one of 10 s, not counted)
#
# Prints every run's RESULT line, then per mode: the mean decisions/s, the ratio to log off, the
# worst p99 and the mean server CPU per decision.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
export DURATION=${DURATION:-15s}
modes=(off best-effort required)
[[ "${TMPFS:-0}" == 1 ]] && modes+=(required-tmpfs)
if [[ "${TMPFS:-0}" == 1 && ! -d /dev/shm ]]; then
  echo "log_cost.sh: TMPFS=1 needs /dev/shm" >&2; exit 2
fi

disk_dir=$(mktemp -d /tmp/aftersale-log-cost.XXXXXX)
shm_dir=""
[[ "${TMPFS:-0}" == 1 ]] && shm_dir=$(mktemp -d /dev/shm/aftersale-log-cost.XXXXXX)
results=$(mktemp /tmp/aftersale-log-cost.XXXXXX.txt)
trap 'rm -rf "$disk_dir" "$results" ${shm_dir:+"$shm_dir"}' EXIT

# the first run after the machine was idle is the slowest (log off, three 10-s runs in a row:
# 7,801 / 8,359 / 8,377 decisions/s, 221 / 205 / 205 µs of server CPU per decision): one run at
# the start is thrown away, or the mode run first would carry that
if [[ "${WARMUP:-10s}" != 0 ]]; then
  DURATION=${WARMUP:-10s} QUIET=1 REPEAT=1 bench/load_test.sh > /dev/null
fi
for round in $(seq "$ROUNDS"); do
  for mode in "${modes[@]}"; do
    settings=()
    case $mode in
      off) ;;
      best-effort) settings=(DECISION_LOG="$disk_dir/d.jsonl" DECISION_LOG_MODE=best-effort) ;;
      required) settings=(DECISION_LOG="$disk_dir/d.jsonl" DECISION_LOG_MODE=required) ;;
      required-tmpfs) settings=(DECISION_LOG="$shm_dir/d.jsonl" DECISION_LOG_MODE=required) ;;
    esac
    line=$(env "${settings[@]}" QUIET=1 REPEAT=1 bench/load_test.sh | grep '^RESULT')
    rm -f "$disk_dir"/d.jsonl* ${shm_dir:+"$shm_dir"/d.jsonl*}
    echo "round $round $mode: $line"
    echo "$mode $line" >> "$results"
  done
done

echo "SUMMARY (${ROUNDS} rounds × ${DURATION}, interleaved)"
awk '
  { mode = $1
    for (i = 2; i <= NF; i++) {
      split($i, kv, "=")
      if (kv[1] == "decisions/s") { sum[mode] += kv[2]; n[mode]++ }
      if (kv[1] == "p99_ms" && kv[2] + 0 > worst[mode]) worst[mode] = kv[2] + 0
      if (kv[1] == "server_cpu_us_per_decision") cpu[mode] += kv[2]
    }
    if (!(mode in seen)) { seen[mode] = 1; order[++count] = mode }
  }
  END {
    base = sum["off"] / n["off"]
    for (i = 1; i <= count; i++) {
      m = order[i]; mean = sum[m] / n[m]
      printf "%-15s %7.0f decisions/s  %5.1f %% of log off  worst p99 %5.2f ms  %4.0f µs server CPU per decision\n",
             m, mean, 100 * mean / base, worst[m], cpu[m] / n[m]
    }
  }' "$results"
