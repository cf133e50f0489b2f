--- fdn.events: the in-process bus every fdn primitive emits its lifecycle on.
--
-- `subscribe(pattern, fn)` registers fn(name, data) for events whose name
-- matches the pattern: an exact name, a prefix ending in ".*" ("retry.*"),
-- or "*" for everything. `emit(name, data)` calls the matching subscribers
-- in subscription order, in the emitter's task. A subscriber that raises is
-- reported through fdn's reporter and never breaks the emitter. With no
-- subscriber for a name, emit costs one table lookup.
local M = {}

local pcall, type = pcall, type
local sub, byte = string.sub, string.byte

local subscribers = {} -- list of {pattern =, prefix =, fn =}
local by_name = {}     -- name -> list of matching fns (a cache)
local NONE = {}

local function matches(s, name)
  if s.pattern == "*" then
    return true
  end
  if s.prefix then
    return sub(name, 1, #s.prefix) == s.prefix
  end
  return s.pattern == name
end

local function resolve(name)
  local list = {}
  for i = 1, #subscribers do
    local s = subscribers[i]
    if matches(s, name) then
      list[#list + 1] = s.fn
    end
  end
  if #list == 0 then
    list = NONE
  end
  by_name[name] = list
  return list
end

local function report_failure(name, err)
  local ok, fdn = pcall(require, "fdn")
  if ok and fdn.report then
    pcall(fdn.report, "event_subscriber_failed", { event = name, error = err })
  else
    io.stderr:write("fdn: event subscriber for '", name, "' failed: ", tostring(err), "\n")
  end
end

--- Subscribes fn(name, data) to events matching `pattern`. Returns a
-- function that unsubscribes (idempotent).
function M.subscribe(pattern, fn)
  local errors = require "fdn.errors"
  if type(pattern) ~= "string" or pattern == "" then
    errors.argerror("fdn.events.subscribe", "pattern", "a non-empty string", pattern)
  end
  if type(fn) ~= "function" then
    errors.argerror("fdn.events.subscribe", "fn", "a function", fn)
  end
  local s = { pattern = pattern, fn = fn }
  if #pattern > 2 and byte(pattern, -1) == 42 and byte(pattern, -2) == 46 then -- ".*"
    s.prefix = sub(pattern, 1, -2)
  end
  subscribers[#subscribers + 1] = s
  by_name = {}
  return function()
    for i = #subscribers, 1, -1 do
      if subscribers[i] == s then
        table.remove(subscribers, i)
        by_name = {}
      end
    end
  end
end

--- Whether anyone listens to `name`: emitters with costly payloads check
-- this first.
function M.has(name)
  local list = by_name[name] or resolve(name)
  return list ~= NONE
end

--- Calls every subscriber matching `name` with (name, data).
function M.emit(name, data)
  local list = by_name[name]
  if list == nil then
    if type(name) ~= "string" then
      require("fdn.errors").argerror("fdn.events.emit", "name", "a string", name)
    end
    list = resolve(name)
  end
  if list == NONE then
    return
  end
  for i = 1, #list do
    local ok, err = pcall(list[i], name, data)
    if not ok then
      report_failure(name, err)
    end
  end
end

--- Removes every subscriber (for tests).
function M.reset()
  subscribers = {}
  by_name = {}
end

return M
