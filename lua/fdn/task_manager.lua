--- fdn.TaskManager: a structured scope for child tasks.
--
--   fdn.with(fdn.TaskManager.new{max_concurrent = 10}, function(tm)
--     local t = tm:create_task(fetch, url)  -- a Task, at once
--     local results = tm:gather(t, other)   -- as fdn.gather
--   end)                                    -- returns once every child is done
--
-- At most max_concurrent children run at a time; the others wait (in
-- creation order) for a slot. Leaving the scope waits for every child. By
-- default the first child to fail cancels its siblings and the body, and
-- the scope raises that error with the later failures in err.suppressed;
-- with collect_errors = true the children run on and their errors are
-- collected in tm:errors() instead.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local fdn = require "fdn"
local children = require "fdn.children"

local M = {}

local TaskManager = {}
TaskManager.__index = TaskManager
-- fdn.with runs __exit unshielded: it waits for the children as long as
-- they run and still sees a cancellation of the task (see fdn.with).
TaskManager.__exit_unshielded = true

local type, error, pcall, setmetatable = type, error, pcall, setmetatable
local argerror = errors.argerror
local c_spawn, c_current = core.spawn, core.current
local c_acquire = core.limiter_acquire
local c_release = core.limiter_methods.release
local scope_enter, scope_exit, scope_cancel = core.scope_enter, core.scope_exit, core.scope_cancel
local task_outcome = core.task_outcome
local is_callable, wake_error = fdn.is_callable, fdn._wake_error
local is_cancelled = children.is_cancelled

--- Makes a manager. opts.max_concurrent: children running at a time (an
-- integer >= 1, default no limit); opts.collect_errors: keep siblings
-- running when a child fails and collect the errors instead of raising;
-- opts.name: shown in its errors and events.
---@param opts? {max_concurrent?: integer, collect_errors?: boolean, name?: string}
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror("TaskManager.new", "opts", "a table", opts)
  end
  opts = opts or {}
  local limit = opts.max_concurrent
  if limit ~= nil then
    children.check_count("TaskManager.new", "opts.max_concurrent", limit, 1, true)
    if limit == math.huge then
      limit = nil
    end
  end
  return setmetatable({
    name = children.check_name("TaskManager.new", opts.name),
    max_concurrent = limit,
    collect_errors = opts.collect_errors and true or false,
    _state = "new",
    _live = {},
    _nlive = 0,
    _prune_at = 64,
    _failures = {}, -- {task =, error =} in order of failure
    _created = 0,
  }, TaskManager)
end

local function where(self, method)
  return children.where("TaskManager", self.name, method)
end

local function emit(name, self, fields)
  if events.has(name) then
    fields.name = self.name
    events.emit(name, fields)
  end
end

--- Stops the children (and the body, through its scope): on the first
-- failure of a fail-fast manager, or when the body itself failed.
local function abort(self, except)
  if self._aborting then
    return
  end
  self._aborting = true
  children.cancel(self._live, except)
  if self._scope then
    scope_cancel(self._scope)
  end
end

local function forget(self, task)
  if self._live[task] then
    self._live[task] = nil
    self._nlive = self._nlive - 1
  end
end

local function child_failed(self, task, err)
  local failures = self._failures
  failures[#failures + 1] = { task = task, error = err }
  emit("task_manager.task_failed", self, { task_id = task.id, error = err })
  if not self.collect_errors then
    abort(self, task)
  end
end

local function child_done(self, sem, ok, ...)
  if sem then
    c_release(sem)
  end
  local task = c_current()
  forget(self, task)
  if ok then
    return ...
  end
  local err = ...
  if not is_cancelled(err) then
    child_failed(self, task, err)
  end
  error(err, 0)
end

-- The body of every child: wait for a slot, run fn, account for the end.
-- A child cancelled before it ever ran never gets here; the manager
-- prunes it from its set instead.
local function child_main(self, sem, fn, ...)
  if sem then
    local st, cause = c_acquire(sem)
    if st then
      forget(self, c_current())
      return wake_error(st, cause, where(self, "create_task"))
    end
  end
  return child_done(self, sem, pcall(fn, ...))
end

--- Opens the scope on the running task (fdn.with calls it).
function TaskManager:__enter()
  if self._state == "open" or self._state == "closing" then
    error(errors.InvalidState.new(where(self, "__enter") .. ": already entered"), 2)
  end
  local scope = scope_enter(nil, false)
  if scope == nil then
    error(errors.InvalidState.new(where(self, "__enter")
      .. ": must be entered from a task (inside fdn.run or fdn-lua)"), 2)
  end
  self._scope = scope
  self._state = "open"
  self._aborting = false
  self._failures = {}
  self._created = 0
  if self.max_concurrent then
    self._sem = core.limiter_new(self.max_concurrent)
  end
  return self
end

--- Starts fn(...) as a child and returns its Task at once; it runs as soon
-- as a slot is free. Raises InvalidState outside the scope and Closed once
-- a failure is stopping the manager.
---@param fn function
function TaskManager:create_task(fn, ...)
  if not is_callable(fn) then
    argerror(where(self, "create_task"), "fn", "a function", fn)
  end
  local state = self._state
  if state ~= "open" and state ~= "closing" then
    error(errors.InvalidState.new(where(self, "create_task")
      .. ": the manager is not entered (use it with fdn.with(manager, fn))"), 2)
  end
  if self._aborting then
    error(errors.Closed.new(where(self, "create_task")
      .. ": the manager is stopping after a failure"), 2)
  end
  local live = self._live
  if self._nlive >= self._prune_at then
    -- Children cancelled before they ran never reached their own cleanup.
    self._nlive = children.prune(live)
    self._prune_at = self._nlive * 2 + 64
  end
  local task = c_spawn(child_main, self, self._sem, fn, ...)
  live[task] = true
  self._nlive = self._nlive + 1
  self._created = self._created + 1
  return task
end

--- fdn.gather over the manager's tasks (or any tasks).
function TaskManager.gather(_, ...)
  return fdn.gather(...)
end

--- Failures so far, in order: a list of error values.
function TaskManager:errors()
  local list = {}
  for i, f in ipairs(self._failures) do
    list[i] = f.error
  end
  return list
end

--- Children that have not finished yet.
function TaskManager:active()
  self._nlive = children.prune(self._live)
  return self._nlive
end

--- Marks the failures it reports as seen, so fdn does not report them
-- again as failures nobody joined.
local function observe(failures, from)
  for i = from or 1, #failures do
    task_outcome(failures[i].task, false)
  end
end

local function failure_errors(failures, from)
  local list = {}
  for i = from or 1, #failures do
    list[#list + 1] = failures[i].error
  end
  return list
end

--- Closes the scope: waits for every child, then raises what failed
-- (fdn.with calls it with the body's error, or nil).
function TaskManager:__exit(err)
  if self._state ~= "open" then
    error(errors.InvalidState.new(where(self, "__exit") .. ": not entered"), 2)
  end
  self._state = "closing"
  local stopped_body = false
  if self._scope then
    stopped_body = scope_exit(self._scope)
    self._scope = nil
  end
  -- When a failing child stopped the body, that failure leads: the
  -- Cancelled it caused in the body is dropped, any other body error is
  -- attached to it.
  local body_err, late_body_err = err, nil
  if stopped_body and #self._failures > 0 then
    body_err = nil
    if err ~= nil and not is_cancelled(err) then
      late_body_err = err
    end
  end
  if body_err ~= nil then
    abort(self)
  end
  if not self._aborting then
    local cancelled = children.wait_or_cancel(self._live, where(self, "__exit"))
    if cancelled ~= nil then
      self._aborting = true
      body_err = body_err or cancelled
    end
  end
  if self._aborting then
    children.wait_shielded(self._live, where(self, "__exit"))
  end
  self._nlive = children.prune(self._live)
  self._state = "closed"
  self._sem = nil
  local failures = self._failures
  emit("task_manager.closed", self, { tasks = self._created, failed = #failures })

  if body_err ~= nil then
    if children.attach(body_err, failure_errors(failures)) then
      observe(failures)
    end
    error(body_err, 0)
  end
  if #failures > 0 and not self.collect_errors then
    local first, others = failures[1].error, failure_errors(failures, 2)
    others[#others + 1] = late_body_err
    task_outcome(failures[1].task, false)
    if children.attach(first, others) then
      observe(failures, 2)
    end
    error(first, 0)
  end
  if self.collect_errors then
    observe(failures)
  end
end

return M
