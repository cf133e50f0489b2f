--- Internal: the HTTP/1.1 client of fdn.http — plain TCP, no TLS.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local tcp = require "fdn.tcp"
local util = require "fdn._http_util"

local M = {}

local type, pairs, tostring, tonumber, error, pcall, setmetatable =
  type, pairs, tostring, tonumber, error, pcall, setmetatable
local concat, lower, find, sub, match = table.concat, string.lower, string.find, string.sub, string.match
local now = core.now
local check_suspendable = core.check_suspendable
local argerror, HttpError, Closed = errors.argerror, errors.HttpError, errors.Closed
local c_read_head, c_read_body, c_parser_new = core.http_read_head, core.http_read_body, core.http_parser_new
local c_write, c_wait_writable = core.tcp_write, core.tcp_wait_writable
local tcp_methods = core.tcp_methods
local c_close, c_is_closed = tcp_methods.close, tcp_methods.is_closed
local ETIMEDOUT = core.ETIMEDOUT
local fail, left, settle = tcp._fail, tcp._left, tcp._settle
local valid_name, valid_value = util.valid_name, util.valid_value

local MAX_HEAD = core.HTTP_MAX_HEADER_SIZE
local USER_AGENT = "fdn/" .. tostring(core.version)
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, TRACE = true }

--- Splits an http:// URL into host, port, request target and Host value.
local function parse_url(fname, url)
  if type(url) ~= "string" then
    argerror(fname, "opts.url", 'an "http://host[:port]/path" URL', url, 4)
  end
  local scheme, rest = match(url, "^(%a[%w+.-]*)://(.*)$")
  scheme = scheme and lower(scheme)
  if scheme == "https" then
    argerror(fname, "opts.url", "an http:// URL (fdn.http speaks plain HTTP; it has no TLS)", url, 4)
  elseif scheme ~= "http" then
    argerror(fname, "opts.url", 'an "http://host[:port]/path" URL', url, 4)
  end
  local authority, target = match(rest, "^([^/?#]*)(.*)$")
  target = match(target, "^([^#]*)")
  if target == "" then
    target = "/"
  elseif sub(target, 1, 1) == "?" then
    target = "/" .. target
  end
  if find(authority, "@", 1, true) then
    argerror(fname, "opts.url", "a URL without user info", url, 4)
  end
  local host, port = match(authority, "^%[([%x:.]+)%]:?(%d*)$")
  if host == nil then
    host, port = match(authority, "^([^:]+):?(%d*)$")
  end
  if host == nil or host == "" then
    argerror(fname, "opts.url", "a URL with a host", url, 4)
  end
  port = port ~= "" and tonumber(port) or 80
  if port < 1 or port > 65535 then
    argerror(fname, "opts.url", "a URL with a port from 1 to 65535", url, 4)
  end
  local host_header = find(host, ":", 1, true) and ("[" .. host .. "]") or host
  if port ~= 80 then
    host_header = host_header .. ":" .. port
  end
  return host, port, target, host_header
end

local REQUEST_OPTIONS = { "method", "url", "headers", "body", "timeout", "max_body", "query" }
local REQUEST_EXPECTED = "an options table {method =, url =, headers =, body =, timeout =}"
local request_checkers = {
  ["fdn.http.request"] = require("fdn._shared").option_checker("fdn.http.request",
    REQUEST_OPTIONS, REQUEST_EXPECTED),
  ["client:request"] = require("fdn._shared").option_checker("client:request",
    REQUEST_OPTIONS, REQUEST_EXPECTED),
}

local function check_opts(fname, opts)
  request_checkers[fname](opts, 3)
  local method = opts.method or "GET"
  if type(method) ~= "string" or not find(method, "^[A-Z][A-Z%-]*$") then
    argerror(fname, "opts.method", 'an upper-case method such as "GET"', method, 3)
  end
  local host, port, target, host_header = parse_url(fname, opts.url)
  if opts.query ~= nil then
    if type(opts.query) ~= "table" then
      argerror(fname, "opts.query", "a table", opts.query, 3)
    end
    local qs = util.build_query(opts.query)
    if qs ~= "" then
      target = target .. (find(target, "?", 1, true) and "&" or "?") .. qs
    end
  end
  local headers = opts.headers
  if headers ~= nil then
    if type(headers) ~= "table" then
      argerror(fname, "opts.headers", "a table of header names to values", headers, 3)
    end
    for k, v in pairs(headers) do
      if not valid_name(k) then
        argerror(fname, "opts.headers", "header names that are tokens", k, 3)
      end
      if (type(v) ~= "string" and type(v) ~= "number") or not valid_value(tostring(v)) then
        argerror(fname, "opts.headers." .. k, "a string without CR, LF or NUL", v, 3)
      end
    end
  end
  local body = opts.body
  if body ~= nil and type(body) ~= "string" then
    argerror(fname, "opts.body", "a string", body, 3)
  end
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    argerror(fname, "opts.timeout", "a non-negative number of seconds", timeout, 3)
  end
  local max_body = opts.max_body
  if max_body ~= nil and (type(max_body) ~= "number" or max_body ~= max_body or max_body < 0) then
    argerror(fname, "opts.max_body", "a non-negative number of bytes", max_body, 3)
  end
  return method, host, port, target, host_header, headers, body, timeout, max_body
end

local function request_head(method, target, host_header, headers, body, keep_alive)
  local parts = { method, " ", target, " HTTP/1.1\r\nHost: ", host_header, "\r\n" }
  local n = #parts
  local has_agent = false
  if headers then
    for k, v in pairs(headers) do
      local lk = lower(k)
      if lk == "user-agent" then
        has_agent = true
      end
      if lk ~= "host" and lk ~= "content-length" and lk ~= "connection" and lk ~= "transfer-encoding" then
        parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = k, ": ", v, "\r\n"
        n = n + 4
      end
    end
  end
  if not has_agent then
    parts[n + 1], parts[n + 2], parts[n + 3] = "User-Agent: ", USER_AGENT, "\r\n"
    n = n + 3
  end
  if body ~= nil or method == "POST" or method == "PUT" or method == "PATCH" then
    parts[n + 1], parts[n + 2], parts[n + 3] = "Content-Length: ", body and #body or 0, "\r\n"
    n = n + 3
  end
  parts[n + 1] = keep_alive and "\r\n" or "Connection: close\r\n\r\n"
  return concat(parts)
end

local function timed_out(fname)
  error(errors.Timeout.new(fname .. ": timed out"), 0)
end

--- Sends the request on `conn` and reads the response; returns it and
-- whether the connection may be reused. Failures before any byte of the
-- response came are marked `.before_response` (the request may be retried
-- on a fresh connection).
local function exchange(fname, conn, deadline, method, head, body, max_body)
  local st, a, b
  if body ~= nil and body ~= "" then
    st, a, b = c_write(conn, left(deadline), head, body)
  else
    st, a, b = c_write(conn, left(deadline), head)
  end
  while st == nil do
    st, a, b = c_wait_writable(conn, left(deadline))
  end
  if st ~= false then
    if st == ETIMEDOUT then
      settle(conn)
      timed_out(fname)
    end
    local ok, err = pcall(fail, fname, st, a, b, conn)
    if not ok and errors.is(err, errors.IOError) then
      err.before_response = true
    end
    error(err, 0)
  end
  local parser = c_parser_new("response")
  local first = true
  local status, reason, headers, version, keep_alive, pending, raw
  repeat
    while true do
      local _
      st, status, reason, headers, version, keep_alive, _, _, pending, raw =
        c_read_head(parser, conn, MAX_HEAD, 1000, left(deadline), method == "HEAD")
      if st == false then
        break
      elseif st == ETIMEDOUT then
        settle(conn)
        timed_out(fname)
      elseif st ~= nil then
        local ok, err = pcall(fail, fname, st, status, reason, conn)
        if not ok and first and errors.is(err, errors.IOError) then
          err.before_response = true
        end
        error(err, 0)
      end
    end
    if status == nil then
      local kind, message = reason, headers
      if kind == "eof" or kind == "incomplete" then
        error(Closed.new(fname .. ": the server closed the connection before the response was complete",
          { before_response = first and kind == "eof" }), 0)
      end
      error(HttpError.new(fname .. ": malformed response: " .. tostring(message), { context = { kind = kind } }), 0)
    end
    first = false
  until status >= 200 or status == 101
  local parts, size = {}, 0
  if pending then
    while true do
      local piece, kind, message
      st, piece, kind, message = c_read_body(parser, conn, left(deadline))
      if st == false then
        if piece == nil then
          if kind == "incomplete" or kind == "eof" then
            error(Closed.new(fname .. ": the server closed the connection in the middle of the body"), 0)
          elseif kind ~= nil then
            error(HttpError.new(fname .. ": malformed response body: " .. tostring(message)), 0)
          end
          break
        end
        size = size + #piece
        if max_body and size > max_body then
          error(HttpError.new(fname .. ": the response body exceeds " .. max_body .. " bytes"), 0)
        end
        parts[#parts + 1] = piece
      elseif st == ETIMEDOUT then
        settle(conn)
        timed_out(fname)
      elseif st ~= nil then
        fail(fname, st, piece, kind, conn)
      end
    end
  end
  return {
    status = status, reason = reason, headers = headers, version = version,
    body = concat(parts), raw_headers = raw,
  }, keep_alive and status ~= 101
end

local function emit_finished(method, url, status, started, err)
  if events.has("http.client_finished") then
    events.emit("http.client_finished", { method = method, url = url, status = status,
      duration_ms = (now() - started) * 1000, error = err })
  end
end

--- One request on a new connection, closed afterwards.
function M.request(opts)
  local method, host, port, target, host_header, headers, body, timeout, max_body =
    check_opts("fdn.http.request", opts)
  check_suspendable("fdn.http.request")
  local started = now()
  local deadline = timeout and timeout ~= math.huge and (started + timeout) or nil
  local conn
  local ok, res = pcall(function()
    local okc, c = pcall(tcp.connect, { host = host, port = port, timeout = left(deadline) })
    if not okc then
      if errors.is(c, errors.Timeout) then
        timed_out("fdn.http.request")
      end
      error(c, 0)
    end
    conn = c
    local head = request_head(method, target, host_header, headers, body, false)
    return (exchange("fdn.http.request", conn, deadline, method, head, body, max_body))
  end)
  if conn then
    c_close(conn)
  end
  if not ok then
    emit_finished(method, opts.url, nil, started, res)
    error(res, 0)
  end
  emit_finished(method, opts.url, res.status, started, nil)
  return res
end

-- Clients with a connection pool ------------------------------------------------------

local Client = {}
Client.__index = Client
M.Client = Client

local check_client = require("fdn._shared").option_checker("fdn.http.Client.new",
  { "timeout", "max_idle", "max_body" }, "an options table {timeout =, max_idle =, max_body =}")

--- A client that keeps connections open between requests (keep-alive),
-- up to `max_idle` (default 16) per host and port. Close it when done.
function M.new_client(opts)
  opts = opts or {}
  check_client(opts, 3)
  local max_idle = opts.max_idle or 16
  if type(max_idle) ~= "number" or max_idle < 0 or max_idle % 1 ~= 0 then
    argerror("fdn.http.Client.new", "opts.max_idle", "a non-negative integer", max_idle, 3)
  end
  if opts.timeout ~= nil and (type(opts.timeout) ~= "number" or opts.timeout ~= opts.timeout
      or opts.timeout < 0) then
    argerror("fdn.http.Client.new", "opts.timeout", "a non-negative number", opts.timeout, 3)
  end
  if opts.max_body ~= nil and (type(opts.max_body) ~= "number" or opts.max_body ~= opts.max_body
      or opts.max_body < 0) then
    argerror("fdn.http.Client.new", "opts.max_body", "a non-negative number", opts.max_body, 3)
  end
  return setmetatable({ idle = {}, max_idle = max_idle, timeout = opts.timeout,
    max_body = opts.max_body, closed = false }, Client)
end

local function take_idle(self, key)
  local list = self.idle[key]
  while list and #list > 0 do
    local conn = list[#list]
    list[#list] = nil
    if not c_is_closed(conn) then
      return conn
    end
  end
  return nil
end

--- Sends a request (options as fdn.http.request) on a pooled connection.
function Client:request(opts)
  if getmetatable(self) ~= Client then
    argerror("client:request", "self", "a client (call it with a colon)", self)
  end
  if self.closed then
    error(Closed.new("client:request: the client is closed"), 2)
  end
  local method, host, port, target, host_header, headers, body, timeout, max_body =
    check_opts("client:request", opts)
  check_suspendable("client:request")
  timeout = timeout or self.timeout
  max_body = max_body or self.max_body
  local started = now()
  local deadline = timeout and timeout ~= math.huge and (started + timeout) or nil
  local key = host .. ":" .. port
  local head = request_head(method, target, host_header, headers, body, true)
  local attempt = 0
  while true do
    attempt = attempt + 1
    local conn = take_idle(self, key)
    local reused = conn ~= nil
    local ok, res, keep = pcall(function()
      if conn == nil then
        local okc, c = pcall(tcp.connect, { host = host, port = port, timeout = left(deadline) })
        if not okc then
          if errors.is(c, errors.Timeout) then
            timed_out("client:request")
          end
          error(c, 0)
        end
        conn = c
      end
      return exchange("client:request", conn, deadline, method, head, body, max_body)
    end)
    if ok then
      local list = self.idle[key]
      if list == nil then
        list = {}
        self.idle[key] = list
      end
      if keep and not self.closed and #list < self.max_idle then
        list[#list + 1] = conn
      else
        c_close(conn)
      end
      emit_finished(method, opts.url, res.status, started, nil)
      return res
    end
    if conn then
      c_close(conn)
    end
    -- A kept-alive connection the server had already closed: the request
    -- never reached it, so an idempotent one goes again on a fresh one.
    local err = res
    local retry = reused and attempt == 1 and IDEMPOTENT[method]
      and type(err) == "table" and rawget(err, "before_response")
    if not retry then
      emit_finished(method, opts.url, nil, started, err)
      error(err, 0)
    end
  end
end

--- Closes the idle connections; later requests raise Closed.
function Client:close()
  if getmetatable(self) ~= Client then
    argerror("client:close", "self", "a client (call it with a colon)", self)
  end
  self.closed = true
  for _, list in pairs(self.idle) do
    for i = 1, #list do
      c_close(list[i])
    end
  end
  self.idle = {}
end

function Client:__exit()
  if getmetatable(self) ~= Client then
    argerror("client:__exit", "self", "a client (call it with a colon)", self)
  end
  self:close()
end

return M
