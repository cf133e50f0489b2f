--- fdn.Semaphore: a counting semaphore with FIFO waiters.
--
-- The object is the C limiter's userdata (see core/include/fdn/limiter.h):
-- a release hands its permit straight to the longest waiter, so no task
-- overtakes one that waits. `acquire` and `with` are the only suspending
-- methods; everything else is a plain C call.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local fdn = require "fdn"

local M = {}

local type, error, pcall = type, error, pcall
local argerror = errors.argerror
local is_callable, wake_error = fdn.is_callable, fdn._wake_error

local methods = core.limiter_methods
local c_new, c_acquire = core.limiter_new, core.limiter_acquire
local c_release, c_resize, c_close = methods.release, methods.resize, methods.close

-- The metatable every semaphore has: how the Lua-side methods check self.
local MT = getmetatable(c_new(0))

-- A method called on anything but a semaphore: usually a '.' where ':' was meant.
local function check(self, method)
  if getmetatable(self) ~= MT then
    argerror("Semaphore:" .. method, "self", "a Semaphore (call it with ':')", self, 3)
  end
end

-- Names are only read when something goes wrong.
local names, where = require("fdn._shared").namer("Semaphore")

--- Makes a semaphore with `n` permits (0 starts with none: resize() opens
-- it). `opts.name` appears in its errors and events.
---@param n integer permits, >= 0
---@param opts? {name?: string}
function M.new(n, opts)
  if type(n) ~= "number" or n ~= n or n < 0 or n % 1 ~= 0 or n == math.huge then
    argerror("Semaphore.new", "n", "a non-negative integer", n)
  end
  local name
  if opts ~= nil then
    if type(opts) ~= "table" then
      argerror("Semaphore.new", "opts", "a table", opts)
    end
    name = opts.name
    if name ~= nil and type(name) ~= "string" then
      argerror("Semaphore.new", "opts.name", "a string", name)
    end
  end
  local sem = c_new(n)
  if name then
    names[sem] = name
  end
  return sem
end

--- Takes a permit, waiting in FIFO order while none is free. Raises
-- Timeout after `timeout` seconds (nil: wait as long as it takes),
-- Cancelled when the task is cancelled, Closed once the semaphore is
-- closed. A waiter that gives up holds nothing.
---@param timeout? number seconds
function methods.acquire(self, timeout)
  local st, cause = c_acquire(self, timeout)
  if st then
    return wake_error(st, cause, where(self, "acquire"))
  end
end

local function release_after(self, ok, ...)
  c_release(self)
  if ok then
    return ...
  end
  error((...), 0)
end

--- Runs fn(...) holding a permit and returns its results; the permit is
-- released however fn ends.
---@param fn function
function methods.with(self, fn, ...)
  if getmetatable(self) ~= MT then
    check(self, "with")
  end
  if not is_callable(fn) then
    argerror("Semaphore:with", "fn", "a function", fn)
  end
  -- No name passed: with is hot, and its wait is an acquire (the name
  -- errors give, also where it cannot suspend).
  local st, cause = c_acquire(self)
  if st then
    return wake_error(st, cause, where(self, "with"))
  end
  return release_after(self, pcall(fn, ...))
end

--- fdn.with(sem, fn): holds a permit while fn runs.
function methods.__enter(self)
  check(self, "__enter")
  local st, cause = c_acquire(self)
  if st then
    return wake_error(st, cause, where(self, "__enter"))
  end
  return self
end

function methods.__exit(self)
  check(self, "__exit")
  c_release(self)
end

--- Sets the number of permits. Growing wakes waiters at once; shrinking
-- below the permits held makes the next releases pay the difference off
-- before anyone waiting is served.
---@param n integer
function methods.resize(self, n)
  check(self, "resize")
  local before = methods.limit(self)
  c_resize(self, n)
  if events.has("semaphore.resized") then
    events.emit("semaphore.resized", { name = names[self], limit = n, previous = before })
  end
end

--- Wakes every waiter with Closed; later acquires raise Closed. Permits
-- held may still be released.
function methods.close(self)
  check(self, "close")
  if methods.is_closed(self) then
    return
  end
  local waiting = methods.waiting(self)
  c_close(self)
  if events.has("semaphore.closed") then
    events.emit("semaphore.closed", { name = names[self], woken = waiting })
  end
end

--- The name given to new(), if any.
function methods.name(self)
  check(self, "name")
  return names[self]
end

return M
