-- wrk script for bench/run.py: POST the JSON body in $BENCH_BODY; with $BENCH_MAX_PER_THREAD > 0 each
-- thread stops after that many responses (wrk's -d stays the time bound). done() prints one line,
-- "WRKJSON {...}", with the counts and latency percentiles (microseconds).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")

local limit = tonumber(os.getenv("BENCH_MAX_PER_THREAD") or "0") or 0
if limit > 0 then
  -- Defined only when needed: a response() hook makes wrk hand every response to Lua.
  local seen = 0
  function response(status, headers, body)
    seen = seen + 1
    if seen == limit then
      -- Stopping a thread does not end wrk before -d: bench/run.py sends SIGINT once all have said so.
      io.write("WRKSTOP\n")
      io.stdout:flush()
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local function us(p)
    return math.floor(latency:percentile(p))
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "status_errors": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, us(50), us(90), us(99), math.floor(latency.max),
    e.status, e.connect, e.read, e.write, e.timeout))
end
