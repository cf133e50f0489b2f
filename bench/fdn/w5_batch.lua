-- W5, batching: n items pushed into an fdn.Batcher (batches of 100, a 5 ms
-- flush timer); the handler counts items and checks that each batch
-- continues where the last one ended; the producer yields every 1000
-- items; leaving fdn.with closes the batcher, which flushes and waits.
--   fdn-lua bench/fdn/w5_batch.lua [n]
local common = dofile(arg[0]:gsub("[^/]*$", "") .. "../lib/common.lua")
local n = common.size(..., 1000000)

if not fdn.Batcher then
  return common.absent("W5", "fdn.Batcher not available in this build")
end

local items, batches, broken, last = 0, 0, 0, 0
local function handler(batch)
  local size = #batch
  if batch[1] ~= last + 1 or batch[size] ~= last + size then
    broken = broken + 1
  end
  last = batch[size]
  items = items + size
  batches = batches + 1
end

local sleep, now = fdn.sleep, fdn.now
local t0 = now()
fdn.with(fdn.Batcher.new { batch_size = 100, flush_interval = 0.005, handler = handler }, function(b)
  for i = 1, n do
    b:add(i)
    if i % 1000 == 0 then
      sleep(0)
    end
  end
end)
local elapsed = now() - t0
common.emit {
  workload = "W5", n = n, elapsed = elapsed, count = items, batches = batches, broken = broken,
  last = last,
}
