-- W0, switch cost: the main task yields to the scheduler n times, alone,
-- so each fdn.sleep(0) is one suspend/resume round trip through the core.
--   fdn-lua bench/fdn/w0_switch.lua [n]
local common = dofile(arg[0]:gsub("[^/]*$", "") .. "../lib/common.lua")
local n = common.size(..., 1000000)

local sleep, now = fdn.sleep, fdn.now
local count = 0
local t0 = now()
for _ = 1, n do
  count = count + 1
  sleep(0)
end
local elapsed = now() - t0
common.emit { workload = "W0", n = n, elapsed = elapsed, count = count }
