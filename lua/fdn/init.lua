--- fdn: the async engine's Lua face.
--
-- Every suspending call here parks the task in the C core and yields to the
-- scheduler. The C side returns nothing on a normal wake and a status pair
-- when the task must not go on (cancelled, timed out); the wrappers below
-- turn that pair into an fdn.errors value.
local core = require "fdn.core"
local errors = require "fdn.errors"
local shared = require "fdn._shared"
local is_callable, pack = shared.is_callable, shared.pack

local M = {}

local error, pcall, xpcall, select, type = error, pcall, xpcall, select, type
local getmetatable, setmetatable, tostring = getmetatable, setmetatable, tostring
local unpack = unpack
local io_stderr = io.stderr

local c_sleep, c_spawn, c_current = core.sleep, core.spawn, core.current
local join_wait, task_outcome = core.join_wait, core.task_outcome
local scope_enter, scope_exit = core.scope_enter, core.scope_exit
local ECANCELED, ETIMEDOUT, ECLOSED = core.ECANCELED, core.ETIMEDOUT, core.ECLOSED
local CANCEL_DEADLINE = core.CANCEL_DEADLINE
local CANCEL_SCOPE = core.CANCEL_SCOPE

local Cancelled, Timeout, InvalidState = errors.Cancelled, errors.Timeout, errors.InvalidState
local argerror, is_error = errors.argerror, errors.is

M.errors = errors
M.version = core.version

--- Seconds that cleanup code (fdn.with exits) may spend suspended after a
-- cancellation before it is itself cancelled.
M.cleanup_timeout = 5

M.is_callable = is_callable

local reasons = setmetatable({}, { __mode = "k" })

--- Turns the status a suspending C call returned into the error it means.
local function wake_error(st, cause, fname)
  if st == ECANCELED then
    local task = c_current()
    local reason = cause == CANCEL_DEADLINE and "deadline exceeded"
      or cause == CANCEL_SCOPE and "its scope was cancelled"
      or (task and reasons[task]) or "task cancelled"
    error(Cancelled.new(fname .. ": " .. reason, {
      context = { task_id = task and task.id, reason = reason },
    }), 0)
  elseif st == ETIMEDOUT then
    error(Timeout.new(fname .. ": timed out"), 0)
  elseif st == ECLOSED then
    error(errors.Closed.new(fname .. ": closed"), 0)
  end
  error(errors.Error.new(fname .. ": failed with status " .. tostring(st)), 0)
end
M._wake_error = wake_error

-- Reports made from finalizers (a TaskPool or a Batcher collected with work
-- nobody read) wait here for the engine's next scheduling pass: a report
-- runs the logger and the user's sinks, which must not run inside the
-- garbage collector (LuaJIT's compiled code has been seen to loop forever
-- there). With no engine open they are made at once.
local later = {}

local function flush_later()
  local list = later
  later = {}
  for i = 1, #list do
    M.report(list[i][1], list[i][2])
  end
end

--- Reports kind/info at the next safe point (see `later`). For finalizers.
function M._report_later(kind, info)
  later[#later + 1] = { kind, info }
  if not core.report_later() then
    flush_later()
  end
end
-- Never compiled: a trace entered from a finalizer is what loops.
if jit then
  jit.off(M._report_later)
  jit.off(flush_later)
end

core.set_hooks {
  report_later = M._report_later,
  flush_later = flush_later,
  make_error = function(class, message, context)
    local cls = errors[class] or errors.Error
    return cls.new(message, { context = context })
  end,
  is_cancelled = function(err)
    return is_error(err, Cancelled)
  end,
  report = function(kind, info)
    return M.report(kind, info)
  end,
}

local function report_to_log(kind, info)
  return require("fdn.log")._report(kind, info)
end

--- Where fdn reports what it cannot raise: a failed task nobody joined, a
-- deadlock it broke. Reports are error records of the "fdn" logger; when
-- the logger cannot write one they go to stderr as text. Never raises.
-- Replace it to route reports elsewhere.
function M.report(kind, info)
  local logged, handled = pcall(report_to_log, kind, info)
  if logged and handled then
    return
  end
  local text
  if kind == "unjoined_task_failed" then
    text = string.format("fdn: task %s failed and nobody joined it: %s",
      tostring(info.task_id), errors.format(info.error))
    local tb = info.traceback
    if type(info.error) == "table" and type(info.error.traceback) == "string" then
      tb = info.error.traceback
    end
    if tb then
      text = text .. "\n" .. tb
    end
  else
    text = "fdn: " .. kind .. ": " .. errors.format(info.message or info.error)
  end
  io_stderr:write(text, "\n")
end

--- Functions fdn-lua calls, in order, when it receives SIGINT or SIGTERM,
-- before it cancels the main task: how managers flush and stop. Returns a
-- function that removes the hook.
M._shutdown_hooks = {}
function M.on_shutdown(fn)
  if not is_callable(fn) then
    argerror("fdn.on_shutdown", "fn", "a function", fn)
  end
  local hooks = M._shutdown_hooks
  hooks[#hooks + 1] = fn
  return function()
    for i = #hooks, 1, -1 do
      if hooks[i] == fn then
        table.remove(hooks, i)
      end
    end
  end
end

-- Tasks -------------------------------------------------------------------

local methods = core.task_methods
local c_cancel = methods.cancel

--- Waits for the task and returns its results, or raises its error (the
-- original value).
function methods.join(self)
  local st, cause = join_wait(self)
  if st then
    return wake_error(st, cause, "task:join")
  end
  return task_outcome(self, true)
end

--- Waits for the task: true, results… or false, err. Never raises the
-- task's error; a cancellation of the waiting task still raises.
function methods.wait(self)
  local st, cause = join_wait(self, "task:wait")
  if st then
    return wake_error(st, cause, "task:wait")
  end
  return task_outcome(self, false)
end

--- Requests cancellation; `reason` appears in the Cancelled error's text.
-- Returns false once the task has finished.
function methods.cancel(self, reason)
  if reason ~= nil and type(reason) ~= "string" then
    reason = tostring(reason)
  end
  if c_cancel(self) then
    if reason then
      reasons[self] = reason
    end
    return true
  end
  return false
end

--- Starts fn(...) as a new task, queued as "ready".
M.spawn = c_spawn

--- Like spawn, with options: `name` (shown in task.name and reports) and
-- `daemon` (cancelled once only daemons are left).
M.spawn_with = core.spawn_with

--- The running task, or nil outside any task.
M.current = c_current

--- Monotonic seconds, or virtual seconds under a virtual clock.
M.now = core.now

--- random() -> [0, 1); random(n) -> integer in [1, n]. Draws from the
-- engine's RNG, which fdn.run(fn, {seed = n}) or FDN_SEED make repeatable;
-- fdn's own randomness (jitter, ids) uses it too.
M.random = core.random

--- Suspends the running task for `seconds`; 0 just lets others run.
function M.sleep(seconds)
  local st, cause = c_sleep(seconds)
  if st then
    return wake_error(st, cause, "fdn.sleep")
  end
end

-- Gather ------------------------------------------------------------------

local group_new, group_wait = core.group_new, core.group_wait
local group_first_failed, group_close = core.group_first_failed, core.group_close
local gather_results = core.gather_results

--- Waits for tasks (a list, or tasks as separate arguments) and returns the
-- list of their first results in input order. The first failure in time
-- cancels the others and is raised once they have finished, unless
-- `opts.return_errors`, which puts each error in its slot.
function M.gather(first, ...)
  local tasks, opts
  if first == nil and select("#", ...) == 0 then
    return {}
  elseif type(first) == "table" and getmetatable(first) == nil then
    tasks, opts = first, ...
    if opts ~= nil and type(opts) ~= "table" then
      argerror("fdn.gather", "opts", "a table", opts)
    end
  else
    tasks = pack(first, ...)
  end
  local n = tasks.n or #tasks
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    argerror("fdn.gather", "tasks.n", "a count of the tasks in the list", n)
  end
  local return_errors = opts ~= nil and opts.return_errors or false
  local group = group_new(tasks, n)
  local st, cause = group_wait(group, not return_errors)
  if st then
    -- The gatherer itself was cancelled: take the tasks down with it.
    for i = 1, n do
      c_cancel(tasks[i])
    end
    group_close(group)
    return wake_error(st, cause, "fdn.gather")
  end
  local failed = group_first_failed(group)
  if failed and not return_errors then
    for i = 1, n do
      c_cancel(tasks[i])
    end
    group_wait(group, false)
    group_first_failed(group)
    group_close(group)
    return task_outcome(tasks[failed], true)
  end
  group_close(group)
  return gather_results(group, return_errors)
end

-- Scopes ------------------------------------------------------------------

--- Runs fn(...) with a deadline. At the deadline the call fn is waiting in
-- raises Cancelled inside fn, and fdn.timeout raises Timeout.
function M.timeout(seconds, fn, ...)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    argerror("fdn.timeout", "seconds", "a non-negative number", seconds)
  end
  if not is_callable(fn) then
    argerror("fdn.timeout", "fn", "a function", fn)
  end
  local scope = scope_enter(seconds, false)
  if scope == nil then
    -- Outside a task, or in a coroutine of the caller's own: say which.
    core.check_suspendable("fdn.timeout")
    error(InvalidState.new("fdn.timeout: must be called from a task"), 2)
  end
  local res = pack(pcall(fn, ...))
  local expired, still_cancelled = scope_exit(scope)
  if res[1] then
    return unpack(res, 2, res.n)
  end
  local err = res[2]
  if expired and not still_cancelled and is_error(err, Cancelled) then
    error(Timeout.new("fdn.timeout: deadline of " .. seconds .. "s exceeded", {
      cause = err, context = { seconds = seconds },
    }), 0)
  end
  error(err, 0)
end

--- Runs fn with cancellation held off (up to cleanup_timeout): for cleanup
-- that must finish even in a cancelled task.
local function shielded(fn, ...)
  local scope = scope_enter(M.cleanup_timeout, true)
  local res = pack(pcall(fn, ...))
  if scope then
    scope_exit(scope)
  end
  return res
end
M.shielded = function(fn, ...)
  if not is_callable(fn) then
    argerror("fdn.shielded", "fn", "a function", fn)
  end
  local res = shielded(fn, ...)
  if res[1] then
    return unpack(res, 2, res.n)
  end
  error(res[2], 0)
end

--- Calls manager:__enter(), fn(entered), then manager:__exit(err) whatever
-- happened (shielded from cancellation, for a bounded time). Re-raises fn's
-- error; an error of __exit is raised only when fn succeeded.
-- manager.__exit, or nil when the manager cannot be indexed (a userdata
-- of another library, with no __index).
local function exit_method(manager)
  local mtype = type(manager)
  if mtype == "table" then
    return manager.__exit
  elseif mtype == "userdata" then
    local ok, exit = pcall(function() return manager.__exit end)
    return ok and exit or nil
  end
  return nil
end

function M.with(manager, fn)
  if exit_method(manager) == nil then
    argerror("fdn.with", "manager", "an object with an __exit method", manager)
  end
  if not is_callable(fn) then
    argerror("fdn.with", "fn", "a function", fn)
  end
  local entered = manager
  if manager.__enter ~= nil then
    entered = manager:__enter()
    if entered == nil then
      entered = manager
    end
  end
  local res = pack(pcall(fn, entered))
  local err = nil
  if not res[1] then
    err = res[2]
  end
  if manager.__exit_unshielded then
    -- A manager whose exit waits for work it started (a TaskManager) runs
    -- its __exit unshielded, so it may wait as long as that work runs and
    -- still see a cancellation; it shields its own cleanup, and raises fn's
    -- error or the one that explains it (the failure of a child that made
    -- it cancel fn).
    local exit = pack(pcall(manager.__exit, manager, err))
    if not exit[1] then
      error(exit[2], 0)
    elseif not res[1] then
      error(err, 0)
    end
    return unpack(res, 2, res.n)
  end
  local exit = shielded(manager.__exit, manager, err)
  if not res[1] then
    if not exit[1] then
      -- A nil exit error cannot sit in a list: it is reported instead.
      if errors.class_of(err) and exit[2] ~= nil then
        local suppressed = err.suppressed or {}
        suppressed[#suppressed + 1] = exit[2]
        err.suppressed = suppressed
      else
        M.report("exit_failed", { error = exit[2] })
      end
    end
    error(err, 0)
  end
  if not exit[1] then
    error(exit[2], 0)
  end
  return unpack(res, 2, res.n)
end

local function keep_traceback(err)
  if errors.class_of(err) and err.traceback == nil then
    err.traceback = debug.traceback("", 2)
  end
  return err
end

--- pcall that keeps tracebacks and never swallows Cancelled: true,
-- results… or false, err.
function M.try(fn, ...)
  if not is_callable(fn) then
    argerror("fdn.try", "fn", "a function", fn)
  end
  local res = pack(xpcall(fn, keep_traceback, ...))
  if res[1] then
    return unpack(res, 1, res.n)
  end
  if is_error(res[2], Cancelled) then
    error(res[2], 0)
  end
  return false, res[2]
end

-- Running -----------------------------------------------------------------

local function format_stuck(stuck)
  local lines = {}
  for i = 1, #stuck do
    local t = stuck[i]
    lines[i] = string.format("  task %s (%s) waiting in %s at %s", tostring(t.id),
      tostring(t.name or ("task-" .. tostring(t.id))), tostring(t.waiting_in or "?"),
      tostring(t.location or "?"))
  end
  return table.concat(lines, "\n")
end
M._format_stuck = format_stuck

--- Runs fn as the main task on a new engine and drives the loop until fn
-- and every task it left running are done. Returns fn's results or raises
-- its error. opts.clock = "real" (default) or "virtual".
function M.run(fn, opts)
  if not is_callable(fn) then
    argerror("fdn.run", "fn", "a function", fn)
  end
  if opts ~= nil then
    if type(opts) ~= "table" then
      argerror("fdn.run", "opts", "a table", opts)
    end
    local clock = opts.clock
    if clock ~= nil and clock ~= "real" and clock ~= "virtual" then
      argerror("fdn.run", "opts.clock", '"real" or "virtual"', clock)
    end
    local seed = opts.seed
    if seed ~= nil and (type(seed) ~= "number" or seed < 1 or seed % 1 ~= 0) then
      argerror("fdn.run", "opts.seed", "a positive integer", seed)
    end
  end
  if core.engine_running() then
    error(InvalidState.new("fdn.run: an engine is already running here; "
      .. "use fdn.spawn to start more work inside it"), 2)
  end
  local engine = core.engine_new(opts)
  local ok, root = pcall(c_spawn, fn)
  if not ok then
    engine:close()
    error(root, 0)
  end
  local ran, stuck = pcall(engine.run, engine, root)
  local outcome = pack(task_outcome(root, false))
  engine:close()
  if not ran then
    error(stuck, 0)
  end
  if stuck then
    local root_stuck = false
    for i = 1, #stuck do
      if stuck[i].id == root.id then
        root_stuck = true
      end
    end
    if root_stuck then
      error(errors.Deadlock.new("fdn.run: deadlock: these tasks were waiting "
        .. "with nothing left to wake them, and were cancelled:\n"
        .. format_stuck(stuck), { cause = outcome[2], context = { tasks = stuck } }), 2)
    end
    M.report("deadlock", {
      message = "tasks left waiting with nothing to wake them were cancelled:\n"
        .. format_stuck(stuck),
      tasks = stuck,
    })
  end
  if outcome[1] then
    return unpack(outcome, 2, outcome.n)
  end
  error(outcome[2], 0)
end

-- The rest of the library loads on first use: fdn.Semaphore is the module
-- fdn.semaphore, fdn.TaskManager is fdn.task_manager, fdn.log is fdn.log.
-- A job script pays only for what it touches.
local function module_name(key)
  local snake = key:gsub("(%l)(%u)", "%1_%2"):gsub("(%u)(%u%l)", "%1_%2")
  return "fdn." .. snake:lower()
end

local searchpath, preload, loaded = package.searchpath, package.preload, package.loaded

setmetatable(M, {
  __index = function(t, key)
    if type(key) ~= "string" or key:find("^_") then
      return nil
    end
    local name = module_name(key)
    if loaded[name] == nil and preload[name] == nil
        and (searchpath == nil or searchpath(name, package.path) == nil) then
      return nil
    end
    local value = require(name)
    rawset(t, key, value)
    return value
  end,
})

return M
