--- fdn.tcp: TCP listeners and connections whose calls suspend the task.
--
-- The objects are the C streams of bindings/l_tcp.c. Every suspending call
-- honours cancellation and fdn.timeout, and takes an optional `timeout` in
-- seconds of its own (Timeout when it passes). Closing a stream wakes the
-- tasks waiting on it with Closed. A stream whose object is collected while
-- still open is closed then, and the engine closes what is left when it
-- closes; close() yourself anyway, so the peer learns at once.
--
-- I/O failures raise fdn.errors.IOError with `code` set to the system's name
-- for them ("ECONNREFUSED", "ECONNRESET", "EADDRINUSE"...).
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local fdn = require "fdn"

local M = {}

local type, error = type, error
local argerror, IOError = errors.argerror, errors.IOError
local wake_error = fdn._wake_error
local now = core.now
local check_suspendable = core.check_suspendable

local methods = core.tcp_methods
local c_listen, c_accept = core.tcp_listen, core.tcp_accept
local c_connect, c_connect_wait = core.tcp_connect, core.tcp_connect_wait
local c_read, c_read_until = core.tcp_read, core.tcp_read_until
local c_write, c_wait_writable = core.tcp_write, core.tcp_wait_writable
local c_shutdown, c_settle = core.tcp_shutdown, core.tcp_settle
local c_close, c_address = methods.close, methods.address
local STREAM_MT = debug.getregistry()["fdn.tcp"]

-- The C methods check what they are given; these check for the Lua
-- methods that reach C only later, or under another name.
local function check_stream(self, fname)
  if getmetatable(self) ~= STREAM_MT then
    argerror(fname, "self", "a TCP stream (call it with a colon)", self, 3)
  end
end

--- Raises the error a failed stream call reported: "st, cause" from the
-- scheduler (cancelled, timed out, closed) or "true, code, message" for
-- an I/O error. `stream` is settled first: a wait that ended by
-- cancellation or timeout left its queue without the stream knowing.
local function fail(fname, st, a, b, stream)
  if stream ~= nil then
    c_settle(stream)
  end
  if st == true then
    error(IOError.new(fname .. ": " .. tostring(b), { code = a, context = { code = a } }), 0)
  end
  return wake_error(st, a, fname)
end
M._fail = fail
M._settle = c_settle

local function check_timeout(fname, timeout, level)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    argerror(fname, "timeout", "nil or a non-negative number", timeout, (level or 2) + 1)
  end
end
M._check_timeout = check_timeout

--- Seconds left before `deadline` (nil for none), never negative.
local function left(deadline)
  if deadline == nil then
    return nil
  end
  local r = deadline - now()
  return r > 0 and r or 0
end
M._left = left

local function deadline_of(timeout)
  if timeout == nil or timeout == math.huge then
    return nil
  end
  return now() + timeout
end
M._deadline_of = deadline_of

local check_listen = require("fdn._shared").option_checker("fdn.tcp.listen",
  { "host", "port", "backlog" }, "an options table {host =, port =, backlog =}")

--- Listens on `opts.host` (an IP address, default "127.0.0.1") and
-- `opts.port` (0 picks a free port: read it with listener:port()).
-- Raises IOError (code "EADDRINUSE", "EACCES"...) when it cannot.
---@param opts {host?: string, port: integer, backlog?: integer}
function M.listen(opts)
  check_listen(opts)
  local host, port = opts.host or "127.0.0.1", opts.port
  if type(host) ~= "string" then
    argerror("fdn.tcp.listen", "host", "an IP address string", host)
  end
  if type(port) ~= "number" or port % 1 ~= 0 or port < 0 or port > 65535 then
    argerror("fdn.tcp.listen", "port", "an integer from 0 to 65535", port)
  end
  local backlog = opts.backlog
  if backlog ~= nil and (type(backlog) ~= "number" or backlog < 1 or backlog % 1 ~= 0) then
    argerror("fdn.tcp.listen", "backlog", "a positive integer", backlog)
  end
  local listener, code, message = c_listen(host, port, backlog)
  if listener == nil then
    error(IOError.new("fdn.tcp.listen: cannot listen on " .. host .. ":" .. port .. ": "
      .. message, { code = code, context = { code = code, host = host, port = port } }), 2)
  end
  if events.has("tcp.listening") then
    local ip, p = c_address(listener)
    events.emit("tcp.listening", { host = ip, port = p })
  end
  return listener
end

local check_connect = require("fdn._shared").option_checker("fdn.tcp.connect",
  { "host", "port", "timeout" }, "an options table {host =, port =, timeout =}")

--- Connects to `opts.host` (a name or an IP address; names resolve
-- preferring IPv4) on `opts.port`, within `opts.timeout` seconds if given.
---@param opts {host: string, port: integer, timeout?: number}
function M.connect(opts)
  check_connect(opts)
  local host, port, timeout = opts.host, opts.port, opts.timeout
  if type(host) ~= "string" or host == "" then
    argerror("fdn.tcp.connect", "host", "a host name or IP address", host)
  end
  if type(port) ~= "number" or port % 1 ~= 0 or port < 1 or port > 65535 then
    argerror("fdn.tcp.connect", "port", "an integer from 1 to 65535", port)
  end
  check_timeout("fdn.tcp.connect", timeout)
  -- Where the caller cannot wait, fail before a socket is made.
  check_suspendable("fdn.tcp.connect")
  local conn, code, message = c_connect(host, port)
  if conn == nil then
    error(IOError.new("fdn.tcp.connect: " .. host .. ":" .. port .. ": " .. message,
      { code = code, context = { code = code, host = host, port = port } }), 2)
  end
  local deadline = deadline_of(timeout)
  while true do
    local st, a, b = c_connect_wait(conn, left(deadline))
    if st == false then
      break
    elseif st ~= nil then
      -- Cancelled, timed out or refused: the half-made stream goes at once.
      c_close(conn)
      if st == true then
        error(IOError.new("fdn.tcp.connect: " .. host .. ":" .. port .. ": " .. b,
          { code = a, context = { code = a, host = host, port = port } }), 0)
      end
      return fail("fdn.tcp.connect", st, a, b)
    end
  end
  if events.has("tcp.connected") then
    events.emit("tcp.connected", { host = host, port = port })
  end
  return conn
end

--- Waits for the next connection and returns it (a connection stream).
---@param timeout? number seconds
function methods.accept(self, timeout)
  check_timeout("listener:accept", timeout)
  local deadline = deadline_of(timeout)
  while true do
    local st, a, b = c_accept(self, left(deadline))
    if st == false then
      return a
    elseif st ~= nil then
      return fail("listener:accept", st, a, b, self)
    end
  end
end

--- The port a listener (or connection) is bound to locally.
function methods.port(self)
  check_stream(self, "stream:port")
  local _, port = c_address(self)
  return port
end

--- Reads what is there, up to `max` bytes (default 65536), waiting until
-- something is; nil at the end of the stream.
---@param max? integer
---@param timeout? number seconds
function methods.read(self, max, timeout)
  check_timeout("conn:read", timeout)
  local deadline = deadline_of(timeout)
  while true do
    local st, a, b = c_read(self, max, left(deadline))
    if st == false then
      return a
    elseif st ~= nil then
      return fail("conn:read", st, a, b, self)
    end
  end
end

--- Reads exactly `n` bytes; at the end of the stream before that, returns
-- nil and what did come.
---@param n integer
---@param timeout? number seconds
function methods.read_exactly(self, n, timeout)
  check_stream(self, "conn:read_exactly")
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    argerror("conn:read_exactly", "n", "a non-negative integer", n)
  end
  check_timeout("conn:read_exactly", timeout)
  local deadline = deadline_of(timeout)
  local parts, got = {}, 0
  while got < n do
    local st, a, b = c_read(self, n - got, left(deadline))
    if st == false then
      if a == nil then
        return nil, table.concat(parts)
      end
      parts[#parts + 1] = a
      got = got + #a
    elseif st ~= nil then
      return fail("conn:read_exactly", st, a, b, self)
    end
  end
  return table.concat(parts)
end

--- Reads up to `delimiter` and returns what came before it (the delimiter
-- is consumed). At the end of the stream: nil and the rest. Raises
-- IOError with code "ELIMIT" when `max` bytes (default 65536) came without
-- the delimiter.
---@param delimiter string
---@param max? integer
---@param timeout? number seconds
function methods.read_until(self, delimiter, max, timeout)
  if type(delimiter) ~= "string" or delimiter == "" then
    check_stream(self, "conn:read_until")
    argerror("conn:read_until", "delimiter", "a non-empty string", delimiter)
  end
  check_timeout("conn:read_until", timeout)
  local deadline = deadline_of(timeout)
  while true do
    local st, a, b = c_read_until(self, delimiter, max, left(deadline))
    if st == false then
      if a == nil then
        return nil, b
      end
      return a
    elseif st ~= nil then
      return fail("conn:read_until", st, a, b, self)
    end
  end
end

--- Writes the strings in order (at most 16 per call). Returns once the
-- kernel took them or they are queued within the write limit; waits while
-- more is queued (backpressure). An error the kernel reports later is
-- raised by the next write, drain or shutdown.
function methods.write(self, ...)
  local st, a, b = c_write(self, nil, ...)
  while st == nil do
    st, a, b = c_wait_writable(self)
  end
  if st ~= false then
    return fail("conn:write", st, a, b, self)
  end
end

--- Waits until everything written so far has gone to the kernel.
---@param timeout? number seconds
function methods.drain(self, timeout)
  check_stream(self, "conn:drain")
  check_timeout("conn:drain", timeout)
  local deadline = deadline_of(timeout)
  while true do
    local st, a, b = c_wait_writable(self, left(deadline), 0)
    if st == false then
      return
    elseif st ~= nil then
      return fail("conn:drain", st, a, b, self)
    end
  end
end

--- Shuts the writing side down once queued data is written: the peer reads
-- the end of the stream; reading goes on.
---@param timeout? number seconds
function methods.shutdown(self, timeout)
  check_timeout("conn:shutdown", timeout)
  local deadline = deadline_of(timeout)
  while true do
    local st, a, b = c_shutdown(self, left(deadline))
    if st == false then
      return
    elseif st ~= nil then
      return fail("conn:shutdown", st, a, b, self)
    end
  end
end

--- Closes the stream at once; tasks waiting on it raise Closed. Idempotent.
function methods.close(self)
  check_stream(self, "stream:close")
  if methods.is_closed(self) then
    return
  end
  c_close(self)
  if events.has("tcp.closed") then
    events.emit("tcp.closed", {})
  end
end

--- For fdn.with: closes the stream on the way out.
function methods.__exit(self)
  check_stream(self, "stream:__exit")
  methods.close(self)
end

return M
