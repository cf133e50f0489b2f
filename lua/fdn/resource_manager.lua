--- fdn.ResourceManager: resources closed whatever happens, newest first.
--
--   local rm = fdn.ResourceManager.new()
--   rm:manage(open_connection(), function(conn)
--     rm:manage(conn:cursor(), function(cur) ... end)   -- closed before conn
--   end)
--
-- `manage(resource, fn)` runs fn(resource) and then calls resource:close()
-- on success, on error and on cancellation. Closing is shielded from
-- cancellation for at most close_timeout seconds (default
-- fdn.cleanup_timeout), so a close may suspend (flush, say goodbye) even in
-- a cancelled task, and a close that hangs is cut off with a Timeout. An
-- error in close never hides the body's error: the body's error is raised,
-- the close error is appended to its `suppressed` list (for fdn errors) and
-- logged. Resources registered without a body, and `defer`red functions,
-- are closed by `close_all()` (or by fdn.with's exit), newest first, each
-- exactly once even when close_all runs twice or concurrently.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local shared = require "fdn._shared"
local is_callable, pack = shared.is_callable, shared.pack

local M = {}

local type, pcall, error, setmetatable, getmetatable, tostring =
  type, pcall, error, setmetatable, getmetatable, tostring
local unpack = unpack
local now = core.now
local scope_enter, scope_exit = core.scope_enter, core.scope_exit
local argerror, is_error, class_of = errors.argerror, errors.is, errors.class_of
local Cancelled, Timeout = errors.Cancelled, errors.Timeout

local ResourceManager = {}
ResourceManager.__index = ResourceManager

-- A method called on anything but a ResourceManager: usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("ResourceManager:" .. method, "self",
    "a ResourceManager (call it with ':')", self, 3)
end

local function check_timeout(fname, param, t)
  if t ~= nil and (type(t) ~= "number" or t ~= t or t < 0) then
    argerror(fname, param, "a non-negative number", t, 3)
  end
end

--- A new manager. opts.close_timeout: seconds each close may take once
-- shielded (default: fdn.cleanup_timeout at the time of closing).
---@param opts table|nil
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror("fdn.ResourceManager.new", "opts", "a table", opts)
  end
  local timeout = opts and opts.close_timeout
  check_timeout("fdn.ResourceManager.new", "opts.close_timeout", timeout)
  return setmetatable({ _stack = {}, _close_timeout = timeout }, ResourceManager)
end

local function check_self(self, fname)
  if getmetatable(self) ~= ResourceManager then
    argerror(fname, "self", "a ResourceManager (call it with ':')", self, 3)
  end
end

local function describe(entry)
  if entry.resource ~= nil then
    local ok, s = pcall(tostring, entry.resource)
    return ok and type(s) == "string" and s or type(entry.resource)
  end
  return "deferred function"
end

local function log_close_failure(entry, err)
  local ok, log = pcall(require, "fdn.log")
  if ok then
    log.get("fdn.resource_manager").error("resource.close_failed", {
      resource = describe(entry), error = err,
    })
  end
end

-- Closes one entry, once: returns true, or false and the close error.
function ResourceManager:_close(entry)
  if entry.closed then
    return true
  end
  entry.closed = true
  local stack = self._stack
  for i = #stack, 1, -1 do
    if stack[i] == entry then
      table.remove(stack, i)
      break
    end
  end
  local timeout = self._close_timeout or require("fdn").cleanup_timeout
  local scope = scope_enter(timeout, true)
  local t0 = now()
  local ok, err
  if entry.resource ~= nil then
    ok, err = pcall(entry.close, entry.resource)
  else
    ok, err = pcall(entry.fn, unpack(entry.args, 1, entry.args.n))
  end
  local duration = now() - t0
  if scope then
    local expired = scope_exit(scope)
    if not ok and expired and is_error(err, Cancelled) then
      err = Timeout.new("ResourceManager: closing " .. describe(entry) .. " took longer than "
        .. tostring(timeout) .. "s", { cause = err, context = { timeout = timeout } })
    end
  end
  if ok then
    if events.has("resource.closed") then
      events.emit("resource.closed", { resource = entry.resource, duration = duration })
    end
    return true
  end
  if events.has("resource.close_failed") then
    events.emit("resource.close_failed", { resource = entry.resource, error = err, duration = duration })
  end
  return false, err
end

-- `err` stays the error raised; `extra` (a close error) goes with it.
local function attach(err, extra, entry)
  if class_of(err) then
    local suppressed = err.suppressed or {}
    suppressed[#suppressed + 1] = extra
    err.suppressed = suppressed
  end
  log_close_failure(entry, extra)
end

local function push(self, entry)
  local stack = self._stack
  stack[#stack + 1] = entry
  return entry
end

--- Runs fn(resource, ...) and closes the resource afterwards, whatever
-- happened; returns fn's results. Without fn, registers the resource for
-- close_all() and returns it.
---@param resource any an object with a close method
---@param fn function|nil
function ResourceManager:manage(resource, fn, ...)
  check_self(self, "rm:manage")
  local rtype = type(resource)
  local close
  if rtype == "table" or rtype == "userdata" then
    local ok, c = pcall(function()
      return resource.close
    end)
    close = ok and c or nil
  end
  if not is_callable(close) then
    argerror("rm:manage", "resource", "an object with a close method", resource)
  end
  if fn ~= nil and not is_callable(fn) then
    argerror("rm:manage", "fn", "a function or nil", fn)
  end
  local entry = push(self, { resource = resource, close = close })
  if fn == nil then
    return resource
  end
  local res = pack(pcall(fn, resource, ...))
  local closed, close_err = self:_close(entry)
  if not res[1] then
    if not closed then
      attach(res[2], close_err, entry)
    end
    error(res[2], 0)
  end
  if not closed then
    error(close_err, 0)
  end
  return unpack(res, 2, res.n)
end

--- Registers fn(...) to run at close_all(), with the resources, newest
-- first.
---@param fn function
function ResourceManager:defer(fn, ...)
  check_self(self, "rm:defer")
  if not is_callable(fn) then
    argerror("rm:defer", "fn", "a function", fn)
  end
  push(self, { fn = fn, args = pack(...) })
end

--- Closes every registered resource and runs every deferred function,
-- newest first, each once. Raises the first close error after all have
-- run; the later ones are appended to its `suppressed` list and logged.
function ResourceManager:close_all()
  check_self(self, "rm:close_all")
  local stack, first, first_entry = self._stack, nil, nil
  while #stack > 0 do
    local entry = stack[#stack]
    local ok, err = self:_close(entry)
    if not ok then
      if first_entry == nil then
        first, first_entry = err, entry
      else
        attach(first, err, entry)
      end
    end
  end
  if first_entry ~= nil then
    error(first, 0)
  end
end

--- How many resources and deferred functions are waiting to be closed.
---@return integer
function ResourceManager:pending()
  check_self(self, "rm:pending")
  return #self._stack
end

-- For fdn.with(fdn.ResourceManager.new(), function(rm) ... end).
function ResourceManager:__enter()
  if getmetatable(self) ~= ResourceManager then
    bad_self(self, "__enter")
  end
  return self
end

function ResourceManager:__exit()
  if getmetatable(self) ~= ResourceManager then
    bad_self(self, "__exit")
  end
  return self:close_all()
end

return M
