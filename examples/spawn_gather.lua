-- Fan out work to concurrent tasks and gather the results in order.
--   fdn-lua examples/spawn_gather.lua [count]
local count = tonumber((...)) or 5

local function fetch(i)
  -- Later items finish first: gather still returns them in input order.
  fdn.sleep(0.002 * (count - i + 1))
  return string.format("item-%d", i)
end

local tasks = {}
for i = 1, count do
  tasks[i] = fdn.spawn(fetch, i)
end
local results = fdn.gather(tasks)
print("gathered: " .. table.concat(results, ", "))

-- A failing task cancels its siblings; return_errors keeps them all.
local mixed = fdn.gather({
  fdn.spawn(function() return "ok" end),
  fdn.spawn(function() error("upstream unavailable", 0) end),
}, { return_errors = true })
print("with errors: " .. mixed[1] .. " / " .. tostring(mixed[2]))
