-- wrk script of the flash-drop benchmark: every request is POST /orders for one drop by a different
-- buyer, with its own access token and its own Idempotency-Key, like a crowd clicking "buy" once each.
-- Exactly QUOTA requests per thread: each connection sends its next request when the answer arrives
-- (closed loop), until the thread has sent its quota.
-- Usage: wrk -t T -c C ... -s bench/wrk_orders.lua URL -- TOKENS T QUOTA PRODUCT TAG PROGRESS_PREFIX [PATH]
--   TOKENS   a file with one access token per line; thread t (of T) uses lines t, t+T, t+2T, ...
--   QUOTA    responses this thread waits for before it stops (its connections x requests each)
--   PRODUCT  the drop's product id          TAG  makes the Idempotency-Keys unique to this run
--   PROGRESS_PREFIX  each thread writes its response count to PROGRESS_PREFIX<t> now and then
--   PATH     the request path (default /orders)
-- done() prints one line "WRK_RESULT {json}": latency percentiles (us), counts by status and error
-- code (from the JSON error body), socket errors, duration.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local tokens_file, stride = args[1], tonumber(args[2])
  quota, product, tag, progress_prefix = tonumber(args[3]), args[4], args[5], args[6]
  path = args[7] or "/orders"
  tokens = {}
  local i = 0
  for line in io.lines(tokens_file) do
    if i % stride == tid then
      tokens[#tokens + 1] = line
    end
    i = i + 1
  end
  body = '{"items":[{"productId":"' .. product .. '","quantity":1}],"paymentToken":"tok_ok"}'
  scheduled, sent, received, counts = 0, 0, 0, {}
end

local function progress()
  local f = io.open(progress_prefix .. tid, "w")
  if f then
    f:write(received)
    f:close()
  end
end

-- Called before every request: once this thread has scheduled its quota, its connections park (an
-- hour's delay) instead of sending more, so exactly QUOTA requests leave this thread.
function delay()
  if scheduled >= quota then
    return 3600000
  end
  scheduled = scheduled + 1
  return 0
end

function request()
  sent = sent + 1
  local token = tokens[(sent - 1) % #tokens + 1]
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = tag .. "-" .. tid .. "-" .. sent,
  }, body)
end

function response(status, headers, resp_body)
  received = received + 1
  local key = tostring(status)
  if status >= 300 then
    local code = resp_body and resp_body:match('"code"%s*:%s*"([A-Z_]+)"')
    key = key .. " " .. (code or "-")
  end
  counts[key] = (counts[key] or 0) + 1
  if received % 50 == 0 or received >= quota then
    progress()
  end
  if received >= quota then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts") or {}
    for k, v in pairs(c) do
      merged[k] = (merged[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(merged) do
    parts[#parts + 1] = string.format('"%s": %d', k, v)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}, ' ..
    '"counts": {%s}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", ")))
end
