--- fdn.events: the in-process bus every fdn primitive emits its lifecycle on.
--
-- `subscribe(pattern, fn)` registers fn(name, data) for events whose name
-- matches the pattern: an exact name, a prefix ending in ".*" ("retry.*"),
-- a suffix starting with "*." ("*.failed"), or "*" for everything.
-- `emit(name, data)` calls the matching subscribers in subscription order,
-- in the emitter's task. A subscriber that raises is reported through
-- fdn.report and never breaks the emitter or the other subscribers.
--
-- With no subscriber for a name, emit and has cost one table lookup;
-- emitters with a payload to build check has(name) first:
--   if events.has("retry.attempt") then events.emit("retry.attempt", {...}) end
--
-- The scheduler's own events (task.failed, task.cancelled) come from C
-- through a hook that is installed only while someone listens to them.
local core = require "fdn.core"
local shared = require "fdn._shared"
local is_callable = shared.is_callable

local M = {}

local pcall, xpcall, type = pcall, xpcall, type
local sub, byte = string.sub, string.byte
local traceback = debug.traceback

local subscribers = {} -- list of {pattern =, prefix =, suffix =, fn =}
local by_name = {}     -- name -> list of matching fns (a cache)
local cached = 0       -- entries in by_name
local NONE = {}
-- Emitters use fixed names, but a careless one with ids in its names would
-- grow the cache without end: past this it starts over.
local MAX_CACHED = 4096

local function matches(s, name)
  if s.pattern == "*" then
    return true
  elseif s.prefix then
    return sub(name, 1, #s.prefix) == s.prefix
  elseif s.suffix then
    return #name > #s.suffix and sub(name, -#s.suffix) == s.suffix
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
  if cached >= MAX_CACHED then
    by_name, cached = {}, 0
  end
  by_name[name] = list
  cached = cached + 1
  return list
end

local function has(name)
  local list = by_name[name] or resolve(name)
  return list ~= NONE
end

local function report_failure(name, failure)
  local ok, fdn = pcall(require, "fdn")
  local info = { event = name, error = failure.error, traceback = failure.traceback }
  if ok and fdn.report then
    pcall(fdn.report, "event_subscriber_failed", info)
  else
    io.stderr:write("fdn: event subscriber for '", tostring(name), "' failed: ",
      tostring(failure.error), "\n")
  end
end

local function keep_traceback(err)
  return { error = err, traceback = traceback("", 2) }
end

-- Task events ----------------------------------------------------------------

local function task_event(kind, task, err, tb)
  local name = kind == "failed" and "task.failed" or "task.cancelled"
  if not has(name) then
    return
  end
  local data = { task_id = task.id, name = task.name, error = err }
  if kind == "failed" then
    data.traceback = tb
  else
    local ok, errors = pcall(require, "fdn.errors")
    data.reason = ok and errors.class_of(err) and err.message or tostring(err)
  end
  M.emit(name, data)
end

-- The C hook is set only while task events have a listener, so a task that
-- fails with nobody listening costs the scheduler one table read.
local hook_installed = false
local function update_task_hook()
  local wanted = has("task.failed") or has("task.cancelled")
  if wanted ~= hook_installed then
    core.set_task_event_hook(wanted and task_event or nil)
    hook_installed = wanted
  end
end

-- API ------------------------------------------------------------------------

--- Subscribes fn(name, data) to events matching `pattern`. Returns a
-- function that unsubscribes (idempotent).
---@param pattern string
---@param fn function
---@return function
function M.subscribe(pattern, fn)
  local errors = require "fdn.errors"
  if type(pattern) ~= "string" or pattern == "" then
    errors.argerror("fdn.events.subscribe", "pattern", "a non-empty string", pattern)
  end
  if not is_callable(fn) then
    errors.argerror("fdn.events.subscribe", "fn", "a function", fn)
  end
  local s = { pattern = pattern, fn = fn }
  if #pattern > 2 and byte(pattern, -1) == 42 and byte(pattern, -2) == 46 then -- "x.*"
    s.prefix = sub(pattern, 1, -2)
  elseif #pattern > 2 and byte(pattern, 1) == 42 and byte(pattern, 2) == 46 then -- "*.x"
    s.suffix = sub(pattern, 2)
  end
  subscribers[#subscribers + 1] = s
  by_name, cached = {}, 0
  update_task_hook()
  return function()
    for i = #subscribers, 1, -1 do
      if subscribers[i] == s then
        table.remove(subscribers, i)
        by_name, cached = {}, 0
        update_task_hook()
      end
    end
  end
end

--- Whether anyone listens to `name`: emitters with costly payloads check
-- this first.
---@param name string
---@return boolean
function M.has(name)
  local list = by_name[name]
  if list == nil then
    if type(name) ~= "string" then
      require("fdn.errors").argerror("fdn.events.has", "name", "a string", name)
    end
    list = resolve(name)
  end
  return list ~= NONE
end

--- Calls every subscriber matching `name` with (name, data).
---@param name string
---@param data any
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
    local ok, failure = xpcall(list[i], keep_traceback, name, data)
    if not ok then
      report_failure(name, failure)
    end
  end
end

--- Removes every subscriber (for tests).
function M.reset()
  subscribers = {}
  by_name, cached = {}, 0
  update_task_hook()
end

-- FDN_LOG_EVENTS makes the logger a subscriber from the first event on,
-- even in a script that never loads the logger itself.
local log_events = os.getenv("FDN_LOG_EVENTS")
if log_events and log_events ~= "" and log_events ~= "0" then
  package.loaded["fdn.events"] = M -- the logger requires this module back
  require "fdn.log"
end

return M
