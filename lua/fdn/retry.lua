--- fdn.retry: call a function again when it fails, waiting between
-- attempts by a backoff policy computed in the C core.
--
--   local fetch = fdn.retry{max_attempts = 5, delay = 0.2, backoff = 2,
--                           max_delay = 5, jitter = "full"}(http_get)
--
-- Two failure conventions are understood. A raised error is retried when
-- `retry_on` accepts it (every error but Cancelled by default); exhaustion
-- raises RetryExhausted. With `retry_if_result` (a predicate over the
-- results, or "nil" for the `nil, err` convention) a failure is a return
-- value: nothing is raised, and exhaustion returns the last attempt's
-- results (or raises, with `raise_on_exhaustion`). That second form is
-- the fast one: a raised Lua error costs about a microsecond, a return
-- almost nothing.
--
-- The per-call path allocates nothing when the first attempt succeeds and
-- enters the C policy only when a real wait is needed. Cancellation is
-- never retried, and no wait is started that would end past the retry's
-- own deadline or the deadline of an enclosing fdn.timeout.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"

local M = {}

local error, pcall, rawget, type = error, pcall, rawget, type
local setmetatable = setmetatable
local c_sleep, c_now, retry_next = core.sleep, core.now, core.retry_next
local is_cancelled, argerror = errors.is_cancelled, errors.argerror
local events_has, events_emit = events.has, events.emit
local RetryExhausted = errors.RetryExhausted

local stats_of = setmetatable({}, { __mode = "k" })

local results = require "fdn._results"
local pack_rest, pack_n, unpack_n, first_two =
  results.pack_rest, results.pack_n, results.unpack_n, results.first_two
local args, call_n, pcall_n = results.args, results.call_n, results.pcall_n

local function retry_after(err)
  local h = rawget(err, "retry_after")
  if type(h) == "number" and h >= 0 then
    return h
  end
  return nil
end

local function fmt_seconds(s)
  if s == math.huge then
    return "forever"
  end
  return string.format("%gs", s)
end

local function exhausted_error(p, attempts, err, errs, verdict, refused, limit)
  local label = p.name and ("fdn.retry(" .. p.name .. ")") or "fdn.retry"
  local why
  if verdict == "deadline" then
    why = string.format("the next wait (%s) would end past the retry deadline (%s)",
      fmt_seconds(refused), fmt_seconds(p.deadline))
  elseif verdict == "limit" then
    why = string.format("the next wait (%s) would end past the enclosing deadline (in %s)",
      fmt_seconds(refused), fmt_seconds(limit))
  end
  local message = why
    and string.format("%s: gave up after %d attempt%s: %s", label, attempts,
      attempts == 1 and "" or "s", why)
    or string.format("%s: all %d attempts failed", label, attempts)
  return RetryExhausted.new(message, {
    cause = err,
    attempts = attempts,
    errors = errs,
    context = { attempts = attempts, reason = verdict, name = p.name },
  })
end

local function emit_exhausted(p, attempts, err, verdict)
  if events_has("retry.exhausted") then
    events_emit("retry.exhausted", {
      name = p.name, attempts = attempts, error = err, reason = verdict,
    })
  end
end

--- Sleeps a backoff wait; a cancellation raises at once.
local function backoff_sleep(wait)
  local st, cause = c_sleep(wait, "fdn.retry")
  if st then
    return require("fdn")._wake_error(st, cause, "fdn.retry")
  end
end

-- Builds the wrapper. All per-call state lives in locals of the wrapper
-- and its slow path; the counters are upvalues shared by both. The slow
-- paths keep the arguments in fixed locals, not `...`, so LuaJIT can
-- compile the retry loop (it does not compile `...` there).
local function decorate(p, fn)
  local calls, attempts, successes, failures = 0, 0, 0, 0
  local max_attempts, policy, trivial = p.max_attempts, p.policy, p.trivial
  local has_deadline, retry_on, on_retry = p.deadline ~= nil, p.retry_on, p.on_retry
  local result_mode, nil_mode, result_pred = p.result_mode, p.nil_mode, p.retry_if_result
  local catch_raised, raise_on_exhaustion = p.catch_raised, p.raise_on_exhaustion
  local name = p.name

  -- After attempt `attempt` failed with `err`: sleeps the wait before the
  -- next one and returns it, or returns nil and why not.
  local function next_wait(attempt, err, prev_wait, started)
    local hint = type(err) == "table" and retry_after(err) or nil
    local wait, verdict, refused, limit
    if trivial and hint == nil then
      if attempt >= max_attempts then
        return nil, "exhausted"
      end
      wait = 0
    else
      wait, verdict, refused, limit = retry_next(policy, attempt, prev_wait, started, hint)
      if wait == nil then
        return nil, verdict, refused, limit
      end
    end
    if on_retry then
      local ok, hook_err = pcall(on_retry, attempt, err, wait)
      if not ok then
        failures = failures + 1
        error(hook_err, 0)
      end
    end
    if events_has("retry.attempt") then
      events_emit("retry.attempt", { name = name, attempt = attempt, error = err, delay = wait })
    end
    if wait > 0 then
      local ok, sleep_err = pcall(backoff_sleep, wait)
      if not ok then
        failures = failures + 1
        error(sleep_err, 0)
      end
    end
    return wait
  end

  local function succeeded(attempt)
    successes = successes + 1
    if events_has("retry.succeeded") then
      events_emit("retry.succeeded", { name = name, attempts = attempt })
    end
  end

  local function give_up(attempt, err, e1, e2, list, verdict, refused, limit)
    failures = failures + 1
    emit_exhausted(p, attempt, err, verdict)
    return exhausted_error(p, attempt, err, list or { e1, e2 }, verdict, refused, limit)
  end

  -- Zero waits, nothing to call between attempts: the loops below then
  -- skip next_wait (this path runs interpreted, error() being beyond the
  -- JIT, so every call saved shows).
  local instant = trivial and on_retry == nil

  -- Raised-error form, after the first attempt failed with `err`.
  local function raised_failed(err, started, na, a1, a2, a3, a4)
    local attempt, e1, e2, list, prev_wait = 1, nil, nil, nil, nil
    while true do
      local is_table = type(err) == "table"
      if (is_table and is_cancelled(err)) or (retry_on and not retry_on(err)) then
        failures = failures + 1
        error(err, 0)
      end
      if attempt == 1 then
        e1 = err
      elseif attempt == 2 then
        e2 = err
      else
        list = list or { e1, e2 }
        list[attempt] = err
      end
      local wait
      if instant and attempt < max_attempts and not (is_table and retry_after(err)) then
        wait = 0
        if events_has("retry.attempt") then
          events_emit("retry.attempt", { name = name, attempt = attempt, error = err, delay = 0 })
        end
      else
        local verdict, refused, limit
        wait, verdict, refused, limit = next_wait(attempt, err, prev_wait, started)
        if wait == nil then
          error(give_up(attempt, err, e1, e2, list, verdict, refused, limit), 0)
        end
      end
      prev_wait = wait
      attempt = attempt + 1
      attempts = attempts + 1
      local ok, n, r1, r2, r3, r4 = pcall_n(fn, na, a1, a2, a3, a4)
      if ok then
        succeeded(attempt)
        return unpack_n(n, r1, r2, r3, r4)
      end
      err = r1
    end
  end

  -- Whether returned results mean failure (result form).
  local function result_failed(n, r1, r2, r3, r4)
    if nil_mode then
      if n == -1 then
        return r1[1] == nil
      end
      return r1 == nil
    end
    return result_pred(unpack_n(n, r1, r2, r3, r4))
  end

  -- Result form, after the first attempt failed (raised, or returned a
  -- failure).
  local function result_failed_loop(started, ok, n, r1, r2, r3, r4, na, a1, a2, a3, a4)
    local attempt, e1, e2, list, prev_wait = 1, nil, nil, nil, nil
    while true do
      local err
      if not ok then
        err = r1
        if (type(err) == "table" and is_cancelled(err)) or (retry_on and not retry_on(err)) then
          failures = failures + 1
          error(err, 0)
        end
      else
        local first, second = first_two(n, r1, r2)
        if first == nil then
          err = second
        else
          err = first
        end
      end
      if attempt == 1 then
        e1 = err
      elseif attempt == 2 then
        e2 = err
      else
        list = list or { e1, e2 }
        list[attempt] = err
      end
      local wait, verdict, refused, limit = next_wait(attempt, err, prev_wait, started)
      if wait == nil then
        local exhausted = give_up(attempt, err, e1, e2, list, verdict, refused, limit)
        if ok and not raise_on_exhaustion then
          return unpack_n(n, r1, r2, r3, r4)
        end
        error(exhausted, 0)
      end
      prev_wait = wait
      attempt = attempt + 1
      attempts = attempts + 1
      if catch_raised then
        ok, n, r1, r2, r3, r4 = pcall_n(fn, na, a1, a2, a3, a4)
      else
        ok = true
        n, r1, r2, r3, r4 = call_n(fn, na, a1, a2, a3, a4)
      end
      if ok and not result_failed(n, r1, r2, r3, r4) then
        succeeded(attempt)
        return unpack_n(n, r1, r2, r3, r4)
      end
    end
  end

  local wrapped
  if not result_mode then
    wrapped = function(...)
      calls = calls + 1
      attempts = attempts + 1
      local started = has_deadline and c_now() or nil
      local ok, n, r1, r2, r3, r4 = pack_rest(pcall(fn, ...))
      if ok then
        successes = successes + 1
        return unpack_n(n, r1, r2, r3, r4)
      end
      return raised_failed(r1, started, args(...))
    end
  elseif nil_mode and not catch_raised then
    -- The `nil, err` fast path: no pcall, no C call, no allocation.
    wrapped = function(...)
      calls = calls + 1
      attempts = attempts + 1
      local started = has_deadline and c_now() or nil
      local n, r1, r2, r3, r4 = pack_n(fn(...))
      if r1 ~= nil and n ~= -1 then
        successes = successes + 1
        return unpack_n(n, r1, r2, r3, r4)
      end
      if n == -1 and r1[1] ~= nil then
        successes = successes + 1
        return unpack_n(n, r1)
      end
      return result_failed_loop(started, true, n, r1, r2, r3, r4, args(...))
    end
  else
    wrapped = function(...)
      calls = calls + 1
      attempts = attempts + 1
      local started = has_deadline and c_now() or nil
      local ok, n, r1, r2, r3, r4
      if catch_raised then
        ok, n, r1, r2, r3, r4 = pack_rest(pcall(fn, ...))
      else
        ok = true
        n, r1, r2, r3, r4 = pack_n(fn(...))
      end
      if ok and not result_failed(n, r1, r2, r3, r4) then
        successes = successes + 1
        return unpack_n(n, r1, r2, r3, r4)
      end
      return result_failed_loop(started, ok, n, r1, r2, r3, r4, args(...))
    end
  end

  stats_of[wrapped] = function()
    return {
      calls = calls, attempts = attempts, successes = successes,
      failures = failures, retries = attempts - calls,
    }
  end
  return wrapped
end

-- Options ------------------------------------------------------------------

local BACKOFFS = { fixed = true, linear = true, exponential = true, fibonacci = true }
local JITTERS = { none = true, full = true, equal = true, decorrelated = true }
local FNAME = "fdn.retry"
local check_options = require("fdn._shared").option_checker(FNAME, {
  "max_attempts", "delay", "backoff", "factor", "max_delay", "jitter", "deadline",
  "retry_on", "on_retry", "retry_if_result", "raise_on_exhaustion", "name",
})

local function check_seconds(fname, opts, key, default, allow_nil)
  local v = opts[key]
  if v == nil then
    if allow_nil then
      return nil
    end
    return default
  end
  if type(v) ~= "number" or v ~= v or v < 0 then
    argerror(fname, key, "a non-negative number of seconds", v, 3)
  end
  return v
end

--- Validates a retry options table into a policy description.
local function parse(opts, fname)
  fname = fname or FNAME
  opts = check_options(opts, 3, fname)
  local p = {}
  local ma = opts.max_attempts
  if ma == nil then
    ma = 3
  elseif type(ma) ~= "number" or ma ~= ma or ma < 1 or (ma ~= math.huge and ma % 1 ~= 0) then
    argerror(fname, "max_attempts", "an integer >= 1 (or math.huge)", ma, 3)
  end
  p.max_attempts = ma
  p.delay = check_seconds(fname, opts, "delay", 1.0)
  p.max_delay = check_seconds(fname, opts, "max_delay", math.huge)
  p.deadline = check_seconds(fname, opts, "deadline", nil, true)

  local backoff, factor = opts.backoff, opts.factor
  local kind
  if backoff == nil then
    kind = "exponential"
  elseif type(backoff) == "number" then
    if backoff ~= backoff or backoff < 1 or backoff == math.huge then
      argerror(fname, "backoff", "a factor >= 1 or a strategy name", backoff, 3)
    end
    if factor ~= nil then
      argerror(fname, "factor", "nil when backoff is a number (the number is the factor)",
        factor, 3)
    end
    kind, factor = "exponential", backoff
  elseif type(backoff) == "string" and BACKOFFS[backoff] then
    kind = backoff
  else
    argerror(fname, "backoff", 'a factor >= 1, or "fixed", "linear", "exponential" '
      .. 'or "fibonacci"', backoff, 3)
  end
  if factor ~= nil and kind ~= "linear" and kind ~= "exponential" then
    argerror(fname, "factor", "nil: only linear and exponential backoff take a factor",
      factor, 3)
  end
  if factor == nil then
    factor = kind == "linear" and 1 or 2
  end
  local min_factor = kind == "linear" and 0 or 1
  if type(factor) ~= "number" or factor ~= factor or factor < min_factor
      or factor == math.huge then
    argerror(fname, "factor", "a finite number >= " .. min_factor .. " for " .. kind
      .. " backoff", factor, 3)
  end
  p.backoff, p.factor = kind, factor

  local jitter = opts.jitter
  if jitter == nil then
    jitter = "none"
  elseif jitter == false then
    jitter = "none"
  elseif jitter == true then
    jitter = "full"
  elseif type(jitter) ~= "string" or not JITTERS[jitter] then
    argerror(fname, "jitter", '"none", "full", "equal" or "decorrelated"', jitter, 3)
  end
  p.jitter = jitter

  if opts.retry_on ~= nil then
    p.retry_on = errors.matcher(opts.retry_on, fname, "retry_on")
  end
  local on_retry = opts.on_retry
  if on_retry ~= nil and type(on_retry) ~= "function" then
    argerror(fname, "on_retry", "a function(attempt, err, delay)", on_retry, 3)
  end
  p.on_retry = on_retry

  local rif = opts.retry_if_result
  if rif ~= nil then
    if rif == "nil" then
      p.nil_mode = true
    elseif type(rif) ~= "function" then
      argerror(fname, "retry_if_result", 'a function(...) -> boolean, or "nil"', rif, 3)
    end
    p.result_mode = true
    p.retry_if_result = rif
    -- Like a result predicate in tenacity: raised errors pass through
    -- unless retry_on says which to retry.
    p.catch_raised = opts.retry_on ~= nil
  end
  p.raise_on_exhaustion = opts.raise_on_exhaustion and true or false

  local name = opts.name
  if name ~= nil and type(name) ~= "string" then
    argerror(fname, "name", "a string", name, 3)
  end
  p.name = name

  p.policy = core.retry_policy(p.max_attempts, p.delay, p.backoff, p.factor,
    p.max_delay, p.jitter, p.deadline or math.huge)
  -- With no base delay every wait is 0 whatever the strategy: the policy
  -- need not be asked (unless a failure asks for its own wait).
  p.trivial = p.delay == 0 and p.deadline == nil
  return p
end

--- Makes a retry decorator: `fdn.retry(opts)(fn)` returns a function that
-- calls fn(...) and retries it by the policy.
-- opts: max_attempts, delay, backoff, factor, max_delay, jitter, deadline,
-- retry_on, on_retry, retry_if_result, raise_on_exhaustion, name.
---@param opts table|nil
---@return fun(fn: function): function
M.new = require("fdn._shared").decorator(FNAME, parse, decorate)

--- Counters of a function made by fdn.retry: calls, attempts, successes,
-- failures, retries (attempts beyond the first of each call).
---@param wrapped function
---@return table
function M.stats(wrapped)
  local get = stats_of[wrapped]
  if get == nil then
    argerror("fdn.retry.stats", "wrapped", "a function made by fdn.retry", wrapped)
  end
  return get()
end

--- The first `n` waits a policy would use, jittered from a private RNG
-- seeded with `seed` (default 1): a preview for tuning and tests.
---@param opts table retry options
---@param n integer
---@param seed integer|nil
---@return number[]
function M.delays(opts, n, seed)
  local p = parse(opts, "fdn.retry.delays")
  if type(n) ~= "number" or not (n >= 0 and n <= 100000) or n % 1 ~= 0 then
    argerror("fdn.retry.delays", "n", "an integer in [0, 100000]", n)
  end
  if seed ~= nil and (type(seed) ~= "number" or seed < 0 or seed % 1 ~= 0) then
    argerror("fdn.retry.delays", "seed", "a non-negative integer", seed)
  end
  return core.retry_delays(p.policy, n, seed)
end

return setmetatable(M, {
  __call = function(_, opts)
    return M.new(opts)
  end,
})
