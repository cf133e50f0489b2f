local fdn = require "fdn"
local T = require "fdn.testing"
local core = require "fdn.core"
local events = require "fdn.events"
local errors = fdn.errors
local tcp = fdn.tcp

local REAL = { clock = "real", timeout = 20 }

local function expect_error(class, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(errors.is(err, class), "expected " .. tostring(class) .. ", got " .. tostring(err))
  return err
end

local function expect_arg(param, fn, ...)
  local err = expect_error(errors.InvalidArgument, fn, ...)
  assert.equal(param, err.context.parameter)
  return err
end

--- A listener and a connected pair (client, server side).
local function pair()
  local l = tcp.listen { port = 0 }
  local accepted = fdn.spawn(function()
    return l:accept()
  end)
  local c = tcp.connect { host = "127.0.0.1", port = l:port() }
  local s = accepted:join()
  return l, c, s
end

local function close_all(...)
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    if x then
      x:close()
    end
  end
end

describe("fdn.tcp", function()
  after_each(function()
    events.reset()
  end)

  it("echoes lines between a connection and an accepted one", T.async(function()
    local l = tcp.listen { host = "127.0.0.1", port = 0 }
    assert.is_true(l:port() > 0)
    local server = fdn.spawn(function()
      local c = l:accept()
      local n = 0
      while true do
        local line = c:read_until("\n")
        if line == nil then
          break
        end
        n = n + 1
        c:write("echo:", line, "\n")
      end
      c:close()
      return n
    end)
    local c = tcp.connect { host = "localhost", port = l:port(), timeout = 5 }
    local ip, port = c:peer()
    assert.equal("127.0.0.1", ip)
    assert.equal(l:port(), port)
    for i = 1, 3 do
      c:write("hello " .. i .. "\n")
      assert.equal("echo:hello " .. i, c:read_until("\n"))
    end
    c:shutdown()
    assert.is_nil(c:read())
    assert.equal(3, server:join())
    close_all(c, l)
    assert.is_true(c:is_closed())
  end, REAL))

  it("reads at most max bytes, exactly n bytes, and up to a delimiter", T.async(function()
    local l, c, s = pair()
    s:write("abcdefghij", "KLMNOP\r\nrest")
    assert.equal("abc", c:read(3))
    assert.equal("defghij", c:read_exactly(7))
    assert.equal("KLMNOP", c:read_until("\r\n"))
    s:close()
    local none, rest = c:read_until("\n")
    assert.is_nil(none)
    assert.equal("rest", rest)
    assert.is_nil(c:read())
    local got, partial = c:read_exactly(5)
    assert.is_nil(got)
    assert.equal("", partial)
    close_all(c, l)
  end, REAL))

  it("raises IOError ELIMIT when no delimiter comes within max bytes", T.async(function()
    local l, c, s = pair()
    s:write(string.rep("x", 100))
    local err = expect_error(errors.IOError, c.read_until, c, "\n", 10)
    assert.equal("ELIMIT", err.code)
    close_all(c, s, l)
  end, REAL))

  it("makes a writer wait while the peer does not read (backpressure)", T.async(function()
    local l, c, s = pair()
    c:set_limits(nil, 64 * 1024)
    local chunk = string.rep("z", 1024 * 1024)
    local writer = fdn.spawn(function()
      for _ = 1, 48 do
        c:write(chunk)
      end
      c:drain()
      c:shutdown()
    end)
    local saw_waiting = false
    for _ = 1, 200 do
      fdn.sleep(0.01)
      local _, queued = c:buffered()
      if writer:status() == "waiting" and queued > 0 then
        saw_waiting = true
        break
      end
    end
    assert.is_true(saw_waiting, "the writer never waited for the peer")
    local total = 0
    while true do
      local data = s:read()
      if data == nil then
        break
      end
      total = total + #data
    end
    writer:join()
    assert.equal(48 * 1024 * 1024, total)
    close_all(c, s, l)
  end, REAL))

  it("times out, cancels and closes a writer held back by the peer", T.async(function()
    local l, c, s = pair()
    c:set_limits(nil, 1024)
    local chunk = string.rep("w", 256 * 1024)
    local function flood()
      while true do
        c:write(chunk)
      end
    end
    expect_error(errors.Timeout, fdn.timeout, 0.05, flood)
    local writer = fdn.spawn(flood)
    fdn.sleep(0.02)
    assert.equal("waiting", writer:status())
    writer:cancel()
    local ok, err = writer:wait()
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Cancelled), tostring(err))
    writer = fdn.spawn(flood)
    fdn.sleep(0.02)
    assert.equal("waiting", writer:status())
    c:close()
    ok, err = writer:wait()
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Closed), tostring(err))
    close_all(s, l)
  end, REAL))

  it("raises Cancelled in a cancelled reader and keeps the stream usable", T.async(function()
    local l, c, s = pair()
    local reader = fdn.spawn(function()
      return c:read()
    end)
    fdn.sleep(0.01)
    assert.equal("waiting", reader:status())
    reader:cancel("enough")
    local ok, err = reader:wait()
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Cancelled))
    s:write("later")
    assert.equal("later", c:read())
    close_all(c, s, l)
  end, REAL))

  it("times out reads, by their own timeout and by fdn.timeout", T.async(function()
    local l, c, s = pair()
    expect_error(errors.Timeout, c.read, c, nil, 0.02)
    expect_error(errors.Timeout, fdn.timeout, 0.02, function()
      return c:read()
    end)
    expect_error(errors.Timeout, l.accept, l, 0.02)
    s:write("x")
    assert.equal("x", c:read(nil, 1))
    close_all(c, s, l)
  end, REAL))

  it("wakes a task reading a connection that is closed under it with Closed", T.async(function()
    local l, c, s = pair()
    local reader = fdn.spawn(function()
      return c:read()
    end)
    local accepter = fdn.spawn(function()
      return l:accept()
    end)
    fdn.sleep(0.01)
    c:close()
    l:close()
    local ok, err = reader:wait()
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Closed), tostring(err))
    ok, err = accepter:wait()
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Closed), tostring(err))
    expect_error(errors.Closed, c.read, c)
    expect_error(errors.Closed, c.write, c, "x")
    c:close() -- idempotent
    assert.is_nil(s:read())
    s:close()
  end, REAL))

  it("raises IOError for a refused connection and for a port in use", T.async(function()
    local l = tcp.listen { port = 0 }
    local port = l:port()
    local err = expect_error(errors.IOError, tcp.listen, { port = port })
    assert.equal("EADDRINUSE", err.code)
    l:close()
    err = expect_error(errors.IOError, tcp.connect, { host = "127.0.0.1", port = port })
    assert.equal("ECONNREFUSED", err.code)
  end, REAL))

  it("reports a peer that went away as IOError on write, never a crash", T.async(function()
    local l, c, s = pair()
    s:close()
    assert.is_nil(c:read())
    local err = expect_error(errors.IOError, function()
      for _ = 1, 100 do
        c:write(string.rep("y", 65536))
        c:drain()
      end
    end)
    assert.is_true(err.code == "EPIPE" or err.code == "ECONNRESET", err.code)
    close_all(c, l)
  end, REAL))

  it("closes a stream whose object is collected while open", T.async(function()
    local engine = core.engine_running()
    local before = #core.engine_handles(engine)
    do
      local _ = tcp.listen { port = 0 }
    end
    assert.equal(before + 1, #core.engine_handles(engine))
    collectgarbage()
    collectgarbage()
    assert.equal(before, #core.engine_handles(engine))
  end, REAL))

  it("is closed by its engine when the run ends, and unusable after", function()
    local l
    fdn.run(function()
      l = tcp.listen { port = 0 }
    end)
    assert.is_true(l:is_closed())
    fdn.run(function()
      expect_error(errors.Closed, l.accept, l)
    end)
  end)

  it("closes an engine whose task is still connecting by name", function()
    -- The lookup may still be in libuv's thread pool when the engine
    -- closes: the engine must not free its loop under it.
    for _ = 1, 20 do
      local engine = core.engine_new()
      local t = core.spawn(function()
        pcall(tcp.connect, { host = "localhost", port = 9 })
      end)
      engine:run(t, { detach = true, timeout = 0.0002 })
      engine:close()
      assert.is_true(t:status() ~= "running")
    end
  end)

  it("makes T.run fail on a stream left open", function()
    local err = expect_error(T.Leak, T.run, function()
      tcp.listen { port = 0 }
    end, REAL)
    assert.matches("tcp", err.message)
  end)

  it("emits tcp.listening, tcp.connected and tcp.closed", T.async(function()
    local seen = {}
    events.subscribe("tcp.*", function(name, data)
      seen[#seen + 1] = { name, data }
    end)
    local l, c, s = pair()
    close_all(c, s, l)
    assert.equal("tcp.listening", seen[1][1])
    assert.is_true(seen[1][2].port > 0)
    assert.equal("tcp.connected", seen[2][1])
    assert.equal("tcp.closed", seen[#seen][1])
  end, REAL))

  it("refuses bad arguments, naming the parameter", T.async(function()
    expect_arg("opts", tcp.listen, "x")
    expect_arg("port", tcp.listen, { port = -1 })
    expect_arg("port", tcp.listen, { port = 1.5 })
    expect_arg("host", tcp.listen, { host = 1, port = 0 })
    expect_arg("host", tcp.listen, { host = "not an ip", port = 0 })
    expect_arg("backlog", tcp.listen, { port = 0, backlog = 0 })
    expect_arg("bogus", tcp.listen, { port = 0, bogus = 1 })
    expect_arg("host", tcp.connect, { host = "", port = 80 })
    expect_arg("port", tcp.connect, { host = "127.0.0.1", port = 0 })
    expect_arg("timeout", tcp.connect, { host = "127.0.0.1", port = 80, timeout = -1 })
    local l, c, s = pair()
    expect_arg("max", c.read, c, 0)
    expect_arg("max", c.read, c, "x")
    expect_arg("timeout", c.read, c, 10, -1)
    expect_arg("delimiter", c.read_until, c, "")
    expect_arg("n", c.read_exactly, c, -1)
    expect_arg("data", c.write, c, 42)
    expect_arg("on", c.nodelay, c, "yes")
    expect_arg("read_limit", c.set_limits, c, 0)
    expect_arg("self", c.read, l)
    expect_arg("self", l.accept, c)
    expect_arg("self", c.read, {})
    close_all(c, s, l)
  end, REAL))
end)
