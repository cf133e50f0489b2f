--- fdn.children (internal): what the structured scopes (TaskManager,
-- ConcurrentExecutor, TaskPool) share: waiting for a set of child tasks,
-- cancelling them, and attaching the errors they raised to the one the
-- scope raises.
local core = require "fdn.core"
local errors = require "fdn.errors"
local fdn = require "fdn"

local M = {}

local type, pairs, pcall = type, pairs, pcall
local group_new, group_wait, group_close = core.group_new, core.group_wait, core.group_close
local task_status, task_cancel = core.task_methods.status, core.task_methods.cancel
local scope_enter, scope_exit = core.scope_enter, core.scope_exit
local wake_error = fdn._wake_error
local is_error, class_of, Cancelled = errors.is, errors.class_of, errors.Cancelled

local FINISHED = { done = true, failed = true, cancelled = true }

function M.finished(task)
  return FINISHED[task_status(task)] == true
end

--- Removes finished tasks from `set` (task -> true); returns how many are
-- left.
function M.prune(set)
  local n = 0
  for t in pairs(set) do
    if FINISHED[task_status(t)] then
      set[t] = nil
    else
      n = n + 1
    end
  end
  return n
end

--- Waits until every task in `set` has finished, including tasks added to
-- the set while it waits; finished tasks leave the set. Raises Cancelled
-- when the waiting task is cancelled.
function M.wait(set, where)
  while true do
    local list, n = {}, 0
    for t in pairs(set) do
      if FINISHED[task_status(t)] then
        set[t] = nil
      else
        n = n + 1
        list[n] = t
      end
    end
    if n == 0 then
      return
    end
    local group = group_new(list, n)
    local st, cause = group_wait(group, false)
    group_close(group)
    if st then
      return wake_error(st, cause, where)
    end
  end
end

--- Cancels every task in `set` but `except`.
function M.cancel(set, except, reason)
  for t in pairs(set) do
    if t ~= except then
      if reason then
        t:cancel(reason)
      else
        task_cancel(t)
      end
    end
  end
end

--- Waits for the set with cancellation held off for up to
-- fdn.cleanup_timeout seconds: how a scope that is already failing or
-- cancelled waits for the children it cancelled. Returns true when they
-- all finished in time.
function M.wait_shielded(set, where)
  local scope = scope_enter(fdn.cleanup_timeout, true)
  local ok = pcall(M.wait, set, where)
  if scope then
    scope_exit(scope)
  end
  return ok
end

--- Waits for the set; if the waiting task is cancelled meanwhile, cancels
-- the set, waits for it shielded, and returns the Cancelled error (nil
-- when all finished normally).
function M.wait_or_cancel(set, where)
  local ok, err = pcall(M.wait, set, where)
  if ok then
    return nil
  end
  M.cancel(set)
  M.wait_shielded(set, where)
  return err
end

function M.is_cancelled(err)
  return is_error(err, Cancelled)
end

--- Attaches `others` (a list of error values) to `err` as err.suppressed
-- when err is an fdn error; returns true when it could.
function M.attach(err, others, first)
  if #others < (first or 1) then
    return true
  end
  if class_of(err) == nil then
    return false
  end
  local suppressed = err.suppressed
  if type(suppressed) ~= "table" then
    suppressed = {}
    err.suppressed = suppressed
  end
  for i = first or 1, #others do
    suppressed[#suppressed + 1] = others[i]
  end
  return true
end

--- Validates an optional name option.
function M.check_name(fname, name)
  if name ~= nil and type(name) ~= "string" then
    errors.argerror(fname, "opts.name", "a string", name, 3)
  end
  return name
end

--- Validates a count option: an integer >= min, or math.huge when allowed.
function M.check_count(fname, param, v, min, allow_huge)
  if type(v) == "number" and v == v then
    if v == math.huge and allow_huge then
      return v
    end
    if v >= min and v % 1 == 0 and v ~= math.huge then
      return v
    end
  end
  errors.argerror(fname, param, "an integer >= " .. min
    .. (allow_huge and " (or math.huge)" or ""), v, 3)
end

--- "Class 'name':method" or "Class:method", for error messages.
function M.where(class, name, method)
  if name then
    return class .. " '" .. name .. "':" .. method
  end
  return class .. ":" .. method
end

return M
