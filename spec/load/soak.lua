-- luacheck: read globals fdn (a job script: fdn-lua defines it)
--- The soak (make soak): N tasks through fdn-lua, 70% succeed, 20% fail
-- once and are retried by fdn.retry, 10% are cancelled while they wait;
-- at most LIMIT run at once (fdn.Semaphore); every result goes through a
-- fdn.Batcher. Usage: fdn-lua spec/load/soak.lua [N] [LIMIT]
-- Prints one line of key=value figures; exits 1 when a check fails: every
-- count adds up, RSS at the end is within 5 MB of RSS at 100k tasks (N/10
-- for shorter runs), and nothing is left behind (live tasks, task slots,
-- timers, registry entries, permits, queued values).
local core = require "fdn.core"

local N = tonumber(arg[1]) or 1000000
local LIMIT = tonumber(arg[2]) or 1000
local SAMPLE_AT = math.min(100000, math.floor(N / 10))
local RSS_SLACK_KB = 5 * 1024

local function rss_kb()
  collectgarbage("collect")
  collectgarbage("collect")
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * 4
end

local function registry_size()
  local n = 0
  for _ in pairs(debug.getregistry()) do
    n = n + 1
  end
  return n
end

local engine = core.engine_running()
local sem = fdn.Semaphore.new(LIMIT, { name = "soak" })
local delivered, batches = 0, 0
local results = fdn.Batcher.new { name = "soak-results", batch_size = 100, flush_interval = 0.01,
  handler = function(items)
    delivered = delivered + #items
    batches = batches + 1
  end }
local victims = fdn.Queue.new(math.huge, { name = "victims" })

-- The flaky call: its first attempt fails, the retry's second succeeds.
local flaky = fdn.retry { max_attempts = 3, delay = 0.001, name = "soak" }(function(i, st)
  fdn.sleep(0)
  st.tries = st.tries + 1
  if st.tries == 1 then
    error("transient failure of task " .. i)
  end
  return i
end)

local succeeded, retried, cancelled, unexpected = 0, 0, 0, 0
local in_flight, peak = 0, 0

local function body(i, kind)
  in_flight = in_flight + 1
  if in_flight > peak then
    peak = in_flight
  end
  local ok, res = pcall(function()
    if kind == "ok" then
      fdn.sleep(0)
      return i
    elseif kind == "retry" then
      return flaky(i, { tries = 0 })
    end
    victims:put(fdn.current()) -- the canceller cancels it while it waits
    fdn.sleep(3600)
  end)
  in_flight = in_flight - 1
  sem:release()
  if ok then
    if kind == "ok" then
      succeeded = succeeded + 1
    else
      retried = retried + 1
    end
    results:add(res)
  elseif fdn.errors.is(res, fdn.errors.Cancelled) then
    cancelled = cancelled + 1
    error(res, 0) -- ends cancelled, as it was
  else
    unexpected = unexpected + 1
    io.stderr:write("soak: unexpected failure: ", fdn.errors.format(res), "\n")
  end
end

local canceller = fdn.spawn_with({ name = "canceller" }, function()
  for t in victims:iter() do
    t:cancel("soak")
  end
end)

local t0 = fdn.now()
local rss_sample, t_sample, registry_before
for i = 1, N do
  sem:acquire()
  local k = i % 10
  fdn.spawn(body, i, k < 7 and "ok" or k < 9 and "retry" or "victim")
  if i == SAMPLE_AT then
    -- Everything is warm by now (modules loaded, the batcher bound to the
    -- engine, pools filled): from here on nothing may grow.
    rss_sample, t_sample, registry_before = rss_kb(), fdn.now() - t0, registry_size()
  end
end
-- Every permit back means every task has finished.
for _ = 1, LIMIT do
  sem:acquire()
end
for _ = 1, LIMIT do
  sem:release()
end
victims:close()
canceller:join()
results:close()
local wall = fdn.now() - t0
-- Idle flushers linger a few ms before they end.
local deadline = fdn.now() + 2
while engine:stats().live > 1 and fdn.now() < deadline do
  fdn.sleep(0.005)
end
local rss_end = rss_kb()
local stats = engine:stats()
local registry_after = registry_size()
local rstats = fdn.retry.stats(flaky)
local bstats = results:stats()

local n_ok, n_retry, n_victim = 0, 0, 0
for i = 1, N do
  local k = i % 10
  if k < 7 then
    n_ok = n_ok + 1
  elseif k < 9 then
    n_retry = n_retry + 1
  else
    n_victim = n_victim + 1
  end
end
local failures = {}
local function check(ok, what)
  if not ok then
    failures[#failures + 1] = what
  end
end
check(succeeded == n_ok, "succeeded " .. succeeded .. " ~= " .. n_ok)
check(retried == n_retry, "retried " .. retried .. " ~= " .. n_retry)
check(cancelled == n_victim, "cancelled " .. cancelled .. " ~= " .. n_victim)
check(unexpected == 0, "unexpected failures: " .. unexpected)
check(delivered == succeeded + retried and bstats.added == delivered and bstats.failed == 0,
  "batched " .. delivered .. " ~= " .. (succeeded + retried))
check(rstats.calls == n_retry and rstats.retries == n_retry and rstats.failures == 0,
  "retry stats off")
check(peak <= LIMIT, "peak concurrency " .. peak .. " > " .. LIMIT)
check(rss_end - rss_sample <= RSS_SLACK_KB, string.format(
  "RSS grew %d kB from task %d to the end (limit %d kB)", rss_end - rss_sample, SAMPLE_AT,
  RSS_SLACK_KB))
check(stats.live == 1, "live tasks left: " .. (stats.live - 1))
check(stats.slots == 1, "task slots still held: " .. (stats.slots - 1))
check(stats.timers == 0, "timers left armed: " .. stats.timers)
check(registry_after <= registry_before, string.format("registry entries %d -> %d",
  registry_before, registry_after))
check(sem:available() == LIMIT and sem:waiting() == 0, "permits not all back")
check(#victims == 0, "values left in the victims queue")

print(string.format("soak: tasks=%d limit=%d peak=%d wall_s=%.3f tasks_per_s=%.0f "
  .. "succeeded=%d retried=%d cancelled=%d batched=%d batches=%d "
  .. "rss_at_%d_kb=%d rss_end_kb=%d rss_growth_kb=%d live_after=%d slots_after=%d "
  .. "timers_after=%d registry_at_sample=%d registry_after=%d t_at_sample_s=%.3f",
  N, LIMIT, peak, wall, N / wall, succeeded, retried, cancelled, delivered, batches,
  SAMPLE_AT, rss_sample, rss_end, rss_end - rss_sample, stats.live - 1, stats.slots - 1,
  stats.timers, registry_before, registry_after, t_sample))
if #failures > 0 then
  for _, f in ipairs(failures) do
    io.stderr:write("soak: FAIL: ", f, "\n")
  end
  os.exit(1)
end
print("soak: ok")
