-- Fuzz driver (fuzz_options): option tables through every constructor and
-- decorator that takes one. The input picks a constructor, then builds its
-- options from a vocabulary of every option name fdn knows (and a few it
-- does not) and a palette of values (nil, booleans, 0, -1, 2^53, NaN,
-- infinities, strings, tables, functions that raise, coroutines, foreign
-- userdata, tables whose metamethods raise), plus positional arguments
-- from the same palette. Invariant: the call returns, or raises
-- fdn.errors.InvalidArgument naming the function and the parameter;
-- an object it returns then survives a short use (whose errors may be
-- anything the API documents, but never a raw Lua error from inside fdn).
-- Everything runs on a virtual clock, so no run waits for real time.
local fdn = require "fdn"
local errors = require "fdn.errors"
local log = require "fdn.log"

local byte = string.byte

log.configure { level = "info", format = "console", sink = "/dev/null" }

local function violated(what, detail)
  error("invariant violated: " .. what .. (detail and (": " .. detail) or ""), 0)
end

-- User code raises this, so its errors are told from fdn's own.
local USER = setmetatable({ user_error = true }, { __tostring = function() return "user" end })
local function raises()
  error(USER, 0)
end
local Raising = setmetatable({}, {
  __index = function() error("__index raises") end,
  __newindex = function() error("__newindex raises") end,
  __call = function() error("__call raises") end,
  __tostring = function() error("__tostring raises") end,
})
local Callable = setmetatable({}, { __call = function(_, ...) return ... end })

local PALETTE = {
  false, true, 0, -1, 1, 2, 3, 0.5, 100, 1e9, 2 ^ 53, 2 ^ 63, -2 ^ 53, 0 / 0, math.huge,
  -math.huge, 1e-300, "", "x", "block", "error", "drop_oldest", "full", "none", "equal",
  "decorrelated", "exponential", "linear", "fixed", "fibonacci", "skip", "delay", "burst",
  "virtual", "real", "info", "json", "console", "nil", "stderr", "retry.*", "*",
  {}, { 1, 2 }, { "a" }, print, raises, function(...) return ... end,
  function() return nil, "err" end, function() fdn.sleep(0.001) return 1 end,
  coroutine.create(print), io.stdout, Raising, Callable, errors.Timeout, errors.Error,
  USER,
}
local NPALETTE = #PALETTE + 1 -- the extra one is nil

local KEYS = {
  "name", "max_attempts", "delay", "backoff", "factor", "max_delay", "jitter", "deadline",
  "retry_on", "on_retry", "retry_if_result", "raise_on_exhaustion", "handler", "batch_size",
  "flush_interval", "max_pending", "max_concurrent_flushes", "overflow", "on_error", "retry",
  "ttl", "max_entries", "key", "stale_while_revalidate", "negative_ttl", "max_concurrent",
  "collect_errors", "max_workers", "pool_size", "queue_size", "keep_results",
  "shutdown_timeout", "interval", "run_immediately", "missed", "timeout",
  "failure_threshold", "failure_rate", "minimum_calls", "window", "recovery_timeout",
  "half_open_max", "success_threshold", "failure_on", "failure_if_result", "fallback",
  "log_errors", "retry_count", "catch", "level", "format", "color", "levels", "pattern",
  "logger", "log_args", "log_result", "fields", "max_events", "rate", "burst", "max_queue",
  "close_timeout", "progress_callback", "return_errors", "total", "clock", "seed", "daemon",
  "unknown_option", 1, 2,
}

-- Options that count repetitions (see the clamp below).
local COUNTS = { retry_count = true, max_attempts = true }

-- Each constructor: fn(opts, a, b) with positional arguments a, b from
-- the palette; `use` (optional) exercises what it returned.
local function use_decorator(wrapped, a, b)
  return wrapped(a, b)
end

local CTORS = {
  { "Semaphore.new", function(o, a) return fdn.Semaphore.new(a, o) end,
    function(s) s:acquire(0) s:release() end },
  { "Queue.new", function(o, a) return fdn.Queue.new(a, o) end,
    function(q, a) q:try_put(a) q:try_get() q:close() end },
  { "Event.new", function(o) return fdn.Event.new(o) end,
    function(e) e:set() e:wait() end },
  { "fdn.retry", function(o) return fdn.retry(o) end,
    function(d, a, b) return use_decorator(d(raises), a, b) end },
  { "Batcher.new", function(o) return fdn.Batcher.new(o) end,
    function(bt, a) bt:add(a == nil and 1 or a) bt:close() end },
  { "fdn.cache", function(o) return fdn.cache(o) end,
    function(d, a, b) local f = d(function(x) return x end) f(1) return f(a, b) end },
  { "TaskManager.new", function(o) return fdn.TaskManager.new(o) end,
    function(tm) fdn.with(tm, function(m) m:create_task(fdn.sleep, 0.001):join() end) end },
  { "ConcurrentExecutor.new", function(o) return fdn.ConcurrentExecutor.new(o) end,
    function(ex, a) return ex:map(function(x) return x end, { 1, 2, 3 }, a) end },
  { "TaskPool.new", function(o) return fdn.TaskPool.new(o) end,
    function(p) p:submit(fdn.sleep, 0.001) p:gather_results() p:close() end },
  { "BackgroundTaskManager.new", function(o) return fdn.BackgroundTaskManager.new(o) end,
    function(m, a, b) pcall(m.start_task, m, "t", function() fdn.sleep(0.001) end, a)
      fdn.sleep(0) m:status() m:shutdown(b) end },
  { "BackgroundTaskManager:start_task", function(o)
      local m = fdn.BackgroundTaskManager.new()
      local ok, err = pcall(m.start_task, m, "t", function() fdn.sleep(0.001) end, o)
      if ok then
        -- A few turns, not a stretch of time: a valid 1 ns interval with
        -- a run timeout of 0 makes a run per nanosecond.
        for _ = 1, 5 do
          fdn.sleep(0)
        end
        m:status()
      end
      m:shutdown { timeout = 0.1 }
      if not ok then
        error(err, 0)
      end
    end },
  { "CircuitBreaker.new", function(o) return fdn.CircuitBreaker.new(o) end,
    function(cb, a) pcall(cb.call, cb, raises) cb:state() return cb:call(function() return a end) end },
  { "error_boundary", function(o) return fdn.error_boundary(o) end,
    function(d, a, b) return use_decorator(d(raises), a, b) end },
  { "fallback", function(_, a, b) return fdn.fallback(a, b) end,
    function(f, a) return f(a) end },
  { "async_logger", function(o, a) return fdn.async_logger(a, o) end,
    function(d, a, b) return use_decorator(d(function(x) return x end), a, b) end },
  { "OperationContext.new", function(o, a, b) return fdn.OperationContext.new(a, b, o) end,
    function(ctx) fdn.with(ctx, function(c) c:success { n = 1 } end) end },
  { "EventTracker.new", function(o) return fdn.EventTracker.new(o) end,
    function(tr, a) tr:track(a, function(ev) ev:add_metadata { x = 1 } end) tr:get_events() end },
  { "RateLimiter.new", function(o) return fdn.RateLimiter.new(o) end,
    function(rl) rl:acquire() end },
  { "Bulkhead.new", function(o) return fdn.Bulkhead.new(o) end,
    function(bh, a) return bh:call(function() return a end) end },
  { "ResourceManager.new", function(o) return fdn.ResourceManager.new(o) end,
    function(rm) rm:manage({ close = function() end }, function() return 1 end) rm:close_all() end },
  { "log.configure", function(o)
      if type(o) == "table" and o.sink ~= nil and type(o.sink) ~= "function" then
        o.sink = "/dev/null" -- never a file of the fuzzer's choosing
      end
      return log.configure(o)
    end },
  { "log.log_events", function(o) return log.log_events(o) end,
    function(stop) fdn.events.emit("fuzz.event", { x = 1 }) stop() end },
  { "fdn.gather", function(o) local t = fdn.spawn(fdn.sleep, 0.001) return fdn.gather({ t }, o) end },
  { "fdn.spawn_with", function(o, a) return fdn.spawn_with(o, a, 1) end,
    function(t) t:wait() end },
  { "fdn.timeout", function(_, a, b) return fdn.timeout(a, b) end },
}

-- A raw Lua error from inside fdn (a bug) rather than an error fdn raised
-- on purpose, or a user callback's.
local function is_raw(err)
  if type(err) ~= "string" then
    return false
  end
  return err:find("attempt to ", 1, true) ~= nil or err:find("bad argument #", 1, true) ~= nil
    or err:find("stack overflow", 1, true) ~= nil or err:find("table index is", 1, true) ~= nil
end

local function check_raised(name, err, stage)
  if stage == "construct" then
    if errors.is(err, errors.InvalidArgument) and type(err) == "table" then
      local ctx = err.context or {}
      if type(ctx["function"]) ~= "string" or type(ctx.parameter) ~= "string" then
        violated(name .. " raised InvalidArgument without naming function and parameter",
          errors.format(err))
      end
      return
    end
    -- A user callback run during construction may raise its own error.
    if err == USER or (type(err) == "string" and err:find("raises", 1, true)) then
      return
    end
    if errors.class_of(err) and not is_raw(err.message) then
      return -- a documented fdn error (Closed, InvalidState, Timeout...)
    end
    violated(name .. " raised something other than InvalidArgument", errors.format(err))
  end
  if is_raw(err) or (type(err) == "table" and is_raw(err.message)) then
    violated(name .. ": a raw Lua error while using what it returned", errors.format(err))
  end
end

return function(data)
  local pos = 1
  local function u8()
    local b = byte(data, pos) or 0
    pos = pos + 1
    return b
  end
  local function pick()
    return PALETTE[u8() % NPALETTE + 1] -- the last index gives nil
  end
  local ctor = CTORS[u8() % #CTORS + 1]
  local opts = {}
  for _ = 1, u8() % 8 do
    local k = KEYS[u8() % #KEYS + 1]
    local v = pick()
    -- A billion attempts of a function that fails at once is a valid
    -- request that runs for minutes without yielding (error_boundary
    -- retries at once, by design), and math.huge attempts with a delay
    -- that rounds to 0 ns never end on a virtual clock, whose time stands
    -- still while a task is ready: counts are fuzzed up to 100.
    if COUNTS[k] and type(v) == "number" and v > 100 then
      v = 100
    end
    opts[k] = v
  end
  if u8() % 16 == 0 then
    opts = pick() -- not a table at all, now and then
  end
  local a, b = pick(), pick()
  local name, make, use = ctor[1], ctor[2], ctor[3]
  local ok, err = pcall(fdn.run, function()
    local made, obj = pcall(make, opts, a, b)
    if not made then
      check_raised(name, obj, "construct")
      return
    end
    if use and obj ~= nil then
      local used, uerr = pcall(fdn.timeout, 60, use, obj, a, b)
      if not used then
        check_raised(name, uerr, "use")
      end
    end
  end, { clock = "virtual" })
  log.configure { level = "info", format = "console", sink = "/dev/null" }
  -- No input may break fdn for the next one: its error classes still work.
  local probe = errors.InvalidArgument.new("probe", { context = { k = 1 } })
  if probe.context.k ~= 1 or type(probe.traceback) ~= "string" or probe.traceback == ""
      or not errors.is(probe, errors.Error) then
    violated(name .. " left fdn.errors broken", errors.format(probe))
  end
  if not ok then
    if type(err) == "string" and err:find("invariant violated", 1, true) then
      error(err, 0)
    end
    -- Left-over tasks (a pool never closed, a deadlock a bad option made)
    -- end the run with a documented error; anything raw is a bug.
    if is_raw(err) or (type(err) == "table" and is_raw(err.message)) then
      violated(name .. ": fdn.run failed with a raw Lua error", errors.format(err))
    end
  end
end
