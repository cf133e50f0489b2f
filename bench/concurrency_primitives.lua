-- BENCH.md's W2 (200k tasks through a limiter of 64, each yielding once
-- while it holds a permit; max in flight must be exactly 64) and W6 (100k
-- tasks parked on one event, then woken and joined; bytes per parked task),
-- next to W1 (plain spawn + join) measured in the same run as the yardstick.
-- Memory is measured first, in a fresh process. Medians of several rounds.
--   fdn-lua bench/concurrency_primitives.lua [rounds]
local rounds = tonumber((...)) or 5

local function median(t)
  table.sort(t)
  return t[math.ceil(#t / 2)]
end

local function rss_bytes()
  local f = assert(io.open("/proc/self/statm"))
  local _ = f:read("*n")
  local pages = f:read("*n")
  f:close()
  return pages * 4096
end

local function w1(n)
  local tasks = {}
  local t0 = fdn.now()
  for i = 1, n do
    tasks[i] = fdn.spawn(function()
      fdn.sleep(0)
      return i
    end)
  end
  local results = fdn.gather(tasks)
  assert(results[n] == n)
  return n / (fdn.now() - t0)
end

local function w2(n, limit)
  local sem = fdn.Semaphore.new(limit)
  local in_flight, peak = 0, 0
  local tasks = {}
  local t0 = fdn.now()
  for i = 1, n do
    tasks[i] = fdn.spawn(function()
      sem:acquire()
      in_flight = in_flight + 1
      if in_flight > peak then
        peak = in_flight
      end
      fdn.sleep(0)
      in_flight = in_flight - 1
      sem:release()
      return i
    end)
  end
  local results = fdn.gather(tasks)
  local rate = n / (fdn.now() - t0)
  assert(peak == limit and results[n] == n, "limit not held")
  return rate
end

local function w6(n, measure)
  local ev = fdn.Event.new()
  local tasks = {}
  collectgarbage()
  collectgarbage()
  local rss0 = rss_bytes()
  local t0 = fdn.now()
  for i = 1, n do
    tasks[i] = fdn.spawn(function()
      ev:wait()
      return i
    end)
  end
  fdn.sleep(0) -- every task is parked on the event now
  assert(ev:waiting() == n)
  local bytes = measure and (rss_bytes() - rss0) / n
  ev:set()
  local results = fdn.gather(tasks)
  assert(results[n] == n)
  return n / (fdn.now() - t0), bytes
end

local _, bytes = w6(100000, true)
local r1, r2, r6 = {}, {}, {}
for r = 1, rounds do
  r1[r] = w1(200000)
  collectgarbage()
  r2[r] = w2(200000, 64)
  collectgarbage()
  r6[r] = w6(100000)
  collectgarbage()
end
print(string.format("W1 spawn+join (200k):               %9.0f tasks/s", median(r1)))
print(string.format("W2 through a Semaphore(64) (200k):  %9.0f tasks/s", median(r2)))
print(string.format("W6 parked on one Event (100k):      %9.0f tasks/s", median(r6)))
print(string.format("W6 bytes per parked task (RSS, fresh process): %.0f", bytes))
