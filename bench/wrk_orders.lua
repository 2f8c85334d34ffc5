-- wrk script of the flash-drop benchmark: C clients (one wrk thread each, one keep-alive connection
-- each, like the seed's JMeter threads) send R requests each, one after the other. Every request is
-- POST /orders for the drop by a different buyer, with its own access token and Idempotency-Key.
--
-- Usage: FLASHDROP_TOKENS=<file> FLASHDROP_PER_CLIENT=R [FLASHDROP_START_US=<CLOCK_MONOTONIC us>] \
--        wrk -t C -c C -d <max> -s bench/wrk_orders.lua URL -- R PRODUCT TAG PROGRESS [PATH]
--   FLASHDROP_TOKENS  one access token per line; client t (0-based) uses lines t*R+1 .. t*R+R
--   FLASHDROP_START_US  when the clients send their first request (all connected by then)
--   R         requests per client      PRODUCT  the drop's product id
--   TAG       makes the Idempotency-Keys unique to this run
--   PROGRESS  a file each client appends one byte to per answer (the driver's progress bar)
--   PATH      the request path (default /orders)
--
-- Latencies are timed here (LuaJIT FFI, CLOCK_MONOTONIC) from handing a request to wrk until its
-- answer is parsed: one connection per thread means answers pair with requests. wrk's own
-- histogram is not used because wrk "corrects" it for coordinated omission (synthetic samples for
-- a fixed-rate schedule this closed-loop run never had), which would not be per-request figures.
-- done() prints one line "WRK_RESULT {json}": per-request latency percentiles (us), throughput
-- window, answers by status and error code (from the JSON error body), socket errors.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } flashdrop_timespec;
  int clock_gettime(int clock_id, flashdrop_timespec *tp);
]]
local clock = ffi.new("flashdrop_timespec")

local function now_us()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

-- main state (runs setup for each thread before it starts): hand every client its own R tokens
local threads = {}
local all_tokens = nil

function setup(thread)
  local per_client = tonumber(os.getenv("FLASHDROP_PER_CLIENT"))
  if all_tokens == nil then
    all_tokens = {}
    for line in io.lines(os.getenv("FLASHDROP_TOKENS")) do
      all_tokens[#all_tokens + 1] = line
    end
  end
  local tid = #threads
  local mine = {}
  for i = 1, per_client do
    mine[i] = all_tokens[(tid * per_client + i - 1) % #all_tokens + 1]
  end
  thread:set("tid", tid)
  thread:set("tokens", mine)
  threads[#threads + 1] = thread
end

function init(args)
  quota, product, tag, progress_path = tonumber(args[1]), args[2], args[3], args[4]
  path = args[5] or "/orders"
  start_us = tonumber(os.getenv("FLASHDROP_START_US") or "0")
  body = '{"items":[{"productId":"' .. product .. '","quantity":1}],"paymentToken":"tok_ok"}'
  sent, received, counts, latencies = 0, 0, {}, {}
  first_sent, last_answer, sent_at, armed = 0, 0, 0, false
  progress = io.open(progress_path, "a")
end

-- Called before every request: the first waits for the common start (the drop's opening, on the
-- monotonic clock), so every client is connected and clicks at once; after R a client parks.
function delay()
  if sent >= quota then
    return 3600000
  end
  armed = true -- the request() that follows this delay is a real one
  if sent == 0 and start_us > 0 then
    local wait_ms = (start_us - now_us()) / 1000
    if wait_ms > 0 then
      return math.floor(wait_ms)
    end
  end
  return 0
end

function request()
  if not armed then
    -- wrk calls request() once on the first thread to check its format before any connection
    -- exists; that one is never sent, so it must not count (every real request follows delay()).
    return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
  end
  armed = false
  sent = sent + 1
  sent_at = now_us()
  if sent == 1 then
    first_sent = sent_at
  end
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. tokens[(sent - 1) % #tokens + 1],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = tag .. "-" .. tid .. "-" .. sent,
  }, body)
end

function response(status, headers, resp_body)
  local answered = now_us()
  received = received + 1
  latencies[received] = answered - sent_at
  last_answer = answered
  local key = tostring(status)
  if status >= 300 then
    local code = resp_body and resp_body:match('"code"%s*:%s*"([A-Z_]+)"')
    key = key .. " " .. (code or "-")
  end
  counts[key] = (counts[key] or 0) + 1
  if progress then
    progress:write("x")
    progress:flush()
  end
  if received >= quota then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local merged, all, first, last = {}, {}, nil, 0
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("counts") or {}) do
      merged[k] = (merged[k] or 0) + v
    end
    for _, v in ipairs(thread:get("latencies") or {}) do
      all[#all + 1] = v
    end
    local f, l = thread:get("first_sent"), thread:get("last_answer")
    if f and f > 0 and (first == nil or f < first) then
      first = f
    end
    if l and l > last then
      last = l
    end
  end
  table.sort(all)
  local n, sum = #all, 0
  for _, v in ipairs(all) do
    sum = sum + v
  end
  local function pct(p)
    if n == 0 then
      return 0
    end
    return all[math.min(n, math.max(1, math.ceil(p / 100 * n)))]
  end
  local parts = {}
  for k, v in pairs(merged) do
    parts[#parts + 1] = string.format('"%s": %d', k, v)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"answers": %d, "window_us": %.0f, "wrk_duration_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %.0f, "mean": %.1f, "p50": %.0f, "p90": %.0f, "p99": %.0f, "max": %.0f}, ' ..
    '"counts": {%s}}\n',
    n, (first and last - first or 0), summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    n > 0 and all[1] or 0, n > 0 and sum / n or 0, pct(50), pct(90), pct(99), n > 0 and all[n] or 0,
    table.concat(parts, ", ")))
end
