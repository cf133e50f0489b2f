-- fdn.testing figures: the cost of a spec run on its own engine (T.run
-- against fdn.run), of a call to a fake, and of clock:advance per timer it
-- fires. Runs from stock LuaJIT (T.run needs no engine around it):
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua/?.so;;" luajit bench/testing.lua
local fdn = require "fdn"
local T = require "fdn.testing"

local function per_run(name, n, f)
  collectgarbage()
  local t0 = os.clock()
  for _ = 1, n do f() end
  print(string.format("%-30s %8.2f us", name, (os.clock() - t0) / n * 1e6))
end

per_run("fdn.run, empty body", 20000, function() fdn.run(function() end) end)
per_run("T.run, empty body", 20000, function() T.run(function() end) end)
per_run("T.run, one virtual sleep", 20000, function() T.run(function() fdn.sleep(1) end) end)

local api = { get = function() end }
T.run(function()
  local get = T.mock_async(api, "get"):returns(200)
  local n = 200000
  local t0 = os.clock()
  for i = 1, n do api.get(i) end
  print(string.format("%-30s %8.2f us", "fake call (recorded)", (os.clock() - t0) / n * 1e6))
  get:clear()
end)

T.run(function()
  local clock = T.clock():autojump(false)
  local n = 100000
  local sleeper = fdn.spawn(function() for _ = 1, n do fdn.sleep(1) end end)
  local t0 = os.clock()
  clock:advance(n)
  print(string.format("%-30s %8.2f us", "clock:advance, per wake", (os.clock() - t0) / n * 1e6))
  sleeper:join()
end)
