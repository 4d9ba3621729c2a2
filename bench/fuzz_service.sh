#!/usr/bin/env bash
# On-demand fuzz of the HTTP service (the CI suite runs a small one: tests/test_service_contract.py):
# `aftersale serve` with 2 workers, schemathesis generating requests for every operation of its
# /openapi.json (valid and invalid data, boundary values), the check being "no 5xx". Afterwards the
# server log is searched for tracebacks. Prints schemathesis' summary and one RESULT line.
#
#   bench/fuzz_service.sh                    # ~10,000 requests (EXAMPLES=850 per operation)
#   EXAMPLES=100 bench/fuzz_service.sh       # a quick one; FUZZ_WORKERS=4: concurrent schemathesis workers
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-2}
EXAMPLES=${EXAMPLES:-850}
PYTHON=${PYTHON:-.venv/bin/python}
ST=${ST:-$(dirname "$PYTHON")/st}

log=$(mktemp /tmp/aftersale-fuzz.XXXXXX.log)
"$PYTHON" -m engine.cli.main serve --port 0 --workers "$WORKERS" --log-level warning --poll 0 2>"$log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT

url=""
for _ in $(seq 100); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*' "$log" | head -1 || true)
  [[ -n "$url" ]] && break
  sleep 0.1
done
[[ -n "$url" ]] || { echo "server did not start:" >&2; cat "$log" >&2; exit 1; }
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done

report=$(mktemp /tmp/aftersale-fuzz.XXXXXX.txt)
set +e
# /admin/reload is left out: each call reloads the rules (seconds of CPU), which is not the point here
"$ST" run "$url/openapi.json" --checks not_a_server_error --max-examples "$EXAMPLES" --workers "${FUZZ_WORKERS:-4}" \
  --phases examples,coverage,fuzzing --exclude-path /admin/reload --generation-deterministic \
  --suppress-health-check all --no-color 2>&1 | tee "$report" | tail -25
status=${PIPESTATUS[0]}
set -e
cases=$(grep -o '[0-9]* generated' "$report" | grep -o '[0-9]*' | tail -1)
failures=$(grep -c 'Server error' "$report" || true)
tracebacks=$(grep -c 'Traceback' "$log" || true)
if [[ "$status" != 0 || "$tracebacks" != 0 ]]; then  # say what failed: the failing requests, the server's tracebacks
  sed -n '/FAILURES/,/SUMMARY/p' "$report"
  grep -A40 'Traceback' "$log" | head -200 || true
fi
echo "RESULT requests=${cases:-0} server_errors=$failures tracebacks_in_server_log=$tracebacks schemathesis_exit=$status"
rm -f "$report"
[[ "$status" == 0 && "$tracebacks" == 0 ]]
