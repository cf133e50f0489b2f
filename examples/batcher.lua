-- Batching: rows go to a slow sink 25 at a time (or 50 ms after the first
-- row of a batch), one round trip per batch; closing flushes the rest.
-- Then the dataloader pattern: tasks ask for one key each, one handler
-- call answers them all, each caller gets its own result (or error).
--   fdn-lua examples/batcher.lua [rows]
local rows = tonumber((...)) or 110

local sink = fdn.Batcher.new {
  name = "sink", batch_size = 25, flush_interval = 0.05,
  handler = function(batch)
    fdn.sleep(0.01) -- one round trip per batch, not per row
    print(string.format("wrote %d rows (%d..%d)", #batch, batch[1].id, batch[#batch].id))
  end,
}
fdn.with(sink, function(b)
  for i = 1, rows do
    b:add({ id = i })
  end
end) -- leaving fdn.with closes the batcher: the last rows are flushed
local s = sink:stats()
print(string.format("added %d rows in %d batches (%d full, %d at close)", s.added, s.flushed,
  s.reasons.size, s.reasons.close))

local lookups = 0
local users = fdn.Batcher.new {
  name = "users", batch_size = 100, flush_interval = 0, -- flush at the end of this loop turn
  handler = function(ids)
    lookups = lookups + 1
    local found = {}
    for i, id in ipairs(ids) do
      found[i] = id % 7 == 0 and fdn.errors.Error.new("no user " .. id) or ("user-" .. id)
    end
    return found -- one result per id, in order
  end,
}
local function load_user(id)
  return users:add(id):join()
end
local tasks = {}
for id = 1, 10 do
  tasks[id] = fdn.spawn(function()
    local ok, user = fdn.try(load_user, id)
    return ok and user or ("error: " .. user.message)
  end)
end
local answers = fdn.gather(tasks)
users:close()
print(string.format("%d lookups answered by %d handler call: %s", #answers, lookups,
  table.concat(answers, ", ", 6, 8)))
