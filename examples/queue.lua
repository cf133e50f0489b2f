-- A bounded queue between a producer and two consumers: put waits while
-- the queue is full, and closing it lets the consumers drain what is left.
--   fdn-lua examples/queue.lua [jobs]
local jobs = tonumber((...)) or 10
local errors = fdn.errors

local q = fdn.Queue.new(3, { name = "jobs" })
local handled, most_queued = {}, 0

local consumers = {}
for c = 1, 2 do
  consumers[c] = fdn.spawn(function()
    local n = 0
    for job in q:iter() do -- ends once the queue is closed and drained
      fdn.sleep(0.001)
      handled[#handled + 1] = job
      n = n + 1
    end
    return n
  end)
end

for i = 1, jobs do
  q:put(i) -- waits while 3 jobs are queued
  most_queued = math.max(most_queued, q:len())
end
q:close()
local counts = fdn.gather(consumers)
table.sort(handled)
print(string.format("handled %d jobs: %s", counts[1] + counts[2], table.concat(handled, " ")))
print("never more than " .. most_queued .. " queued")

local ok, err = pcall(q.put, q, "late")
print("put after close: " .. (not ok and errors.is(err, errors.Closed) and "Closed" or "?"))
