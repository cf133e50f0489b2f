--- fdn.Bulkhead: cap how many callers are inside at once, and how many
-- may wait.
--
--   local db = fdn.Bulkhead.new{max_concurrent = 10, max_queue = 50, timeout = 2}
--   local rows = db:call(query, sql)
--
-- At most `max_concurrent` calls run at once; up to `max_queue` more wait
-- in FIFO order (default 0: turned away at once); beyond that a call
-- raises fdn.errors.QueueFull. A waiter that gets no slot within `timeout`
-- seconds raises fdn.errors.Timeout. A leaving caller hands its slot
-- straight to the first waiter; if that waiter was cancelled (or its
-- deadline passed) in the instant between, it gives the slot back to the
-- next one instead of keeping it: no slot ever leaks.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local results = require "fdn._results"

local Bulkhead = {}
Bulkhead.__index = Bulkhead

-- A method called on anything but a Bulkhead: usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("Bulkhead:" .. method, "self", "a Bulkhead (call it with ':')", self, 3)
end

local type, pcall, error = type, pcall, error
local enter, leave = core.bulkhead_enter, core.bulkhead_leave
local cancel_pending, ETIMEDOUT, ECANCELED = core.cancel_pending, core.ETIMEDOUT, core.ECANCELED
local argerror = errors.argerror
local events_has, events_emit = events.has, events.emit
local pack_rest, unpack_n = results.pack_rest, results.unpack_n

local FNAME = "fdn.Bulkhead.new"
local check_options = require("fdn._shared").option_checker(FNAME,
  { "max_concurrent", "max_queue", "timeout", "name" }, "a table with max_concurrent")
local unnamed = 0

--- Makes a bulkhead.
-- opts: max_concurrent (>= 1), max_queue (>= 0, default 0; math.huge: no
-- limit), timeout (seconds a waiter may wait; default none), name.
---@param opts table
---@return table
function Bulkhead.new(opts)
  check_options(opts)
  local mc, mq, timeout = opts.max_concurrent, opts.max_queue, opts.timeout
  if type(mc) ~= "number" or mc ~= mc or mc < 1 or mc % 1 ~= 0 or mc == math.huge then
    argerror(FNAME, "max_concurrent", "an integer >= 1", mc)
  end
  if mq == nil then
    mq = 0
  elseif type(mq) ~= "number" or mq ~= mq or mq < 0 or (mq % 1 ~= 0 and mq ~= math.huge) then
    argerror(FNAME, "max_queue", "an integer >= 0 (or math.huge)", mq)
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    argerror(FNAME, "timeout", "a non-negative number of seconds", timeout)
  end
  local name = opts.name
  if name == nil then
    unnamed = unnamed + 1
    name = "bulkhead-" .. unnamed
  elseif type(name) ~= "string" then
    argerror(FNAME, "name", "a string", name)
  end
  return setmetatable({
    name = name, max_concurrent = mc, max_queue = mq, timeout = timeout,
    _bh = core.bulkhead_new(mc, mq),
  }, Bulkhead)
end

local function rejected(self, reason)
  if events_has("bulkhead.rejected") then
    events_emit("bulkhead.rejected", { name = self.name, reason = reason })
  end
end

--- Takes a slot, waiting (FIFO) when none is free. Raises QueueFull when
-- max_queue callers already wait, Timeout after `timeout`, Cancelled when
-- the task is cancelled; in every such case no slot is held.
function Bulkhead:acquire()
  if getmetatable(self) ~= Bulkhead then
    bad_self(self, "acquire")
  end
  local st, cause = enter(self._bh, self.timeout)
  if st == nil then
    return
  end
  if st == false then
    -- Handed a slot after waiting: a cancellation that arrived since must
    -- not keep it.
    local pending = cancel_pending()
    if pending == 0 then
      return
    end
    leave(self._bh)
    return require("fdn")._wake_error(ECANCELED, pending, "Bulkhead:acquire")
  end
  if st == "full" then
    rejected(self, "queue_full")
    error(errors.QueueFull.new(string.format("Bulkhead(%s): %d running and %s waiting: "
      .. "no room in the queue", self.name, self.max_concurrent, tostring(self.max_queue)),
      { context = { bulkhead = self.name } }), 2)
  end
  if st == "timeout" or st == ETIMEDOUT then
    if st == ETIMEDOUT then
      core.bulkhead_timed_out(self._bh)
    end
    rejected(self, "timeout")
    error(errors.Timeout.new(string.format("Bulkhead(%s): no slot within %gs", self.name,
      self.timeout), { context = { bulkhead = self.name, timeout = self.timeout } }), 2)
  end
  return require("fdn")._wake_error(st, cause, "Bulkhead:acquire")
end

--- Gives a slot back (to the first waiter, if any). Call it once per
-- successful acquire.
function Bulkhead:release()
  if getmetatable(self) ~= Bulkhead then
    bad_self(self, "release")
  end
  leave(self._bh)
end

--- Calls fn(...) holding a slot: fn's results, or its error.
---@param fn function
function Bulkhead:call(fn, ...)
  if getmetatable(self) ~= Bulkhead then
    bad_self(self, "call")
  end
  if type(fn) ~= "function" and not require("fdn").is_callable(fn) then
    argerror("Bulkhead:call", "fn", "a function", fn)
  end
  self:acquire()
  local ok, n, r1, r2, r3, r4 = pack_rest(pcall(fn, ...))
  leave(self._bh)
  if ok then
    return unpack_n(n, r1, r2, r3, r4)
  end
  error(r1, 0)
end

--- A function that calls fn through the bulkhead.
---@param fn function
---@return function
function Bulkhead:wrap(fn)
  if getmetatable(self) ~= Bulkhead then
    bad_self(self, "wrap")
  end
  if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn)
      and getmetatable(fn).__call) then
    argerror("Bulkhead:wrap", "fn", "a function", fn)
  end
  return function(...)
    return self:call(fn, ...)
  end
end

--- {active, waiting, admitted, rejected, timed_out, max_concurrent, max_queue}
function Bulkhead:stats()
  if getmetatable(self) ~= Bulkhead then
    bad_self(self, "stats")
  end
  return core.bulkhead_stats(self._bh)
end

return Bulkhead
