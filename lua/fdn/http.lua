--- fdn.http: an HTTP/1.1 server for job scripts and services, with
-- middleware and routing, and a small client.
--
--   local app = fdn.http.app{name = "api", max_body = 1e6}
--   app:use(function(req, next) local res = next(); res.headers["x-took"] = "1"; return res end)
--   app:get("/users/:id", function(req) return fdn.http.json{id = req.params.id} end)
--   local server = app:listen{host = "127.0.0.1", port = 0}   -- server.port
--   ...
--   server:close()                                             -- graceful
--
-- Each connection is a task; a handler runs in it with the request id in
-- fdn.context, so every log line of the request carries it. Plain HTTP
-- only (no TLS); see docs/http.md for limits, timeouts and events.
local errors = require "fdn.errors"
local appm = require "fdn._http_app"
local server = require "fdn._http_server"
local client = require "fdn._http_client"
local util = require "fdn._http_util"

local M = {}

M.HttpError = errors.HttpError
M.status_text = util.status_text

-- The helpers users call are checked; the server calls util's directly.

--- Percent-encodes every byte but the unreserved ones (RFC 3986).
---@param s string
function M.escape(s)
  if type(s) ~= "string" then
    errors.argerror("fdn.http.escape", "s", "a string", s)
  end
  return util.escape(s)
end

--- Decodes %XX escapes, and "+" as a space when `plus` is true.
---@param s string
---@param plus? boolean
function M.unescape(s, plus)
  if type(s) ~= "string" then
    errors.argerror("fdn.http.unescape", "s", "a string", s)
  end
  if plus ~= nil and type(plus) ~= "boolean" then
    errors.argerror("fdn.http.unescape", "plus", "nil or a boolean", plus)
  end
  return util.unescape(s, plus)
end

--- Parses a query string ("a=1&b=x+y&a=2", without the "?"): a key given
-- once maps to its string, a repeated key to the list of its values.
---@param qs? string
function M.parse_query(qs)
  if qs ~= nil and type(qs) ~= "string" then
    errors.argerror("fdn.http.parse_query", "qs", "nil or a string", qs)
  end
  return util.parse_query(qs)
end

local QUERY_VALUE = { string = true, number = true, boolean = true }

--- Builds a query string from a table whose values are strings, numbers,
-- booleans or lists of them; keys in sorted order.
---@param t table
function M.build_query(t)
  if type(t) ~= "table" then
    errors.argerror("fdn.http.build_query", "t", "a table of query parameters", t)
  end
  for k, v in pairs(t) do
    if type(k) ~= "string" and type(k) ~= "number" then
      errors.argerror("fdn.http.build_query", "t", "string keys", k)
    end
    if type(v) == "table" and getmetatable(v) == nil then
      for i = 1, #v do
        if not QUERY_VALUE[type(v[i])] or v[i] ~= v[i] then
          errors.argerror("fdn.http.build_query", "t." .. tostring(k) .. "[" .. i .. "]",
            "a string, number or boolean", v[i])
        end
      end
    elseif not QUERY_VALUE[type(v)] or v ~= v then
      errors.argerror("fdn.http.build_query", "t." .. tostring(k), "a string, number or boolean "
        .. "(or a list of them)", v)
    end
  end
  return util.build_query(t)
end

--- Makes an app. Options (all optional): name, max_body (bytes, 1 MiB),
-- max_header_size (16 KiB), max_headers (100), request_timeout (30 s),
-- keepalive_timeout (5 s), send_timeout (30 s), handler_timeout (none),
-- max_requests per connection (1000), max_connections (1024; more wait in
-- the listen backlog), shutdown_timeout (10 s), access_log (false),
-- on_error = function(err, req) -> response.
---@param opts? table
function M.app(opts)
  return appm.new(opts)
end

--- Starts serving the app on `opts.host` (default "127.0.0.1") and
-- `opts.port` (0, the default, picks a free one: server.port). The server
-- closes gracefully on server:close() and when fdn-lua gets SIGINT/SIGTERM.
---@param opts? {host?: string, port?: integer, backlog?: integer}
function appm.App:listen(opts)
  if getmetatable(self) ~= appm.App then
    errors.argerror("app:listen", "self", "an app (call it with a colon)", self)
  end
  return server.listen(self, opts or {})
end

--- A JSON response: fdn.http.json(value, status, headers).
M.json = appm.json

--- A response table, for symmetry with json: fdn.http.response(body,
-- status, headers).
function M.response(body, status, headers)
  if body ~= nil and type(body) ~= "string" and type(body) ~= "function" then
    errors.argerror("fdn.http.response", "body", "a string or a function(write)", body)
  end
  if status ~= nil and (type(status) ~= "number" or status % 1 ~= 0 or status < 100 or status > 999) then
    errors.argerror("fdn.http.response", "status", "an HTTP status code", status)
  end
  if headers ~= nil and type(headers) ~= "table" then
    errors.argerror("fdn.http.response", "headers", "a table", headers)
  end
  return { status = status or 200, headers = headers or {}, body = body }
end

--- An error for handlers to raise: the server answers with `status`
-- (4xx/5xx) and `message`.
function M.error(status, message)
  if type(status) ~= "number" or status % 1 ~= 0 or status < 400 or status > 599 then
    errors.argerror("fdn.http.error", "status", "an HTTP error status (400-599)", status)
  end
  if message ~= nil and type(message) ~= "string" then
    errors.argerror("fdn.http.error", "message", "nil or a string", message)
  end
  return appm.http_error(status, message)
end

--- One request on a fresh connection: {method, url, headers, body,
-- timeout, max_body, query} -> {status, reason, headers, body, version,
-- raw_headers}. Raises Timeout, Closed, IOError or HttpError.
M.request = client.request

--- Clients that keep connections alive: fdn.http.Client.new{timeout,
-- max_idle, max_body}; client:request(opts); client:close().
M.Client = { new = client.new_client }

return M
