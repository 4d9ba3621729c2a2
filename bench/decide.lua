-- wrk script: POST /v1/decide with request bodies taken in turn from bench/decide_bodies.jsonl
-- (one JSON body per line), and a summary line with decisions/s, p50, p99 and error counts.
--   wrk -t2 -c32 -d20s --latency -s bench/decide.lua http://127.0.0.1:PORT
local bodies = {}
local path = os.getenv("BODIES") or "bench/decide_bodies.jsonl"
for line in io.lines(path) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
assert(#bodies > 0, "no request bodies in " .. path)

-- ITEMS: decisions per request (the batch endpoint answers several per request)
local items = tonumber(os.getenv("ITEMS") or "1")
local counter = 0
local endpoint = os.getenv("ENDPOINT") or "/v1/decide"
local headers = { ["Content-Type"] = "application/json" }
-- CLOSE=1: a new connection per request (wrk reconnects), so every request also goes through accept()
if os.getenv("CLOSE") == "1" then headers["Connection"] = "close" end

-- Every request is formatted once, here, not per call: wrk.format and a `response` callback
-- (which makes wrk hand each 5 KB response body to Lua) cost wrk about 40 µs of CPU per request,
-- CPU the server on the same 2 cores then lacks. wrk counts non-2xx responses itself
-- (summary.errors.status), so no callback is needed.
local requests = {}
for i, body in ipairs(bodies) do
  requests[i] = wrk.format("POST", endpoint, headers, body)
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    "RESULT decisions/s=%.0f requests=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "socket_errors=%d non2xx=%d seconds=%.1f (connect=%d read=%d write=%d timeout=%d)\n",
    summary.requests * items / seconds, summary.requests,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, errors.connect + errors.read + errors.write + errors.timeout,
    errors.status, seconds, errors.connect, errors.read, errors.write, errors.timeout))
end
