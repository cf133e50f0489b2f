--- fdn.Event: a flag tasks wait for.
--
-- While clear, wait() parks the task; set() wakes every waiter at once (in
-- one C call, however many) and lets later waits through until clear().
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local fdn = require "fdn"

local M = {}

local type, setmetatable = type, setmetatable
local argerror = errors.argerror
local wake_error = fdn._wake_error

local methods = core.event_methods
local c_new, c_wait = core.event_new, core.event_wait
local c_set, c_clear, c_waiting = methods.set, methods.clear, methods.waiting

local names = setmetatable({}, { __mode = "k" })

-- The metatable every event has: how the Lua-side methods check self.
local MT = getmetatable(c_new())

--- Makes a clear event. `opts.name` appears in its errors and events.
---@param opts? {name?: string}
function M.new(opts)
  local name
  if opts ~= nil then
    if type(opts) ~= "table" then
      argerror("Event.new", "opts", "a table", opts)
    end
    name = opts.name
    if name ~= nil and type(name) ~= "string" then
      argerror("Event.new", "opts.name", "a string", name)
    end
  end
  local ev = c_new()
  if name then
    names[ev] = name
  end
  return ev
end

--- Waits until the event is set (returns at once if it is). Raises
-- Timeout after `timeout` seconds, Cancelled when the task is cancelled.
---@param timeout? number seconds
function methods.wait(self, timeout)
  local st, cause = c_wait(self, timeout)
  if st then
    local name = names[self]
    return wake_error(st, cause, name and ("Event '" .. name .. "':wait") or "Event:wait")
  end
end

--- Sets the event, waking every waiter.
function methods.set(self)
  if events.has("event.set") then
    events.emit("event.set", { name = names[self], woken = c_waiting(self) })
  end
  c_set(self)
end

--- Clears the event: later waits park until the next set().
function methods.clear(self)
  c_clear(self)
end

--- The name given to new(), if any.
function methods.name(self)
  if getmetatable(self) ~= MT then
    argerror("Event:name", "self", "an Event (call it with ':')", self)
  end
  return names[self]
end

return M
