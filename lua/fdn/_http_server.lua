--- Internal: serving an fdn.http app on TCP — one task per connection,
-- one request at a time per connection (pipelined requests wait in the
-- buffer for their turn), graceful close.
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local fdn = require "fdn"
local context = require "fdn.context"
local log = require "fdn.log"
local tcp = require "fdn.tcp"
local appm = require "fdn._http_app"
local util = require "fdn._http_util"

local M = {}

local type, pairs, tostring, tonumber, pcall, xpcall, error =
  type, pairs, tostring, tonumber, pcall, xpcall, error
local concat, lower, format, find, sub = table.concat, string.lower, string.format, string.find, string.sub
local now = core.now
local check_suspendable = core.check_suspendable
local c_read_head, c_read_body = core.http_read_head, core.http_read_body
local c_parser_new, c_parser_state = core.http_parser_new, core.http_parser_state
local c_write, c_wait_writable = core.tcp_write, core.tcp_wait_writable
local c_watch = core.tcp_watch
local tcp_methods = core.tcp_methods
local c_buffered, c_close, c_peer = tcp_methods.buffered, tcp_methods.close, tcp_methods.peer
local ETIMEDOUT, ECLOSED = core.ETIMEDOUT, core.ECLOSED
local fail, left, settle = tcp._fail, tcp._left, tcp._settle
local status_text, http_date = util.status_text, util.http_date
local header_name, valid_value = util.header_name, util.valid_value
local run_pipeline, normalize, error_response = appm.run, appm.normalize, appm.error_response
local error_status, http_error = appm.error_status, appm.http_error
local is_cancelled, format_error = errors.is_cancelled, errors.format

local logger = log.get("fdn.http")

-- Request ids: a random prefix per process and a counter, so ids are
-- unique without costing a random draw per request.
local id_prefix, id_counter = nil, 0
local function new_request_id()
  if id_prefix == nil then
    id_prefix = format("%06x", fdn.random(0xffffff))
  end
  id_counter = id_counter + 1
  return id_prefix .. "-" .. id_counter
end

--- xpcall handler: an error that is not an fdn error (those carry their
-- traceback) is wrapped with the traceback of where it was raised.
local WRAPPED = {}
local function keep_traceback(e)
  if not is_cancelled(e) and errors.class_of(e) == nil then
    -- Any value, nil and a table whose __tostring raises included.
    local ok, text = pcall(tostring, e)
    return { [WRAPPED] = true, value = e,
      traceback = debug.traceback(ok and text or "(an error value that cannot be shown)", 2) }
  end
  return e
end

--- The pipeline under handler_timeout: fdn.timeout sees the errors as
-- raised (Cancelled untouched), the others wrapped with their traceback.
local function traced_pipeline(app, req)
  local ok, res = xpcall(run_pipeline, keep_traceback, app, req)
  if ok then
    return res
  end
  error(res, 0)
end

-- Writing -----------------------------------------------------------------------

local function write_all(conn, deadline, ...)
  local st, a, b = c_write(conn, left(deadline), ...)
  while st == nil do
    st, a, b = c_wait_writable(conn, left(deadline))
  end
  if st ~= false then
    if st == ETIMEDOUT then
      settle(conn)
      error(errors.Timeout.new("http: sending the response timed out"), 0)
    end
    return fail("http: sending the response", st, a, b, conn)
  end
end

-- Requests ------------------------------------------------------------------------

local Request = {}
Request.__index = Request
M.Request = Request

--- The whole body (read on first call, within the app's max_body; later
-- calls return the same string). Raises HttpError with status 413 when it
-- is larger, 400 when it is malformed, 408 when the client is too slow.
local function check_request(self, fname)
  if getmetatable(self) ~= Request then
    errors.argerror(fname, "self", "a request (call it with a colon)", self, 3)
  end
end

function Request:body()
  check_request(self, "req:body")
  local body = self._body
  if body ~= nil then
    return body
  end
  if not self._pending then
    self._body = ""
    return ""
  end
  check_suspendable("req:body")
  local app, conn = self._app, self._conn
  if self._expect and not self._continued then
    -- The client waits for this before it sends the body.
    self._continued = true
    write_all(conn, now() + app.send_timeout, "HTTP/1.1 100 Continue\r\n\r\n")
  end
  local parts, size, max = {}, 0, app.max_body
  local parser, timeout = self._parser, app.request_timeout
  while true do
    local st, piece, kind, message = c_read_body(parser, conn, timeout)
    if st == false then
      if piece == nil then
        if kind == nil then
          break
        end
        self._pending = false
        if kind == "incomplete" or kind == "eof" then
          error(errors.Closed.new("req:body: the client closed the connection mid-body"), 2)
        end
        error(http_error(400, "malformed request body: " .. tostring(message)), 2)
      end
      size = size + #piece
      if size > max then
        error(http_error(413, "the request body exceeds " .. max .. " bytes"), 2)
      end
      parts[#parts + 1] = piece
    elseif st ~= nil then
      if st == ETIMEDOUT then
        settle(conn)
        error(http_error(408, "the request body did not arrive in time"), 2)
      end
      return fail("req:body", st, piece, kind, conn)
    end
  end
  self._pending = false
  body = concat(parts)
  self._body = body
  return body
end

local json_decode
do
  local ok, cjson = pcall(require, "cjson")
  if ok then
    json_decode = cjson.new().decode
  end
end

--- The body decoded as JSON; HttpError 400 when it is not JSON.
function Request:json()
  check_request(self, "req:json")
  local body = self:body()
  local ok, value = pcall(json_decode, body)
  if not ok then
    error(http_error(400, "the request body is not valid JSON"), 2)
  end
  return value
end

--- A request header by name, any case.
function Request:header(name)
  check_request(self, "req:header")
  if type(name) ~= "string" then
    errors.argerror("req:header", "name", "a header name", name)
  end
  return self.headers[lower(name)]
end

-- Responses ----------------------------------------------------------------------

local NO_BODY = { [204] = true, [304] = true }

local ok_new, new_table = pcall(require, "table.new")
if not ok_new then
  new_table = function()
    return {}
  end
end

-- "HTTP/1.1 200 OK\r\n" and friends, made once.
local status_lines = setmetatable({}, { __index = function(t, status)
  local line = "HTTP/1.1 " .. status .. " " .. (status_text[status] or "Unknown") .. "\r\n"
  t[status] = line
  return line
end })

--- Builds the head of `res` for `req`; returns head, body, chunked,
-- keep_alive. Raises for a header that cannot be sent.
local function build_head(srv, req, res, keep_alive)
  local status = res.status
  local parts = new_table(24, 0)
  parts[1] = status_lines[status]
  local n = 1
  local user_length
  for name, value in pairs(res.headers) do
    local lname = header_name(name)
    if not lname then
      error(errors.Error.new("response header name " .. format("%q", tostring(name)) .. " is not a token"), 0)
    end
    if lname == "content-length" then
      user_length = tonumber(value)
      if user_length == nil or user_length < 0 or user_length % 1 ~= 0 then
        error(errors.Error.new("response Content-Length " .. format("%q", tostring(value))
          .. " is not a byte count"), 0)
      end
    elseif lname == "connection" then
      if lower(tostring(value)) == "close" then
        keep_alive = false
      end
    elseif lname ~= "transfer-encoding" and lname ~= "date" then
      if type(value) == "table" then
        for i = 1, #value do
          local v = tostring(value[i])
          if not valid_value(v) then
            error(errors.Error.new("response header " .. name .. " holds CR, LF or NUL"), 0)
          end
          parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = name, ": ", v, "\r\n"
          n = n + 4
        end
      else
        local v = type(value) == "string" and value or tostring(value)
        if not valid_value(v) then
          error(errors.Error.new("response header " .. name .. " holds CR, LF or NUL"), 0)
        end
        parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = name, ": ", v, "\r\n"
        n = n + 4
      end
    end
  end
  local body, chunked = res.body, false
  if status < 200 or NO_BODY[status] then
    body = nil
  elseif type(body) == "string" or body == nil then
    body = body or ""
    parts[n + 1], parts[n + 2], parts[n + 3] = "Content-Length: ", #body, "\r\n"
    n = n + 3
  elseif user_length then
    parts[n + 1], parts[n + 2], parts[n + 3] = "Content-Length: ", user_length, "\r\n"
    n = n + 3
  elseif req.version == "1.1" then
    chunked = true
    parts[n + 1] = "Transfer-Encoding: chunked\r\n"
    n = n + 1
  else
    keep_alive = false -- an HTTP/1.0 client reads to the end of the connection
  end
  if srv.closing then
    keep_alive = false
  end
  if not keep_alive then
    parts[n + 1] = "Connection: close\r\n"
    n = n + 1
  elseif req.version ~= "1.1" then
    parts[n + 1] = "Connection: keep-alive\r\n"
    n = n + 1
  end
  if req.id then
    parts[n + 1], parts[n + 2], parts[n + 3] = "X-Request-Id: ", req.id, "\r\n"
    n = n + 3
  end
  parts[n + 1], parts[n + 2], parts[n + 3] = "Date: ", http_date(), "\r\n\r\n"
  return concat(parts), body, chunked, keep_alive, user_length
end

--- Sends `res`; returns the body bytes sent and whether the connection may
-- stay open. A streaming body that fails part-way closes the connection.
local function send(srv, conn, req, res, keep_alive)
  local app = srv.app
  local ok, head, body, chunked
  local length
  ok, head, body, chunked, keep_alive, length = pcall(build_head, srv, req, res, keep_alive)
  if not ok then
    local err = head
    srv:_handler_failed(req, err, nil)
    res = error_response(500, "internal server error", req.id)
    head, body, chunked, keep_alive = build_head(srv, req, res, false)
  end
  local deadline = now() + app.send_timeout
  if req.method == "HEAD" or body == nil then
    write_all(conn, deadline, head)
    return 0, keep_alive
  end
  if type(body) == "string" then
    write_all(conn, deadline, head, body)
    return #body, keep_alive
  end
  write_all(conn, deadline, head)
  local sent = 0
  local function write(chunk)
    if type(chunk) ~= "string" then
      if type(chunk) ~= "number" then
        error(errors.InvalidArgument.new("write: bad argument 'chunk' (expected a string, got "
          .. type(chunk) .. ")"), 2)
      end
      chunk = tostring(chunk)
    end
    local len = #chunk
    if len == 0 then
      return
    end
    if length and sent + len > length then
      error(errors.InvalidState.new("write: the body is longer than its Content-Length ("
        .. length .. ")"), 2)
    end
    sent = sent + len
    local d = now() + app.send_timeout
    if chunked then
      write_all(conn, d, format("%x\r\n", len), chunk, "\r\n")
    else
      write_all(conn, d, chunk)
    end
  end
  local okp, err = xpcall(body, keep_traceback, write)
  if not okp then
    if is_cancelled(err) then
      error(err, 0)
    end
    if type(err) == "table" and rawget(err, WRAPPED) then
      srv:_handler_failed(req, err.value, err.traceback)
    else
      srv:_handler_failed(req, err, nil)
    end
    return sent, false
  end
  if chunked then
    write_all(conn, now() + app.send_timeout, "0\r\n\r\n")
  elseif length and sent ~= length then
    -- Shorter than announced: the client can only tell by the close.
    srv:_handler_failed(req, errors.InvalidState.new("the body was shorter ("
      .. sent .. " bytes) than its Content-Length (" .. length .. ")"), nil)
    return sent, false
  end
  return sent, keep_alive
end

-- Serving a connection -------------------------------------------------------------

--- Reads the next request head: false and its fields; or nil and why not
-- ("idle", "timeout", "closed", "io", or a protocol failure kind).
local function read_head(srv, conn, parser, first)
  local app = srv.app
  local idle_deadline = now() + (first and app.request_timeout or app.keepalive_timeout)
  local deadline
  local timeout = left(idle_deadline)
  while true do
    local st, a, b, c, d, e, f, g, h, i = c_read_head(parser, conn, app.max_header_size,
      app.max_headers, timeout, false)
    if st == false then
      if a ~= nil then
        return false, a, b, c, d, e, f, g, h, i
      end
      return nil, b, c
    elseif st == nil then
      if deadline == nil and c_buffered(conn) > 0 then
        deadline = now() + app.request_timeout
      end
      timeout = left(deadline or idle_deadline)
    elseif st == ETIMEDOUT then
      settle(conn)
      return nil, deadline and "timeout" or "idle"
    elseif st == ECLOSED then
      return nil, "closed"
    elseif st == true then
      return nil, "io", a
    else
      return fail("http: reading a request", st, a, b, conn)
    end
  end
end

local REJECT = {
  timeout = { 408, "the request did not arrive in time" },
  too_large = { 431, "the request header section is too large" },
  too_many_headers = { 431, "the request has too many header fields" },
  uri_too_long = { 414, "the request target is too long" },
  bad = { 400, "malformed request" },
}

--- Answers a request the server refuses before any handler runs, then
-- the connection closes.
local function reject(srv, conn, status, message, detail, req)
  req = req or { version = "1.1" }
  if events.has("http.request_rejected") then
    events.emit("http.request_rejected", { server = srv.name, status = status, reason = message,
      detail = detail, method = req.method, path = req.path })
  end
  local res = error_response(status, message, req.id)
  local head, body = build_head(srv, req, res, false)
  pcall(write_all, conn, now() + srv.app.send_timeout, head, body)
end

local function valid_request_id(v)
  return v ~= nil and #v <= 128 and #v > 0 and not find(v, "[^%w%-_%.:]")
end

--- Handles one request; returns whether the connection stays open.
local function handle(srv, conn, parser, ip, method, target, headers, version, keep_alive,
                      content_length, _chunked, pending, upgrade)
  local app = srv.app
  local started = now()
  local qpos = find(target, "?", 1, true)
  local path, query = target, nil
  if qpos then
    path, query = sub(target, 1, qpos - 1), sub(target, qpos + 1)
  end
  local rid = headers["x-request-id"]
  if not valid_request_id(rid) then
    rid = new_request_id()
  end
  local req = setmetatable({
    method = method, target = target, path = util.unescape(path), query = util.parse_query(query),
    headers = headers, version = version, remote = ip, id = rid, params = {},
    server = srv,
    _app = app, _conn = conn, _parser = parser, _pending = pending,
    _expect = false,
  }, Request)
  keep_alive = keep_alive and not upgrade and not srv.closing
    and srv.requests_of[conn] < app.max_requests
  -- Refusals that need no handler.
  local expect = headers.expect
  if expect ~= nil then
    if lower(expect) ~= "100-continue" then
      reject(srv, conn, 417, "unsupported Expect header", expect, req)
      return false
    end
    req._expect = version == "1.1"
  end
  if version == "1.1" and headers.host == nil then
    reject(srv, conn, 400, "HTTP/1.1 requests need a Host header", nil, req)
    return false
  end
  if content_length and content_length > app.max_body then
    reject(srv, conn, 413, "the request body exceeds " .. app.max_body .. " bytes", nil, req)
    return false
  end

  -- The request's context: request_id, and whatever the handler sets,
  -- for this request only (the next one on the connection starts afresh).
  local saved_context = context.current()
  context.set("request_id", rid)
  srv.in_flight = srv.in_flight + 1
  if events.has("http.request_started") then
    events.emit("http.request_started", { server = srv.name, request_id = rid, method = method,
      path = req.path, remote = ip })
  end
  local ok, res
  local watch = app.cancel_on_disconnect
  if watch then
    c_watch(conn, true)
  end
  if app.handler_timeout then
    ok, res = pcall(fdn.timeout, app.handler_timeout, traced_pipeline, app, req)
  else
    ok, res = xpcall(run_pipeline, keep_traceback, app, req)
  end
  if watch then
    c_watch(conn, false)
  end
  local status, bytes
  if not ok then
    local err, tb = res, nil
    if type(err) == "table" and rawget(err, WRAPPED) then
      err, tb = err.value, err.traceback
    end
    if is_cancelled(err) then
      srv.in_flight = srv.in_flight - 1
      srv:_finished(req, nil, 0, started, true)
      context._restore(saved_context)
      error(err, 0)
    end
    local code, message, extra
    if app.handler_timeout and errors.is(err, errors.Timeout) and type(err) == "table"
        and type(err.context) == "table" and err.context.seconds == app.handler_timeout
        and now() - started >= app.handler_timeout then
      code, message = 503, "the handler timed out"
    else
      code, message, extra = error_status(err)
    end
    if code >= 500 then
      srv:_handler_failed(req, err, tb)
    end
    res = nil
    if app.on_error and code >= 500 and not errors.is(err, errors.HttpError) then
      local okh, custom = pcall(app.on_error, err, req, code)
      if okh then
        okh, custom = pcall(normalize, custom, "on_error")
      end
      if okh then
        res = custom
      else
        srv:_handler_failed(req, custom, nil)
      end
    end
    res = res or error_response(code, message, rid, extra)
    if code == 413 or code == 408 or code == 400 then
      keep_alive = false
    end
  end
  -- A body the handler did not read: the client may still be sending it.
  if c_parser_state(parser) ~= "done" and (req._expect and not req._continued) then
    keep_alive = false
  end
  status = res.status
  local sent_ok, sent, keep = pcall(send, srv, conn, req, res, keep_alive)
  srv.in_flight = srv.in_flight - 1
  if not sent_ok then
    srv:_finished(req, status, 0, started, is_cancelled(sent))
    context._restore(saved_context)
    error(sent, 0)
  end
  bytes, keep_alive = sent, keep
  if keep_alive and c_parser_state(parser) == "body" then
    -- Skip what is left of the body, within the limits, to reuse the
    -- connection; past them, close instead.
    local skipped, max = 0, app.max_body
    while true do
      local st, piece = c_read_body(parser, conn, app.request_timeout)
      if st == false then
        if piece == nil then
          break
        end
        skipped = skipped + #piece
        if skipped > max then
          keep_alive = false
          break
        end
      elseif st ~= nil then
        settle(conn)
        if type(st) == "number" and st ~= ETIMEDOUT and st ~= ECLOSED then
          fail("http: skipping a request body", st, piece, nil, conn)
        end
        keep_alive = false
        break
      end
    end
  end
  if c_parser_state(parser) ~= "done" then
    keep_alive = false
  end
  srv:_finished(req, status, bytes, started, false)
  context._restore(saved_context)
  return keep_alive
end

--- Closing a socket with unread input makes the kernel reset the
-- connection, and a client still sending loses the response it was sent
-- (the 413 or 431 it should read). So: shut our side, read and drop what
-- comes for a moment, then close.
local function linger(conn)
  local deadline = now() + 1
  pcall(function()
    tcp_methods.shutdown(conn, 1)
    local total = 0
    while total < 1024 * 1024 do
      local data = tcp_methods.read(conn, 65536, left(deadline))
      if data == nil then
        return
      end
      total = total + #data
    end
  end)
end

local function serve_loop(srv, conn, ip, parser)
  local first = true
  while true do
    srv.idle[conn] = true
    local ok, method, target, headers, version, keep_alive, content_length, chunked, pending, upgrade =
      read_head(srv, conn, parser, first)
    srv.idle[conn] = nil
    first = false
    if ok == nil then
      local why = method
      local refusal = REJECT[why]
      if refusal then
        reject(srv, conn, refusal[1], refusal[2], target)
        return true
      end
      return
    end
    srv.requests_of[conn] = srv.requests_of[conn] + 1
    if not handle(srv, conn, parser, ip, method, target, headers, version, keep_alive,
        content_length, chunked, pending, upgrade) then
      return c_parser_state(parser) ~= "done"
    end
    if srv.closing then
      return
    end
  end
end

local function serve(srv, conn)
  local ip = c_peer(conn)
  local id = srv.next_conn_id + 1
  srv.next_conn_id = id
  srv.requests_of[conn] = 0
  srv.tasks[conn] = fdn.current()
  if events.has("http.connection_opened") then
    events.emit("http.connection_opened", { server = srv.name, connection_id = id, remote = ip })
  end
  local ok, err = pcall(serve_loop, srv, conn, ip, c_parser_new("request"))
  if ok and err and not srv.closing then
    linger(conn)
  end
  c_close(conn)
  local requests = srv.requests_of[conn]
  srv.requests_of[conn], srv.tasks[conn], srv.idle[conn] = nil, nil, nil
  srv.active = srv.active - 1
  srv.permits:release()
  if srv.active == 0 and srv.closing then
    srv.drained:set()
  end
  if events.has("http.connection_closed") then
    events.emit("http.connection_closed", { server = srv.name, connection_id = id, remote = ip,
      requests = requests })
  end
  if not ok then
    if is_cancelled(err) then
      error(err, 0)
    end
    -- The peer went away mid-response or similar: nothing to answer.
    logger.debug("http.connection_failed", { server = srv.name, connection_id = id,
      error = format_error(err) })
  end
end

-- The server ----------------------------------------------------------------------

local Server = {}
Server.__index = Server
M.Server = Server

function Server:_handler_failed(req, err, tb)
  -- The error value itself: fdn.log renders it (safely) in every format,
  -- and a function sink receives it as it was raised.
  local fields = { server = self.name, method = req and req.method, path = req and req.path,
    error = err }
  if tb == nil and type(err) == "table" then
    tb = rawget(err, "traceback")
  end
  fields.traceback = tb
  logger.error("http.handler_failed", fields)
  if events.has("http.handler_failed") then
    events.emit("http.handler_failed", { server = self.name, request_id = req and req.id,
      method = req and req.method, path = req and req.path, error = err })
  end
end

function Server:_finished(req, status, bytes, started, cancelled)
  local duration_ms = (now() - started) * 1000
  if self.app.access_log then
    logger.info("http.access", { server = self.name, method = req.method, path = req.path,
      status = status, duration_ms = duration_ms, bytes = bytes, remote = req.remote,
      cancelled = cancelled or nil })
  end
  if events.has("http.request_finished") then
    events.emit("http.request_finished", { server = self.name, request_id = req.id,
      method = req.method, path = req.path, status = status, duration_ms = duration_ms,
      bytes = bytes, cancelled = cancelled })
  end
end

local function accept_loop(srv)
  local listener, permits = srv.listener, srv.permits
  while not srv.closing do
    local got = pcall(permits.acquire, permits)
    if not got or srv.closing then
      if got then
        permits:release()
      end
      return
    end
    local ok, conn = pcall(listener.accept, listener)
    if not ok then
      permits:release()
      local err = conn
      if srv.closing or is_cancelled(err) or errors.is(err, errors.Closed) then
        return
      end
      -- Out of descriptors or similar: say so, breathe, go on.
      logger.warn("http.accept_failed", { server = srv.name, error = format_error(err) })
      pcall(fdn.sleep, 0.05)
    else
      srv.active = srv.active + 1
      fdn.spawn(serve, srv, conn)
    end
  end
end

local check_listen = require("fdn._shared").option_checker("app:listen",
  { "host", "port", "backlog" }, "an options table {host =, port =, backlog =}")

--- Starts serving `app`; returns the server.
function M.listen(app, opts)
  check_listen(opts, 3)
  local listener = tcp.listen { host = opts.host or "127.0.0.1", port = opts.port or 0,
    backlog = opts.backlog }
  local host, port = tcp_methods.address(listener)
  local srv = setmetatable({
    app = app, name = app.name, listener = listener, host = host, port = port,
    active = 0, in_flight = 0, closing = false, closed = false, next_conn_id = 0,
    permits = fdn.Semaphore.new(app.max_connections),
    drained = fdn.Event.new(), done = fdn.Event.new(),
    tasks = {}, idle = {}, requests_of = {},
  }, Server)
  srv.accept_task = fdn.spawn_with({ name = "http accept (" .. app.name .. ")" }, accept_loop, srv)
  srv.remove_hook = fdn.on_shutdown(function()
    srv:close()
  end)
  if events.has("http.listening") then
    events.emit("http.listening", { server = srv.name, host = host, port = port })
  end
  logger.debug("http.listening", { server = srv.name, host = host, port = port })
  return srv
end

local wait_closed

local function close_now(srv)
  srv.closing = true
  c_close(srv.listener)
  srv.accept_task:cancel("server closed")
  for conn in pairs(srv.idle) do
    if c_buffered(conn) == 0 then
      c_close(conn)
    end
  end
end

local function finish_close(srv, cancelled)
  srv.closed = true
  if srv.remove_hook then
    srv.remove_hook()
    srv.remove_hook = nil
  end
  if events.has("http.server_closed") then
    events.emit("http.server_closed", { server = srv.name, host = srv.host, port = srv.port,
      cancelled = cancelled })
  end
  srv.done:set()
end

--- Lets the connections finish for up to `timeout` seconds, cancels what
-- is left, waits until every connection and the accept task have ended.
local function cancel_connections(srv)
  local cancelled = 0
  for conn, task in pairs(srv.tasks) do
    cancelled = cancelled + 1
    task:cancel("the server closed and its shutdown timeout passed")
    c_close(conn)
  end
  return cancelled
end

function wait_closed(srv, timeout)
  local cancelled = 0
  if srv.active > 0 and (timeout <= 0 or not pcall(srv.drained.wait, srv.drained, timeout)) then
    cancelled = cancel_connections(srv)
    if srv.active > 0 then
      srv.drained:wait()
    end
  end
  srv.accept_task:wait()
  if not srv.closed then
    finish_close(srv, cancelled)
  end
end

--- Closes the server gracefully: stops accepting, closes idle
-- connections, lets requests in flight finish (their responses say
-- "Connection: close") for up to `opts.timeout` seconds (default: the
-- app's shutdown_timeout), then cancels what is left and waits for it.
-- Returns once every connection is closed; a second call waits too.
function Server:close(opts)
  if getmetatable(self) ~= Server then
    errors.argerror("server:close", "self", "a server (call it with a colon)", self)
  end
  local timeout = self.app.shutdown_timeout
  if opts ~= nil then
    if type(opts) ~= "table" then
      errors.argerror("server:close", "opts", "a table {timeout =}", opts)
    end
    if opts.timeout ~= nil then
      timeout = opts.timeout
      if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
        errors.argerror("server:close", "opts.timeout", "a non-negative number", timeout)
      end
    end
  end
  local me = fdn.current()
  if me ~= nil then
    -- In a task but where it cannot wait: fail before closing anything.
    check_suspendable("server:close")
  end
  if me == nil then
    -- Outside any task nothing can wait: close everything at once.
    close_now(self)
    for conn in pairs(self.tasks) do
      c_close(conn)
    end
    return
  end
  if self.closing then
    if not self.closed then
      for _, task in pairs(self.tasks) do
        if task == me then
          return -- a handler cannot wait for its own connection
        end
      end
      self.done:wait()
    end
    return
  end
  for _, task in pairs(self.tasks) do
    if task == me then
      -- Called from a handler: close from a task of its own, so this
      -- request can finish instead of waiting for itself.
      self.closing = true
      close_now(self)
      fdn.spawn_with({ name = "http close (" .. self.name .. ")" }, function()
        self.closing = false
        self:close(opts)
      end)
      return
    end
  end
  close_now(self)
  local ok, err = pcall(wait_closed, self, timeout)
  if not ok then
    -- Cancelled while waiting: the close goes on, hard, in a task of its
    -- own, so the server still ends and later close() and wait() return.
    fdn.spawn_with({ name = "http close (" .. self.name .. ")" }, wait_closed, self, 0)
    error(err, 0)
  end
end

--- Waits until the server has closed.
function Server:wait()
  if getmetatable(self) ~= Server then
    errors.argerror("server:wait", "self", "a server (call it with a colon)", self)
  end
  check_suspendable("server:wait")
  self.done:wait()
end

--- For fdn.with: closes the server on the way out.
function Server:__exit()
  if getmetatable(self) ~= Server then
    errors.argerror("server:__exit", "self", "a server (call it with a colon)", self)
  end
  self:close()
end

return M
