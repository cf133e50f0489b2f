--- fdn.children (internal): what the structured scopes (TaskManager,
-- ConcurrentExecutor, TaskPool) share: waiting for a set of child tasks,
-- cancelling them, and attaching the errors they raised to the one the
-- scope raises.
local core = require "fdn.core"
local errors = require "fdn.errors"
local fdn = require "fdn"

local M = {}

local type, pcall = type, pcall
local group_new, group_wait, group_close = core.group_new, core.group_wait, core.group_close
local task_status, task_cancel = core.task_methods.status, core.task_methods.cancel
local scope_enter, scope_exit = core.scope_enter, core.scope_exit
local wake_error = fdn._wake_error
local is_error, class_of, Cancelled = errors.is, errors.class_of, errors.Cancelled

local FINISHED = { done = true, failed = true, cancelled = true }

--- A list of child tasks: {n = count, task1, task2, …}. Appending is all
-- a scope does per child; a child that ends through the scope's own
-- wrapper adds one to `finished`, so finished children can be dropped in
-- batches, and only when enough of them have.
function M.list()
  return { n = 0, finished = 0, added = 0, compact_at = 256 }
end

local function clear(list)
  for i = 1, list.n do
    list[i] = nil
  end
  list.n = 0
  list.finished = 0
end

--- Drops finished tasks from the list, keeping the order of the others;
-- returns how many are left.
function M.compact(list)
  if list.finished >= list.n then
    clear(list) -- every one ended through the wrapper: no need to ask
    return 0
  end
  local n, k = list.n, 0
  for i = 1, n do
    local t = list[i]
    list[i] = nil
    if not FINISHED[task_status(t)] then
      k = k + 1
      list[k] = t
    end
  end
  list.n = k
  list.finished = 0
  return k
end

--- Appends a task. Once the list has doubled, and at least half of it is
-- known to have finished, the finished ones are dropped: a long-lived
-- scope does not keep every child it ever had, and a short one pays
-- nothing.
function M.add(list, task)
  local n = list.n + 1
  list[n] = task
  list.n = n
  list.added = list.added + 1
  if n >= list.compact_at then
    if list.finished * 2 >= n then
      M.compact(list)
    end
    list.compact_at = list.n * 2 + 256
  end
end

--- Waits until every task in the list has finished, including tasks
-- added while it waits. Raises Cancelled when the waiting task is
-- cancelled.
function M.wait(list, where)
  while list.n > 0 do
    if list.finished >= list.n then
      clear(list)
      return
    end
    local n, added = list.n, list.added
    local group = group_new(list, n)
    local st, cause = group_wait(group, false)
    group_close(group)
    if st then
      return wake_error(st, cause, where)
    end
    if list.added == added then
      clear(list) -- all of them have finished, and none came meanwhile
      return
    end
    M.compact(list)
  end
end

--- Cancels every task in the list but `except`.
function M.cancel(list, except, reason)
  for i = 1, list.n do
    local t = list[i]
    if t ~= except then
      if reason then
        t:cancel(reason)
      else
        task_cancel(t)
      end
    end
  end
end

--- Waits for the list with cancellation held off for up to
-- fdn.cleanup_timeout seconds: how a scope that is already failing or
-- cancelled waits for the children it cancelled. Returns true when they
-- all finished in time.
function M.wait_shielded(list, where)
  local scope = scope_enter(fdn.cleanup_timeout, true)
  local ok = pcall(M.wait, list, where)
  if scope then
    scope_exit(scope)
  end
  return ok
end

--- Waits for the list; if the waiting task is cancelled meanwhile, cancels
-- the list, waits for it shielded, and returns the Cancelled error (nil
-- when all finished normally).
function M.wait_or_cancel(list, where)
  local ok, err = pcall(M.wait, list, where)
  if ok then
    return nil
  end
  M.cancel(list)
  M.wait_shielded(list, where)
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

--- Attaches `others` to `err` (see attach); when err cannot carry them (a
-- plain string), reports each through fdn.report, so that none is lost.
function M.attach_or_report(err, others, where)
  if M.attach(err, others) then
    return
  end
  for i = 1, #others do
    fdn.report("suppressed_error", {
      error = others[i],
      message = where .. ": another error was raised instead of this one: "
        .. errors.format(others[i]),
    })
  end
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
M.where = require("fdn._shared").where

return M
