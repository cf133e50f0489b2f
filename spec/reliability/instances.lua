--- The objects fdn's constructors and decorators return, made in a
-- state where every method has something valid to do: the sweep calls
-- their methods, and the discovery checks that every kind of object a
-- public function returns is one of these (so a new class cannot escape).
--
-- make() runs in a task (inside T.run) and returns the object and an
-- optional cleanup, run after the case even when it was cancelled.
local fdn = require "fdn"
local T = require "fdn.testing"

local M = {}

local function noop() end

local function with_cleanup(obj, cleanup)
  return obj, cleanup
end

M.task = {
  class = "Task", self_param = "task",
  make = function()
    local t = fdn.spawn(function() return 1 end)
    t:join()
    return t
  end,
}

M.semaphore = {
  class = "Semaphore",
  make = function()
    local s = fdn.Semaphore.new(2)
    s:acquire() -- one held (release is valid), one free (acquire is too)
    return s
  end,
}

M.queue = {
  class = "Queue",
  make = function()
    local q = fdn.Queue.new(10)
    q:put(1) -- get has an item, put has room
    return q
  end,
}

M.event = {
  class = "Event",
  make = function()
    local e = fdn.Event.new()
    e:set() -- wait returns at once
    return e
  end,
}

M.task_manager = {
  class = "TaskManager",
  make = function()
    local tm = fdn.TaskManager.new()
    tm:__enter()
    return with_cleanup(tm, function()
      if tm._state == "open" then
        pcall(tm.__exit, tm)
      end
    end)
  end,
}

M.task_manager_new = {
  class = "TaskManager", shares = "task_manager",
  make = function()
    local tm = fdn.TaskManager.new()
    return with_cleanup(tm, function()
      if tm._state == "open" then
        pcall(tm.__exit, tm)
      end
    end)
  end,
}

M.executor = {
  class = "ConcurrentExecutor",
  make = function()
    return fdn.ConcurrentExecutor.new { max_workers = 2 }
  end,
}

M.task_pool = {
  class = "TaskPool",
  make = function()
    local pool = fdn.TaskPool.new { pool_size = 2 }
    return with_cleanup(pool, function()
      pool:cancel()
    end)
  end,
}

M.batcher = {
  class = "Batcher",
  make = function()
    local b = fdn.Batcher.new { handler = noop, batch_size = 10 }
    return with_cleanup(b, function()
      pcall(b.close, b)
    end)
  end,
}

M.batch_handle = {
  class = "Handle",
  make = function()
    local b = fdn.Batcher.new { handler = noop, batch_size = 10 }
    local h = b:add(1)
    b:flush()
    return with_cleanup(h, function()
      pcall(b.close, b)
    end)
  end,
}

M.cache = {
  class = "Cache",
  make = function()
    return fdn.cache {} (function(...) return ... end)
  end,
}

M.cache_maker = {
  class = "cache maker",
  make = function()
    return fdn.cache {}
  end,
}

M.background = {
  class = "BackgroundTaskManager",
  make = function()
    local m = fdn.BackgroundTaskManager.new()
    m:start_task("t", noop, { interval = 1000, run_immediately = false })
    return with_cleanup(m, function()
      m:shutdown { timeout = 0 }
    end)
  end,
}

M.bulkhead = {
  class = "Bulkhead",
  make = function()
    local b = fdn.Bulkhead.new { max_concurrent = 2 }
    b:acquire() -- one held (release is valid), one free
    return b
  end,
}

M.rate_limiter = {
  class = "RateLimiter",
  make = function()
    return fdn.RateLimiter.new { rate = 1000, burst = 10 }
  end,
}

M.breaker = {
  class = "CircuitBreaker",
  make = function()
    return fdn.CircuitBreaker.new {}
  end,
}

M.resource_manager = {
  class = "ResourceManager",
  make = function()
    return fdn.ResourceManager.new()
  end,
}

M.tracker = {
  class = "EventTracker",
  make = function()
    return fdn.EventTracker.new()
  end,
}

M.tracker_event = {
  class = "tracked event",
  make = function()
    local ev
    fdn.EventTracker.new():track("sweep", function(e) ev = e end)
    return ev
  end,
}

M.operation = {
  class = "OperationContext",
  make = function()
    local op = fdn.OperationContext.new("sweep")
    op:__enter()
    return with_cleanup(op, function()
      if op._state == "running" then
        pcall(op.__exit, op)
      end
    end)
  end,
}

M.operation_new = {
  class = "OperationContext", shares = "operation",
  make = function()
    local op = fdn.OperationContext.new("sweep")
    return with_cleanup(op, function()
      if op._state == "running" then
        pcall(op.__exit, op)
      end
    end)
  end,
}

M.logger = {
  class = "logger", dot_methods = true, -- called with '.', as fdn.log documents
  make = function()
    return require("fdn.log").get("fdn.sweep")
  end,
}

M.clock = {
  class = "Clock",
  make = function()
    local c = T.clock()
    return with_cleanup(c, function()
      c:autojump(true)
    end)
  end,
}

M.mock = {
  class = "Mock",
  make = function()
    local tbl = { f = noop }
    local m = T.mock_async(tbl, "f")
    return with_cleanup(m, function()
      m:restore()
    end)
  end,
}

M.error = {
  class = "Error",
  make = function()
    return fdn.errors.Error.new("sweep")
  end,
}

-- Functions that decorate a function: their one parameter is `fn`.
M.retry_decorator = {
  class = "retry decorator",
  make = function() return fdn.retry {} end,
}
M.error_boundary_decorator = {
  class = "error_boundary decorator",
  make = function() return fdn.error_boundary {} end,
}
M.async_logger_decorator = {
  class = "async_logger decorator",
  make = function() return fdn.async_logger("sweep") end,
}

-- Functions that pass every argument through to the function they wrap
-- (or take none): their arguments are the wrapped function's business.
local function passthrough(class, make)
  return { class = class, passthrough = true, make = make }
end
M.retry_wrapped = passthrough("function made by fdn.retry", function()
  return fdn.retry {} (noop)
end)
M.error_boundary_wrapped = passthrough("function made by fdn.error_boundary", function()
  return fdn.error_boundary {} (noop)
end)
M.async_logger_wrapped = passthrough("function made by fdn.async_logger", function()
  return fdn.async_logger("sweep")(noop)
end)
M.fallback_chain = passthrough("function made by fdn.fallback", function()
  return fdn.fallback(noop)
end)
M.bulkhead_wrapped = passthrough("function made by Bulkhead:wrap", function()
  return fdn.Bulkhead.new({ max_concurrent = 1 }):wrap(noop)
end)
M.rate_limiter_wrapped = passthrough("function made by RateLimiter:wrap", function()
  return fdn.RateLimiter.new({ rate = 1 }):wrap(noop)
end)
M.breaker_wrapped = passthrough("function made by CircuitBreaker:wrap", function()
  return fdn.CircuitBreaker.new({}):wrap(noop)
end)
M.unsubscribe = passthrough("function made by fdn.events.subscribe (unsubscribes)", function()
  local stop = fdn.events.subscribe("sweep.none", noop)
  return stop, stop
end)
M.shutdown_remover = passthrough("function made by fdn.on_shutdown (removes the hook)",
  function()
    local remove = fdn.on_shutdown(noop)
    return remove, remove
  end)
M.log_events_stop = passthrough("function made by fdn.log.log_events (stops it)", function()
  local stop = require("fdn.log").log_events { pattern = "sweep.none" }
  return stop, stop
end)
M.queue_iterator = passthrough("iterator made by Queue:iter", function()
  local q = fdn.Queue.new(1)
  q:close()
  return q:iter()
end)
M.error_matcher_any = passthrough("predicate made by fdn.errors.matcher(nil)", function()
  return fdn.errors.matcher(nil)
end)
M.error_matcher_class = passthrough("predicate made by fdn.errors.matcher(class)", function()
  return fdn.errors.matcher(fdn.errors.Timeout)
end)
M.error_matcher_list = passthrough("predicate made by fdn.errors.matcher{classes}", function()
  return fdn.errors.matcher { fdn.errors.Timeout }
end)
M.async_body = passthrough("spec body made by fdn.testing.async (runs it on an engine)",
  function()
    return T.async(noop)
  end)

return M
