-- W6, parked tasks: n tasks park on one fdn.Event; once all are parked the
-- event is set and all are joined. Memory is read while all are parked.
--   fdn-lua bench/fdn/w6_parked.lua [n]
local common = dofile(arg[0]:gsub("[^/]*$", "") .. "../lib/common.lua")
local n = common.size(..., 100000)

if not fdn.Event then
  return common.absent("W6", "fdn.Event not available in this build")
end

local spawn, sleep, now = fdn.spawn, fdn.sleep, fdn.now
local event = fdn.Event.new()
local parked, woke_unset, is_set = 0, 0, false
local tasks = {}
common.settle()
local rss0 = common.rss()
local t0 = now()
for i = 1, n do
  tasks[i] = spawn(function()
    parked = parked + 1
    event:wait()
    if not is_set then
      woke_unset = woke_unset + 1
    end
    return i
  end)
end
while parked < n do
  sleep(0)
end
local rss_growth = common.rss() - rss0
local parked_at_set = parked
is_set = true
event:set()
local results = fdn.gather(tasks)
local elapsed = now() - t0
local count, sum, ordered = common.summary(results, n)
common.emit {
  workload = "W6", n = n, elapsed = elapsed, count = count, sum = sum, ordered = ordered,
  parked_at_set = parked_at_set, woke_unset = woke_unset, rss_growth = rss_growth,
}
