-- A ConcurrentExecutor maps a function over many items, a few at a time,
-- with results in input order. Items can come from an iterator, pulled
-- only as workers free up.
--   fdn-lua examples/concurrent_executor.lua [items]
local n = tonumber((...)) or 6

local ex = fdn.ConcurrentExecutor.new { max_workers = 3, name = "resize" }
local items = {}
for i = 1, n do
  items[i] = i
end
local progress = {}
local sizes = ex:map(function(item)
  fdn.sleep(0.001 * (item % 3 + 1))
  return item * 100
end, items, {
  progress_callback = function(completed, total)
    progress[#progress + 1] = completed .. "/" .. total
  end,
})
print("results: " .. table.concat(sizes, " "))
print("progress: " .. table.concat(progress, " "))

-- A stream: 100000 items, never held in memory at once.
local next_line, sum = 0, 0
local results = ex:map(function(x)
  sum = sum + x
end, function()
  if next_line < 100000 then
    next_line = next_line + 1
    return next_line
  end
end)
print(string.format("streamed %d items, sum %d", results.n, sum))

local mixed = ex:map(function(x)
  if x == 2 then
    error("bad input " .. x, 0)
  end
  return x
end, { 1, 2, 3 }, { return_errors = true })
print("with return_errors: " .. table.concat(mixed, ", "))
