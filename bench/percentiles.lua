-- wrk's --latency stops at p99; this prints one machine-readable line with p99.9 too.
-- Usage: wrk -s bench/percentiles.lua ... URL
-- With BENCH_PATHS set (paths separated by spaces), each connection's requests go to those
-- paths in turn instead of the URL's path. BENCH_HEADER ("name: value") adds a header to each.
local header = os.getenv("BENCH_HEADER")
if header then
  local name, value = header:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end
local paths = {}
for path in (os.getenv("BENCH_PATHS") or ""):gmatch("%S+") do
  paths[#paths + 1] = path
end
if #paths > 0 then
  local sent = 0
  request = function()
    sent = sent + 1
    return wrk.format(nil, paths[(sent - 1) % #paths + 1])
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "wrk-result rps=%.2f p50_ms=%.4f p99_ms=%.4f p999_ms=%.4f socket_errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
