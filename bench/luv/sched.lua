-- A minimal coroutine scheduler on luv: what a Lua user writes without fdn.
-- A run queue drained from a uv idle handle, one uv timer per sleep, and
-- waiter lists for join, semaphores and events. No cancellation, no
-- timeouts, no error reporting beyond re-raising from join.
local uv = require "luv"

local M = {}

local co_create, co_resume, co_yield, co_status = coroutine.create, coroutine.resume,
  coroutine.yield, coroutine.status
local unpack, select = unpack, select

local queue, head, tail = {}, 1, 0
local idle = uv.new_idle()
local idle_on = false
local current = nil

local function drain()
  while head <= tail do
    local t = queue[head]
    queue[head] = nil
    head = head + 1
    current = t
    local co, ok, res = t.co
    local args = t.args
    if args then
      t.args = nil
      ok, res = co_resume(co, unpack(args, 1, args.n))
    else
      ok, res = co_resume(co)
    end
    current = nil
    if co_status(co) == "dead" then
      t.done, t.ok, t.result = true, ok, res
      local joiners = t.joiners
      if joiners then
        for i = 1, #joiners do
          M.ready(joiners[i])
        end
      end
    end
  end
  head, tail = 1, 0
  idle:stop()
  idle_on = false
end

function M.ready(t)
  tail = tail + 1
  queue[tail] = t
  if not idle_on then
    idle_on = true
    idle:start(drain)
  end
end

function M.spawn(fn, ...)
  local t = { co = co_create(fn) }
  if select("#", ...) > 0 then
    t.args = { n = select("#", ...), ... }
  end
  M.ready(t)
  return t
end

function M.yield()
  M.ready(current)
  co_yield()
end

function M.sleep(seconds)
  if seconds <= 0 then
    return M.yield()
  end
  local t = current
  local timer = uv.new_timer()
  -- libuv arms timers from the time cached at the start of the loop turn;
  -- refresh it, or a task that starts late in a long turn wakes early.
  uv.update_time()
  timer:start(math.floor(seconds * 1000 + 0.5), 0, function()
    timer:close()
    M.ready(t)
  end)
  co_yield()
end

function M.join(t)
  if not t.done then
    local joiners = t.joiners
    if not joiners then
      joiners = {}
      t.joiners = joiners
    end
    joiners[#joiners + 1] = current
    co_yield()
  end
  if not t.ok then
    error(t.result, 0)
  end
  return t.result
end

function M.gather(tasks)
  local results = {}
  for i = 1, #tasks do
    results[i] = M.join(tasks[i])
  end
  return results
end

-- A counting semaphore: a released permit goes straight to the first waiter.
local Semaphore = {}
Semaphore.__index = Semaphore
function M.semaphore(n)
  return setmetatable({ permits = n, waiters = {}, whead = 1, wtail = 0 }, Semaphore)
end
function Semaphore:acquire()
  if self.permits > 0 then
    self.permits = self.permits - 1
    return
  end
  self.wtail = self.wtail + 1
  self.waiters[self.wtail] = current
  co_yield()
end
function Semaphore:release()
  local h = self.whead
  if h <= self.wtail then
    local t = self.waiters[h]
    self.waiters[h] = nil
    self.whead = h + 1
    M.ready(t)
  else
    self.permits = self.permits + 1
  end
end

-- An event: wait parks until set; set wakes every waiter.
local Event = {}
Event.__index = Event
function M.event()
  return setmetatable({ is_set = false, waiters = {} }, Event)
end
function Event:wait()
  if self.is_set then
    return
  end
  local w = self.waiters
  w[#w + 1] = current
  co_yield()
end
function Event:set()
  self.is_set = true
  local w = self.waiters
  self.waiters = {}
  for i = 1, #w do
    M.ready(w[i])
  end
end

M.now = uv.hrtime -- nanoseconds

--- Runs fn as the main task until the loop has nothing left; returns its result.
function M.run(fn, ...)
  local main = M.spawn(fn, ...)
  uv.run()
  if not main.ok then
    error(main.result, 0)
  end
  return main.result
end

return M
