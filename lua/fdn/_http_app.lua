--- Internal: an fdn.http application — its options, routes, middleware
-- and the pipeline a request goes through (sockets are _http_server's).
local errors = require "fdn.errors"
local shared = require "fdn._shared"
local router = require "fdn._http_router"
local util = require "fdn._http_util"

local M = {}

local type, error, tostring, select = type, error, tostring, select
local argerror, HttpError = errors.argerror, errors.HttpError
local is_callable = shared.is_callable
local status_text = util.status_text

local App = {}
App.__index = App
M.App = App

-- name -> {default, check(value) -> ok, expected}
local function positive(v)
  return type(v) == "number" and v > 0 and v == v, "a positive number"
end
local function positive_int(v)
  return type(v) == "number" and v >= 1 and v % 1 == 0, "a positive integer"
end
local function non_negative_int(v)
  return type(v) == "number" and v >= 0 and v % 1 == 0, "a non-negative integer"
end
local function optional_positive(v)
  return v == false or (type(v) == "number" and v > 0), "a positive number or false"
end
local function boolean(v)
  return type(v) == "boolean", "a boolean"
end

local OPTIONS = {
  name = { "http", function(v) return type(v) == "string" and v ~= "", "a non-empty string" end },
  max_body = { 1024 * 1024, non_negative_int },
  max_header_size = { 16 * 1024, positive_int },
  max_headers = { 100, positive_int },
  request_timeout = { 30, positive },
  keepalive_timeout = { 5, positive },
  send_timeout = { 30, positive },
  handler_timeout = { false, optional_positive },
  max_requests = { 1000, positive_int },
  max_connections = { 1024, positive_int },
  shutdown_timeout = { 10, positive },
  access_log = { false, boolean },
  cancel_on_disconnect = { true, boolean },
  on_error = { false, function(v) return v == false or is_callable(v), "a function" end },
}
local OPTION_NAMES = {}
for k in pairs(OPTIONS) do
  OPTION_NAMES[#OPTION_NAMES + 1] = k
end
table.sort(OPTION_NAMES)
local check_names = shared.option_checker("fdn.http.app", OPTION_NAMES)

--- Makes an app; see docs/http.md for the options.
function M.new(opts)
  check_names(opts, 3)
  opts = opts or {}
  local app = setmetatable({ middleware = {}, router = router.new() }, App)
  for name, spec in pairs(OPTIONS) do
    local v = opts[name]
    if v == nil then
      v = spec[1]
    else
      local ok, expected = spec[2](v)
      if not ok then
        argerror("fdn.http.app", "opts." .. name, expected, v, 3)
      end
    end
    app[name] = v
  end
  local limit = require("fdn.core").HTTP_MAX_HEADER_SIZE
  if app.max_header_size > limit then
    argerror("fdn.http.app", "opts.max_header_size", "at most " .. limit .. " bytes", app.max_header_size, 3)
  end
  return app
end

local function check_app(self, fname)
  if getmetatable(self) ~= App then
    argerror(fname, "self", "an app (call it with a colon)", self, 3)
  end
end

--- Adds middleware: fn(req, next) runs for every request, in the order
-- added; next() runs the rest of the chain and returns its response (a
-- table the middleware may change); returning without calling next()
-- answers the request there.
function App:use(fn)
  check_app(self, "app:use")
  if not is_callable(fn) then
    argerror("app:use", "fn", "a function(req, next)", fn, 2)
  end
  self.middleware[#self.middleware + 1] = fn
  return self
end

local METHOD_PATTERN = "^[A-Z][A-Z%-]*$"

--- Routes `method` requests for `path` to handler(req).
function App:route(method, path, handler)
  check_app(self, "app:route")
  if type(method) ~= "string" or not method:find(METHOD_PATTERN) then
    argerror("app:route", "method", 'an upper-case method name such as "GET"', method, 2)
  end
  if type(path) ~= "string" then
    argerror("app:route", "path", 'a path such as "/users/:id"', path, 2)
  end
  local compiled, why = router.compile(path)
  if compiled == nil then
    argerror("app:route", "path", 'a path such as "/users/:id" (' .. why .. ")", path, 2)
  end
  if not is_callable(handler) then
    argerror("app:route", "handler", "a function(req)", handler, 2)
  end
  self.router:add(method, path, compiled, handler)
  return self
end

for _, m in ipairs { "get", "post", "put", "delete", "patch", "head", "options" } do
  local method = m:upper()
  local fname = "app:" .. m
  App[m] = function(self, path, handler)
    check_app(self, fname)
    if type(path) ~= "string" then
      argerror(fname, "path", 'a path such as "/users/:id"', path, 2)
    end
    local compiled, why = router.compile(path)
    if compiled == nil then
      argerror(fname, "path", 'a path such as "/users/:id" (' .. why .. ")", path, 2)
    end
    if not is_callable(handler) then
      argerror(fname, "handler", "a function(req)", handler, 2)
    end
    self.router:add(method, path, compiled, handler)
    return self
  end
end

-- Responses -------------------------------------------------------------------

local TEXT = "text/plain; charset=utf-8"

--- Turns what a handler returned into a response table {status, headers,
-- body}; raises for anything else.
local function normalize(res, who)
  local t = type(res)
  if t == "table" then
    local status = res.status
    if status == nil then
      res.status = 200
    elseif type(status) ~= "number" or status % 1 ~= 0 or status < 100 or status > 999 then
      error(errors.Error.new(who .. " returned a response with a bad status: " .. tostring(status)), 0)
    end
    local headers = res.headers
    if headers == nil then
      res.headers = {}
    elseif type(headers) ~= "table" then
      error(errors.Error.new(who .. " returned a response whose headers are a " .. type(headers)), 0)
    end
    local body = res.body
    if body ~= nil and type(body) ~= "string" and not is_callable(body) then
      if type(body) == "number" then
        res.body = tostring(body)
      else
        error(errors.Error.new(who .. " returned a response whose body is a " .. type(body)
          .. " (expected a string or a function(write))"), 0)
      end
    end
    return res
  elseif t == "string" then
    return { status = 200, headers = { ["content-type"] = TEXT }, body = res }
  end
  error(errors.Error.new(who .. " returned " .. (res == nil and "nothing" or ("a " .. t))
    .. " (expected a response table or a string)"), 0)
end
M.normalize = normalize

local json_encode
do
  local ok, cjson = pcall(require, "cjson")
  if ok then
    cjson = cjson.new()
    cjson.encode_sparse_array(true)
    json_encode = cjson.encode
  end
end

--- A JSON response: {status = status or 200, body = encoded value}.
function M.json(value, status, headers)
  if status ~= nil and (type(status) ~= "number" or status % 1 ~= 0 or status < 100 or status > 999) then
    argerror("fdn.http.json", "status", "an HTTP status code", status)
  end
  if headers ~= nil and type(headers) ~= "table" then
    argerror("fdn.http.json", "headers", "a table", headers)
  end
  if json_encode == nil then
    error(errors.InvalidState.new("fdn.http.json: lua-cjson is not installed"), 2)
  end
  local ok, body = pcall(json_encode, value)
  if not ok then
    argerror("fdn.http.json", "value", "a value JSON can encode (" .. tostring(body) .. ")", value)
  end
  local h = { ["content-type"] = "application/json" }
  if headers then
    for k, v in pairs(headers) do
      h[k] = v
    end
  end
  return { status = status or 200, headers = h, body = body }
end

--- The JSON error body fdn.http answers with.
function M.error_response(status, message, request_id, extra)
  local body = { error = message or status_text[status] or "error", status = status, request_id = request_id }
  local res = M.json(body, status)
  if extra then
    for k, v in pairs(extra) do
      res.headers[k] = v
    end
  end
  return res
end

-- The pipeline ------------------------------------------------------------------

local concat = table.concat

local function route(app, req)
  local handler, params = app.router:find(req.method, req.path)
  if handler then
    req.params = params
    return normalize(handler(req), "the handler of " .. req.method .. " " .. req.path)
  end
  if #params > 0 then
    return M.error_response(405, "method not allowed", req.id, { allow = concat(params, ", ") })
  end
  return M.error_response(404, "not found", req.id)
end

--- Runs req through the middleware and the router; returns the response
-- table or raises what a handler or middleware raised.
function M.run(app, req)
  local mw = app.middleware
  local n = #mw
  if n == 0 then
    return route(app, req)
  end
  local function dispatch(i)
    if i > n then
      return route(app, req)
    end
    local called, returned = false, false
    local res = mw[i](req, function(...)
      if select("#", ...) > 0 then
        error(errors.InvalidArgument.new("next() takes no arguments"), 2)
      end
      if called then
        error(errors.InvalidState.new("next() called twice by one middleware"), 2)
      end
      if returned then
        -- Kept and called later (from another task, say): the request is over.
        error(errors.InvalidState.new("next() called after its middleware returned"), 2)
      end
      called = true
      return dispatch(i + 1)
    end)
    returned = true
    return normalize(res, "middleware #" .. i)
  end
  return dispatch(1)
end

local Timeout, CircuitOpen, QueueFull = errors.Timeout, errors.CircuitOpen, errors.QueueFull
local RetryExhausted, class_of = errors.RetryExhausted, errors.class_of

--- Maps an error raised by the pipeline to the status the client gets, the
-- message it reads, and extra headers (or nil):
--   HttpError with a status 400-599   that status and its message
--   Timeout                           504: a call the handler made timed out
--   CircuitOpen                       503, Retry-After from the breaker
--   QueueFull                         503: a bulkhead or queue is full
--   RetryExhausted                    as its last error when that is a 503
--                                     or 504, else 503
--   anything else                     500, the message not shown
-- (handler_timeout expiring is a 503; the server tells it apart.)
function M.error_status(err)
  if class_of(err) == nil then
    return 500, "internal server error"
  end
  if errors.is(err, HttpError) then
    local status = err.status
    if type(status) == "number" and status >= 400 and status <= 599 then
      return status, err.message
    end
  elseif errors.is(err, Timeout) then
    return 504, "a call the handler made timed out"
  elseif errors.is(err, CircuitOpen) then
    local after = rawget(err, "retry_after")
    return 503, "service unavailable", type(after) == "number" and after == after and after >= 0
      and after < 1e9 and { ["retry-after"] = tostring(math.ceil(after)) } or nil
  elseif errors.is(err, QueueFull) then
    return 503, "service unavailable"
  elseif errors.is(err, RetryExhausted) then
    local cause = rawget(err, "cause")
    if cause ~= nil and cause ~= err then
      local status, message, headers = M.error_status(cause)
      if status == 503 or status == 504 then
        return status, message, headers
      end
    end
    return 503, "service unavailable"
  end
  return 500, "internal server error"
end

--- An HttpError for the server to answer with `status`.
function M.http_error(status, message)
  return HttpError.new(message or status_text[status] or "error", { status = status, context = { status = status } })
end

return M
