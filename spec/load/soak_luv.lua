--- The soak's floor: the same shape of work as spec/load/soak.lua on bare
-- LuaJIT + libuv (luv) with the minimal hand-rolled scheduler of the
-- benchmarks (bench/luv/sched.lua): N tasks, 70% succeed, 20% fail once and
-- are retried after 1 ms, 10% park and are cancelled by a canceller task;
-- at most LIMIT at once; results through a batch buffer (size 100, a 10 ms
-- timer for a partial batch). No error objects, no tracebacks, no
-- accounting: what a Lua user writes without fdn, as a lower bound.
-- Usage: luajit spec/load/soak_luv.lua [N] [LIMIT]
package.path = "bench/luv/?.lua;" .. package.path
local S = require "sched"
local uv = require "luv"

local N = tonumber(arg[1]) or 1000000
local LIMIT = tonumber(arg[2]) or 1000

local sem = S.semaphore(LIMIT)
local delivered, batches = 0, 0

-- A batch buffer: flushed when full, or 10 ms after its first item.
local buf, nbuf = {}, 0
local flush_timer = uv.new_timer()
local timer_armed = false
local function flush()
  if nbuf == 0 then
    return
  end
  delivered = delivered + #buf
  batches = batches + 1
  buf, nbuf = {}, 0
  if timer_armed then
    flush_timer:stop()
    timer_armed = false
  end
end
local function add(v)
  nbuf = nbuf + 1
  buf[nbuf] = v
  if nbuf == 100 then
    flush()
  elseif nbuf == 1 then
    uv.update_time()
    flush_timer:start(10, 0, flush)
    timer_armed = true
  end
end

local CANCELLED = {}
local victims, vh, vt = {}, 1, 0
local canceller_task, canceller_parked, victims_done = nil, false, false

local function victim_wait(self)
  local timer = uv.new_timer()
  self.timer = timer
  uv.update_time()
  timer:start(3600 * 1000, 0, function()
    timer:close()
    S.ready(self)
  end)
  vt = vt + 1
  victims[vt] = self
  if canceller_parked then
    canceller_parked = false
    S.ready(canceller_task)
  end
  coroutine.yield()
  if self.cancelled then
    error(CANCELLED, 0)
  end
end

local function canceller()
  while true do
    while vh <= vt do
      local t = victims[vh]
      victims[vh] = nil
      vh = vh + 1
      t.timer:stop()
      t.timer:close()
      t.cancelled = true
      S.ready(t)
    end
    if victims_done then
      return
    end
    canceller_parked = true
    coroutine.yield()
  end
end

local function flaky(i, st)
  S.yield()
  st.tries = st.tries + 1
  if st.tries == 1 then
    error("transient failure of task " .. i)
  end
  return i
end

local function with_retry(i)
  local st = { tries = 0 }
  for _ = 1, 3 do
    local ok, r = pcall(flaky, i, st)
    if ok then
      return r
    end
    S.sleep(0.001)
  end
  error("exhausted")
end

local succeeded, retried, cancelled = 0, 0, 0
local function body(self, i, kind)
  local ok, res = pcall(function()
    if kind == 0 then
      S.yield()
      return i
    elseif kind == 1 then
      return with_retry(i)
    end
    victim_wait(self)
  end)
  sem:release()
  if ok then
    if kind == 0 then
      succeeded = succeeded + 1
    else
      retried = retried + 1
    end
    add(res)
  elseif res == CANCELLED then
    cancelled = cancelled + 1
  else
    error(res, 0)
  end
end

local wall
S.run(function()
  canceller_task = S.spawn(canceller)
  local t0 = uv.hrtime()
  for i = 1, N do
    sem:acquire()
    local k = i % 10
    local t = { args = nil }
    t.co = coroutine.create(body)
    t.args = { n = 3, t, i, k < 7 and 0 or k < 9 and 1 or 2 }
    S.ready(t)
  end
  for _ = 1, LIMIT do
    sem:acquire()
  end
  victims_done = true
  if canceller_parked then
    canceller_parked = false
    S.ready(canceller_task)
  end
  flush()
  wall = (uv.hrtime() - t0) / 1e9
end)
flush_timer:close()
uv.run()
print(string.format("soak-floor: tasks=%d limit=%d wall_s=%.3f tasks_per_s=%.0f succeeded=%d "
  .. "retried=%d cancelled=%d batched=%d batches=%d", N, LIMIT, wall, N / wall, succeeded,
  retried, cancelled, delivered, batches))
if succeeded + retried + cancelled ~= N or delivered ~= succeeded + retried then
  io.stderr:write("soak-floor: counts do not add up\n")
  os.exit(1)
end
