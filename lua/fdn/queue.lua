--- fdn.Queue: a FIFO queue between tasks, bounded or not.
--
-- The object is the C channel's userdata (core/include/fdn/channel.h):
-- put waits while the queue is full, get while it is empty, both in FIFO
-- order, and every transfer is a hand-off to the longest waiter. Closing
-- refuses new values at once; getters drain what is left, then see Closed.
-- Any Lua value can be queued, nil included.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local fdn = require "fdn"

local M = {}

local type = type
local argerror = errors.argerror
local wake_error = fdn._wake_error

local methods = core.queue_methods
local c_new, c_put, c_put_abort = core.queue_new, core.queue_put, core.queue_put_abort
local c_get, c_take = core.queue_get, core.queue_take
local c_close = methods.close

local names, where = require("fdn._shared").namer("Queue")

-- The metatable every queue has: how the Lua-side methods check self.
local MT = getmetatable(c_new(1))

-- A method called on anything but a queue: usually a '.' where ':' was meant.
local function check(self, method)
  if getmetatable(self) ~= MT then
    argerror("Queue:" .. method, "self", "a Queue (call it with ':')", self, 3)
  end
end

--- Makes an empty queue holding at most `maxsize` values (an integer >= 1;
-- math.huge for no limit, on purpose). `opts.name` appears in its errors
-- and events.
---@param maxsize integer|number
---@param opts? {name?: string}
function M.new(maxsize, opts)
  local name
  if opts ~= nil then
    if type(opts) ~= "table" then
      argerror("Queue.new", "opts", "a table", opts)
    end
    name = opts.name
    if name ~= nil and type(name) ~= "string" then
      argerror("Queue.new", "opts.name", "a string", name)
    end
  end
  local q = c_new(maxsize)
  if name then
    names[q] = name
  end
  return q
end

local function put_failed(self, st, cause, at_once)
  if not at_once then
    c_put_abort(self)
  end
  return wake_error(st, cause, where(self, "put"))
end

--- Puts `v` at the tail, waiting while the queue is full. Raises Closed
-- once the queue is closed (also while waiting), Timeout after `timeout`
-- seconds, Cancelled when the task is cancelled; the value is then not
-- queued.
---@param timeout? number seconds
function methods.put(self, v, timeout)
  local st, cause, at_once = c_put(self, v, timeout)
  if st then
    return put_failed(self, st, cause, at_once)
  end
end

--- Takes the value at the head, waiting while the queue is empty. Raises
-- Closed once it is closed and drained, Timeout after `timeout` seconds,
-- Cancelled when the task is cancelled.
---@param timeout? number seconds
function methods.get(self, timeout)
  local st, v = c_get(self, timeout)
  if st == false then
    return v
  elseif st == nil then
    return c_take(self)
  end
  return wake_error(st, v, where(self, "get"))
end

--- Iterates over values as they come until the queue is closed and
-- drained: `for v in q:iter() do … end`. A nil value ends the loop early.
function methods.iter(self)
  check(self, "iter")
  return function()
    local st, v = c_get(self)
    if st == false then
      return v
    elseif st == nil then
      return c_take(self)
    elseif st == core.ECLOSED then
      return nil
    end
    return wake_error(st, v, where(self, "iter"))
  end
end

--- Closes the queue: later puts raise Closed, waiting putters are woken
-- with Closed, getters drain what is queued and then see Closed.
function methods.close(self)
  check(self, "close")
  if methods.is_closed(self) then
    return
  end
  c_close(self)
  if events.has("queue.closed") then
    events.emit("queue.closed", { name = names[self], remaining = methods.len(self) })
  end
end

--- The name given to new(), if any.
function methods.name(self)
  check(self, "name")
  return names[self]
end

return M
