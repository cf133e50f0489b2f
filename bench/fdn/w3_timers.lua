-- W3, timers: n concurrent tasks each sleep 1-10 ms (the same sequence in
-- every peer); wait for all. Memory is read once every task is asleep.
--   fdn-lua bench/fdn/w3_timers.lua [n]
local common = dofile(arg[0]:gsub("[^/]*$", "") .. "../lib/common.lua")
local n = common.size(..., 100000)

local spawn, sleep, now = fdn.spawn, fdn.sleep, fdn.now
local d = common.durations(n)
local started, early = 0, 0
local tasks = {}
common.settle()
local rss0 = common.rss()
local t0 = now()
for i = 1, n do
  tasks[i] = spawn(function()
    started = started + 1
    local s = d[i] / 1000
    local t = now()
    sleep(s)
    if now() - t < s - 0.001 then
      early = early + 1
    end
    return d[i]
  end)
end
while started < n do
  sleep(0)
end
local rss_growth = common.rss() - rss0
local results = fdn.gather(tasks)
local elapsed = now() - t0
local count, sum = common.summary(results, n)
common.emit {
  workload = "W3", n = n, elapsed = elapsed, count = count, sum = sum, early = early,
  rss_growth = rss_growth,
}
