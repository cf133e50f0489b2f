--- fdn.context: task-local context that follows the work.
--
-- Each task has a context table; tasks it spawns inherit it. Installed
-- tables are never mutated (set and with install a fresh copy), so a child
-- shares its parent's table until either changes it. Outside any task, a
-- process-wide context plays the same role. The logger adds the context to
-- every record: that is how operation and request ids follow the work.
local core = require "fdn.core"
local errors = require "fdn.errors"

local M = {}

local context_get, context_set = core.context_get, core.context_set
local pairs, type, pcall, error, select = pairs, type, pcall, error, select
local unpack = unpack

local EMPTY = setmetatable({}, {
  __newindex = function()
    error("fdn.context: the context table is read-only; use fdn.context.set", 2)
  end,
})
local outside = EMPTY -- the context outside any task

local function current()
  local ctx = context_get()
  if ctx == nil then
    if core.current() ~= nil then
      return EMPTY
    end
    return outside
  end
  return ctx
end

local function install(ctx)
  if not context_set(ctx) then
    outside = ctx
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
function M.current()
  return current()
end

--- The value of `key` in the current context.
function M.get(key)
  return current()[key]
end

--- Sets `key` for the rest of the current task (and tasks it spawns later).
function M.set(key, value)
  if type(key) ~= "string" then
    errors.argerror("fdn.context.set", "key", "a string", key)
  end
  install(copy_with(current(), key, value))
end

local function pack(...)
  return { n = select("#", ...), ... }
end

--- Runs fn(...) with `fields` added to the context, then restores it, also
-- when fn raises. Tasks spawned inside keep the fields for their lifetime.
function M.with(fields, fn, ...)
  if type(fields) ~= "table" then
    errors.argerror("fdn.context.with", "fields", "a table", fields)
  end
  if type(fn) ~= "function" and not (getmetatable(fn) and getmetatable(fn).__call) then
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
  install(saved ~= EMPTY and saved or nil)
  if outside == nil then
    outside = EMPTY
  end
  if not res[1] then
    error(res[2], 0)
  end
  return unpack(res, 2, res.n)
end

return M
