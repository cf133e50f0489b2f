--- fdn.context: task-local context that follows the work.
--
-- Each task has a context table; tasks it spawns inherit it. Installed
-- tables are never mutated (set and with install a fresh copy), so a child
-- shares its parent's table until either changes it. Outside any task, a
-- process-wide context plays the same role, and it is also what a task
-- started from outside any task (the main task of fdn.run or fdn-lua)
-- begins with. The logger adds the context's string keys to every record:
-- that is how operation and request ids follow the work. Keys that are not
-- strings are private to the fdn module that set them (EventTracker keeps
-- its current event that way) and never appear in records.
local core = require "fdn.core"
local errors = require "fdn.errors"
local shared = require "fdn._shared"
local pack = shared.pack

local M = {}

local context_get, context_set, c_current = core.context_get, core.context_set, core.current
local pairs, type, pcall, error = pairs, type, pcall, error
local getmetatable, unpack = getmetatable, unpack

local EMPTY = setmetatable({}, {
  __newindex = function()
    error("fdn.context: the context table is read-only; use fdn.context.set", 2)
  end,
})
local outside = EMPTY -- the context outside any task

local function current()
  local ctx = context_get()
  if ctx == nil then
    return outside
  end
  return ctx
end

local function install(ctx)
  if not context_set(ctx) then
    outside = ctx or EMPTY
  end
end

local function copy_with(base, key, value)
  local t = {}
  for k, v in pairs(base) do
    t[k] = v
  end
  t[key] = value
  return t
end

--- The current context table. Treat it as read-only.
---@return table
function M.current()
  return current()
end

--- The value of `key` in the current context.
---@param key string
function M.get(key)
  if type(key) ~= "string" then
    errors.argerror("fdn.context.get", "key", "a string", key)
  end
  return current()[key]
end

--- Sets `key` for the rest of the current task (and tasks it spawns later);
-- a nil value removes it.
---@param key string
---@param value any
function M.set(key, value)
  if type(key) ~= "string" then
    errors.argerror("fdn.context.set", "key", "a string", key)
  end
  install(copy_with(current(), key, value))
end

-- fdn modules keep private per-task state under a key of their own (a
-- table), which the logger skips.
function M._get(key)
  return current()[key]
end

function M._set(key, value)
  install(copy_with(current(), key, value))
end

--- Replaces the whole context with `ctx` (a table fdn.context.current()
-- returned earlier): how scopes put back what they found.
function M._restore(ctx)
  if c_current() ~= nil and ctx == outside then
    -- A task that had no context of its own goes back to inheriting.
    ctx = nil
  end
  install(ctx)
end

--- Runs fn(...) with `fields` added to the context, then restores it, also
-- when fn raises. Tasks spawned inside keep the fields for their lifetime.
---@param fields table
---@param fn function
function M.with(fields, fn, ...)
  if type(fields) ~= "table" then
    errors.argerror("fdn.context.with", "fields", "a table", fields)
  end
  local mt = getmetatable(fn)
  if type(fn) ~= "function" and not (type(mt) == "table" and mt.__call) then
    errors.argerror("fdn.context.with", "fn", "a function", fn)
  end
  local saved = current()
  local ctx = {}
  for k, v in pairs(saved) do
    ctx[k] = v
  end
  for k, v in pairs(fields) do
    ctx[k] = v
  end
  install(ctx)
  local res = pack(pcall(fn, ...))
  M._restore(saved)
  if not res[1] then
    error(res[2], 0)
  end
  return unpack(res, 2, res.n)
end

return M
