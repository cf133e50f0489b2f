--- fdn.TaskManager: a structured scope for child tasks.
--
--   fdn.with(fdn.TaskManager.new{max_concurrent = 10}, function(tm)
--     local t = tm:create_task(fetch, url)  -- a Task, at once
--     local results = tm:gather(t, other)   -- as fdn.gather
--   end)                                    -- returns once every child is done
--
-- The children live in a core nursery (core/include/fdn/nursery.h): at
-- most max_concurrent run at a time, the others wait, in creation order,
-- without being started, and each child runs its function directly (no
-- wrapper: its traceback is its own). Leaving the scope waits for every
-- child. By default the first child to fail cancels its siblings and the
-- body (the nursery does it the moment the child fails), and the scope
-- raises that error with the later failures in err.suppressed; with
-- collect_errors = true the children run on and their errors are collected
-- in tm:errors() instead.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local fdn = require "fdn"
local children = require "fdn.children"

local M = {}

local TaskManager = {}
TaskManager.__index = TaskManager

-- A method called on anything but a TaskManager: usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("TaskManager:" .. method, "self", "a TaskManager (call it with ':')", self, 3)
end
-- fdn.with runs __exit unshielded: it waits for the children as long as
-- they run and still sees a cancellation of the task (see fdn.with).
TaskManager.__exit_unshielded = true

local type, error, pcall, setmetatable, select = type, error, pcall, setmetatable, select
local argerror = errors.argerror
local scope_enter, scope_exit = core.scope_enter, core.scope_exit
local nursery_new, nursery_spawn = core.nursery_new, core.nursery_spawn
local nursery_wait, nursery_abort = core.nursery_wait, core.nursery_abort
local nursery_set_scope, nursery_failures = core.nursery_set_scope, core.nursery_failures
local nursery_counts = core.nursery_counts
local task_outcome = core.task_outcome
local is_callable, wake_error = fdn.is_callable, fdn._wake_error
local is_cancelled = children.is_cancelled

--- Makes a manager. opts.max_concurrent: children running at a time (an
-- integer >= 1, or math.huge; default no limit); opts.collect_errors:
-- keep siblings running when a child fails and collect the errors instead
-- of raising; opts.name: shown in its errors and events.
---@param opts? {max_concurrent?: integer, collect_errors?: boolean, name?: string}
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror("TaskManager.new", "opts", "a table", opts)
  end
  opts = opts or {}
  local limit = opts.max_concurrent
  if limit ~= nil then
    children.check_count("TaskManager.new", "opts.max_concurrent", limit, 1, true)
    if limit == math.huge or limit > 2 ^ 53 then
      limit = nil
    end
  end
  return setmetatable({
    name = children.check_name("TaskManager.new", opts.name),
    max_concurrent = limit,
    collect_errors = opts.collect_errors and true or false,
    _state = "new",
  }, TaskManager)
end

local function where(self, method)
  return children.where("TaskManager", self.name, method)
end

--- Opens the scope on the running task (fdn.with calls it).
function TaskManager:__enter()
  if getmetatable(self) ~= TaskManager then
    bad_self(self, "__enter")
  end
  if self._state == "open" or self._state == "closing" then
    error(errors.InvalidState.new(where(self, "__enter") .. ": already entered"), 2)
  end
  -- Its exit waits for the children: where no wait is possible, no scope opens.
  if core.current() ~= nil then
    core.check_suspendable(where(self, "__enter"))
  end
  local scope = scope_enter(nil, false)
  if scope == nil then
    error(errors.InvalidState.new(where(self, "__enter")
      .. ": must be entered from a task (inside fdn.run or fdn-lua)"), 2)
  end
  local nursery = nursery_new(self.max_concurrent, not self.collect_errors)
  nursery_set_scope(nursery, scope)
  self._nursery = nursery
  self._open = nursery -- while children may be created
  self._scope = scope
  self._state = "open"
  self._errors = nil
  return self
end

--- Starts fn(...) as a child and returns its Task at once; it runs when a
-- slot is free (its status is "ready" until then). Raises InvalidState
-- outside the scope and Closed once a failure is stopping the manager.
---@param fn function
function TaskManager:create_task(fn, ...)
  if getmetatable(self) ~= TaskManager then
    bad_self(self, "create_task")
  end
  local nursery = self._open
  if nursery == nil then
    error(errors.InvalidState.new(where(self, "create_task")
      .. ": the manager is not entered (use it with fdn.with(manager, fn))"), 2)
  end
  if type(fn) ~= "function" and not is_callable(fn) then
    argerror(where(self, "create_task"), "fn", "a function", fn)
  end
  return nursery_spawn(nursery, fn, ...)
end

--- fdn.gather over the manager's tasks (or any tasks).
function TaskManager.gather(self, ...)
  if getmetatable(self) ~= TaskManager then
    bad_self(self, "gather")
  end
  return fdn.gather(...)
end

-- The failed children's errors, in order of failure, marked as seen so
-- fdn does not also report them as failures nobody joined.
local function collect(self)
  local list = {}
  if self._nursery then
    local failed = nursery_failures(self._nursery)
    for i = 1, #failed do
      local _, err = task_outcome(failed[i], false)
      list[i] = err
    end
  end
  return list
end

--- The errors of the children that failed so far, in order of failure.
function TaskManager:errors()
  if getmetatable(self) ~= TaskManager then
    bad_self(self, "errors")
  end
  if self._errors then
    return self._errors
  end
  return collect(self)
end

--- Children not finished yet: running, and waiting for a slot.
function TaskManager:active()
  if getmetatable(self) ~= TaskManager then
    bad_self(self, "active")
  end
  if not self._nursery then
    return 0
  end
  local running, waiting = nursery_counts(self._nursery)
  return running + waiting
end

local function wait_children(nursery, where_)
  local st, cause = nursery_wait(nursery)
  if st then
    return wake_error(st, cause, where_)
  end
end

-- Waits for the children cancelled by an abort, with cancellation held
-- off for up to fdn.cleanup_timeout seconds.
local function wait_shielded(nursery, where_)
  local scope = scope_enter(fdn.cleanup_timeout, true)
  pcall(wait_children, nursery, where_)
  if scope then
    scope_exit(scope)
  end
end

--- Closes the scope: waits for every child, then raises what failed
-- (fdn.with calls it with the body's error, or nil).
function TaskManager:__exit(err)
  if getmetatable(self) ~= TaskManager then
    bad_self(self, "__exit")
  end
  if self._state ~= "open" then
    error(errors.InvalidState.new(where(self, "__exit") .. ": not entered"), 2)
  end
  if self:active() > 0 and not core.suspendable() then
    -- It must wait for the children and cannot: raised while the manager
    -- is still open, so an __exit from the task itself can finish it.
    core.check_suspendable(where(self, "__exit"))
  end
  self._state = "closing"
  local nursery, at = self._nursery, where(self, "__exit")
  nursery_set_scope(nursery, nil)
  local stopped_body = scope_exit(self._scope)
  self._scope = nil
  -- When a failing child stopped the body, that failure leads: the
  -- Cancelled it caused in the body is dropped, any other body error is
  -- attached to it.
  local _, _, _, nfailed = nursery_counts(nursery)
  local body_err, late_body_err = err, nil
  if stopped_body and nfailed > 0 then
    body_err = nil
    if err ~= nil and not is_cancelled(err) then
      late_body_err = err
    end
  end
  if body_err ~= nil then
    nursery_abort(nursery) -- the body failed or was cancelled
  end
  local aborted = select(5, nursery_counts(nursery))
  if not aborted then
    local ok, werr = pcall(wait_children, nursery, at)
    if not ok then
      body_err = body_err or werr -- cancelled while it waited
      nursery_abort(nursery)
      aborted = true
    end
  end
  if aborted then
    wait_shielded(nursery, at)
  end
  self._state = "closed"
  self._open = nil
  local errs = collect(self)
  self._errors = errs
  if events.has("task_manager.task_failed") then
    for i = 1, #errs do
      events.emit("task_manager.task_failed", { name = self.name, error = errs[i] })
    end
  end
  if events.has("task_manager.closed") then
    local _, _, finished = nursery_counts(nursery)
    events.emit("task_manager.closed", { name = self.name, tasks = finished, failed = #errs })
  end

  if body_err ~= nil then
    children.attach_or_report(body_err, errs, at)
    error(body_err, 0)
  end
  if #errs > 0 and not self.collect_errors then
    local first, others = errs[1], {}
    for i = 2, #errs do
      others[#others + 1] = errs[i]
    end
    others[#others + 1] = late_body_err
    children.attach_or_report(first, others, at)
    error(first, 0)
  end
end

return M
