-- W0 from Lua: one coroutine resumed and yielded back n times by a plain
-- Lua loop (coroutine.resume is not compiled by LuaJIT's JIT).
--   luajit bench/luajit/w0_resume.lua [n]
local common = dofile(arg[0]:gsub("[^/]*$", "") .. "../lib/common.lua")
local n = common.size(..., 1000000)

local resume, yield = coroutine.resume, coroutine.yield
local co = coroutine.create(function()
  local count = 0
  while true do
    count = count + 1
    yield(count)
  end
end)
local clock = require("ffi")
clock.cdef [[
typedef struct { long tv_sec; long tv_nsec; } w0_timespec_t;
int clock_gettime(int clk, w0_timespec_t *ts);
]]
local ts = clock.new("w0_timespec_t")
local function now()
  clock.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local count = 0
local t0 = now()
for _ = 1, n do
  local _, c = resume(co)
  count = c
end
local elapsed = now() - t0
common.emit { workload = "W0", n = n, elapsed = elapsed, count = count }
