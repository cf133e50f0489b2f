--- fdn.ConcurrentExecutor: map a function over many items, a few at a
-- time.
--
--   local ex = fdn.ConcurrentExecutor.new{max_workers = 5}
--   local results = ex:map(fetch, urls, {progress_callback = function(done, total) end})
--
-- map runs max_workers worker tasks that take items one by one, so never
-- more than max_workers calls are in flight. Items come from a list or
-- from an iterator function, which is pulled lazily (one item per free
-- worker), so a stream of a million items is never held in memory. The
-- results come back in input order. The first error cancels the calls in
-- flight, takes no more items, and is raised with the later ones in
-- err.suppressed, unless return_errors puts each error in its slot.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local fdn = require "fdn"
local children = require "fdn.children"

local M = {}

local Executor = {}
Executor.__index = Executor

-- A method called on anything but a ConcurrentExecutor: usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("ConcurrentExecutor:" .. method, "self",
    "a ConcurrentExecutor (call it with ':')", self, 3)
end

local type, error, pcall, setmetatable, getmetatable = type, error, pcall, setmetatable, getmetatable
local argerror = errors.argerror
local c_spawn, cancel_pending = core.spawn, core.cancel_pending
local c_acquire = core.limiter_acquire
local c_release = core.limiter_methods.release
local is_callable, wake_error = fdn.is_callable, fdn._wake_error
local is_cancelled = children.is_cancelled

--- Makes an executor. opts.max_workers: calls in flight at most (an
-- integer >= 1, required); opts.name: shown in its errors and events.
---@param opts {max_workers: integer, name?: string}
function M.new(opts)
  if type(opts) ~= "table" then
    argerror("ConcurrentExecutor.new", "opts", "a table with max_workers", opts)
  end
  return setmetatable({
    max_workers = children.check_count("ConcurrentExecutor.new", "opts.max_workers",
      opts.max_workers, 1, false),
    name = children.check_name("ConcurrentExecutor.new", opts.name),
  }, Executor)
end

local function where(self, method)
  return children.where("ConcurrentExecutor", self.name, method)
end

local function record(run, err, index)
  local failures = run.failures
  failures[#failures + 1] = err
  if events.has("concurrent_executor.item_failed") then
    events.emit("concurrent_executor.item_failed",
      { name = run.name, index = index, error = err })
  end
end

-- The first failure: no more items, the calls in flight are cancelled.
local function stop(run, err, index)
  record(run, err, index)
  if not run.stopping then
    run.stopping = true
    children.cancel(run.workers, core.current())
  end
end

-- The next (index, item) from a list, or nil when there are no more.
local function next_from_list(run)
  local i = run.next_index + 1
  if i > run.total then
    return nil
  end
  run.next_index = i
  return i, run.items[i]
end

-- The next (index, item) from the iterator. Workers take turns pulling
-- (the iterator may itself suspend), in FIFO order, so indexes follow the
-- iterator's order.
local function next_from_iterator(run)
  if run.exhausted then
    return nil
  end
  local lock = run.lock
  local st, cause = c_acquire(lock)
  if st then
    return wake_error(st, cause, run.where)
  end
  if run.exhausted then
    c_release(lock)
    return nil
  end
  local ok, item = pcall(run.iter)
  c_release(lock)
  if not ok then
    if is_cancelled(item) and cancel_pending() ~= 0 then
      error(item, 0)
    end
    run.exhausted = true
    stop(run, item, run.next_index + 1)
    return nil
  end
  if item == nil then
    run.exhausted = true
    return nil
  end
  local i = run.next_index + 1
  run.next_index = i
  return i, item
end

local function worker(run)
  local fn, results, next_item = run.fn, run.results, run.next_item
  local progress, return_errors = run.progress, run.return_errors
  while not run.stopping do
    local i, item = next_item(run)
    if i == nil then
      return
    end
    local ok, result = pcall(fn, item, i)
    if not ok then
      if is_cancelled(result) and cancel_pending() ~= 0 then
        -- This worker was cancelled: by the first failure, or with map's
        -- caller.
        return
      end
      if not return_errors then
        return stop(run, result, i)
      end
      record(run, result, i)
    end
    results[i] = result
    local completed = run.completed + 1
    run.completed = completed
    if progress then
      local pok, perr = pcall(progress, completed, run.total)
      if not pok then
        return stop(run, perr, i)
      end
    end
    if cancel_pending() ~= 0 then
      return -- cancelled, though fn swallowed it: take no more items
    end
  end
end

--- Calls fn(item, index) for every item, at most max_workers at a time,
-- and returns the list of first results in input order (with `n`, the
-- number of items). `items` is a list (its length is `items.n` or `#items`)
-- or an iterator function returning the next item, nil at the end.
-- opts.progress_callback(completed, total) runs once per finished item,
-- in order of completion (total: the list's length, opts.total for an
-- iterator, else nil); opts.return_errors puts an item's error in its slot
-- instead of raising.
---@param fn function
---@param items table|function
---@param opts? {progress_callback?: function, return_errors?: boolean, total?: integer}
function Executor:map(fn, items, opts)
  if getmetatable(self) ~= Executor then
    bad_self(self, "map")
  end
  local fname = where(self, "map")
  if core.current() == nil then
    error(errors.InvalidState.new(fname .. ": must be called from a task (inside fdn.run or fdn-lua)"), 2)
  end
  -- map waits for its workers: where that is impossible, fail before any starts.
  core.check_suspendable(fname)
  if not is_callable(fn) then
    argerror(fname, "fn", "a function", fn)
  end
  if opts ~= nil and type(opts) ~= "table" then
    argerror(fname, "opts", "a table", opts)
  end
  opts = opts or {}
  local progress = opts.progress_callback
  if progress ~= nil and not is_callable(progress) then
    argerror(fname, "opts.progress_callback", "a function", progress)
  end
  local run = {
    fn = fn, results = {}, completed = 0, next_index = 0, failures = {},
    progress = progress, return_errors = opts.return_errors and true or false,
    workers = children.list(), name = self.name, where = fname,
  }
  local itype = type(items)
  if itype == "table" and getmetatable(items) == nil then
    run.items, run.total, run.next_item = items, items.n or #items, next_from_list
  elseif is_callable(items) then
    local total = opts.total
    if total ~= nil then
      children.check_count(fname, "opts.total", total, 0, false)
    end
    run.iter, run.total, run.next_item = items, total, next_from_iterator
    run.lock = core.limiter_new(1)
  else
    argerror(fname, "items", "a list or an iterator function", items)
  end

  local nworkers = self.max_workers
  if run.items and run.total < nworkers then
    nworkers = run.total
  end
  if events.has("concurrent_executor.map_started") then
    events.emit("concurrent_executor.map_started",
      { name = self.name, total = run.total, max_workers = self.max_workers })
  end
  local workers = run.workers
  for _ = 1, nworkers do
    children.add(workers, c_spawn(worker, run))
  end
  local cancelled = children.wait_or_cancel(workers, fname)
  local failures = run.failures
  if events.has("concurrent_executor.map_finished") then
    events.emit("concurrent_executor.map_finished", {
      name = self.name, completed = run.completed, failed = #failures,
      cancelled = cancelled ~= nil,
    })
  end
  if cancelled ~= nil then
    error(cancelled, 0)
  end
  if run.stopping then
    local first = failures[1]
    children.attach(first, failures, 2)
    error(first, 0)
  end
  local results = run.results
  results.n = run.next_index
  return results
end

return M
