--- fdn.CircuitBreaker: stop calling a dependency that keeps failing.
--
--   local breaker = fdn.CircuitBreaker.new{failure_threshold = 5,
--                                          recovery_timeout = 30}
--   local body = breaker:call(http_get, url)   -- or breaker:wrap(http_get)
--
-- The state machine lives in the C core (core/include/fdn/breaker.h) on
-- the engine clock, so it is exact under a virtual clock. While open,
-- calls raise fdn.errors.CircuitOpen at once, without calling fn; its
-- `retry_after` says when the breaker will let a probe through, which
-- fdn.retry honours. Every state change is logged (logger
-- "fdn.circuit_breaker") and emitted as `breaker.state_changed`.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local results = require "fdn._results"

local CircuitBreaker = {}
CircuitBreaker.__index = CircuitBreaker

-- A method called on anything but a CircuitBreaker: usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("CircuitBreaker:" .. method, "self",
    "a CircuitBreaker (call it with ':')", self, 3)
end

local error, pcall, type = error, pcall, type
local pack_rest, unpack_n, first_two = results.pack_rest, results.unpack_n, results.first_two
local is_cancelled, argerror = errors.is_cancelled, errors.argerror
local events_has, events_emit = events.has, events.emit
local b_acquire, b_record, b_state = core.breaker_acquire, core.breaker_record, core.breaker_state

local SUCCESS, FAILURE, IGNORED = 0, 1, 2
local FNAME = "fdn.CircuitBreaker.new"
local check_options = require("fdn._shared").option_checker(FNAME, {
  "failure_threshold", "failure_rate", "minimum_calls", "window", "recovery_timeout",
  "half_open_max", "success_threshold", "failure_on", "failure_if_result", "name",
})

local logger
local unnamed = 0

local function changed(self, from, to)
  logger = logger or require("fdn.log").get("fdn.circuit_breaker")
  local counts = core.breaker_counts(self._b)
  local fields = {
    breaker = self.name, from = from, to = to,
    consecutive_failures = counts.consecutive_failures,
  }
  if to == "open" then
    logger.warn("breaker.state_changed", fields)
  else
    logger.info("breaker.state_changed", fields)
  end
  if events_has("breaker.state_changed") then
    events_emit("breaker.state_changed", { name = self.name, from = from, to = to })
  end
end

local function check_number(opts, key, default, check, expected)
  local v = opts[key]
  if v == nil then
    return default
  end
  if type(v) ~= "number" or v ~= v or not check(v) then
    argerror(FNAME, key, expected, v, 3)
  end
  return v
end

local function nonneg_int(v)
  return v >= 0 and v % 1 == 0
end
local function pos_int(v)
  return v >= 1 and v % 1 == 0
end
local function nonneg(v)
  return v >= 0
end

--- Makes a breaker.
-- opts: failure_threshold (5), failure_rate (off), minimum_calls (10),
-- window (60 s), recovery_timeout (30 s), half_open_max (1),
-- success_threshold (1), failure_on, failure_if_result, name.
---@param opts table|nil
---@return table
function CircuitBreaker.new(opts)
  opts = check_options(opts)
  local threshold = check_number(opts, "failure_threshold", 5, nonneg_int,
    "a non-negative integer (0: off)")
  local rate = check_number(opts, "failure_rate", 0, function(v)
    return v >= 0 and v <= 1
  end, "a number in [0, 1] (0: off)")
  local minimum = check_number(opts, "minimum_calls", 10, nonneg_int, "a non-negative integer")
  local window = check_number(opts, "window", 60, function(v)
    return v > 0
  end, "a positive number of seconds")
  local recovery = check_number(opts, "recovery_timeout", 30, nonneg,
    "a non-negative number of seconds")
  local half_open_max = check_number(opts, "half_open_max", 1, pos_int, "an integer >= 1")
  local success_threshold = check_number(opts, "success_threshold", 1, pos_int,
    "an integer >= 1")
  local name = opts.name
  if name == nil then
    unnamed = unnamed + 1
    name = "breaker-" .. unnamed
  elseif type(name) ~= "string" then
    argerror(FNAME, "name", "a string", name)
  end
  local self = setmetatable({
    name = name,
    _b = core.breaker_new(threshold, rate, minimum, window, recovery, half_open_max,
      success_threshold),
    _recovery = recovery,
    _half_open_max = half_open_max,
  }, CircuitBreaker)
  if opts.failure_on ~= nil then
    self._failure_on = errors.matcher(opts.failure_on, FNAME, "failure_on")
  end
  local fir = opts.failure_if_result
  if fir ~= nil then
    if fir == "nil" then
      self._nil_mode = true
    elseif type(fir) ~= "function" then
      argerror(FNAME, "failure_if_result", 'a function(...) -> boolean, or "nil"', fir)
    end
    self._failure_if_result = fir
  end
  return self
end

local function rejected(self, state)
  local remaining = core.breaker_remaining(self._b)
  if events_has("breaker.rejected") then
    events_emit("breaker.rejected", { name = self.name, state = state })
  end
  local message
  if state == "half_open" then
    message = string.format("fdn.CircuitBreaker(%s): circuit is half-open and its %d "
      .. "probe%s already in flight", self.name, self._half_open_max,
      self._half_open_max == 1 and " is" or "s are")
  else
    message = string.format("fdn.CircuitBreaker(%s): circuit is open (a probe is "
      .. "allowed in %gs)", self.name, remaining or 0)
  end
  return errors.CircuitOpen.new(message, {
    retry_after = remaining,
    context = { breaker = self.name, state = state, retry_after = remaining },
  })
end

local function outcome_of_results(self, n, r1, r2, r3, r4)
  if self._nil_mode then
    return (first_two(n, r1)) == nil and FAILURE or SUCCESS
  end
  local fir = self._failure_if_result
  if fir ~= nil and fir(unpack_n(n, r1, r2, r3, r4)) then
    return FAILURE
  end
  return SUCCESS
end

--- Calls fn(...) through the breaker: its results, or its error; raises
-- CircuitOpen without calling fn while open (or half-open and full).
---@param fn function
function CircuitBreaker:call(fn, ...)
  if getmetatable(self) ~= CircuitBreaker then
    bad_self(self, "call")
  end
  if type(fn) ~= "function" and not require("fdn").is_callable(fn) then
    argerror("CircuitBreaker:call", "fn", "a function", fn)
  end
  local b = self._b
  local ticket, from, to = b_acquire(b)
  if from then
    changed(self, from, to)
  end
  if not ticket then
    error(rejected(self, b_state(b)), 2)
  end
  local ok, n, r1, r2, r3, r4 = pack_rest(pcall(fn, ...))
  local outcome
  if ok then
    outcome = SUCCESS
    if self._failure_if_result ~= nil then
      local fine, verdict = pcall(outcome_of_results, self, n, r1, r2, r3, r4)
      if not fine then
        -- The predicate itself failed: free the ticket, then raise that.
        b_record(b, ticket, IGNORED)
        error(verdict, 0)
      end
      outcome = verdict
    end
  elseif is_cancelled(r1) then
    outcome = IGNORED
  elseif self._failure_on == nil or self._failure_on(r1) then
    outcome = FAILURE
  else
    outcome = IGNORED
  end
  from, to = b_record(b, ticket, outcome)
  if from then
    changed(self, from, to)
  end
  if ok then
    return unpack_n(n, r1, r2, r3, r4)
  end
  error(r1, 0)
end

--- A function that calls fn through the breaker.
---@param fn function
---@return function
function CircuitBreaker:wrap(fn)
  if getmetatable(self) ~= CircuitBreaker then
    bad_self(self, "wrap")
  end
  if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn)
      and getmetatable(fn).__call) then
    argerror("CircuitBreaker:wrap", "fn", "a function", fn)
  end
  return function(...)
    return self:call(fn, ...)
  end
end

--- "closed", "open" or "half_open" (open turns half-open once the recovery
-- timeout has passed, whether or not a call came).
function CircuitBreaker:state()
  if getmetatable(self) ~= CircuitBreaker then
    bad_self(self, "state")
  end
  local state, from, to = b_state(self._b)
  if from then
    changed(self, from, to)
  end
  return state
end

--- Counters: calls (admitted), successes, failures, ignored, rejected,
-- opened (times), consecutive_failures, probes (in flight), and state.
function CircuitBreaker:counts()
  if getmetatable(self) ~= CircuitBreaker then
    bad_self(self, "counts")
  end
  local counts = core.breaker_counts(self._b)
  counts.state = self:state()
  return counts
end

--- Closes the breaker and clears its failure counts.
function CircuitBreaker:reset()
  if getmetatable(self) ~= CircuitBreaker then
    bad_self(self, "reset")
  end
  local from, to = core.breaker_force(self._b, "closed")
  if from then
    changed(self, from, to)
  end
end

--- Opens the breaker now, for a full recovery timeout.
function CircuitBreaker:trip()
  if getmetatable(self) ~= CircuitBreaker then
    bad_self(self, "trip")
  end
  local from, to = core.breaker_force(self._b, "open")
  if from then
    changed(self, from, to)
  end
end

return CircuitBreaker
