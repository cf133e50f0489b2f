--- What every public fdn function takes: for each, its parameters (name
-- and kind, see kinds.lua) and one valid call. The sweep replaces one
-- argument at a time by each bad value; the discovery (catalog.lua) fails
-- when a public function has no entry here, so none escapes.
--
-- Entry fields:
--   on        instance the method is called on (instances.lua); absent
--             for module functions, which `fn` (the module path) names
--   params    { {name, kind[, as = name the error uses]}, ... }; for Lua
--             functions the names are checked against the function's own
--   args      the valid arguments after self (a function(obj) or a list)
--   vararg    trailing arguments are passed through to user code
--   fname     the name the function's errors start with (default: name)
--   context   "main" (outside any engine) instead of "task"
--   baseline  the error class the valid call itself raises, if any
--   raiser    raising is the function's purpose (assertions): only a
--             crash or a wrong class for a refused value counts
--   cleanup   function(obj, results...) run after each case
--   virtual   the parameters are vararg positions, named for the error
local fdn = require "fdn"
local K = require "reliability.kinds"

local M = {}

local function noop() end
local function f1() return 1 end
local function boom() error("sweep", 0) end

local function p(name, kind, extra)
  local t = { name = name, kind = kind }
  if extra then
    for k, v in pairs(extra) do t[k] = v end
  end
  return t
end

local function add(name, t)
  t.name = name
  M[#M + 1] = t
  return t
end

local function call_result(_, remove)
  if type(remove) == "function" then
    remove()
  end
end

local function join_result(_, task)
  if type(task) == "userdata" then
    task:wait()
  end
end

-- fdn -------------------------------------------------------------------------

add("fdn.current", { fn = "fdn.current", params = {} })
add("fdn.gather", { fn = "fdn.gather", vararg = true,
  params = { p("first", K.TASKS, { as = "tasks" }) }, args = { {} } })
add("fdn.is_callable", { fn = "fdn.is_callable", params = { p("fn", K.ANY) }, args = { noop } })
add("fdn.now", { fn = "fdn.now", params = {} })
add("fdn.on_shutdown", { fn = "fdn.on_shutdown", params = { p("fn", K.FN) }, args = { noop },
  cleanup = call_result })
add("fdn.random", { fn = "fdn.random", params = { p("n", K.OPT_COUNT1) }, args = { 6 } })
add("fdn.report", { fn = "fdn.report", params = { p("kind", K.ANY), p("info", K.ANY) },
  args = { "sweep", {} } })
add("fdn.run", { fn = "fdn.run", context = "main",
  params = { p("fn", K.FN), p("opts", K.OPT_TABLE) }, args = { noop } })
add("fdn.shielded", { fn = "fdn.shielded", vararg = true, params = { p("fn", K.FN) },
  args = { noop } })
add("fdn.sleep", { fn = "fdn.sleep", params = { p("seconds", K.SECONDS) }, args = { 0 } })
add("fdn.spawn", { fn = "fdn.spawn", vararg = true, params = { p("fn", K.FN) }, args = { noop },
  cleanup = join_result })
add("fdn.spawn_with", { fn = "fdn.spawn_with", vararg = true,
  params = { p("opts", K.TABLE), p("fn", K.FN) }, args = { {}, noop }, cleanup = join_result })
add("fdn.timeout", { fn = "fdn.timeout", vararg = true,
  params = { p("seconds", K.SECONDS), p("fn", K.FN) }, args = { 1, noop } })
add("fdn.try", { fn = "fdn.try", vararg = true, params = { p("fn", K.FN) }, args = { noop } })
add("fdn.with", { fn = "fdn.with", params = { p("manager", K.OBJECT), p("fn", K.FN) },
  args = function() return { __exit = noop }, noop end })

-- Task -----------------------------------------------------------------------

add("task:join", { on = "task", params = {} })
add("task:wait", { on = "task", params = {} })
add("task:cancel", { on = "task", params = { p("reason", K.ANY) }, args = { "sweep" } })
add("task:status", { on = "task", params = {} })
add("task:describe", { on = "task", params = {} })
add("task:traceback", { on = "task", params = {} })

-- fdn.errors -------------------------------------------------------------------

add("fdn.errors.argerror", { fn = "fdn.errors.argerror", baseline = "InvalidArgument",
  params = { p("fname", K.STRING), p("param", K.STRING), p("expected", K.STRING),
    p("value", K.ANY), p("level", K.ERROR_LEVEL) },
  args = { "sweep", "x", "a thing", 1 } })
add("fdn.errors.class_of", { fn = "fdn.errors.class_of", params = { p("err", K.ANY) },
  args = { "x" } })
add("fdn.errors.define", { fn = "fdn.errors.define",
  params = { p("name", K.NAME), p("parent", K.OPT_TABLE) }, args = { "SweepError" } })
add("fdn.errors.format", { fn = "fdn.errors.format", params = { p("err", K.ANY) },
  args = { "x" } })
add("fdn.errors.is", { fn = "fdn.errors.is", params = { p("err", K.ANY), p("class", K.OBJECT) },
  args = function() return "x", fdn.errors.Error end })
add("fdn.errors.is_cancelled", { fn = "fdn.errors.is_cancelled", params = { p("err", K.ANY) },
  args = { "x" } })
add("fdn.errors.is_class", { fn = "fdn.errors.is_class", params = { p("value", K.ANY) },
  args = { "x" } })
add("fdn.errors.matcher", { fn = "fdn.errors.matcher",
  params = { p("spec", K.OPT_FN), p("fname", K.OPT_STRING), p("param", K.OPT_STRING) } })
add("Error:to_table", { on = "error", params = {} })
add("Error:is", { on = "error", params = { p("class", K.OBJECT) },
  args = function() return fdn.errors.Error end })
-- Every error class's new (and calling the class) is generated by the
-- catalog from the classes it finds: params message (K.ANY), opts.

-- fdn.events, fdn.context ---------------------------------------------------------

add("fdn.events.emit", { fn = "fdn.events.emit",
  params = { p("name", K.STRING), p("data", K.ANY) }, args = { "sweep.none", {} } })
add("fdn.events.has", { fn = "fdn.events.has", params = { p("name", K.STRING) },
  args = { "sweep.none" } })
add("fdn.events.reset", { fn = "fdn.events.reset", params = {} })
add("fdn.events.subscribe", { fn = "fdn.events.subscribe",
  params = { p("pattern", K.NAME), p("fn", K.FN) }, args = { "sweep.none", noop },
  cleanup = call_result })
add("fdn.context.current", { fn = "fdn.context.current", params = {} })
add("fdn.context.get", { fn = "fdn.context.get", params = { p("key", K.STRING) },
  args = { "sweep" } })
add("fdn.context.set", { fn = "fdn.context.set",
  params = { p("key", K.STRING), p("value", K.ANY) }, args = { "sweep", 1 } })
add("fdn.context.with", { fn = "fdn.context.with", vararg = true,
  params = { p("fields", K.TABLE), p("fn", K.FN) }, args = { {}, noop } })

-- fdn.log --------------------------------------------------------------------------

for _, level in ipairs { "trace", "debug", "info", "warn", "error" } do
  add("fdn.log." .. level, { fn = "fdn.log." .. level,
    params = { p("event", K.STRING), p("fields", K.OPT_TABLE) }, args = { "sweep.event" } })
  add("logger." .. level, { on = "logger", fname = 'log.get("fdn.sweep").' .. level,
    params = { p("event", K.STRING), p("fields", K.OPT_TABLE) }, args = { "sweep.event" } })
end
add("fdn.log.log", { fn = "fdn.log.log",
  params = { p("level", K.LOG_LEVEL), p("event", K.STRING), p("fields", K.OPT_TABLE) },
  args = { "info", "sweep.event" } })
add("logger.log", { on = "logger", fname = 'log.get("fdn.sweep").log',
  params = { p("level", K.LOG_LEVEL), p("event", K.STRING), p("fields", K.OPT_TABLE) },
  args = { "info", "sweep.event" } })
add("fdn.log.bind", { fn = "fdn.log.bind", params = { p("fields", K.TABLE) }, args = { {} } })
add("logger.bind", { on = "logger", fname = 'log.get("fdn.sweep").bind',
  params = { p("fields", K.TABLE) }, args = { {} } })
add("logger.enabled", { on = "logger", fname = 'log.get("fdn.sweep").enabled',
  params = { p("level", K.LOG_LEVEL) }, args = { "info" } })
add("fdn.log.enabled", { fn = "fdn.log.enabled",
  params = { p("level", K.LOG_LEVEL), p("name", K.OPT_NAME) }, args = { "info" } })
add("fdn.log.config", { fn = "fdn.log.config", params = {} })
add("fdn.log.configure", { fn = "fdn.log.configure", params = { p("opts", K.TABLE) },
  args = { {} } })
add("fdn.log.encode_json", { fn = "fdn.log.encode_json", params = { p("record", K.TABLE) },
  args = { {} } })
add("fdn.log.format_console", { fn = "fdn.log.format_console",
  params = { p("record", K.TABLE), p("color", K.FLAG) }, args = { {} } })
add("fdn.log.get", { fn = "fdn.log.get", params = { p("name", K.NAME) }, args = { "fdn.sweep" } })
add("fdn.log.log_events", { fn = "fdn.log.log_events", params = { p("opts", K.OPT_TABLE) },
  args = { { pattern = "sweep.none" } }, cleanup = call_result })
add("fdn.log.sanitize", { fn = "fdn.log.sanitize", params = { p("value", K.ANY) },
  args = { {} } })

-- Concurrency primitives ---------------------------------------------------------------

add("fdn.Semaphore.new", { fn = "fdn.Semaphore.new", fname = "Semaphore.new",
  params = { p("n", K.COUNT0), p("opts", K.OPT_TABLE) }, args = { 1 } })
add("Semaphore:acquire", { on = "semaphore", params = { p("timeout", K.OPT_SECONDS) } })
add("Semaphore:with", { on = "semaphore", vararg = true, params = { p("fn", K.FN) },
  args = { noop } })
add("Semaphore:__enter", { on = "semaphore", params = {} })
add("Semaphore:__exit", { on = "semaphore", params = {} })
add("Semaphore:resize", { on = "semaphore", params = { p("n", K.COUNT0) }, args = { 3 } })
add("Semaphore:close", { on = "semaphore", params = {} })
add("Semaphore:name", { on = "semaphore", params = {} })
add("Semaphore:try_acquire", { on = "semaphore", params = {} })
add("Semaphore:release", { on = "semaphore", params = {} })
add("Semaphore:available", { on = "semaphore", params = {} })
add("Semaphore:limit", { on = "semaphore", params = {} })
add("Semaphore:held", { on = "semaphore", params = {} })
add("Semaphore:waiting", { on = "semaphore", params = {} })
add("Semaphore:is_closed", { on = "semaphore", params = {} })

add("fdn.Queue.new", { fn = "fdn.Queue.new", fname = "Queue.new",
  params = { p("maxsize", K.COUNT1), p("opts", K.OPT_TABLE) }, args = { 10 } })
add("Queue:put", { on = "queue", params = { p("v", K.ANY), p("timeout", K.OPT_SECONDS) },
  args = { 2 } })
add("Queue:get", { on = "queue", params = { p("timeout", K.OPT_SECONDS) } })
add("Queue:iter", { on = "queue", params = {} })
add("Queue:close", { on = "queue", params = {} })
add("Queue:name", { on = "queue", params = {} })
add("Queue:try_put", { on = "queue", params = { p("v", K.ANY) }, args = { 2 } })
add("Queue:try_get", { on = "queue", params = {} })
add("Queue:len", { on = "queue", params = {} })
add("Queue:maxsize", { on = "queue", params = {} })
add("Queue:is_closed", { on = "queue", params = {} })
add("Queue:is_empty", { on = "queue", params = {} })
add("Queue:is_full", { on = "queue", params = {} })
add("Queue:waiting", { on = "queue", params = {} })

add("fdn.Event.new", { fn = "fdn.Event.new", fname = "Event.new",
  params = { p("opts", K.OPT_TABLE) } })
add("Event:wait", { on = "event", params = { p("timeout", K.OPT_SECONDS) } })
add("Event:set", { on = "event", params = {} })
add("Event:clear", { on = "event", params = {} })
add("Event:is_set", { on = "event", params = {} })
add("Event:waiting", { on = "event", params = {} })
add("Event:name", { on = "event", params = {} })

add("fdn.TaskManager.new", { fn = "fdn.TaskManager.new", fname = "TaskManager.new",
  params = { p("opts", K.OPT_TABLE) } })
-- Entered and exited outside the sweep's deadline: a manager's scope must
-- nest with the task's other scopes, and fdn.timeout is one.
add("TaskManager:__enter", { on = "task_manager_new", params = {}, unguarded = true })
add("TaskManager:create_task", { on = "task_manager", vararg = true, params = { p("fn", K.FN) },
  args = { noop } })
add("TaskManager:gather", { on = "task_manager", vararg = true, params = {} })
add("TaskManager:errors", { on = "task_manager", params = {} })
add("TaskManager:active", { on = "task_manager", params = {} })
-- __exit(err) re-raises the body's error it is given: fdn.with relies on it.
add("TaskManager:__exit", { on = "task_manager", params = { p("err", K.ANY) },
  unguarded = true, raiser = true })

add("fdn.ConcurrentExecutor.new", { fn = "fdn.ConcurrentExecutor.new",
  fname = "ConcurrentExecutor.new", params = { p("opts", K.TABLE) },
  args = { { max_workers = 2 } } })
add("ConcurrentExecutor:map", { on = "executor",
  params = { p("fn", K.FN), p("items", K.ITEMS), p("opts", K.OPT_TABLE) },
  args = { noop, { 1, 2 } } })

add("fdn.TaskPool.new", { fn = "fdn.TaskPool.new", fname = "TaskPool.new",
  params = { p("opts", K.TABLE) }, args = { { pool_size = 2 } } })
add("TaskPool:submit", { on = "task_pool", vararg = true, params = { p("fn", K.FN) },
  args = { noop } })
add("TaskPool:gather_results", { on = "task_pool", params = { p("opts", K.OPT_TABLE) } })
add("TaskPool:close", { on = "task_pool", params = {} })
add("TaskPool:cancel", { on = "task_pool", params = {} })
add("TaskPool:pending", { on = "task_pool", params = {} })
add("TaskPool:__enter", { on = "task_pool", params = {} })
add("TaskPool:__exit", { on = "task_pool", params = { p("err", K.ANY) } })

-- Batching, caching, background -------------------------------------------------------

add("fdn.Batcher.new", { fn = "fdn.Batcher.new", params = { p("opts", K.TABLE) },
  args = { { handler = noop } }, cleanup = function(_, b)
    if type(b) == "table" then pcall(b.close, b) end
  end })
add("fdn.Batcher()", { fn = "fdn.Batcher", call = true, fname = "fdn.Batcher.new",
  params = { p("opts", K.TABLE) }, args = { { handler = noop } }, cleanup = function(_, b)
    if type(b) == "table" then pcall(b.close, b) end
  end })
add("Batcher:add", { on = "batcher", params = { p("item", K.ANY_BUT_NIL) }, args = { 1 } })
add("Batcher:flush", { on = "batcher", params = {} })
add("Batcher:close", { on = "batcher", params = {} })
add("Batcher:__enter", { on = "batcher", params = {} })
add("Batcher:__exit", { on = "batcher", params = {} })
add("Batcher:stats", { on = "batcher", params = {} })
add("Batcher:is_closed", { on = "batcher", params = {} })
add("handle:wait", { on = "batch_handle", params = {} })
add("handle:join", { on = "batch_handle", params = {} })
add("handle:done", { on = "batch_handle", params = {} })

add("fdn.cache()", { fn = "fdn.cache", call = true, params = { p("opts", K.OPTS_OR_FN) },
  args = { {} } })
add("cache maker", { on = "cache_maker", fname = "fdn.cache",
  params = { p("f", K.FN, { as = "fn" }) },
  args = { noop } })
add("cache:__call", { on = "cache", fname = "cache-", self_fname = "cache:__call", virtual = true,
  params = { p("argument #1", K.KEY) }, args = { "k" } })
add("cache:invalidate", { on = "cache", fname = "cache-", self_fname = "cache:invalidate",
  virtual = true,
  params = { p("argument #1", K.KEY) }, args = { "k" } })
add("cache:clear", { on = "cache", params = {} })
add("cache:stats", { on = "cache", params = {} })

add("fdn.BackgroundTaskManager.new", { fn = "fdn.BackgroundTaskManager.new",
  params = { p("opts", K.OPT_TABLE) }, cleanup = function(_, m)
    if type(m) == "table" then m:shutdown { timeout = 0 } end
  end })
add("fdn.BackgroundTaskManager()", { fn = "fdn.BackgroundTaskManager", call = true,
  fname = "fdn.BackgroundTaskManager.new", params = { p("opts", K.OPT_TABLE) },
  cleanup = function(_, m)
    if type(m) == "table" then m:shutdown { timeout = 0 } end
  end })
add("BackgroundTaskManager:start_task", { on = "background",
  params = { p("name", K.NAME), p("fn", K.FN), p("opts", K.TABLE) },
  args = { "s", noop, { interval = 1000, run_immediately = false } } })
add("BackgroundTaskManager:stop_task", { on = "background",
  params = { p("name", K.NAME), p("opts", K.OPT_TABLE) }, args = { "t" } })
add("BackgroundTaskManager:pause", { on = "background", params = { p("name", K.NAME) },
  args = { "t" } })
add("BackgroundTaskManager:resume", { on = "background", params = { p("name", K.NAME) },
  args = { "t" } })
add("BackgroundTaskManager:status", { on = "background", params = { p("name", K.OPT_NAME) },
  args = { "t" } })
add("BackgroundTaskManager:shutdown", { on = "background", params = { p("opts", K.OPT_TABLE) },
  args = { { timeout = 0 } } })
add("BackgroundTaskManager:is_shut_down", { on = "background", params = {} })
add("BackgroundTaskManager:__enter", { on = "background", params = {} })
add("BackgroundTaskManager:__exit", { on = "background", params = {} })

-- Resilience ------------------------------------------------------------------------------

add("fdn.retry()", { fn = "fdn.retry", call = true, params = { p("opts", K.OPT_TABLE) } })
add("fdn.retry.new", { fn = "fdn.retry.new", fname = "fdn.retry",
  params = { p("opts", K.OPT_TABLE) } })
add("retry decorator", { on = "retry_decorator", fname = "fdn.retry",
  params = { p("fn", K.FN) }, args = { noop } })
add("fdn.retry.stats", { fn = "fdn.retry.stats", params = { p("wrapped", K.OBJECT) },
  args = function() return fdn.retry {} (noop) end })
add("fdn.retry.delays", { fn = "fdn.retry.delays",
  params = { p("opts", K.OPT_TABLE), p("n", K.COUNT0, { accepts_not = { ["2^53"] = true } }),
    p("seed", K.OPT_COUNT0) },
  args = { {}, 3 } })

add("fdn.error_boundary()", { fn = "fdn.error_boundary", call = true,
  fname = "fdn.error_boundary", params = { p("opts", K.OPT_TABLE) } })
add("fdn.error_boundary.new", { fn = "fdn.error_boundary.new", fname = "fdn.error_boundary",
  params = { p("opts", K.OPT_TABLE) } })
add("error_boundary decorator", { on = "error_boundary_decorator",
  fname = "fdn.error_boundary", params = { p("fn", K.FN) }, args = { noop } })

add("fdn.fallback()", { fn = "fdn.fallback", call = true, virtual = true,
  params = { p("f1", K.FN) }, args = { noop } })
add("fdn.fallback.new", { fn = "fdn.fallback.new", fname = "fdn.fallback", virtual = true,
  params = { p("f1", K.FN) }, args = { noop } })

add("fdn.Bulkhead.new", { fn = "fdn.Bulkhead.new", params = { p("opts", K.TABLE) },
  args = { { max_concurrent = 1 } } })
add("Bulkhead:acquire", { on = "bulkhead", params = {} })
add("Bulkhead:release", { on = "bulkhead", params = {} })
add("Bulkhead:call", { on = "bulkhead", vararg = true, params = { p("fn", K.FN) },
  args = { noop } })
add("Bulkhead:wrap", { on = "bulkhead", params = { p("fn", K.FN) }, args = { noop } })
add("Bulkhead:stats", { on = "bulkhead", params = {} })

add("fdn.RateLimiter.new", { fn = "fdn.RateLimiter.new", params = { p("opts", K.TABLE) },
  args = { { rate = 10 } } })
add("RateLimiter:acquire", { on = "rate_limiter",
  params = { p("tokens", K.OPT_COUNT1, { accepts_not = { ["2^53"] = true } }),
    p("timeout", K.OPT_SECONDS) } })
add("RateLimiter:try_acquire", { on = "rate_limiter",
  params = { p("tokens", K.OPT_COUNT1, { accepts_not = { ["2^53"] = true } }) } })
add("RateLimiter:tokens", { on = "rate_limiter", params = {} })
add("RateLimiter:call", { on = "rate_limiter", vararg = true, params = { p("fn", K.FN) },
  args = { noop } })
add("RateLimiter:wrap", { on = "rate_limiter", params = { p("fn", K.FN) }, args = { noop } })

add("fdn.CircuitBreaker.new", { fn = "fdn.CircuitBreaker.new",
  params = { p("opts", K.OPT_TABLE) } })
add("CircuitBreaker:call", { on = "breaker", vararg = true, params = { p("fn", K.FN) },
  args = { noop } })
add("CircuitBreaker:wrap", { on = "breaker", params = { p("fn", K.FN) }, args = { noop } })
add("CircuitBreaker:state", { on = "breaker", params = {} })
add("CircuitBreaker:counts", { on = "breaker", params = {} })
add("CircuitBreaker:reset", { on = "breaker", params = {} })
add("CircuitBreaker:trip", { on = "breaker", params = {} })

add("fdn.ResourceManager.new", { fn = "fdn.ResourceManager.new",
  params = { p("opts", K.OPT_TABLE) } })
add("rm:manage", { on = "resource_manager", vararg = true,
  params = { p("resource", K.OBJECT), p("fn", K.OPT_FN) },
  args = function() return { close = noop }, noop end })
add("rm:defer", { on = "resource_manager", vararg = true, params = { p("fn", K.FN) },
  args = { noop } })
add("rm:close_all", { on = "resource_manager", params = {} })
add("rm:pending", { on = "resource_manager", params = {} })
add("ResourceManager:__enter", { on = "resource_manager", params = {} })
add("ResourceManager:__exit", { on = "resource_manager", params = {} })

-- Observability ---------------------------------------------------------------------------

add("fdn.async_logger()", { fn = "fdn.async_logger", call = true,
  params = { p("name", K.NAME), p("opts", K.OPT_TABLE) }, args = { "sweep" } })
add("fdn.async_logger.new", { fn = "fdn.async_logger.new", fname = "fdn.async_logger",
  params = { p("name", K.NAME), p("opts", K.OPT_TABLE) }, args = { "sweep" } })
add("async_logger decorator", { on = "async_logger_decorator", fname = 'fdn.async_logger("sweep")',
  params = { p("fn", K.FN) }, args = { noop } })

add("fdn.EventTracker.new", { fn = "fdn.EventTracker.new", params = { p("opts", K.OPT_TABLE) } })
add("tracker:clear", { on = "tracker", params = {} })
add("tracker:track", { on = "tracker", vararg = true,
  params = { p("name", K.NAME), p("fn", K.FN) }, args = { "sweep", noop } })
add("tracker:get_events", { on = "tracker", params = {} })
add("tracker:dropped", { on = "tracker", params = {} })
add("tracker:summary", { on = "tracker", params = {} })
add("ev:add_metadata", { on = "tracker_event", params = { p("fields", K.TABLE) },
  args = { {} } })

add("fdn.OperationContext.new", { fn = "fdn.OperationContext.new",
  params = { p("name", K.NAME), p("fields", K.OPT_TABLE), p("opts", K.OPT_TABLE) },
  args = { "sweep" } })
add("OperationContext:__enter", { on = "operation_new", params = {} })
add("OperationContext:__exit", { on = "operation", params = { p("err", K.ANY) } })
add("ctx:success", { on = "operation", params = { p("fields", K.OPT_TABLE) } })
add("ctx:error", { on = "operation", params = { p("fields", K.FIELDS_OR_ERROR) } })
add("ctx:add_metadata", { on = "operation", params = { p("fields", K.TABLE) }, args = { {} } })

-- fdn.testing -----------------------------------------------------------------------------

add("fdn.testing.run", { fn = "fdn.testing.run", context = "main",
  params = { p("fn", K.FN), p("opts", K.OPT_TABLE) }, args = { noop } })
add("fdn.testing.async", { fn = "fdn.testing.async",
  params = { p("fn", K.FN), p("opts", K.OPT_TABLE) }, args = { noop } })
add("fdn.testing.describe", { fn = "fdn.testing.describe", context = "main",
  baseline = "InvalidState", params = { p("name", K.STRING), p("fn", K.FN, { lua_only = true }),
    p("opts", K.OPT_TABLE) }, args = { "sweep", noop } })
add("fdn.testing.clock", { fn = "fdn.testing.clock", params = {} })
add("fdn.testing.mock_async", { fn = "fdn.testing.mock_async",
  params = { p("tbl", K.TABLE), p("name", K.OBJECT) },
  args = function() return { f = noop }, "f" end })
add("fdn.testing.assert_raises", { fn = "fdn.testing.assert_raises", vararg = true, raiser = true,
  params = { p("class", K.OBJECT), p("fn", K.FN) },
  args = function() return fdn.errors.Error, boom end })
add("fdn.testing.eventually", { fn = "fdn.testing.eventually", raiser = true,
  params = { p("pred", K.FN), p("opts", K.OPT_TABLE) }, args = { f1 } })
add("fdn.testing.fail", { fn = "fdn.testing.fail", raiser = true, baseline = "any",
  params = { p("message", K.ANY), p("level", K.ERROR_LEVEL) }, args = { "sweep" } })
add("clock:now", { on = "clock", params = {} })
add("clock:advance", { on = "clock", params = { p("seconds", K.SECONDS) }, args = { 1 } })
add("clock:autojump", { on = "clock", params = { p("on", K.BOOLEAN) }, args = { true } })
add("clock:next_deadline", { on = "clock", params = {} })
add("mock:returns", { on = "mock", vararg = true, params = {} })
add("mock:raises", { on = "mock", params = { p("err", K.ANY_BUT_NIL) }, args = { "x" } })
add("mock:invokes", { on = "mock", params = { p("fn", K.FN) }, args = { noop } })
add("mock:calls_original", { on = "mock", params = {} })
add("mock:delay", { on = "mock", params = { p("seconds", K.SECONDS) }, args = { 1 } })
add("mock:queue", { on = "mock", virtual = true, params = { p("behaviour #1", K.TABLE) },
  args = { {} } })
add("mock:returns_once", { on = "mock", vararg = true, params = {} })
add("mock:raises_once", { on = "mock", params = { p("err", K.ANY_BUT_NIL) }, args = { "x" } })
add("mock:restore", { on = "mock", params = {} })
add("mock:clear", { on = "mock", params = {} })
add("mock:call_count", { on = "mock", params = {} })
add("mock:args", { on = "mock", params = { p("i", K.OPT_COUNT1) } })
add("mock:called", { on = "mock", params = { p("times", K.ANY), p("compare", K.OPT_FN) } })
add("mock:called_with", { on = "mock", params = { p("args", K.ANY) } })
add("mock:returned_with", { on = "mock", params = { p("args", K.ANY) } })
add("mock:__call", { on = "mock", vararg = true, params = {} })

return M
