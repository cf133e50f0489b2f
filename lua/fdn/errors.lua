--- fdn.errors: the error classes every fdn module raises.
--
-- An error is a table whose metatable is its class. Classes form a tree
-- rooted at `Error`; `errors.is(err, Class)` follows it. Values keep their
-- identity everywhere fdn re-raises them, and plain string errors count as
-- `Error` so code can test any error the same way.
local M = {}

local debug_traceback = debug.traceback
local getmetatable, setmetatable = getmetatable, setmetatable
local ipairs, pairs, pcall, rawget, tostring, type = ipairs, pairs, pcall, rawget, tostring, type
local concat, sort = table.concat, table.sort

local classes = {}

--- Whether tracebacks are captured when an error is created. Capturing costs
-- a few microseconds; a hot loop that raises errors on purpose can turn it off.
M.capture_traceback = true

local function is_class(value)
  return type(value) == "table" and classes[value] ~= nil
end

local function class_of(err)
  if type(err) ~= "table" then
    return nil
  end
  local mt = getmetatable(err)
  if mt ~= nil and classes[mt] ~= nil then
    return mt
  end
  return nil
end

local function safe_tostring(value)
  local ok, s = pcall(tostring, value)
  if ok and type(s) == "string" then
    return s
  end
  return "<" .. type(value) .. ": unprintable>"
end

local function render_context(context)
  if type(context) ~= "table" then
    return nil
  end
  local keys = {}
  for k in pairs(context) do
    keys[#keys + 1] = k
  end
  if #keys == 0 then
    return nil
  end
  sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  local parts = {}
  for i = 1, #keys do
    local v = context[keys[i]]
    if type(v) == "string" then
      v = string.format("%q", v)
    elseif type(v) == "table" and class_of(v) == nil then
      v = "{…}"
    else
      v = safe_tostring(v)
    end
    parts[i] = tostring(keys[i]) .. "=" .. v
  end
  return "{" .. concat(parts, ", ") .. "}"
end

local function describe(err)
  local class = class_of(err)
  if class == nil then
    return safe_tostring(err)
  end
  local text = class.name .. ": " .. safe_tostring(rawget(err, "message"))
  local context = render_context(rawget(err, "context"))
  if context then
    text = text .. " " .. context
  end
  return text
end

--- One readable paragraph: class, message, context, then the cause chain.
local function error_tostring(err)
  local lines = { describe(err) }
  local cause, depth = rawget(err, "cause"), 0
  while cause ~= nil and depth < 16 do
    lines[#lines + 1] = "  caused by: " .. describe(cause)
    cause = class_of(cause) and rawget(cause, "cause") or nil
    depth = depth + 1
  end
  return concat(lines, "\n")
end

local Error = {}

local LIST_FIELDS = { "errors", "suppressed", "fallback_errors" }

--- Flat table for logs and JSON: type, message, code, the context fields,
-- and the cause (itself flattened).
function Error:to_table()
  if class_of(self) == nil then
    M.argerror("Error:to_table", "self", "an fdn error (call it with ':')", self)
  end
  local t = {}
  local context = rawget(self, "context")
  if type(context) == "table" then
    for k, v in pairs(context) do
      t[k] = v
    end
  end
  t.type = self.class.name
  t.message = self.message
  t.code = self.code
  local cause = rawget(self, "cause")
  if cause ~= nil then
    t.cause = class_of(cause) and cause:to_table() or safe_tostring(cause)
  end
  -- Errors that gather others (RetryExhausted's attempts, a fallback
  -- chain, fdn.with's suppressed exit errors) list them flattened too.
  for _, key in ipairs(LIST_FIELDS) do
    local list = rawget(self, key)
    if type(list) == "table" then
      local flat = {}
      for i = 1, #list do
        local e = list[i]
        flat[i] = class_of(e) and e:to_table() or safe_tostring(e)
      end
      t[key] = flat
    end
  end
  local retry_after = rawget(self, "retry_after")
  if type(retry_after) == "number" then
    t.retry_after = retry_after
  end
  return t
end

function Error:is(class)
  if class_of(self) == nil then
    M.argerror("Error:is", "self", "an fdn error (call it with ':')", self)
  end
  if not is_class(class) then
    M.argerror("Error:is", "class", "an error class", class)
  end
  return M.is(self, class)
end

local function new_instance(class, message, opts)
  if message ~= nil and type(message) ~= "string" then
    message = safe_tostring(message)
  end
  local err = {
    message = message or class.name,
    code = class.code,
  }
  if opts ~= nil then
    if type(opts) ~= "table" then
      error(M.InvalidArgument.new(class.name .. ".new: bad argument 'opts' "
        .. "(expected a table, got " .. type(opts) .. ")"), 2)
    end
    for k, v in pairs(opts) do
      err[k] = v
    end
    if opts.code ~= nil then
      err.code = opts.code
    end
  end
  if err.context == nil then
    err.context = {}
  end
  if M.capture_traceback and err.traceback == nil then
    err.traceback = debug_traceback("", 3)
  end
  return setmetatable(err, class)
end

--- Makes a new error class. `parent` is a class, or an options table
-- `{parent = Class, code = "CODE"}`; the parent defaults to `Error`.
function M.define(name, parent)
  if type(name) ~= "string" or name == "" then
    error(M.InvalidArgument.new("errors.define: bad argument 'name' (expected a "
      .. "non-empty string, got " .. type(name) .. ")"), 2)
  end
  local code
  if parent ~= nil and not is_class(parent) then
    if type(parent) ~= "table" then
      error(M.InvalidArgument.new("errors.define: bad argument 'parent' "
        .. "(expected an error class or an options table, got "
        .. type(parent) .. ")"), 2)
    end
    code = parent.code
    parent = parent.parent
    if parent ~= nil and not is_class(parent) then
      error(M.InvalidArgument.new("errors.define: bad argument 'opts.parent' "
        .. "(expected an error class)"), 2)
    end
  end
  parent = parent or Error
  local class = {
    name = name,
    parent = parent,
    code = code or name:gsub("(%l)(%u)", "%1_%2"):upper(),
    __tostring = error_tostring,
  }
  class.__index = class
  -- Not tail calls: the traceback counts frames up to the caller.
  class.new = function(message, opts)
    local err = new_instance(class, message, opts)
    return err
  end
  class.class = class
  classes[class] = true
  return setmetatable(class, {
    __index = parent,
    __call = function(_, message, opts)
      local err = new_instance(class, message, opts)
      return err
    end,
    __tostring = function()
      return "fdn.errors." .. name
    end,
  })
end

-- The base class, built by hand since define() needs it.
Error.name = "Error"
Error.code = "ERROR"
Error.__index = Error
Error.__tostring = error_tostring
Error.class = Error
Error.new = function(message, opts)
  local err = new_instance(Error, message, opts)
  return err
end
classes[Error] = true
setmetatable(Error, {
  __call = function(_, message, opts)
    local err = new_instance(Error, message, opts)
    return err
  end,
  __tostring = function()
    return "fdn.errors.Error"
  end,
})
M.Error = Error

M.Cancelled = M.define("Cancelled")
M.Timeout = M.define("Timeout")
M.InvalidArgument = M.define("InvalidArgument")
M.InvalidState = M.define("InvalidState")
M.Closed = M.define("Closed")
M.QueueFull = M.define("QueueFull")
M.RetryExhausted = M.define("RetryExhausted")
M.CircuitOpen = M.define("CircuitOpen")
M.Deadlock = M.define("Deadlock", M.InvalidState)

--- Whether `err` is an instance of `class` or of a subclass. Every error
-- value, strings included, is an `Error`.
function M.is(err, class)
  if not is_class(class) then
    error(M.InvalidArgument.new("errors.is: bad argument 'class' (expected an "
      .. "error class, got " .. type(class) .. ")"), 2)
  end
  if class == Error then
    return err ~= nil
  end
  local c = class_of(err)
  while c ~= nil do
    if c == class then
      return true
    end
    c = c.parent
  end
  return false
end

M.class_of = class_of
M.is_class = is_class

--- Formats any error value, fdn's or not, without ever raising.
M.format = function(err)
  if class_of(err) then
    local ok, s = pcall(error_tostring, err)
    if ok then
      return s
    end
  end
  return safe_tostring(err)
end

--- Raises InvalidArgument for `fname`'s parameter `param` at the caller's
-- caller. `value` is what was given.
function M.argerror(fname, param, expected, value, level)
  -- Misuse of argerror itself must not turn into a different error.
  if type(fname) ~= "string" or type(param) ~= "string" or type(expected) ~= "string"
      or (level ~= nil and (type(level) ~= "number" or level < 1 or level % 1 ~= 0)) then
    local bad = type(fname) ~= "string" and "fname" or type(param) ~= "string" and "param"
      or type(expected) ~= "string" and "expected" or "level"
    local v = ({ fname = fname, param = param, expected = expected, level = level })[bad]
    return M.argerror("errors.argerror", bad, bad == "level" and "nil or an integer >= 1"
      or "a string", v, 2)
  end
  local got = type(value)
  if got == "number" or got == "boolean" then
    got = got .. " " .. tostring(value)
  elseif got == "string" then
    got = string.format("string %q", value)
  end
  error(M.InvalidArgument.new(
    fname .. ": bad argument '" .. param .. "' (expected " .. expected
      .. ", got " .. got .. ")",
    { context = { ["function"] = fname, parameter = param } }), (level or 2) + 1)
end

--- A predicate over errors from `spec`: a class, a list of classes (an
-- error matches if it is any of them), or a function(err) -> boolean
-- (returned as is). `nil` matches every error. Bad specs raise
-- InvalidArgument naming `fname` and `param`.
function M.matcher(spec, fname, param)
  if fname ~= nil and type(fname) ~= "string" then
    M.argerror("errors.matcher", "fname", "nil or a string", fname)
  end
  if param ~= nil and type(param) ~= "string" then
    M.argerror("errors.matcher", "param", "nil or a string", param)
  end
  fname, param = fname or "errors.matcher", param or "spec"
  if spec == nil then
    return function()
      return true
    end
  end
  if type(spec) == "function" then
    return spec
  end
  if is_class(spec) then
    return function(err)
      return M.is(err, spec)
    end
  end
  if type(spec) ~= "table" or #spec == 0 then
    M.argerror(fname, param, "an error class, a list of classes or a function", spec, 2)
  end
  local list = {}
  for i = 1, #spec do
    if not is_class(spec[i]) then
      M.argerror(fname, param .. "[" .. i .. "]", "an error class", spec[i], 2)
    end
    list[i] = spec[i]
  end
  return function(err)
    for i = 1, #list do
      if M.is(err, list[i]) then
        return true
      end
    end
    return false
  end
end

--- Whether `err` is a Cancelled error (fast: no argument checks).
function M.is_cancelled(err)
  local c = class_of(err)
  local cancelled = M.Cancelled
  while c ~= nil do
    if c == cancelled then
      return true
    end
    c = c.parent
  end
  return false
end

return M
