-- bench.lua — the wrk script of bench/run_bench.py: GETs and/or PUTs over
-- a list of request targets (presigned kura URLs or plain nginx paths).
--
-- Arguments (after wrk's "--"):
--   GET_LIST PUT_LIST PUT_FRACTION BODY_BYTES
-- GET_LIST / PUT_LIST: files of request targets, one per line, or "-"
-- PUT_FRACTION: 0 = only GETs, 1 = only PUTs, 0.2 = 20 % PUTs chosen at
--   random per request
-- BODY_BYTES: size of every PUT body
--
-- Each wrk thread has its own Lua state, so each builds its own payload.
-- PUT requests are formatted once per target and kept (wrk.format copies
-- the whole body: per request, that made wrk spend more CPU building
-- 64 MiB bodies than the servers spent storing them); when the targets'
-- bodies would exceed CACHE_BYTES per thread, only as many targets as fit
-- are used.  Threads start at different offsets of the lists so that
-- two threads do not hammer the same object in lockstep.  done() prints
-- one WRKJSON line with exact counts, which run_bench.py parses instead of
-- wrk's rounded human summary.

local function readlist(path)
  local t = {}
  if path == nil or path == "-" then return t end
  for line in io.lines(path) do
    if #line > 0 then t[#t + 1] = line end
  end
  return t
end

local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local gets, puts, frac, payload, i
local CACHE_BYTES = 512 * 1024 * 1024
local put_reqs = {}

function init(args)
  gets = readlist(args[1])
  puts = readlist(args[2])
  frac = tonumber(args[3]) or 0
  local size = tonumber(args[4]) or 0
  if #puts > 0 and frac > 0 then
    payload = string.rep("k", size)
    local fit = math.max(1, math.floor(CACHE_BYTES / math.max(size, 1)))
    while #puts > fit do table.remove(puts) end
  end
  local t = tonumber(tid) or 0
  i = t * 7919
  math.randomseed(12345 + t)
end

function request()
  i = i + 1
  local put
  if frac >= 1 then
    put = true
  elseif frac <= 0 then
    put = false
  else
    put = math.random() < frac
  end
  if put then
    local k = (i % #puts) + 1
    local r = put_reqs[k]
    if r == nil then
      r = wrk.format("PUT", puts[k], nil, payload)
      put_reqs[k] = r
    end
    return r
  end
  return wrk.format("GET", gets[(i % #gets) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
