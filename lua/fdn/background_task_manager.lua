--- fdn.BackgroundTaskManager: functions run on a schedule until shut down.
--
--   local m = fdn.BackgroundTaskManager.new()
--   m:start_task("data_sync", sync, {interval = 3600, jitter = 0.1})
--   ...
--   m:shutdown{timeout = 10}   -- fdn-lua also does this on SIGINT/SIGTERM
--
-- Each scheduled function has a worker task that sleeps until the next
-- tick, runs it, and goes on: a run that fails is logged and counted, the
-- schedule continues. Runs of one task never overlap: a tick that comes
-- while the previous run is still going is missed, and the `missed` policy
-- says what then (as Tokio's MissedTickBehavior does):
--   "skip"  (default) the missed ticks are skipped (and counted); the next
--           run is at the next tick of the original grid;
--   "delay" the next run is one interval after the late run finished;
--           the grid moves;
--   "burst" the missed ticks run back to back until caught up.
-- Workers are ordinary tasks, not daemons: a manager keeps its engine
-- running until shut down (fdn.with(manager, fn) does it on exit).
local fdn = require "fdn"
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local log = require "fdn.log"

local M = {}

local type, pairs, pcall, error, setmetatable = type, pairs, pcall, error, setmetatable
local ceil, huge = math.ceil, math.huge

local now, wake, park_for = core.now, core.wake, core.park_for
local ETIMEDOUT = core.ETIMEDOUT
local wake_error, is_callable = fdn._wake_error, fdn.is_callable
local argerror, is_error = errors.argerror, errors.is
local Cancelled, Closed, InvalidArgument = errors.Cancelled, errors.Closed, errors.InvalidArgument

local logger = log.get("fdn.background")

local POLICIES = { skip = true, delay = true, burst = true }

local function emit(name, data)
  if events.has(name) then
    events.emit(name, data)
  end
end

-- Scheduling --------------------------------------------------------------------

-- When the run that belonged to tick `tick` finished at `finished`, returns
-- the tick of the next run and how many ticks passed while it ran.
local function next_tick(t, tick, finished)
  local iv = t.interval
  local due = tick + iv
  if finished <= due then
    return due, 0
  end
  local missed = ceil((finished - due) / iv)
  if t.missed == "skip" then
    return due + missed * iv, missed
  elseif t.missed == "delay" then
    return finished + iv, missed
  end
  return due, missed -- burst: the late ticks run now, one after another
end

-- Parks the worker until `at` (engine seconds) or until woken (pause,
-- resume, stop). Returns true when the time came.
local function wait_until(t, at)
  local delay = at - now()
  if delay < 0 then
    delay = 0
  end
  t.parked = true
  local st, cause = park_for(delay)
  t.parked = false
  if st == ETIMEDOUT then
    return true
  elseif st then
    return wake_error(st, cause, "BackgroundTaskManager")
  end
  return false
end

local function wake_worker(t)
  if t.parked and t.worker then
    wake(t.worker)
  end
end

local function run_once(m, t, tick)
  t.state = "running"
  t.run_no = t.run_no + 1
  local run_no = t.run_no
  local started = now()
  t.last_started = started
  emit("background.run_started", { manager = m.name, task = t.name, run = run_no,
    late_by = started - tick })
  local ok, err
  if t.timeout then
    ok, err = pcall(fdn.timeout, t.timeout, t.fn)
  else
    ok, err = pcall(t.fn)
  end
  local finished = now()
  t.last_finished = finished
  t.last_duration = finished - started
  t.runs = t.runs + 1
  if ok then
    t.last_error = nil
    t.consecutive_failures = 0
    logger.debug("background.run_finished", { task = t.name, run = run_no,
      duration = finished - started })
  elseif is_error(err, Cancelled) and core.cancel_pending() ~= 0 then
    t.cancelled_runs = t.cancelled_runs + 1
    logger.warn("background.run_cancelled", { task = t.name, run = run_no,
      duration = finished - started })
    emit("background.run_finished", { manager = m.name, task = t.name, run = run_no,
      ok = false, cancelled = true, duration = finished - started, error = err })
    error(err, 0) -- the worker itself was cancelled: it ends
  else
    t.failures = t.failures + 1
    t.consecutive_failures = t.consecutive_failures + 1
    t.last_error = err
    logger.error("background.run_failed", { task = t.name, run = run_no, error = err,
      duration = finished - started, consecutive_failures = t.consecutive_failures })
  end
  emit("background.run_finished", { manager = m.name, task = t.name, run = run_no, ok = ok,
    duration = finished - started, error = (not ok) and err or nil })
  return finished
end

-- The first tick at or after `at`: ticks that passed while a task was
-- paused are not missed, they are gone.
local function tick_after_pause(t, at)
  local tick = t.tick
  if tick < at then
    tick = tick + ceil((at - tick) / t.interval) * t.interval
  end
  return tick
end

local function worker_main(m, t)
  local tick = t.tick
  local iv = t.interval
  while not t.stopping do
    t.tick = tick
    if t.paused then
      t.state = "paused"
      t.next_run = nil
      wait_until(t, huge) -- until resume or stop
      if not t.paused then
        tick = tick_after_pause(t, now())
      end
    else
      local at = tick
      if t.jitter > 0 and not (tick == t.first_tick and t.run_immediately) then
        at = tick + fdn.random() * t.jitter * iv
      end
      t.state = "scheduled"
      t.next_run = at
      local came = wait_until(t, at)
      t.next_run = nil
      -- Woken early (pause, stop): the loop looks again.
      if came and not t.stopping and not t.paused then
        local finished = run_once(m, t, tick)
        local missed
        tick, missed = next_tick(t, tick, finished)
        if missed > 0 then
          t.missed_ticks = t.missed_ticks + missed
          if t.missed == "skip" then
            t.skipped = t.skipped + missed
            emit("background.run_skipped", { manager = m.name, task = t.name, skipped = missed })
          else
            emit("background.run_late", { manager = m.name, task = t.name, missed = missed,
              policy = t.missed })
          end
          logger.debug("background.ticks_missed", { task = t.name, missed = missed,
            policy = t.missed })
        end
      end
    end
  end
end

-- The manager --------------------------------------------------------------------

local Manager = {}
Manager.__index = Manager

-- A method called on anything but a BackgroundTaskManager: usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("BackgroundTaskManager:" .. method, "self",
    "a BackgroundTaskManager (call it with ':')", self, 3)
end
M.BackgroundTaskManager = Manager

local live = setmetatable({}, { __mode = "k" }) -- managers not shut down yet
local hooked = false

local function status_of(t)
  return {
    name = t.name, state = t.state, interval = t.interval, missed_policy = t.missed,
    runs = t.runs, failures = t.failures, consecutive_failures = t.consecutive_failures,
    cancelled_runs = t.cancelled_runs, last_error = t.last_error,
    last_started = t.last_started, last_finished = t.last_finished,
    last_duration = t.last_duration, next_run = t.next_run,
    skipped = t.skipped, missed = t.missed_ticks, paused = t.paused,
  }
end

local function check_name(self, fname, name)
  if type(name) ~= "string" or name == "" then
    argerror(fname, "name", "a non-empty string", name, 3)
  end
  local t = self._tasks[name]
  if t == nil then
    error(InvalidArgument.new(fname .. ": no task named '" .. name .. "'",
      { context = { ["function"] = fname, parameter = "name" } }), 3)
  end
  return t
end

--- Schedules fn() every opts.interval seconds under `name` (unique in this
-- manager). opts: interval (required, > 0); jitter (0..1: each run starts
-- up to jitter x interval late, drawn from fdn.random; 0); run_immediately
-- (first run now rather than one interval from now; true); missed ("skip",
-- "delay", "burst"); timeout (seconds a run may take before it is
-- cancelled and counted as failed; none).
---@param name string
---@param fn function
---@param opts table
function Manager:start_task(name, fn, opts)
  if getmetatable(self) ~= Manager then
    bad_self(self, "start_task")
  end
  local fname = "BackgroundTaskManager:start_task"
  if self._closing then
    error(Closed.new(fname .. ": the manager is shut down"), 2)
  end
  if type(name) ~= "string" or name == "" then
    argerror(fname, "name", "a non-empty string", name)
  end
  if self._tasks[name] ~= nil then
    error(InvalidArgument.new(fname .. ": a task named '" .. name .. "' is already running",
      { context = { ["function"] = fname, parameter = "name" } }), 2)
  end
  if not is_callable(fn) then
    argerror(fname, "fn", "a function", fn)
  end
  if type(opts) ~= "table" then
    argerror(fname, "opts", "a table with an interval", opts)
  end
  local interval = opts.interval
  if type(interval) ~= "number" or interval ~= interval or interval <= 0 or interval == huge then
    argerror(fname, "opts.interval", "a positive number of seconds", interval)
  end
  local jitter = opts.jitter or 0
  if type(jitter) ~= "number" or jitter ~= jitter or jitter < 0 or jitter > 1 then
    argerror(fname, "opts.jitter", "a fraction of the interval from 0 to 1", jitter)
  end
  local immediately = opts.run_immediately
  if immediately == nil then
    immediately = true
  elseif type(immediately) ~= "boolean" then
    argerror(fname, "opts.run_immediately", "a boolean", immediately)
  end
  local missed = opts.missed or "skip"
  if not POLICIES[missed] then
    argerror(fname, "opts.missed", '"skip", "delay" or "burst"', missed)
  end
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0) then
    argerror(fname, "opts.timeout", "a positive number of seconds", timeout)
  end
  local t0 = now()
  local t
  t = {
    name = name, fn = fn, interval = interval, jitter = jitter, missed = missed,
    timeout = timeout, run_immediately = immediately,
    first_tick = immediately and t0 or t0 + interval,
    tick = immediately and t0 or t0 + interval,
    state = "scheduled", runs = 0, failures = 0, consecutive_failures = 0, cancelled_runs = 0,
    skipped = 0, missed_ticks = 0, run_no = 0, paused = false, stopping = false, parked = false,
  }
  t.next_run = t.tick
  t.worker = fdn.spawn_with({ name = "background:" .. name }, function()
    local ok, err = pcall(worker_main, self, t)
    t.state = "stopped"
    t.next_run = nil
    if not ok and not is_error(err, Cancelled) then
      logger.error("background.worker_failed", { task = name, error = err })
    end
  end)
  self._tasks[name] = t
  self._order[#self._order + 1] = name
  emit("background.task_started", { manager = self.name, task = name, interval = interval })
  return self
end

-- Stopping takes two steps, so that many workers (a whole manager, every
-- manager) stop at once and share one deadline: begin_stop asks them to
-- stop (sleeping workers end at once), finish_stop waits for the runs in
-- flight until `deadline` (engine seconds), then cancels those still
-- going and waits for their cleanup. Returns the names of cancelled runs.
local function begin_stop(list)
  for i = 1, #list do
    list[i].stopping = true
    wake_worker(list[i])
  end
end

local function finish_stop(list, deadline)
  local cancelled = {}
  local function wait_all()
    for i = 1, #list do
      list[i].worker:wait()
    end
  end
  local left = deadline - now()
  if left < 0 then
    left = 0
  end
  local ok, err = pcall(fdn.timeout, left, wait_all)
  if not ok then
    if not is_error(err, errors.Timeout) then
      -- The caller was cancelled: the runs go too, and so does the caller.
      for i = 1, #list do
        list[i].worker:cancel("the shutdown waiting for it was cancelled")
      end
      error(err, 0)
    end
    for i = 1, #list do
      local w = list[i].worker
      local st = w:status()
      if st ~= "done" and st ~= "failed" and st ~= "cancelled" then
        cancelled[#cancelled + 1] = list[i].name
        w:cancel("shutdown timeout")
      end
    end
    wait_all()
  end
  return cancelled
end

--- Stops `name`: no more runs; a run in flight gets opts.timeout seconds
-- (default: the manager's shutdown_timeout) to finish, then is cancelled.
-- Returns the task's final status; the name is free again.
---@param name string
---@param opts? table
function Manager:stop_task(name, opts)
  if getmetatable(self) ~= Manager then
    bad_self(self, "stop_task")
  end
  local t = check_name(self, "BackgroundTaskManager:stop_task", name)
  -- Stopping waits for a run in flight: fail before anything stops.
  core.check_suspendable("BackgroundTaskManager:stop_task")
  if opts ~= nil and type(opts) ~= "table" then
    argerror("BackgroundTaskManager:stop_task", "opts", "a table", opts)
  end
  local timeout = opts and opts.timeout or self.shutdown_timeout
  if type(timeout) ~= "number" or timeout < 0 or timeout ~= timeout then
    argerror("BackgroundTaskManager:stop_task", "opts.timeout", "a non-negative number", timeout)
  end
  begin_stop({ t })
  finish_stop({ t }, now() + timeout)
  if self._tasks[name] == t then
    self._tasks[name] = nil
    for i = #self._order, 1, -1 do
      if self._order[i] == name then
        table.remove(self._order, i)
      end
    end
  end
  emit("background.task_stopped", { manager = self.name, task = name, runs = t.runs,
    failures = t.failures })
  return status_of(t)
end

--- Holds `name`'s schedule: no run starts until resume (a run in flight
-- finishes).
---@param name string
function Manager:pause(name)
  if getmetatable(self) ~= Manager then
    bad_self(self, "pause")
  end
  local t = check_name(self, "BackgroundTaskManager:pause", name)
  if not t.paused then
    t.paused = true
    if t.state ~= "running" then
      t.state = "paused"
      t.next_run = nil
    end
    wake_worker(t)
  end
end

--- Resumes `name`: the next run is at the next tick of its schedule.
---@param name string
function Manager:resume(name)
  if getmetatable(self) ~= Manager then
    bad_self(self, "resume")
  end
  local t = check_name(self, "BackgroundTaskManager:resume", name)
  if t.paused then
    t.paused = false
    if t.state == "paused" then
      t.state = "scheduled"
      t.next_run = tick_after_pause(t, now())
    end
    wake_worker(t)
  end
end

--- A table keyed by task name: state ("scheduled", "running", "paused",
-- "stopped"), runs, failures, consecutive_failures, cancelled_runs,
-- last_error, last_started, last_finished, last_duration, next_run (engine
-- seconds, fdn.now), skipped, missed, interval, missed_policy, paused.
-- status(name): that task's table alone.
---@param name? string
function Manager:status(name)
  if getmetatable(self) ~= Manager then
    bad_self(self, "status")
  end
  if name ~= nil then
    return status_of(check_name(self, "BackgroundTaskManager:status", name))
  end
  local out = {}
  for n, t in pairs(self._tasks) do
    out[n] = status_of(t)
  end
  return out
end

local function task_list(self)
  local list = {}
  for _, n in ipairs(self._order) do
    list[#list + 1] = self._tasks[n]
  end
  return list
end

-- The first step of shutdown: no more runs, and the deadline is set.
local function begin_shutdown(self, timeout)
  self._closing = true
  live[self] = nil
  self._deadline = now() + timeout
  local list = task_list(self)
  logger.info("background.shutdown", { manager = self.name, tasks = #list, timeout = timeout })
  begin_stop(list)
end

local function finish_shutdown(self)
  if self._shutdown_result == nil then
    local cancelled = finish_stop(task_list(self), self._deadline)
    if self._shutdown_result == nil then
      self._shutdown_result = { cancelled = cancelled }
      emit("background.shutdown", { manager = self.name, cancelled = cancelled })
      if #cancelled > 0 then
        logger.warn("background.runs_cancelled", { manager = self.name, tasks = cancelled })
      end
    end
  end
  return self._shutdown_result
end

--- Stops scheduling, waits up to opts.timeout seconds (default
-- shutdown_timeout, 10) for runs in flight, then cancels them and waits
-- for their cleanup. Later start_task calls raise Closed. Returns
-- {cancelled = names whose run was cancelled}. Calling it again waits for
-- the first shutdown.
---@param opts? table
function Manager:shutdown(opts)
  if getmetatable(self) ~= Manager then
    bad_self(self, "shutdown")
  end
  local fname = "BackgroundTaskManager:shutdown"
  if opts ~= nil and type(opts) ~= "table" then
    argerror(fname, "opts", "a table", opts)
  end
  local timeout = opts and opts.timeout
  if timeout == nil then
    timeout = self.shutdown_timeout
  end
  if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
    argerror(fname, "opts.timeout", "a non-negative number of seconds", timeout)
  end
  if self._shutdown_result == nil then
    -- Shutting down waits for runs in flight: fail before anything stops.
    core.check_suspendable(fname)
  end
  if not self._closing then
    begin_shutdown(self, timeout)
  end
  return finish_shutdown(self)
end

function Manager:is_shut_down()
  if getmetatable(self) ~= Manager then
    bad_self(self, "is_shut_down")
  end
  return self._closing
end

function Manager:__enter()
  if getmetatable(self) ~= Manager then
    bad_self(self, "__enter")
  end
  return self
end

function Manager:__exit()
  if getmetatable(self) ~= Manager then
    bad_self(self, "__exit")
  end
  self:shutdown()
end

function Manager:__tostring()
  return "fdn.BackgroundTaskManager(" .. self.name .. ")"
end

-- fdn-lua's SIGINT/SIGTERM hook: every manager stops at once, each with
-- its own shutdown_timeout, then each is waited for.
local function shutdown_all()
  local list = {}
  for m in pairs(live) do
    list[#list + 1] = m
  end
  table.sort(list, function(a, b) return a._id < b._id end)
  for i = 1, #list do
    begin_shutdown(list[i], list[i].shutdown_timeout)
  end
  for i = 1, #list do
    local ok, err = fdn.try(finish_shutdown, list[i])
    if not ok then
      logger.error("background.shutdown_failed", { manager = list[i].name, error = err })
    end
  end
end

local next_id = 0

--- opts: name (for logs and events), shutdown_timeout (seconds runs get
-- to finish on shutdown, 10).
---@param opts? table
function Manager.new(opts)
  local fname = "fdn.BackgroundTaskManager.new"
  if opts ~= nil and type(opts) ~= "table" then
    argerror(fname, "opts", "a table", opts)
  end
  opts = opts or {}
  local timeout = opts.shutdown_timeout or 10
  if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
    argerror(fname, "opts.shutdown_timeout", "a non-negative number of seconds", timeout)
  end
  if opts.name ~= nil and type(opts.name) ~= "string" then
    argerror(fname, "opts.name", "a string", opts.name)
  end
  next_id = next_id + 1
  local self = setmetatable({
    _id = next_id, name = opts.name or ("background-" .. next_id), shutdown_timeout = timeout,
    _tasks = {}, _order = {}, _closing = false,
  }, Manager)
  live[self] = true
  if not hooked then
    hooked = true
    fdn.on_shutdown(shutdown_all)
  end
  return self
end

M.new = Manager.new
M._next_tick = next_tick

setmetatable(M, {
  __call = function(_, opts)
    return Manager.new(opts)
  end,
})

return M
