-- W2, concurrency limit: n tasks through fdn.Semaphore.new(64); each yields
-- once while holding a permit. The number in flight must reach exactly 64.
--   fdn-lua bench/fdn/w2_limit.lua [n]
local common = dofile(arg[0]:gsub("[^/]*$", "") .. "../lib/common.lua")
local n = common.size(..., 200000)
local limit = 64

if not fdn.Semaphore then
  return common.absent("W2", "fdn.Semaphore not available in this build")
end

local spawn, sleep, now = fdn.spawn, fdn.sleep, fdn.now
local sem = fdn.Semaphore.new(limit)
local in_flight, max_in_flight = 0, 0
local tasks = {}
local t0 = now()
for i = 1, n do
  tasks[i] = spawn(function()
    sem:acquire()
    in_flight = in_flight + 1
    if in_flight > max_in_flight then
      max_in_flight = in_flight
    end
    sleep(0)
    in_flight = in_flight - 1
    sem:release()
    return i
  end)
end
local results = fdn.gather(tasks)
local elapsed = now() - t0
local count, sum, ordered = common.summary(results, n)
common.emit {
  workload = "W2", n = n, elapsed = elapsed, count = count, sum = sum, ordered = ordered,
  limit = limit, max_in_flight = max_in_flight,
}
