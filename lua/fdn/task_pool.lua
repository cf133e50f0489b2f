--- fdn.TaskPool: a fixed set of workers fed by a bounded queue.
--
--   local pool = fdn.TaskPool.new{pool_size = 10, queue_size = 100}
--   for _, item in ipairs(items) do pool:submit(process, item) end  -- waits when full
--   local results = pool:gather_results()                          -- submission order
--   pool:close()                                                   -- drains, waits
--
-- pool_size workers run the jobs in submission order. At most queue_size
-- jobs are accepted but not started: submit waits (backpressure) until a
-- worker starts one, so memory stays bounded however fast jobs come. A
-- job's error is kept as its result; the worker goes on with the next job.
-- The pool starts its workers as submitted jobs need them, up to
-- pool_size (so it can be made at module level, and a large pool_size
-- costs nothing until the jobs come), and registers with fdn.on_shutdown,
-- so fdn-lua closes it on SIGINT/SIGTERM.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local fdn = require "fdn"
local children = require "fdn.children"

local M = {}

local TaskPool = {}
TaskPool.__index = TaskPool

-- A method called on anything but a TaskPool: usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("TaskPool:" .. method, "self", "a TaskPool (call it with ':')", self, 3)
end
-- fdn.with runs __exit unshielded: closing waits for the queued jobs as
-- long as they run, and still sees a cancellation of the task.
TaskPool.__exit_unshielded = true

local type, error, pcall, setmetatable, select = type, error, pcall, setmetatable, select
local unpack = unpack
local argerror = errors.argerror
local c_spawn, c_current, cancel_pending = core.spawn, core.current, core.cancel_pending
local suspendable, check_suspendable = core.suspendable, core.check_suspendable
local c_acquire = core.limiter_acquire
local lim_methods = core.limiter_methods
local c_release, c_try_acquire, c_lim_close = lim_methods.release, lim_methods.try_acquire,
  lim_methods.close
local c_put, c_get, c_take = core.queue_put, core.queue_get, core.queue_take
local q_methods = core.queue_methods
local c_queue_close, q_len, q_try_get = q_methods.close, q_methods.len, q_methods.try_get
local ECLOSED = core.ECLOSED
local is_callable, wake_error = fdn.is_callable, fdn._wake_error
local is_cancelled = children.is_cancelled

-- A failed job whose error nobody reads (no gather_results after it) is
-- reported through fdn.report once the pool is collected, as a failed task
-- nobody joined is: a userdata sentinel the pool holds finalizes with it.
-- It sees only the error table and the set of unread indexes, never the
-- pool, so it does not keep the pool alive.
local function watch_unread(name, errs, unread)
  if newproxy == nil then
    return nil
  end
  local sentinel = newproxy(true)
  getmetatable(sentinel).__gc = function()
    local indexes = {}
    for index in pairs(unread) do
      indexes[#indexes + 1] = index
    end
    table.sort(indexes)
    for _, index in ipairs(indexes) do
      fdn._report_later("unread_job_failed", {
        error = errs[index], job = index, pool = name,
        message = string.format("TaskPool%s: job %d failed and nobody gathered its result: %s",
          name and (" '" .. name .. "'") or "", index, errors.format(errs[index])),
      })
    end
  end
  return sentinel
end

--- Makes a pool. opts.pool_size: workers (an integer >= 1, required);
-- opts.queue_size: jobs accepted but not yet started (an integer >= 1 or
-- math.huge; default pool_size); opts.keep_results = false: drop successful
-- jobs' results (only failures are kept for gather_results), for pools fed
-- forever; opts.name: shown in its errors and events.
---@param opts {pool_size: integer, queue_size?: integer, keep_results?: boolean, name?: string}
function M.new(opts)
  if type(opts) ~= "table" then
    argerror("TaskPool.new", "opts", "a table with pool_size", opts)
  end
  local size = children.check_count("TaskPool.new", "opts.pool_size", opts.pool_size, 1, false)
  local qsize = opts.queue_size
  if qsize == nil then
    qsize = size
  else
    children.check_count("TaskPool.new", "opts.queue_size", qsize, 1, true)
  end
  local name, errs, unread = children.check_name("TaskPool.new", opts.name), {}, {}
  return setmetatable({
    pool_size = size,
    queue_size = qsize,
    name = name,
    _closed = false,
    _submitted = 0, -- jobs accepted so far; a job's number is its index
    _gathered = 0,  -- results before this index were handed out
    _done_upto = 0, -- every job up to here has finished
    keep_results = opts.keep_results ~= false,
    _ahead = {},    -- finished jobs past _done_upto
    _results = {},  -- index -> non-nil result of finished jobs
    _errors = errs, -- index -> error of failed jobs
    _unread = unread, -- index -> true: failed, error not gathered yet
    _sentinel = watch_unread(name, errs, unread),
    _fail_order = {}, -- indexes of failed jobs, in order of failure
    _waiters = 0,
    _workers = children.list(),
    _nworkers = 0, -- workers started on the current engine
    _idle = 0,     -- of which waiting for a job
    _queued = 0,   -- jobs put in the queue that no worker has taken yet
  }, TaskPool)
end

local function where(self, method)
  return children.where("TaskPool", self.name, method)
end

local function emit(name, self, fields)
  if events.has(name) then
    fields.name = self.name
    events.emit(name, fields)
  end
end

-- Wakes the tasks waiting in gather_results: each waits on the event of
-- the moment it started waiting; a new one replaces it.
local function wake_gatherers(self)
  local ev = self._progress
  if ev then
    self._progress = nil
    ev:set()
  end
end

local function finish_job(self, index, ok, result)
  if not ok then
    self._errors[index] = result
    if not is_cancelled(result) then
      self._unread[index] = true
    end
    local order = self._fail_order
    order[#order + 1] = index
    emit("task_pool.job_failed", self, { job = index, error = result })
  elseif result ~= nil and self.keep_results then
    self._results[index] = result
  end
  -- Jobs finish roughly in order: only those ahead of the first unfinished
  -- one are remembered, so this costs O(pool_size) memory, not O(jobs).
  local upto = self._done_upto
  if index == upto + 1 then
    local ahead = self._ahead
    upto = index
    while ahead[upto + 1] do
      ahead[upto + 1] = nil
      upto = upto + 1
    end
    self._done_upto = upto
    if self._waiters > 0 then
      wake_gatherers(self)
    end
  else
    self._ahead[index] = true
  end
end

local function run_job(self, job)
  -- job = {index, fn, nargs, args...}
  local ok, result = pcall(job[2], unpack(job, 4, 3 + job[3]))
  finish_job(self, job[1], ok, result)
  return ok or not is_cancelled(result) or cancel_pending() == 0
end

local function worker(self, admit, jobs)
  while true do
    self._idle = self._idle + 1
    local st, job = c_get(jobs)
    self._idle = self._idle - 1
    if st == nil then
      job = c_take(jobs)
    elseif st == ECLOSED then
      return
    elseif st then
      return wake_error(st, job, where(self, "worker"))
    end
    -- The job has started: its place in the queue is free again.
    self._queued = self._queued - 1
    c_release(admit)
    if not run_job(self, job) then
      return -- this worker was cancelled (the pool is being torn down)
    end
  end
end

-- Starts a worker when a queued job would otherwise wait for one, up to
-- pool_size: a pool sized for a peak costs nothing before the peak comes
-- (the fuzzer's pool_size = 2^53 started 2^53 workers at the first submit).
local function grow(self)
  if self._queued > self._idle and self._nworkers < self.pool_size then
    self._nworkers = self._nworkers + 1
    children.add(self._workers, c_spawn(worker, self, self._admit, self._jobs))
    return true
  end
  return false
end

-- Starts the workers on the running engine: at the first submit, and again
-- when the engine that ran them has closed (a pool made at module level
-- serves each fdn.run in turn).
local function start(self)
  local engine = core.engine_running()
  if self._engine == engine and self._admit then
    return
  end
  if not self._admit then
    self._admit = core.limiter_new(self.queue_size == math.huge and 2 ^ 53 or self.queue_size)
    self._jobs = core.queue_new(math.huge)
  end
  self._engine = engine
  self._workers, self._nworkers, self._idle = children.list(), 0, 0
  -- Jobs left queued by an engine that closed get workers here; new ones
  -- get theirs as they are submitted.
  while grow(self) do
  end
  if not self._unhook then
    self._unhook = fdn.on_shutdown(function()
      self:_stop_accepting()
    end)
  end
  emit("task_pool.started", self, { pool_size = self.pool_size })
end

--- Submits fn(...) and returns the job's number (1, 2, …). Waits while
-- queue_size jobs are waiting to start; raises Closed once the pool is
-- closing, Cancelled when the submitting task is cancelled.
---@param fn function
function TaskPool:submit(fn, ...)
  if getmetatable(self) ~= TaskPool then
    bad_self(self, "submit")
  end
  if not is_callable(fn) then
    argerror(where(self, "submit"), "fn", "a function", fn)
  end
  if self._closed then
    error(errors.Closed.new(where(self, "submit") .. ": the pool is closed"), 2)
  end
  if c_current() == nil then
    error(errors.InvalidState.new(where(self, "submit")
      .. ": must be called from a task (inside fdn.run or fdn-lua)"), 2)
  end
  start(self)
  local admit = self._admit
  -- A cancelled task is refused here, even with room (sticky cancellation).
  if cancel_pending() ~= 0 or not c_try_acquire(admit) then
    if cancel_pending() == 0 then
      emit("task_pool.full", self, { queue_size = self.queue_size })
    end
    local st, cause = c_acquire(admit, nil, where(self, "submit"))
    if st then
      if st == ECLOSED then
        error(errors.Closed.new(where(self, "submit") .. ": the pool was closed"), 2)
      end
      return wake_error(st, cause, where(self, "submit"))
    end
  end
  if self._closed then
    -- Closed while this submit waited for its place, or was handed one.
    c_release(admit)
    error(errors.Closed.new(where(self, "submit") .. ": the pool was closed"), 2)
  end
  local index = self._submitted + 1
  local st, cause = c_put(self._jobs, { index, fn, select("#", ...), ... })
  if st then
    c_release(admit) -- never parks (the queue has no limit); refused: undo
    return wake_error(st, cause, where(self, "submit"))
  end
  self._submitted = index
  self._queued = self._queued + 1
  grow(self)
  return index
end

--- Waits until every job submitted so far has finished and returns their
-- results (each job's first result) in submission order: the jobs since
-- the previous gather_results, whose results the pool then forgets. The
-- first failure (in time) is raised with the later ones in err.suppressed,
-- unless opts.return_errors puts each error in its job's slot.
---@param opts? {return_errors?: boolean}
function TaskPool:gather_results(opts)
  if getmetatable(self) ~= TaskPool then
    bad_self(self, "gather_results")
  end
  if opts ~= nil and type(opts) ~= "table" then
    argerror(where(self, "gather_results"), "opts", "a table", opts)
  end
  local target = self._submitted
  if self._done_upto < target then
    check_suspendable(where(self, "gather_results"))
  end
  while self._done_upto < target do
    local ev = self._progress
    if not ev then
      ev = fdn.Event.new()
      self._progress = ev
    end
    self._waiters = self._waiters + 1
    local ok, err = pcall(ev.wait, ev)
    self._waiters = self._waiters - 1
    if not ok then
      error(err, 0)
    end
  end
  local from = self._gathered + 1
  if target < from then
    return { n = 0 }
  end
  self._gathered = target
  local results, errs, unread = self._results, self._errors, self._unread
  -- The first failure is found by index: its error may be nil.
  local list, first_index, others = { n = target - from + 1 }, nil, {}
  local return_errors = opts ~= nil and opts.return_errors
  for i = from, target do
    local r = results[i]
    if r ~= nil then
      list[i - from + 1] = r
      results[i] = nil
    elseif return_errors then
      list[i - from + 1] = errs[i]
    end
  end
  local order, kept = self._fail_order, {}
  for _, i in ipairs(order) do
    if i >= from and i <= target then
      if first_index == nil then
        first_index = i
      else
        others[#others + 1] = errs[i]
      end
      unread[i] = nil
    else
      kept[#kept + 1] = i
    end
  end
  self._fail_order = kept
  local first = first_index and errs[first_index]
  for i = from, target do
    errs[i] = nil
  end
  if first_index ~= nil and not return_errors then
    children.attach(first, others)
    error(first, 0)
  end
  return list
end

--- Stops accepting jobs without waiting: later submits raise Closed (as
-- do submits waiting for a place); the queued jobs still run. What
-- fdn-lua's shutdown hook calls.
function TaskPool:_stop_accepting()
  if self._closed then
    return
  end
  self._closed = true
  if self._admit then
    c_lim_close(self._admit)
    c_queue_close(self._jobs)
  end
  if self._unhook then
    self._unhook()
    self._unhook = nil
  end
end

local function teardown(self)
  children.cancel(self._workers)
  children.wait_shielded(self._workers, where(self, "close"))
end

--- Closes the pool: stops accepting jobs, lets the workers run what is
-- queued, and waits for them. Closing twice is harmless. If the closing
-- task is cancelled while it waits, the workers are cancelled too.
-- Whether closing would wait for workers and cannot: raised before the pool
-- changes, so a close from where no task can wait (a table.sort comparator,
-- a coroutine of the caller's own) loses no queued job.
local function check_can_wait(self, method)
  if self._workers.n > 0 and c_current() ~= nil and not suspendable() then
    check_suspendable(where(self, method))
  end
end

function TaskPool:close()
  if getmetatable(self) ~= TaskPool then
    bad_self(self, "close")
  end
  check_can_wait(self, "close")
  self:_stop_accepting()
  if self._workers.n == 0 or c_current() == nil then
    -- Nothing started, or not in a task: the workers (if any) finish the
    -- queue on their own.
    emit("task_pool.closed", self, { jobs = self._submitted, failed = #self._fail_order })
    return
  end
  local cancelled = children.wait_or_cancel(self._workers, where(self, "close"))
  emit("task_pool.closed", self, { jobs = self._submitted, failed = #self._fail_order })
  if cancelled then
    error(cancelled, 0)
  end
end

--- Cancels the running jobs, drops the queued ones and waits (bounded by
-- fdn.cleanup_timeout) for the workers. Jobs that never ran end with a
-- Cancelled error as their result.
function TaskPool:cancel()
  if getmetatable(self) ~= TaskPool then
    bad_self(self, "cancel")
  end
  check_can_wait(self, "cancel")
  self:_stop_accepting()
  teardown(self)
  local jobs = self._jobs
  if jobs then
    while q_len(jobs) > 0 do
      local _, job = q_try_get(jobs)
      c_release(self._admit)
      finish_job(self, job[1], false, errors.Cancelled.new(where(self, "cancel")
        .. ": job " .. job[1] .. " was dropped before it started"))
    end
  end
  emit("task_pool.closed", self, { jobs = self._submitted, failed = #self._fail_order })
end

--- Jobs accepted but not started yet.
function TaskPool:pending()
  if getmetatable(self) ~= TaskPool then
    bad_self(self, "pending")
  end
  if not self._admit then
    return 0
  end
  return lim_methods.held(self._admit)
end

--- fdn.with(pool, fn): closes the pool when fn ends; if fn failed (or was
-- cancelled), the jobs are cancelled instead of drained.
function TaskPool:__enter()
  if getmetatable(self) ~= TaskPool then
    bad_self(self, "__enter")
  end
  return self
end

function TaskPool:__exit(err)
  if getmetatable(self) ~= TaskPool then
    bad_self(self, "__exit")
  end
  if err ~= nil or cancel_pending() ~= 0 then
    self:cancel()
    return
  end
  self:close()
end

return M
