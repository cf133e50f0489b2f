--- fdn.RateLimiter: a token bucket on the engine clock.
--
--   local limiter = fdn.RateLimiter.new{rate = 10, burst = 5}
--   limiter:acquire()             -- suspends until a token is due
--   if limiter:try_acquire() then ... end
--
-- `rate` tokens per second flow into a bucket holding at most `burst`
-- (default 1: strict pacing). acquire() reserves its tokens at once and
-- sleeps until they are due, so callers are served in the order they
-- asked; a caller cancelled while it waits gives its tokens back. The
-- bucket lives in the C core (core/include/fdn/ratelimit.h).
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local results = require "fdn._results"

local RateLimiter = {}
RateLimiter.__index = RateLimiter

-- A method called on anything but a RateLimiter: usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("RateLimiter:" .. method, "self", "a RateLimiter (call it with ':')", self, 3)
end

local type, pcall, error = type, pcall, error
local c_sleep, reserve, cancel = core.sleep, core.ratelimit_reserve, core.ratelimit_cancel
local suspendable = core.suspendable
local argerror = errors.argerror
local events_has, events_emit = events.has, events.emit
local pack_rest, unpack_n = results.pack_rest, results.unpack_n

local check_options = require("fdn._shared").option_checker("fdn.RateLimiter.new",
  { "rate", "burst", "name" }, "a table with rate (and burst)")

--- Makes a limiter.
---@param opts table rate (tokens per second, > 0), burst (>= 1, default 1), name
---@return table
function RateLimiter.new(opts)
  check_options(opts)
  local rate, burst = opts.rate, opts.burst
  if type(rate) ~= "number" or rate ~= rate or rate <= 0 or rate == math.huge then
    argerror("fdn.RateLimiter.new", "rate", "a positive number of tokens per second", rate)
  end
  if burst == nil then
    burst = 1
  elseif type(burst) ~= "number" or burst ~= burst or burst < 1 or burst == math.huge then
    argerror("fdn.RateLimiter.new", "burst", "a number >= 1", burst)
  end
  if opts.name ~= nil and type(opts.name) ~= "string" then
    argerror("fdn.RateLimiter.new", "name", "a string", opts.name)
  end
  return setmetatable({
    name = opts.name, rate = rate, burst = burst,
    _rl = core.ratelimit_new(rate, burst),
  }, RateLimiter)
end

--- Takes `tokens` (default 1), suspending until they are due. With a
-- `timeout` (seconds), raises fdn.errors.Timeout at once, taking nothing,
-- when they would not be due within it.
---@param tokens number|nil
---@param timeout number|nil
function RateLimiter:acquire(tokens, timeout)
  if getmetatable(self) ~= RateLimiter then
    bad_self(self, "acquire")
  end
  local wait, due = reserve(self._rl, tokens, timeout)
  if wait == nil then
    error(errors.Timeout.new(string.format("RateLimiter:acquire: the next token is due "
      .. "in %gs, beyond the timeout of %gs", due, timeout), {
      context = { limiter = self.name, wait = due, timeout = timeout },
    }), 2)
  end
  if wait > 0 then
    if not suspendable() then
      -- It cannot wait here: give the tokens back, then say why.
      cancel(self._rl, tokens or 1)
      core.check_suspendable("RateLimiter:acquire")
    end
    if events_has("rate_limiter.throttled") then
      events_emit("rate_limiter.throttled", { name = self.name, wait = wait })
    end
    local st, cause = c_sleep(wait)
    if st then
      -- Not going to use them: the next caller may.
      cancel(self._rl, tokens or 1)
      return require("fdn")._wake_error(st, cause, "RateLimiter:acquire")
    end
  end
end

--- Takes `tokens` (default 1) if they are there now: true, or false
-- (taking nothing; also while earlier callers wait for theirs).
---@param tokens number|nil
---@return boolean
function RateLimiter:try_acquire(tokens)
  if getmetatable(self) ~= RateLimiter then
    bad_self(self, "try_acquire")
  end
  return core.ratelimit_try(self._rl, tokens)
end

--- Tokens in the bucket now (negative while callers wait for reserved ones).
---@return number
function RateLimiter:tokens()
  if getmetatable(self) ~= RateLimiter then
    bad_self(self, "tokens")
  end
  return (core.ratelimit_info(self._rl))
end

--- Acquires a token, then calls fn(...): fn's results.
---@param fn function
function RateLimiter:call(fn, ...)
  if getmetatable(self) ~= RateLimiter then
    bad_self(self, "call")
  end
  if type(fn) ~= "function" and not require("fdn").is_callable(fn) then
    argerror("RateLimiter:call", "fn", "a function", fn)
  end
  self:acquire()
  local ok, n, r1, r2, r3, r4 = pack_rest(pcall(fn, ...))
  if ok then
    return unpack_n(n, r1, r2, r3, r4)
  end
  error(r1, 0)
end

--- A function that acquires a token before each call of fn.
---@param fn function
---@return function
function RateLimiter:wrap(fn)
  if getmetatable(self) ~= RateLimiter then
    bad_self(self, "wrap")
  end
  if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn)
      and getmetatable(fn).__call) then
    argerror("RateLimiter:wrap", "fn", "a function", fn)
  end
  return function(...)
    self:acquire()
    return fn(...)
  end
end

return RateLimiter
