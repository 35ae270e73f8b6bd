-- wrk script for load-test.sh: GET paths drawn Zipf(s) from a file, one path a line, most
-- popular first. Arguments (after wrk's --): PATHS_FILE [S] [SEED].
-- Every loop is bounded: by the file's lines, by the path count, or by log2 of it.

local paths = {}
local cdf = {}
local thread_counter = 0

function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("thread_number", thread_counter)
end

function init(args)
  local file = args[1]
  local s = tonumber(args[2] or "1.1")
  local seed = tonumber(args[3] or "24301")
  for line in io.lines(file) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  if #paths == 0 then error("no paths in " .. tostring(file)) end
  local total = 0
  for k = 1, #paths do
    total = total + 1 / (k ^ s)
    cdf[k] = total
  end
  for k = 1, #paths do cdf[k] = cdf[k] / total end
  math.randomseed(seed + 7919 * (thread_number or 0))
end

function request()
  local u = math.random()
  local lo, hi = 1, #paths
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return wrk.format("GET", paths[lo])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d p999_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
