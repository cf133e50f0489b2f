--- fdn.error_boundary: contain a function's failures.
--
--   local load = fdn.error_boundary{fallback = {}, retry_count = 2,
--                                   catch = {errors.Timeout}}(load_settings)
--
-- The wrapped function is called up to 1 + retry_count times, at once (for
-- waits between attempts, put an fdn.retry inside). If every call fails
-- with an error `catch` accepts, the boundary returns the fallback: a
-- function is called with the last error and the call's arguments and its
-- results are returned; any other value is returned as is. Errors outside
-- `catch`, and Cancelled always, pass through untouched. With log_errors
-- (the default) each caught error is logged through fdn.log.
local errors = require "fdn.errors"
local events = require "fdn.events"
local results = require "fdn._results"

local M = {}

local error, pcall, type = error, pcall, type
local pack_rest, unpack_n = results.pack_rest, results.unpack_n
local is_cancelled, argerror = errors.is_cancelled, errors.argerror
local events_has, events_emit = events.has, events.emit

local FNAME = "fdn.error_boundary"
local check_options = require("fdn._shared").option_checker(FNAME,
  { "fallback", "log_errors", "retry_count", "catch", "name" })

local logger

local function log_caught(name, attempt, will_retry, err)
  logger = logger or require("fdn.log").get("fdn.error_boundary")
  local emit = will_retry and logger.warn or logger.error
  emit("error_boundary.caught", {
    boundary = name, attempt = attempt, will_retry = will_retry, error = err,
  })
end

local function parse(opts)
  opts = check_options(opts, 3)
  local retry_count = opts.retry_count
  if retry_count == nil then
    retry_count = 0
  elseif type(retry_count) ~= "number" or retry_count ~= retry_count or retry_count < 0
      or retry_count % 1 ~= 0 then
    argerror(FNAME, "retry_count", "a non-negative integer", retry_count, 3)
  end
  local name = opts.name
  if name ~= nil and type(name) ~= "string" then
    argerror(FNAME, "name", "a string", name, 3)
  end
  return {
    fallback = opts.fallback,
    log_errors = opts.log_errors ~= false,
    retry_count = retry_count,
    catch = opts.catch ~= nil and errors.matcher(opts.catch, FNAME, "catch") or nil,
    name = name or "error_boundary",
  }
end

local function decorate(p, fn)
  local fallback, log_errors, calls, catch = p.fallback, p.log_errors, 1 + p.retry_count, p.catch
  local name = p.name
  local fallback_is_fn = type(fallback) == "function"
  return function(...)
    local last
    for attempt = 1, calls do
      local ok, n, r1, r2, r3, r4 = pack_rest(pcall(fn, ...))
      if ok then
        return unpack_n(n, r1, r2, r3, r4)
      end
      if is_cancelled(r1) or (catch ~= nil and not catch(r1)) then
        error(r1, 0)
      end
      last = r1
      local will_retry = attempt < calls
      if log_errors then
        log_caught(name, attempt, will_retry, r1)
      end
      if events_has("error_boundary.caught") then
        events_emit("error_boundary.caught", {
          name = name, attempt = attempt, error = r1, will_retry = will_retry,
        })
      end
    end
    if events_has("error_boundary.fallback") then
      events_emit("error_boundary.fallback", { name = name, error = last })
    end
    if fallback_is_fn then
      return fallback(last, ...)
    end
    return fallback
  end
end

--- Makes an error boundary decorator: `fdn.error_boundary(opts)(fn)`.
---@param opts table|nil fallback, log_errors, retry_count, catch, name
---@return fun(fn: function): function
M.new = require("fdn._shared").decorator(FNAME, parse, decorate)

return setmetatable(M, {
  __call = function(_, opts)
    return M.new(opts)
  end,
})
