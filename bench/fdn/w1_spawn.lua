-- W1, spawn + join: n tasks, each yields once to the scheduler and returns
-- its index; fdn.gather collects them in input order.
--   fdn-lua bench/fdn/w1_spawn.lua [n]
local common = dofile(arg[0]:gsub("[^/]*$", "") .. "../lib/common.lua")
local n = common.size(..., 200000)

local spawn, sleep, now = fdn.spawn, fdn.sleep, fdn.now
local tasks = {}
local t0 = now()
for i = 1, n do
  tasks[i] = spawn(function()
    sleep(0)
    return i
  end)
end
local results = fdn.gather(tasks)
local elapsed = now() - t0
local count, sum, ordered = common.summary(results, n)
common.emit { workload = "W1", n = n, elapsed = elapsed, count = count, sum = sum, ordered = ordered }
