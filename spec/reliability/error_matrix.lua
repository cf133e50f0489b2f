--- The error matrix (docs/reliability-matrices.md, item 6).
--
-- An error is raised at every callback position fdn has (a task body, a
-- retry predicate, a batch handler, a log sink, an __exit, a resource's
-- close...) with each kind of error value: a string, a table, nil, and a
-- table whose __tostring itself raises. Each must be reported exactly
-- once, the loop must keep running and nothing else may be disturbed.
--
-- What counts, precisely, in the window of one case:
--   delivered  the error raised out of the call to the harness, handed
--              to the callback that owns it (on_error, a fallback
--              function, tm:errors(), fdn.try's result), passed to
--              fdn.report (replaced by a recorder), or written to stderr;
--   logged     log records at warn or above that carry an `error`.
-- A case passes when the error was delivered exactly once (then at most
-- one log record may observe it too: the decorators and scopes whose job
-- is to log what they pass on), or, where no code owns it (a periodic
-- run, a background refresh), delivered nowhere and logged exactly once;
-- the one report carries the injected value (the value itself, or as the
-- cause/errors/suppressed of the error that reports it); a canary task
-- ticks throughout and must still tick after every case; and every record
-- must format as console text and as JSON without raising.
--
--   luajit spec/reliability/error_matrix.lua       (make error-matrix)
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)reliability/") or "spec/")
  .. "?.lua;" .. package.path
local C = require "reliability.common"
local fdn = C.fdn
local errors = require "fdn.errors"
local events = require "fdn.events"
local log = require "fdn.log"
local T = require "fdn.testing"

local say = C.say
local failures, checked = {}, 0
local shapes = { alone = 0, observed = 0, logged = 0 }

local function fail(text)
  failures[#failures + 1] = text
  say("FAIL " .. text)
end

local function noop() end

-- The error values ---------------------------------------------------------------

local KINDS = { "string", "table", "nil", "table with a raising __tostring" }

local function make_error(kind)
  if kind == "string" then
    return "injected failure"
  elseif kind == "table" then
    return { what = "injected failure" }
  elseif kind == "nil" then
    return nil
  end
  return setmetatable({}, { __tostring = function() error("__tostring raised", 0) end })
end

-- The window's recorders -------------------------------------------------------------

local window -- {reports = {}, callbacks = {}, records = {}, stderr = 0}

--- Called by positions that hand the error to its owner callback.
local function delivered(value)
  if window then
    window.callbacks[#window.callbacks + 1] = { value = value }
  end
end

local real_report = fdn.report
fdn.report = function(kind, info)
  if window then
    local value = nil
    if type(info) == "table" then
      value = info.error
      if value == nil then value = info.errors end
    end
    window.reports[#window.reports + 1] = { kind = kind, value = value, info = info }
    return
  end
  return real_report(kind, info)
end

local file_methods = getmetatable(io.stderr).__index
local real_write = file_methods.write
file_methods.write = function(f, ...)
  if window and rawequal(f, io.stderr) then
    window.stderr = window.stderr + 1
    window.stderr_text = (window.stderr_text or "") .. table.concat({ ... })
    return f
  end
  return real_write(f, ...)
end

local formatting_failures = {}
local function capture_sink(record)
  -- Every record must render, whatever its error's __tostring does.
  local ok, err = pcall(log.format_console, record)
  local ok2, err2 = pcall(log.encode_json, record)
  if not ok or not ok2 then
    formatting_failures[#formatting_failures + 1] = tostring(record.event) .. ": "
      .. tostring(ok and err2 or err)
  end
  if window then
    window.records[#window.records + 1] = record
  end
end

-- Positions ------------------------------------------------------------------------------
-- run(e) raises e at the position; it returns normally when nothing
-- reaches it (the error went elsewhere), and raises what reaches it.

local P = {}
local function position(name, run, note, others)
  P[#P + 1] = { name = name, run = run, note = note, others = others }
end

local function thrower(e)
  return function() error(e, 0) end
end

-- Drops the JIT's traces and collects until nothing more is freed, so a
-- dropped task handle is finalized now.
local function full_gc()
  if jit then jit.flush() end
  for _ = 1, 6 do collectgarbage() end
end

position("task body, before its first suspension (joined)", function(e)
  fdn.spawn(thrower(e)):join()
end)
position("task body, after its first suspension (joined)", function(e)
  fdn.spawn(function() fdn.sleep(0.1) error(e, 0) end):join()
end)
position("task body, before its first suspension (nobody joins it)", function(e)
  fdn.spawn(thrower(e)) -- its handle dropped at once
  fdn.sleep(0)
  full_gc()
end, "reported through fdn.report when the handle is collected")
position("task body, after its first suspension (nobody joins it)", function(e)
  fdn.spawn(function() fdn.sleep(0.1) error(e, 0) end)
  fdn.sleep(0.2)
  full_gc()
end, "reported through fdn.report when the handle is collected")
position("gather: a gathered task fails", function(e)
  fdn.gather(fdn.spawn(thrower(e)), fdn.spawn(fdn.sleep, 1))
end)
position("fdn.timeout: its function fails", function(e) fdn.timeout(5, thrower(e)) end)
position("fdn.try: its function fails", function(e)
  local ok, err = fdn.try(thrower(e))
  assert(ok == false)
  delivered(err)
end, "delivered as fdn.try's second result")
position("fdn.with: __enter fails", function(e)
  fdn.with({ __enter = thrower(e), __exit = noop }, noop)
end)
position("fdn.with: __exit fails after the body succeeded", function(e)
  fdn.with({ __exit = thrower(e) }, noop)
end)
position("fdn.with: __exit fails after the body failed with an fdn error", function(e)
  local body = errors.Error.new("the body's own failure")
  local ok, err = pcall(fdn.with, { __exit = thrower(e) }, function() error(body, 0) end)
  assert(not ok and err == body, "fdn.with did not raise the body's error")
  if err.suppressed and #err.suppressed > 0 then
    delivered(err.suppressed[1])
  end
end, "attached to the body's error as .suppressed")
position("fdn.with: __exit fails after the body failed with a string", function(e)
  local ok, err = pcall(fdn.with, { __exit = thrower(e) }, function() error("body", 0) end)
  assert(not ok and err == "body", "fdn.with did not raise the body's error")
end, "reported through fdn.report (a string cannot carry it)")
position("Semaphore:with: its function fails", function(e)
  fdn.Semaphore.new(1):with(thrower(e))
end)
position("TaskManager: a child fails (fail-fast)", function(e)
  fdn.with(fdn.TaskManager.new(), function(tm)
    tm:create_task(thrower(e))
    fdn.sleep(1)
  end)
end)
position("TaskManager: a child fails (collect_errors)", function(e)
  local tm = fdn.TaskManager.new { collect_errors = true }
  fdn.with(tm, function(m) m:create_task(thrower(e)) end)
  delivered(tm:errors()[1])
end, "delivered by tm:errors()")
position("ConcurrentExecutor: fn fails", function(e)
  fdn.ConcurrentExecutor.new({ max_workers = 2 }):map(function(x)
    if x == 2 then error(e, 0) end
    fdn.sleep(0.1)
  end, { 1, 2, 3 })
end)
position("ConcurrentExecutor: progress_callback fails", function(e)
  fdn.ConcurrentExecutor.new({ max_workers = 2 }):map(noop, { 1, 2 },
    { progress_callback = thrower(e) })
end)
position("TaskPool: a job fails (gathered)", function(e)
  local pool = fdn.TaskPool.new { pool_size = 2 }
  pool:submit(thrower(e))
  pool:submit(noop)
  local ok, err = pcall(pool.gather_results, pool)
  pool:close()
  if not ok then error(err, 0) end
end)
position("TaskPool: a job fails (never gathered, pool closed)", function(e)
  local pool = fdn.TaskPool.new { pool_size = 2 }
  pool:submit(thrower(e))
  pool:close()
  pool = nil -- luacheck: ignore 311
  full_gc()
end, "reported through fdn.report when the pool is collected with its failure unread")
position("retry: the function fails every attempt", function(e)
  fdn.retry { max_attempts = 2, delay = 0 } (thrower(e))()
end, "raised as RetryExhausted carrying every attempt's error")
position("retry: retry_on fails", function(e)
  fdn.retry { max_attempts = 3, delay = 0, retry_on = thrower(e) } (thrower("x"))()
end)
position("retry: retry_if_result fails", function(e)
  fdn.retry { max_attempts = 3, delay = 0, retry_if_result = thrower(e) } (noop)()
end)
position("retry: on_retry fails", function(e)
  fdn.retry { max_attempts = 3, delay = 0.1, on_retry = thrower(e) } (thrower("x"))()
end)
position("error_boundary: the fallback function fails", function(e)
  fdn.error_boundary { fallback = thrower(e), log_errors = false } (thrower("x"))()
end)
position("error_boundary: the function fails (fallback value, logged)", function(e)
  assert(fdn.error_boundary { fallback = 0 } (thrower(e))() == 0)
end, "no caller sees it (the fallback value is returned): logged once")
-- The chain's first failure: reported on its own (once), not counted for e.
local FIRST = { what = "the chain's first failure" }
position("fallback chain: every function fails", function(e)
  fdn.fallback(thrower(FIRST), thrower(e))()
end, "raised; the earlier failures go with it (.fallback_errors), or to fdn.report when it is "
  .. "not a table", { FIRST })
position("CircuitBreaker: the call fails", function(e)
  fdn.CircuitBreaker.new({}):call(thrower(e))
end)
position("CircuitBreaker: failure_if_result fails", function(e)
  fdn.CircuitBreaker.new({ failure_if_result = thrower(e) }):call(noop)
end)
position("Bulkhead: the call fails", function(e)
  fdn.Bulkhead.new({ max_concurrent = 1 }):call(thrower(e))
end)
position("RateLimiter: the call fails", function(e)
  fdn.RateLimiter.new({ rate = 10 }):call(thrower(e))
end)
position("Batcher: the handler fails (no on_error)", function(e)
  local b = fdn.Batcher.new { batch_size = 2, handler = thrower(e) }
  b:add(1)
  b:add(2)
  b:close()
end, "raised by close as BatchFailed (cause and errors carry it)")
position("Batcher: the handler fails (on_error takes it)", function(e)
  local b = fdn.Batcher.new { batch_size = 2, handler = thrower(e),
    on_error = function(err) delivered(err) end }
  b:add(1)
  b:add(2)
  b:close()
end, "handed to on_error")
position("Batcher: on_error fails", function(e)
  local b = fdn.Batcher.new { batch_size = 1, handler = thrower("batch"), on_error = thrower(e) }
  b:add(1)
  local ok, err = pcall(b.close, b)
  assert(not ok and errors.is(err, require("fdn.batcher").BatchFailed))
end, "logged (batcher.on_error_failed); close raises the batch's own error")
position("Batcher: the retry wrapper fails", function(e)
  local b = fdn.Batcher.new { batch_size = 1, handler = noop,
    retry = function() return thrower(e) end }
  b:add(1)
  b:close()
end, "raised by close as BatchFailed")
position("cache: the loader fails", function(e)
  fdn.cache {} (thrower(e))("k")
end)
position("cache: the loader fails for two callers", function(e)
  local f = fdn.cache {} (function() fdn.sleep(0.1) error(e, 0) end)
  local other = fdn.spawn(f, "k")
  fdn.sleep(0)
  local ok, err = pcall(f, "k")
  local ok2, err2 = other:wait()
  assert(not ok and not ok2 and rawequal(err, err2), "the callers got different errors")
  error(err, 0)
end, "each caller gets it; counted once for the caller under test")
position("cache: the key function fails", function(e)
  fdn.cache { key = thrower(e) } (noop)("k")
end)
position("cache: a background refresh fails (stale_while_revalidate)", function(e)
  local fails = false
  local f = fdn.cache { ttl = 1, stale_while_revalidate = 10 } (function()
    if fails then error(e, 0) end
    return 1
  end)
  f("k")
  fdn.sleep(1.5)
  fails = true
  assert(f("k") == 1) -- stale: served while one task refreshes
  fdn.sleep(0.1)
end, "no caller sees it (the stale value is served): logged once")
position("BackgroundTaskManager: a periodic run fails", function(e)
  local m = fdn.BackgroundTaskManager.new()
  m:start_task("failing", thrower(e), { interval = 10 })
  fdn.sleep(1)
  m:shutdown()
end, "no caller sees it: logged once (background.run_failed)")
position("ResourceManager: a resource's close fails", function(e)
  local rm = fdn.ResourceManager.new()
  rm:manage({ close = thrower(e) }, noop)
end)
position("ResourceManager: a resource's close fails after the body failed", function(e)
  local rm = fdn.ResourceManager.new()
  local body = errors.Error.new("the body's own failure")
  local ok, err = pcall(rm.manage, rm, { close = thrower(e) }, function() error(body, 0) end)
  assert(not ok and err == body, "manage did not raise the body's error")
  if err.suppressed and #err.suppressed > 0 then
    delivered(err.suppressed[1])
  end
end, "attached to the body's error as .suppressed; the close failure is logged too")
position("ResourceManager: a deferred function fails", function(e)
  local rm = fdn.ResourceManager.new()
  rm:defer(thrower(e))
  rm:close_all()
end)
position("EventTracker: the tracked function fails", function(e)
  fdn.EventTracker.new():track("x", thrower(e))
end)
position("OperationContext: the body fails", function(e)
  fdn.with(fdn.OperationContext.new("matrix_op"), thrower(e))
end, "raised by fdn.with; the operation's failed record observes it")
position("async_logger: the function fails", function(e)
  fdn.async_logger("matrix_call")(thrower(e))()
end, "raised; the decorator's failed record observes it")
position("event subscriber fails", function(e)
  local stop = events.subscribe("matrix.event", thrower(e))
  events.emit("matrix.event", {})
  stop()
end, "reported through fdn.report; the emitter goes on")
position("log sink fails", function(e)
  local saved = log.config()
  if log._reset_sink_failure_reports then log._reset_sink_failure_reports() end
  log.configure { sink = thrower(e) }
  log.warn("matrix.logged", {})
  log.configure(saved)
end, "written to stderr (a failing sink cannot log its own failure)")

-- Judging ---------------------------------------------------------------------------------

local function carries(v, e, depth)
  depth = depth or 0
  if rawequal(v, e) then
    return true
  end
  if e == nil then
    return v == nil or errors.class_of(v) ~= nil
  end
  if depth > 3 or type(v) ~= "table" then
    return false
  end
  if getmetatable(v) == nil then -- a list of errors (a report's `errors`)
    for i = 1, #v do
      if carries(v[i], e, depth + 1) then return true end
    end
    return false
  end
  if errors.class_of(v) then
    for _, key in ipairs { "cause", "errors", "suppressed", "items" } do
      local sub = rawget(v, key)
      if carries(sub, e, depth + 1) then
        return true
      end
      if type(sub) == "table" and not errors.class_of(sub) then
        for i = 1, #sub do
          if carries(sub[i], e, depth + 1) then return true end
        end
      end
    end
  end
  return false
end

local function judge(pos, kind, e, ok, raised)
  checked = checked + 1
  local w = window
  local where = pos.name .. " [" .. kind .. "]"
  local deliveries = {}
  if not ok then
    deliveries[#deliveries + 1] = { "raised", raised }
  end
  for _, c in ipairs(w.callbacks) do deliveries[#deliveries + 1] = { "callback", c.value } end
  for _, r in ipairs(w.reports) do deliveries[#deliveries + 1] = { "fdn.report(" .. r.kind .. ")",
    r.value } end
  for _ = 1, w.stderr do deliveries[#deliveries + 1] = { "stderr", e } end
  local logged = {}
  for _, r in ipairs(w.records) do
    -- A nil error leaves no field behind: then the records of failures count.
    local event = tostring(r.event)
    if (r.level == "warn" or r.level == "error") and (r.error ~= nil or (e == nil
        and (event:find("failed") or event:find("caught")))) then
      logged[#logged + 1] = r
    end
  end
  -- What carries another failure of the case (and not e) is that one's.
  local function theirs(v)
    for _, other in ipairs(pos.others or {}) do
      if carries(v, other) and (e == nil or not carries(v, e)) then return true end
    end
    return false
  end
  for i = #deliveries, 1, -1 do
    if theirs(deliveries[i][2]) then table.remove(deliveries, i) end
  end
  for i = #logged, 1, -1 do
    if theirs(logged[i].error) then table.remove(logged, i) end
  end
  local function describe()
    local parts = {}
    for _, d in ipairs(deliveries) do parts[#parts + 1] = d[1] .. " " .. C.show(d[2]) end
    for _, r in ipairs(logged) do parts[#parts + 1] = "logged " .. tostring(r.event) end
    return #parts > 0 and table.concat(parts, ", ") or "nothing"
  end
  if #deliveries > 1 or #logged > 1 or (#deliveries == 0 and #logged ~= 1) then
    return fail(where .. ": reported " .. #deliveries .. " time(s) and logged " .. #logged
      .. " time(s), expected exactly once: " .. describe())
  end
  local carrier
  if #deliveries == 1 then
    carrier = deliveries[1][2]
  else
    carrier = logged[1].error
  end
  if not carries(carrier, e) then
    return fail(where .. ": the report does not carry the injected error: " .. describe())
  end
  local shape = #deliveries == 0 and "logged" or (#logged == 1 and "observed" or "alone")
  shapes[shape] = shapes[shape] + 1
  if C.verbose then
    say(string.format("  %-70s %-40s %s", pos.name, kind, describe()))
  end
end

-- Runs every case on one engine, with a canary task ticking throughout.
local function main()
  local ticks = 0
  C.with_log_capture(function()
    log.configure { sink = capture_sink }
    T.run(function()
      local canary = fdn.spawn(function()
        while true do
          fdn.sleep(0.05)
          ticks = ticks + 1
        end
      end)
      for _, pos in ipairs(P) do
        for _, kind in ipairs(KINDS) do
          C.trace(pos.name .. " " .. kind)
          local e = make_error(kind)
          window = { reports = {}, callbacks = {}, records = {}, stderr = 0 }
          local case = fdn.spawn(function() return pcall(pos.run, e) end)
          local _, ok, raised = case:wait()
          fdn.sleep(0.2) -- what the case started settles; the canary ticks
          full_gc()
          judge(pos, kind, e, ok, raised)
          window = nil
          local before = ticks
          fdn.sleep(0.2)
          checked = checked + 1
          local status = canary:status()
          if ticks == before or status == "done" or status == "failed" or status == "cancelled" then
            fail(pos.name .. " [" .. kind .. "]: the loop stopped running (canary "
              .. canary:status() .. ")")
          end
        end
      end
      canary:cancel()
      canary:wait()
    end, { timeout = 120 })
  end)
  checked = checked + 1
  if #formatting_failures > 0 then
    fail("records that do not format: " .. table.concat(formatting_failures, "; "))
  end
  C.trace("done")
  C.finish("error-matrix", checked, #failures, {
    string.format("%d callback positions x %d error values", #P, #KINDS),
    string.format("reported once: %d delivered alone, %d delivered and observed by one log "
      .. "record, %d logged only (nobody owns them)", shapes.alone, shapes.observed, shapes.logged),
    "the loop ticking after every case",
  })
end

main()
