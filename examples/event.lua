-- An event lets many tasks wait for one moment: here workers wait for a
-- "ready" signal, and set() releases them all at once.
--   fdn-lua examples/event.lua [workers]
local n = tonumber((...)) or 3
local errors = fdn.errors

local ready = fdn.Event.new({ name = "ready" })
local woke = {}
local workers = {}
for i = 1, n do
  workers[i] = fdn.spawn(function()
    ready:wait()
    woke[#woke + 1] = i
  end)
end

fdn.sleep(0.005)
print(string.format("%d waiting, %d woke so far", ready:waiting(), #woke))
ready:set()
fdn.gather(workers)
print("woke in order: " .. table.concat(woke, " "))

ready:clear()
local ok, err = pcall(ready.wait, ready, 0.01)
print("after clear, wait(0.01): " .. (not ok and errors.is(err, errors.Timeout) and "timed out" or "?"))
