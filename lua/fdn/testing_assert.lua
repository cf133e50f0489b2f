--- fdn.testing_assert: assertions that read well for async code.
--
-- Failures are raised the way luassert raises them under busted (a busted
-- "failure", not an "error"), pointing at the spec line that asserted; run
-- without busted they are plain error strings with that position.
local fdn = require "fdn"
local errors = require "fdn.errors"
local shared = require "fdn._shared"
local pack = shared.pack

local M = {}

local error, pcall, type, tostring = error, pcall, type, tostring
local unpack = unpack
local argerror, is_error, format = errors.argerror, errors.is, errors.format
local Cancelled = errors.Cancelled

local busted_fail = false -- false: not looked up yet; nil: not under busted

local function find_busted_fail()
  if busted_fail == false then
    busted_fail = nil
    local loaded = package.loaded.busted
    -- Only a running busted has its API (and fail) behind the module table.
    if type(loaded) == "table" then
      local ok, fail = pcall(function() return loaded.fail end)
      if ok and type(fail) == "function" then
        busted_fail = fail
      end
    end
  end
  return busted_fail
end

--- Fails the spec with `message`, reported at the caller's `level` (1: the
-- function calling fail).
---@param message string
---@param level? integer
function M.fail(message, level)
  if level ~= nil and (type(level) ~= "number" or level < 1 or level % 1 ~= 0) then
    argerror("fdn.testing.fail", "level", "nil or an integer >= 1", level)
  end
  level = (level or 1) + 1
  local fail = find_busted_fail()
  if fail then
    fail(message, level)
  end
  error(message, level)
end

local function class_name(class)
  return "fdn.errors." .. tostring(class.name)
end

--- Calls fn(...) (it may suspend) and checks that it raises an error of
-- `class` (or a subclass); returns that error for further checks. A
-- Cancelled that the class does not expect passes through untouched: it is
-- the task's own cancellation, not the outcome under test.
---@param class table an fdn.errors class
---@param fn function
---@return table|string err the error fn raised
function M.assert_raises(class, fn, ...)
  if not errors.is_class(class) then
    argerror("fdn.testing.assert_raises", "class", "an fdn.errors class", class)
  end
  if not fdn.is_callable(fn) then
    argerror("fdn.testing.assert_raises", "fn", "a function", fn)
  end
  local res = pack(pcall(fn, ...))
  if res[1] then
    M.fail("fdn.testing.assert_raises: expected " .. class_name(class)
      .. ", but the function returned normally", 2)
  end
  local err = res[2]
  if not is_error(err, class) then
    if is_error(err, Cancelled) then
      error(err, 0)
    end
    M.fail("fdn.testing.assert_raises: expected " .. class_name(class)
      .. ", but the function raised " .. format(err), 2)
  end
  return err
end

--- Polls pred() until it returns a truthy value, sleeping `interval`
-- seconds of engine time between polls, and returns that value. Fails once
-- `timeout` seconds of engine time (virtual under a virtual clock) have
-- passed, with the last error pred raised, if any. Must run in a task.
---@param pred function
---@param opts? {timeout?: number, interval?: number}
---@return any value pred's first truthy result
function M.eventually(pred, opts)
  if not fdn.is_callable(pred) then
    argerror("fdn.testing.eventually", "pred", "a function", pred)
  end
  local timeout, interval = 5, 0.01
  if opts ~= nil then
    if type(opts) ~= "table" then
      argerror("fdn.testing.eventually", "opts", "a table", opts)
    end
    if opts.timeout ~= nil then
      timeout = opts.timeout
      if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
        argerror("fdn.testing.eventually", "opts.timeout", "a non-negative number", timeout)
      end
    end
    if opts.interval ~= nil then
      interval = opts.interval
      if type(interval) ~= "number" or interval ~= interval or interval <= 0
        or interval == math.huge then
        argerror("fdn.testing.eventually", "opts.interval", "a positive number", interval)
      end
    end
  end
  if fdn.current() == nil then
    error(errors.InvalidState.new("fdn.testing.eventually: must be called from a task "
      .. "(a spec body run by T.run, T.async or T.describe)"), 2)
  end
  require("fdn.core").check_suspendable("fdn.testing.eventually")
  local deadline = fdn.now() + timeout
  local last_err
  while true do
    local res = pack(pcall(pred))
    if res[1] and res[2] then
      return unpack(res, 2, res.n)
    end
    if not res[1] then
      if is_error(res[2], Cancelled) then
        error(res[2], 0)
      end
      last_err = res[2]
    end
    local left = deadline - fdn.now()
    if left <= 0 then
      local message = "fdn.testing.eventually: condition not met within " .. timeout
        .. "s of engine time"
      if last_err ~= nil then
        message = message .. "; last error: " .. format(last_err)
      end
      M.fail(message, 2)
    end
    fdn.sleep(left < interval and left or interval)
  end
end

return M
