--- fdn.async_logger: a decorator that logs each call of a function.
--
--   local handle = fdn.async_logger("api_request", {level = "info"})(function(req) ... end)
--
-- Each call logs <name>.started, then <name>.completed with duration_ms,
-- <name>.failed with the error and duration_ms, or <name>.cancelled with
-- the reason and duration_ms. The wrapper returns fn's results unchanged
-- (all of them, nils included) and re-raises its error value unchanged.
-- The records also carry the task-local context, like every record.
local core = require "fdn.core"
local errors = require "fdn.errors"
local shared = require "fdn._shared"
local is_callable, pack = shared.is_callable, shared.pack

local M = {}

local type, pcall, error = type, pcall, error
local unpack = unpack
local now = core.now
local argerror, class_of, is_error = errors.argerror, errors.class_of, errors.is
local Cancelled = errors.Cancelled

local function copy(fields)
  local t = {}
  if fields then
    for k, v in pairs(fields) do
      t[k] = v
    end
  end
  return t
end

-- What log_args / log_result put in the record: the option function's
-- value, else the list of values (or, with `single`, one value itself).
local function render(option, packed, from, single)
  if option ~= true then
    return option(unpack(packed, from, packed.n))
  end
  if single and packed.n == from then
    return packed[from]
  end
  local list = {}
  for i = from, packed.n do
    list[i - from + 1] = packed[i]
  end
  return list
end

--- Returns a decorator: decorator(fn) is fn wrapped with call logging.
-- opts.level: level of started/completed (default "info"; failures are
-- logged at "error", cancellations at "warn"); opts.log_args: true puts
-- the list of arguments in `args` of the started record, a function(...)
-- returns what to log instead (to redact); opts.log_result: likewise for
-- the results, in `result` of the completed record (one result is logged
-- as itself, several as their list); opts.logger: the logger
-- (default fdn.log's root); opts.fields: fields for every record.
---@param name string
---@param opts table|nil
---@return function
function M.new(name, opts)
  if type(name) ~= "string" or name == "" then
    argerror("fdn.async_logger", "name", "a non-empty string", name)
  end
  if opts ~= nil and type(opts) ~= "table" then
    argerror("fdn.async_logger", "opts", "a table", opts)
  end
  opts = opts or {}
  local log = require "fdn.log"
  local level = opts.level or "info"
  if type(level) ~= "string" or log.levels[level] == nil or level == "off" then
    argerror("fdn.async_logger", "opts.level", '"trace", "debug", "info", "warn" or "error"', level)
  end
  local log_args, log_result = opts.log_args or false, opts.log_result or false
  if log_args ~= true and log_args ~= false and not is_callable(log_args) then
    argerror("fdn.async_logger", "opts.log_args", "a boolean or a function", log_args)
  end
  if log_result ~= true and log_result ~= false and not is_callable(log_result) then
    argerror("fdn.async_logger", "opts.log_result", "a boolean or a function", log_result)
  end
  local logger = opts.logger or log
  if type(logger) ~= "table" or type(logger.log) ~= "function" or type(logger.enabled) ~= "function" then
    argerror("fdn.async_logger", "opts.logger", "a logger from fdn.log", logger)
  end
  if opts.fields ~= nil and type(opts.fields) ~= "table" then
    argerror("fdn.async_logger", "opts.fields", "a table", opts.fields)
  end
  local fields = copy(opts.fields)
  local started, completed = name .. ".started", name .. ".completed"
  local failed, cancelled = name .. ".failed", name .. ".cancelled"

  return function(fn)
    if not is_callable(fn) then
      argerror("fdn.async_logger(" .. string.format("%q", name) .. ")", "fn", "a function", fn)
    end
    return function(...)
      if logger.enabled(level) then
        local r = copy(fields)
        if log_args then
          local ok, args = pcall(render, log_args, pack(...), 1)
          r.args = ok and args or ("<log_args failed: " .. errors.format(args) .. ">")
        end
        logger.log(level, started, r)
      end
      local t0 = now()
      local res = pack(pcall(fn, ...))
      local elapsed = now() - t0
      local duration_ms = (elapsed > 0 and elapsed or 0) * 1000
      if res[1] then
        if logger.enabled(level) then
          local r = copy(fields)
          r.duration_ms = duration_ms
          if log_result then
            local ok, result = pcall(render, log_result, res, 2, true)
            r.result = ok and result or ("<log_result failed: " .. errors.format(result) .. ">")
          end
          logger.log(level, completed, r)
        end
        return unpack(res, 2, res.n)
      end
      local err = res[2]
      if is_error(err, Cancelled) then
        if logger.enabled("warn") then
          local r = copy(fields)
          r.duration_ms = duration_ms
          r.reason = class_of(err) and err.message or tostring(err)
          logger.log("warn", cancelled, r)
        end
      elseif logger.enabled("error") then
        local r = copy(fields)
        r.duration_ms = duration_ms
        r.error = err
        logger.log("error", failed, r)
      end
      error(err, 0)
    end
  end
end

return setmetatable(M, {
  __call = function(_, name, opts)
    return M.new(name, opts)
  end,
})
