-- A TaskPool runs jobs on a fixed set of workers. submit waits while the
-- queue is full (backpressure), results come back in submission order,
-- and a failing job does not take its worker down.
--   fdn-lua examples/task_pool.lua [jobs]
local jobs = tonumber((...)) or 8

local pool = fdn.TaskPool.new { pool_size = 2, queue_size = 2, name = "thumbnails" }
local waited = 0
for i = 1, jobs do
  local before = fdn.now()
  pool:submit(function()
    fdn.sleep(0.001)
    if i == 3 then
      error("image " .. i .. " is corrupt", 0)
    end
    return "thumb-" .. i
  end)
  if fdn.now() > before then
    waited = waited + 1 -- submit had to wait for room
  end
end
local results = pool:gather_results { return_errors = true }
print("results: " .. table.concat(results, ", "))
print("submits that waited for room: " .. (waited > 0 and "some" or "none"))
pool:close()
local ok = pcall(pool.submit, pool, print)
print("submit after close: " .. (ok and "accepted" or "refused"))
