local fdn = require "fdn"
local T = require "fdn.testing"
local events = require "fdn.events"
local log = require "fdn.log"
local cjson = require "cjson"
local errors = fdn.errors
local http = fdn.http
local tcp = fdn.tcp

local REAL = { clock = "real", timeout = 30 }

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

--- Serves an app made by `setup(app)` while body(base_url, server) runs.
local function serving(opts, setup, body)
  local app = http.app(opts)
  setup(app)
  local server = app:listen { host = "127.0.0.1", port = 0 }
  local ok, err = pcall(body, "http://127.0.0.1:" .. server.port, server, app)
  server:close { timeout = 1 }
  if not ok then
    error(err, 0)
  end
end

--- Sends raw bytes on a new connection and returns everything the server
-- sends back until it closes (or `timeout` passes).
local function raw(port, data, timeout)
  local c = tcp.connect { host = "127.0.0.1", port = port }
  if data ~= "" then
    c:write(data)
  end
  local parts = {}
  local ok = pcall(function()
    while true do
      local d = c:read(nil, timeout or 5)
      if d == nil then
        break
      end
      parts[#parts + 1] = d
    end
  end)
  c:close()
  assert(ok, "the server did not close the connection in time")
  return table.concat(parts)
end

--- Reads one response with a Content-Length from a raw connection.
local function read_response(c)
  local head = c:read_until("\r\n\r\n", 65536, 5)
  local status = tonumber(head:match("^HTTP/1%.1 (%d+)"))
  local len = tonumber(head:lower():match("content%-length: (%d+)")) or 0
  local body = len > 0 and c:read_exactly(len, 5) or ""
  return status, head, body
end

local function port_of(base)
  return tonumber(base:match(":(%d+)$"))
end

describe("fdn.http", function()
  local records
  before_each(function()
    records = {}
    log.configure { level = "debug", sink = function(r) records[#records + 1] = r end }
  end)
  after_each(function()
    events.reset()
    log.configure { level = "info", sink = "stderr" }
  end)

  local function find_record(event)
    for _, r in ipairs(records) do
      if r.event == event then
        return r
      end
    end
  end

  describe("routing", function()
    it("routes by method and path, with params, query and 404/405", T.async(function()
      serving(nil, function(app)
        app:get("/hello", function() return "hello" end)
        app:get("/users/:id", function(req)
          return http.json { id = req.params.id, q = req.query }
        end)
        app:get("/files/*rest", function(req) return req.params.rest end)
        app:post("/users", function() return { status = 201, body = "made" } end)
        app:route("PATCH", "/users/:id", function(req) return "patched " .. req.params.id end)
        app:delete("/users/:id", function() return { status = 204 } end)
      end, function(base)
        local r = http.request { url = base .. "/hello" }
        assert.equal(200, r.status)
        assert.equal("hello", r.body)
        assert.equal("text/plain; charset=utf-8", r.headers["content-type"])
        r = http.request { url = base .. "/users/a%20b?x=1&y=two+words&x=3&flag" }
        local v = cjson.decode(r.body)
        assert.equal("a b", v.id)
        assert.same({ "1", "3" }, v.q.x)
        assert.equal("two words", v.q.y)
        assert.equal("", v.q.flag)
        assert.equal("a/b/c.txt", http.request { url = base .. "/files/a/b/c.txt" }.body)
        assert.equal(201, http.request { url = base .. "/users", method = "POST", body = "{}" }.status)
        assert.equal("patched 7", http.request { url = base .. "/users/7", method = "PATCH", body = "" }.body)
        r = http.request { url = base .. "/users/7", method = "DELETE" }
        assert.equal(204, r.status)
        assert.equal("", r.body)
        r = http.request { url = base .. "/nowhere" }
        assert.equal(404, r.status)
        assert.equal("not found", cjson.decode(r.body).error)
        r = http.request { url = base .. "/hello", method = "PUT", body = "x" }
        assert.equal(405, r.status)
        assert.equal("GET, HEAD", r.headers.allow)
        r = http.request { url = base .. "/users/9", method = "PUT", body = "x" }
        assert.equal(405, r.status)
        assert.equal("DELETE, GET, HEAD, PATCH", r.headers.allow)
      end)
    end, REAL))

    it("answers HEAD with the GET route's headers and no body", T.async(function()
      serving(nil, function(app)
        app:get("/doc", function() return string.rep("d", 1234) end)
        app:get("/stream", function()
          return { body = function(write) write("never sent") end }
        end)
      end, function(base)
        local r = http.request { url = base .. "/doc", method = "HEAD" }
        assert.equal(200, r.status)
        assert.equal("1234", r.headers["content-length"])
        assert.equal("", r.body)
        local text = raw(port_of(base), "HEAD /doc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert.matches("^HTTP/1.1 200 OK\r\n", text)
        assert.matches("\r\n\r\n$", text)
        r = http.request { url = base .. "/stream", method = "HEAD" }
        assert.equal(200, r.status)
        assert.equal("", r.body)
      end)
    end, REAL))
  end)

  describe("middleware", function()
    it("runs in order, wraps the response and may short-circuit", T.async(function()
      local order = {}
      serving(nil, function(app)
        app:use(function(req, next)
          order[#order + 1] = "outer in " .. req.path
          local res = next()
          order[#order + 1] = "outer out " .. res.status
          res.headers["x-outer"] = "yes"
          return res
        end)
        app:use(function(req, next)
          order[#order + 1] = "auth"
          if req.headers.authorization ~= "Bearer ok" then
            return http.json({ error = "unauthorized" }, 401)
          end
          local res = next()
          res.status = res.status == 200 and 299 or res.status
          return res
        end)
        app:get("/secret", function()
          order[#order + 1] = "handler"
          return "s3cret"
        end)
      end, function(base)
        local r = http.request { url = base .. "/secret" }
        assert.equal(401, r.status)
        assert.equal("yes", r.headers["x-outer"])
        assert.same({ "outer in /secret", "auth", "outer out 401" }, order)
        order = {}
        r = http.request { url = base .. "/secret", headers = { Authorization = "Bearer ok" } }
        assert.equal(299, r.status)
        assert.equal("s3cret", r.body)
        assert.same({ "outer in /secret", "auth", "handler", "outer out 299" }, order)
        -- 404s go through middleware too.
        r = http.request { url = base .. "/none", headers = { Authorization = "Bearer ok" } }
        assert.equal(404, r.status)
        assert.equal("yes", r.headers["x-outer"])
      end)
    end, REAL))

    it("lets middleware catch a handler's error, and turns the rest into 500", T.async(function()
      serving(nil, function(app)
        app:use(function(req, next)
          if req.path ~= "/caught" then
            return next()
          end
          local ok, res = pcall(next)
          if ok then
            return res
          end
          return { status = 503, body = "caught: " .. tostring(res):match("boom") }
        end)
        app:get("/caught", function() error("boom") end)
        app:get("/twice", function() return "x" end)
        app:use(function(req, next)
          if req.path == "/twice" then
            next()
            return next()
          end
          if req.path == "/nothing" then
            return nil
          end
          return next()
        end)
      end, function(base)
        local r = http.request { url = base .. "/caught" }
        assert.equal(503, r.status)
        assert.equal("caught: boom", r.body)
        assert.equal(500, http.request { url = base .. "/twice" }.status)
        assert.equal(500, http.request { url = base .. "/nothing" }.status)
      end)
    end, REAL))
  end)

  describe("errors", function()
    it("answers 500 for a failing handler, logs it with the request id, and keeps serving", T.async(function()
      local failed = {}
      events.subscribe("http.handler_failed", function(_, data) failed[#failed + 1] = data end)
      serving({ name = "api" }, function(app)
        app:get("/boom", function() error({ odd = "value" }) end)
        app:get("/fdn", function() error(errors.InvalidState.new("bad state")) end)
        app:get("/ok", function() return "fine" end)
        app:get("/split", function() return { headers = { ["x-evil"] = "a\r\nSet-Cookie: x=1" }, body = "" } end)
        app:get("/teapot", function() error(http.error(418, "short and stout")) end)
        app:get("/type", function() return 42 end)
      end, function(base)
        local r = http.request { url = base .. "/boom" }
        assert.equal(500, r.status)
        local body = cjson.decode(r.body)
        assert.equal("internal server error", body.error)
        assert.equal(r.headers["x-request-id"], body.request_id)
        local rec = find_record("http.handler_failed")
        assert.is_not_nil(rec)
        assert.equal("error", rec.level)
        assert.equal(body.request_id, rec.request_id)
        assert.equal("/boom", rec.path)
        assert.equal("api", rec.server)
        assert.equal(1, #failed)
        assert.equal(body.request_id, failed[1].request_id)
        assert.equal(500, http.request { url = base .. "/fdn" }.status)
        assert.equal("fine", http.request { url = base .. "/ok" }.body)
        r = http.request { url = base .. "/split" }
        assert.equal(500, r.status)
        assert.is_nil(r.headers["set-cookie"])
        r = http.request { url = base .. "/teapot" }
        assert.equal(418, r.status)
        assert.equal("short and stout", cjson.decode(r.body).error)
        assert.equal(500, http.request { url = base .. "/type" }.status)
        assert.equal("fine", http.request { url = base .. "/ok" }.body)
      end)
    end, REAL))

    it("uses on_error for 500s and falls back when it fails", T.async(function()
      local calls = 0
      serving({ on_error = function(err, req)
        calls = calls + 1
        if req.path == "/double" then
          error("on_error broke too")
        end
        return http.json({ oops = tostring(err):match("bang") }, 500)
      end }, function(app)
        app:get("/bang", function() error("bang") end)
        app:get("/double", function() error("bang") end)
      end, function(base)
        local r = http.request { url = base .. "/bang" }
        assert.equal(500, r.status)
        assert.equal("bang", cjson.decode(r.body).oops)
        r = http.request { url = base .. "/double" }
        assert.equal(500, r.status)
        assert.equal("internal server error", cjson.decode(r.body).error)
        assert.equal(2, calls)
      end)
    end, REAL))

    it("answers 503 when a handler exceeds handler_timeout", T.async(function()
      serving({ handler_timeout = 0.05 }, function(app)
        app:get("/slow", function() fdn.sleep(10) return "late" end)
      end, function(base)
        assert.equal(503, http.request { url = base .. "/slow" }.status)
      end)
    end, REAL))
  end)

  describe("limits", function()
    it("answers 413 for a body over max_body, by length or by chunks", T.async(function()
      serving({ max_body = 100 }, function(app)
        app:post("/echo", function(req) return req:body() end)
      end, function(base)
        local r = http.request { url = base .. "/echo", method = "POST", body = string.rep("a", 100) }
        assert.equal(200, r.status)
        assert.equal(100, #r.body)
        r = http.request { url = base .. "/echo", method = "POST", body = string.rep("a", 101) }
        assert.equal(413, r.status)
        local chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          .. "40\r\n" .. string.rep("b", 64) .. "\r\n40\r\n" .. string.rep("b", 64) .. "\r\n0\r\n\r\n"
        local text = raw(port_of(base), chunked)
        assert.matches("^HTTP/1.1 413 ", text)
        assert.matches("Connection: close\r\n", text)
      end)
    end, REAL))

    it("answers 431 for too large or too many headers, and 414 for a long target", T.async(function()
      serving({ max_header_size = 2048, max_headers = 10 }, function(app)
        app:get("/", function() return "ok" end)
      end, function(base)
        local port = port_of(base)
        local big = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " .. string.rep("h", 4096) .. "\r\n\r\n"
        assert.matches("^HTTP/1.1 431 ", raw(port, big))
        local many = { "GET / HTTP/1.1\r\nHost: x\r\n" }
        for i = 1, 11 do
          many[#many + 1] = "X-H" .. i .. ": v\r\n"
        end
        many[#many + 1] = "\r\n"
        assert.matches("^HTTP/1.1 431 ", raw(port, table.concat(many)))
        assert.matches("^HTTP/1.1 414 ", raw(port, "GET /" .. string.rep("u", 3000)))
        assert.equal("ok", http.request { url = base .. "/" }.body)
      end)
    end, REAL))

    it("answers 400 to malformed and ambiguous requests", T.async(function()
      serving(nil, function(app)
        app:post("/", function(req) return req:body() end)
      end, function(base)
        local port = port_of(base)
        assert.matches("^HTTP/1.1 400 ", raw(port, "NOT HTTP AT ALL\r\n\r\n"))
        assert.matches("^HTTP/1.1 400 ", raw(port, "GET / HTTP/1.1\r\n\r\n")) -- no Host
        local smuggle = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
          .. "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        assert.matches("^HTTP/1.1 400 ", raw(port, smuggle))
        local bad_chunk = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        assert.matches("^HTTP/1.1 400 ", raw(port, bad_chunk))
      end)
    end, REAL))

    it("answers 408 to a client too slow to send its request", T.async(function()
      local rejected = {}
      events.subscribe("http.request_rejected", function(_, d) rejected[#rejected + 1] = d end)
      serving({ request_timeout = 0.1 }, function(app)
        app:get("/", function() return "ok" end)
      end, function(base)
        local text = raw(port_of(base), "GET / HTTP/1.1\r\nHost: x\r\n")
        assert.matches("^HTTP/1.1 408 ", text)
        assert.equal(408, rejected[1].status)
        -- A connection that never sends a byte is closed without a word.
        assert.equal("", (raw(port_of(base), "")))
      end)
    end, REAL))

    it("limits concurrent connections; the others wait their turn", T.async(function()
      local active, peak = 0, 0
      serving({ max_connections = 4 }, function(app)
        app:get("/", function()
          active = active + 1
          peak = math.max(peak, active)
          fdn.sleep(0.01)
          active = active - 1
          return "ok"
        end)
      end, function(base)
        local tasks = {}
        for i = 1, 40 do
          tasks[i] = fdn.spawn(http.request, { url = base .. "/" })
        end
        for _, r in ipairs(fdn.gather(tasks)) do
          assert.equal(200, r.status)
        end
        assert.is_true(peak <= 4, "peak " .. peak)
        assert.is_true(peak >= 2, "peak " .. peak)
      end)
    end, REAL))
  end)

  describe("connections", function()
    it("keeps a connection alive across requests, pipelined or not", T.async(function()
      local opened = 0
      events.subscribe("http.connection_opened", function() opened = opened + 1 end)
      serving(nil, function(app)
        app:get("/n/:n", function(req) return "n=" .. req.params.n end)
      end, function(base)
        local c = tcp.connect { host = "127.0.0.1", port = port_of(base) }
        for i = 1, 3 do
          c:write("GET /n/" .. i .. " HTTP/1.1\r\nHost: x\r\n\r\n")
          local status, _, body = read_response(c)
          assert.equal(200, status)
          assert.equal("n=" .. i, body)
        end
        c:write("GET /n/4 HTTP/1.1\r\nHost: x\r\n\r\nGET /n/5 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert.equal("n=4", select(3, read_response(c)))
        assert.equal("n=5", select(3, read_response(c)))
        c:close()
        assert.equal(1, opened)
        local client = http.Client.new()
        for _ = 1, 5 do
          assert.equal(200, client:request { url = base .. "/n/1" }.status)
        end
        client:close()
        assert.equal(2, opened)
      end)
    end, REAL))

    it("closes after max_requests and after the keep-alive timeout", T.async(function()
      serving({ max_requests = 2, keepalive_timeout = 0.05 }, function(app)
        app:get("/", function() return "ok" end)
      end, function(base)
        local c = tcp.connect { host = "127.0.0.1", port = port_of(base) }
        c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        local _, head = read_response(c)
        assert.is_nil(head:match("Connection: close"))
        c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _, head = read_response(c)
        assert.matches("Connection: close", head)
        assert.is_nil(c:read(nil, 5))
        c:close()
        c = tcp.connect { host = "127.0.0.1", port = port_of(base) }
        c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(c)
        assert.is_nil(c:read(nil, 5)) -- idle: the server closed it
        c:close()
      end)
    end, REAL))

    it("speaks HTTP/1.0: closes unless asked to keep alive", T.async(function()
      serving(nil, function(app)
        app:get("/", function() return "ok" end)
      end, function(base)
        local text = raw(port_of(base), "GET / HTTP/1.0\r\n\r\n")
        assert.matches("^HTTP/1.1 200 OK", text)
        assert.matches("Connection: close", text)
        local c = tcp.connect { host = "127.0.0.1", port = port_of(base) }
        c:write("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        local _, head = read_response(c)
        assert.matches("Connection: keep%-alive", head)
        c:close()
      end)
    end, REAL))

    it("reads chunked request bodies and streams chunked responses", T.async(function()
      serving(nil, function(app)
        app:post("/len", function(req) return tostring(#req:body()) .. ":" .. req:body():sub(1, 5) end)
        app:get("/stream", function()
          return { headers = { ["content-type"] = "text/plain" }, body = function(write)
            for i = 1, 5 do
              write("line " .. i .. "\n")
              fdn.sleep(0)
            end
          end }
        end)
        app:get("/sized", function()
          return { headers = { ["Content-Length"] = 6 }, body = function(write)
            write("abc")
            write("def")
          end }
        end)
        app:get("/short", function()
          return { headers = { ["Content-Length"] = 10 }, body = function(write) write("abc") end }
        end)
        app:get("/broken", function()
          return { body = function(write)
            write("start")
            error("mid-stream")
          end }
        end)
      end, function(base)
        local chunked = "POST /len HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          .. "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        local c = tcp.connect { host = "127.0.0.1", port = port_of(base) }
        c:write(chunked)
        local status, _, body = read_response(c)
        assert.equal(200, status)
        assert.equal("11:hello", body)
        c:close()
        local r = http.request { url = base .. "/stream" }
        assert.equal("chunked", r.headers["transfer-encoding"])
        assert.equal("line 1\nline 2\nline 3\nline 4\nline 5\n", r.body)
        r = http.request { url = base .. "/sized" }
        assert.equal("abcdef", r.body)
        assert.is_nil(r.headers["transfer-encoding"])
        expect_error(errors.Closed, http.request, { url = base .. "/short" })
        expect_error(errors.Closed, http.request, { url = base .. "/broken" })
        assert.is_not_nil(find_record("http.handler_failed"))
      end)
    end, REAL))

    it("honours Expect: 100-continue", T.async(function()
      serving(nil, function(app)
        app:post("/read", function(req) return "got " .. req:body() end)
        app:post("/ignore", function() return "no thanks" end)
      end, function(base)
        local c = tcp.connect { host = "127.0.0.1", port = port_of(base) }
        c:write("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert.equal("HTTP/1.1 100 Continue", c:read_until("\r\n\r\n", 1000, 5))
        c:write("body")
        local status, _, body = read_response(c)
        assert.equal(200, status)
        assert.equal("got body", body)
        c:close()
        local text = raw(port_of(base),
          "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert.matches("^HTTP/1.1 200 OK", text)
        assert.matches("Connection: close", text)
        assert.matches("^HTTP/1.1 417", raw(port_of(base),
          "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: magic\r\n\r\nbody"))
      end)
    end, REAL))

    it("serves hundreds of concurrent clients", T.async(function()
      serving(nil, function(app)
        app:get("/echo/:i", function(req) fdn.sleep(0.001) return req.params.i end)
      end, function(base)
        local tasks = {}
        local client = http.Client.new()
        for i = 1, 300 do
          local one_shot = i % 2 == 0
          tasks[i] = fdn.spawn(function()
            local r = one_shot and http.request { url = base .. "/echo/" .. i }
              or client:request { url = base .. "/echo/" .. i }
            return r.body
          end)
        end
        local got = fdn.gather(tasks)
        for i = 1, 300 do
          assert.equal(tostring(i), got[i])
        end
        client:close()
      end)
    end, REAL))
  end)

  describe("closing", function()
    it("finishes requests in flight, closes idle connections, then refuses new ones", T.async(function()
      local app = http.app()
      local started = 0
      app:get("/slow", function()
        started = started + 1
        fdn.sleep(0.1)
        return "done"
      end)
      app:get("/fast", function() return "fast" end)
      local server = app:listen { port = 0 }
      local base = "http://127.0.0.1:" .. server.port
      local idle = tcp.connect { host = "127.0.0.1", port = server.port }
      idle:write("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
      read_response(idle)
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = fdn.spawn(http.request, { url = base .. "/slow" })
      end
      while started < 5 do
        fdn.sleep(0.005)
      end
      local closed_event
      events.subscribe("http.server_closed", function(_, d) closed_event = d end)
      server:close()
      for _, r in ipairs(fdn.gather(tasks)) do
        assert.equal(200, r.status)
        assert.equal("done", r.body)
        assert.equal("close", r.headers.connection)
      end
      assert.is_nil(idle:read(nil, 1))
      idle:close()
      assert.equal(0, closed_event.cancelled)
      expect_error(errors.IOError, http.request, { url = base .. "/fast" })
      server:close() -- again: nothing left to do
    end, REAL))

    it("cancels what is still running once the shutdown timeout passes", T.async(function()
      local app = http.app()
      local entered = fdn.Event.new()
      local cleaned = false
      app:get("/forever", function()
        entered:set()
        local ok, err = pcall(fdn.sleep, 60)
        cleaned = not ok and errors.is(err, errors.Cancelled)
        error(err, 0)
      end)
      local server = app:listen { port = 0 }
      local req = fdn.spawn(http.request, { url = "http://127.0.0.1:" .. server.port .. "/forever" })
      entered:wait()
      local closed_event
      events.subscribe("http.server_closed", function(_, d) closed_event = d end)
      server:close { timeout = 0.05 }
      assert.is_true(cleaned)
      assert.equal(1, closed_event.cancelled)
      local ok, err = req:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Closed), tostring(err))
    end, REAL))

    it("survives a handler cancelled mid-request and serves the next one", T.async(function()
      local finished = {}
      events.subscribe("http.request_finished", function(_, d) finished[#finished + 1] = d end)
      local handler_task
      serving(nil, function(app)
        app:get("/wait", function()
          handler_task = fdn.current()
          fdn.sleep(60)
          return "never"
        end)
        app:get("/ok", function() return "ok" end)
      end, function(base)
        local req = fdn.spawn(http.request, { url = base .. "/wait" })
        while handler_task == nil do
          fdn.sleep(0.005)
        end
        handler_task:cancel("test")
        local ok, err = req:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Closed), tostring(err))
        assert.is_true(finished[1].cancelled)
        assert.equal("ok", http.request { url = base .. "/ok" }.body)
      end)
    end, REAL))

    it("closes on the way out of fdn.with", T.async(function()
      local app = http.app()
      app:get("/", function() return "ok" end)
      local port
      fdn.with(app:listen { port = 0 }, function(server)
        port = server.port
        assert.equal("ok", http.request { url = "http://127.0.0.1:" .. port .. "/" }.body)
      end)
      expect_error(errors.IOError, http.request, { url = "http://127.0.0.1:" .. port .. "/" })
    end, REAL))

    it("can be closed from one of its own handlers", T.async(function()
      local app = http.app()
      local server
      app:get("/quit", function()
        server:close()
        return "bye"
      end)
      server = app:listen { port = 0 }
      local r = http.request { url = "http://127.0.0.1:" .. server.port .. "/quit" }
      assert.equal("bye", r.body)
      server:wait()
    end, REAL))
  end)

  describe("observability", function()
    it("puts the request id in the context, the logs and the response", T.async(function()
      local seen = {}
      events.subscribe("http.*", function(name, d) seen[#seen + 1] = { name = name, data = d } end)
      serving({ access_log = true, name = "obs" }, function(app)
        app:get("/log", function(req)
          log.info("inside", { n = 1 })
          local child = fdn.spawn(function() return fdn.context.get("request_id") end)
          return child:join() .. "|" .. req.id
        end)
      end, function(base)
        local r = http.request { url = base .. "/log" }
        local child_id, req_id = r.body:match("^(.*)|(.*)$")
        assert.equal(req_id, child_id)
        assert.equal(req_id, r.headers["x-request-id"])
        local inside = find_record("inside")
        assert.equal(req_id, inside.request_id)
        local access = find_record("http.access")
        assert.equal("GET", access.method)
        assert.equal("/log", access.path)
        assert.equal(200, access.status)
        assert.equal(#r.body, access.bytes)
        assert.equal("number", type(access.duration_ms))
        assert.equal(req_id, access.request_id)
        assert.equal("obs", access.server)
        r = http.request { url = base .. "/log", headers = { ["X-Request-Id"] = "abc-123" } }
        assert.equal("abc-123", r.headers["x-request-id"])
      end)
      local names = {}
      for _, e in ipairs(seen) do
        names[e.name] = (names[e.name] or 0) + 1
      end
      assert.equal(1, names["http.listening"])
      assert.equal(2, names["http.request_started"])
      assert.equal(2, names["http.request_finished"])
      assert.equal(2, names["http.connection_opened"])
      assert.equal(2, names["http.connection_closed"])
      assert.equal(1, names["http.server_closed"])
      for _, e in ipairs(seen) do
        if e.name == "http.request_finished" then
          assert.equal(200, e.data.status)
          assert.equal("/log", e.data.path)
        end
      end
    end, REAL))
  end)

  describe("client", function()
    it("raises Timeout, IOError, Closed and HttpError", T.async(function()
      local l = tcp.listen { port = 0 }
      local port = l:port()
      local server = fdn.spawn(function()
        while true do
          local c = l:accept()
          pcall(function()
            local line = c:read_until("\r\n\r\n")
            if line:match("^GET /garbage") then
              c:write("HTTP/1.1 2OO OK\r\n\r\n")
            elseif line:match("^GET /cut") then
              c:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            elseif line:match("^GET /silent") then
              fdn.sleep(5)
            end
          end)
          c:close()
        end
      end)
      local base = "http://127.0.0.1:" .. port
      expect_error(errors.HttpError, http.request, { url = base .. "/garbage" })
      expect_error(errors.Closed, http.request, { url = base .. "/cut" })
      expect_error(errors.Closed, http.request, { url = base .. "/nothing" })
      expect_error(errors.Timeout, http.request, { url = base .. "/silent", timeout = 0.05 })
      server:cancel()
      pcall(server.join, server)
      l:close()
      local err = expect_error(errors.IOError, http.request, { url = base .. "/" })
      assert.equal("ECONNREFUSED", err.code)
    end, REAL))

    it("refuses a response body over max_body", T.async(function()
      serving(nil, function(app)
        app:get("/big", function() return string.rep("b", 5000) end)
      end, function(base)
        local err = expect_error(errors.HttpError, http.request, { url = base .. "/big", max_body = 100 })
        assert.matches("exceeds 100 bytes", err.message)
        local client = http.Client.new { max_body = 100 }
        expect_error(errors.HttpError, client.request, client, { url = base .. "/big" })
        client:close()
        expect_error(errors.Closed, client.request, client, { url = base .. "/big" })
        assert.equal(5000, #http.request { url = base .. "/big" }.body)
      end)
    end, REAL))

    it("sends headers, query and body, and reads headers back", T.async(function()
      serving(nil, function(app)
        app:put("/echo", function(req)
          return http.json({ body = req:body(), q = req.query, h = req.headers["x-thing"],
            host = req.headers.host }, 200, { ["X-Answer"] = "42" })
        end)
      end, function(base)
        local r = http.request { method = "PUT", url = base .. "/echo?a=1", query = { b = "x y" },
          headers = { ["X-Thing"] = "t" }, body = "payload" }
        local v = cjson.decode(r.body)
        assert.equal("payload", v.body)
        assert.same({ a = "1", b = "x y" }, v.q)
        assert.equal("t", v.h)
        assert.equal("127.0.0.1:" .. port_of(base), v.host)
        assert.equal("42", r.headers["x-answer"])
        assert.equal("application/json", r.headers["content-type"])
        assert.equal("1.1", r.version)
      end)
    end, REAL))
  end)

  describe("bad arguments", function()
    it("are refused with InvalidArgument naming the parameter", T.async(function()
      expect_arg("opts", http.app, "x")
      expect_arg("bogus", http.app, { bogus = 1 })
      expect_arg("opts.max_body", http.app, { max_body = -1 })
      expect_arg("opts.request_timeout", http.app, { request_timeout = 0 })
      expect_arg("opts.max_header_size", http.app, { max_header_size = 1e9 })
      expect_arg("opts.on_error", http.app, { on_error = 1 })
      local app = http.app()
      expect_arg("path", app.get, app, 1, function() end)
      expect_arg("path", app.get, app, "no-slash", function() end)
      expect_arg("path", app.get, app, "/a/:", function() end)
      expect_arg("path", app.get, app, "/a/*rest/b", function() end)
      expect_arg("handler", app.get, app, "/x", nil)
      expect_arg("method", app.route, app, "get", "/x", function() end)
      expect_arg("fn", app.use, app, "not a function")
      expect_arg("self", app.get, nil, "/x", function() end)
      expect_arg("port", app.listen, app, { port = "x" })
      expect_arg("bogus", app.listen, app, { bogus = true })
      expect_arg("value", http.json, function() end)
      expect_arg("status", http.json, {}, 99)
      expect_arg("status", http.error, 200)
      expect_arg("opts.url", http.request, { url = "https://example.org/" })
      expect_arg("opts.url", http.request, { url = "ftp://x/" })
      expect_arg("opts.url", http.request, {})
      expect_arg("opts.method", http.request, { url = "http://x/", method = "get" })
      expect_arg("opts.headers.X", http.request, { url = "http://x/", headers = { X = "a\r\nb" } })
      expect_arg("opts.body", http.request, { url = "http://x/", body = 5 })
      expect_arg("opts.timeout", http.request, { url = "http://x/", timeout = -1 })
      expect_arg("bogus", http.request, { url = "http://x/", bogus = 1 })
      expect_arg("opts.max_idle", http.Client.new, { max_idle = -1 })
      expect_arg("self", http.Client.new().request, nil, { url = "http://x/" })
      expect_arg("body", http.response, 42)
      expect_arg("status", http.response, "x", 1000)
      expect_arg("headers", http.response, "x", 200, "h")
      local server = app:listen { port = 0 }
      expect_arg("opts.timeout", server.close, server, { timeout = -1 })
      expect_arg("opts", server.close, server, "soon")
      expect_arg("self", server.close, {})
      server:close()
    end, REAL))
  end)
end)
