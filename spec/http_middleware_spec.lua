-- fdn.http's middleware contract: the error-class to status mapping, the
-- request-scoped context, handlers cancelled when their client leaves,
-- next() misuse, and the checked helpers. Real sockets, real clock.
local fdn = require "fdn"
local T = require "fdn.testing"
local events = require "fdn.events"
local log = require "fdn.log"
local cjson = require "cjson"
local errors = fdn.errors
local http = fdn.http
local tcp = fdn.tcp

local REAL = { clock = "real", timeout = 30 }

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

local function expect_arg(fname, param, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
  assert.equal(param, err.context.parameter)
  assert.truthy(tostring(err.message):find(fname, 1, true), tostring(err.message))
end

describe("fdn.http middleware", function()
  local records
  before_each(function()
    records = {}
    log.configure { level = "debug", sink = function(r) records[#records + 1] = r end }
  end)
  after_each(function()
    events.reset()
    log.configure { level = "info", sink = "stderr" }
  end)

  local function records_of(event)
    local out = {}
    for _, r in ipairs(records) do
      if r.event == event then
        out[#out + 1] = r
      end
    end
    return out
  end

  it("maps fdn.errors classes to statuses and logs each 5xx once", T.async(function()
    local statuses = {}
    serving({ on_error = function(_, req, status)
      statuses[req.path] = status
      if req.path == "/custom" then
        return http.json({ custom = true }, 502)
      end
      return nil -- not a response: the plain answer is sent, on_error's failure logged
    end }, function(app)
      app:get("/timeout", function() fdn.timeout(0.01, fdn.sleep, 5) end)
      app:get("/open", function()
        error(errors.CircuitOpen.new("breaker open", { retry_after = 2.2 }))
      end)
      app:get("/full", function() error(errors.QueueFull.new("bulkhead full")) end)
      app:get("/exhausted-timeout", function()
        error(errors.RetryExhausted.new("gave up", { cause = errors.Timeout.new("slow") }))
      end)
      app:get("/exhausted", function()
        error(errors.RetryExhausted.new("gave up", { cause = "refused" }))
      end)
      app:get("/bad-arg", function() http.escape(42) end)
      app:get("/not-found", function() error(http.error(404, "no such user")) end)
      app:get("/custom", function() error("hidden detail") end)
    end, function(base)
      local function get(path)
        return http.request { url = base .. path }
      end
      local r = get("/timeout")
      assert.equal(504, r.status)
      r = get("/open")
      assert.equal(503, r.status)
      assert.equal("3", r.headers["retry-after"])
      assert.equal(503, get("/full").status)
      assert.equal(504, get("/exhausted-timeout").status)
      assert.equal(503, get("/exhausted").status)
      r = get("/bad-arg")
      assert.equal(500, r.status)
      assert.equal("internal server error", cjson.decode(r.body).error)
      r = get("/not-found")
      assert.equal(404, r.status)
      assert.equal("no such user", cjson.decode(r.body).error)
      r = get("/custom")
      assert.equal(502, r.status)
      assert.is_true(cjson.decode(r.body).custom)
      assert.is_nil(r.body:find("hidden detail", 1, true))
    end)
    assert.same({ ["/timeout"] = 504, ["/open"] = 503, ["/full"] = 503,
      ["/exhausted-timeout"] = 504, ["/exhausted"] = 503, ["/bad-arg"] = 500, ["/custom"] = 500 },
      statuses)
    -- One handler_failed per 5xx (a 404 is not a failure), each with the
    -- error value and the request id; on_error returning nothing is one more.
    local failed = records_of("http.handler_failed")
    local by_path = {}
    for _, rec in ipairs(failed) do
      by_path[rec.path] = (by_path[rec.path] or 0) + 1
      assert.equal("error", rec.level)
      assert.is_string(rec.request_id)
    end
    assert.is_nil(by_path["/not-found"])
    assert.equal(1, by_path["/custom"])
    assert.equal(2, by_path["/full"]) -- the error, then on_error's nil
    assert.is_true(errors.is(failed[1].error, errors.Timeout))
  end, REAL))

  it("answers 503 at handler_timeout and 504 for a timeout inside the handler", T.async(function()
    serving({ handler_timeout = 0.05 }, function(app)
      app:get("/slow", function() fdn.sleep(10) return "late" end)
      app:get("/inner", function() fdn.timeout(0.001, fdn.sleep, 1) end)
      app:get("/string", function() error("plain string") end)
    end, function(base)
      local r = http.request { url = base .. "/slow" }
      assert.equal(503, r.status)
      assert.equal("the handler timed out", cjson.decode(r.body).error)
      assert.equal(504, http.request { url = base .. "/inner" }.status)
      assert.equal(500, http.request { url = base .. "/string" }.status)
    end)
    -- Under handler_timeout a plain error keeps the traceback of where it was raised.
    local last = records_of("http.handler_failed")
    last = last[#last]
    assert.equal("/string", last.path)
    assert.truthy(tostring(last.traceback):find("http_middleware_spec", 1, true))
  end, REAL))

  it("runs before/after work in nested order, also around a failure", T.async(function()
    local order = {}
    serving(nil, function(app)
      for _, name in ipairs { "a", "b", "c" } do
        app:use(function(_, nxt)
          order[#order + 1] = name .. ">"
          local ok, res = pcall(nxt)
          order[#order + 1] = "<" .. name
          if not ok then
            error(res, 0)
          end
          res.headers["x-" .. name] = "1"
          return res
        end)
      end
      app:get("/ok", function()
        order[#order + 1] = "handler"
        return "ok"
      end)
      app:get("/fail", function()
        order[#order + 1] = "handler"
        error("down")
      end)
    end, function(base)
      local r = http.request { url = base .. "/ok" }
      assert.equal(200, r.status)
      assert.equal("1", r.headers["x-a"])
      assert.equal("1", r.headers["x-c"])
      assert.same({ "a>", "b>", "c>", "handler", "<c", "<b", "<a" }, order)
      order = {}
      r = http.request { url = base .. "/fail" }
      assert.equal(500, r.status)
      assert.is_nil(r.headers["x-a"])
      assert.same({ "a>", "b>", "c>", "handler", "<c", "<b", "<a" }, order)
    end)
  end, REAL))

  it("refuses next() called after its middleware returned", T.async(function()
    local kept
    serving(nil, function(app)
      app:use(function(req, nxt)
        if req.path == "/keep" then
          kept = nxt
          return "answered early"
        end
        return nxt()
      end)
      app:get("/keep", function() return "handler ran" end)
    end, function(base)
      assert.equal("answered early", http.request { url = base .. "/keep" }.body)
      local ok, err = pcall(kept)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidState), tostring(err))
      assert.truthy(tostring(err):find("after its middleware returned", 1, true))
    end)
  end, REAL))

  it("scopes the context to one request on a kept-alive connection", T.async(function()
    local client = http.Client.new { timeout = 5 }
    local connections = 0
    events.subscribe("http.connection_opened", function() connections = connections + 1 end)
    serving(nil, function(app)
      app:use(function(req, nxt)
        if req.headers["x-user"] then
          fdn.context.set("user", req.headers["x-user"])
        end
        return nxt()
      end)
      app:get("/who", function()
        log.info("who", {})
        return (fdn.context.get("user") or "nobody") .. " " .. fdn.context.get("request_id")
      end)
    end, function(base)
      local a = client:request { url = base .. "/who", headers = { ["X-User"] = "alice" } }
      local b = client:request { url = base .. "/who" }
      local user_a, id_a = a.body:match("^(%S+) (%S+)$")
      local user_b, id_b = b.body:match("^(%S+) (%S+)$")
      assert.equal("alice", user_a)
      assert.equal("nobody", user_b)
      assert.are_not.equal(id_a, id_b)
      assert.equal(1, connections)
      local who = records_of("who")
      assert.equal("alice", who[1].user)
      assert.equal(id_a, who[1].request_id)
      assert.is_nil(who[2].user)
      assert.equal(id_b, who[2].request_id)
    end)
    client:close()
  end, REAL))

  it("cancels a handler whose client goes away, and keeps serving", T.async(function()
    local cancelled, cleaned = fdn.Event.new(), false
    local finished = {}
    events.subscribe("http.request_finished", function(_, d) finished[#finished + 1] = d end)
    serving(nil, function(app)
      app:get("/slow", function()
        local ok, err = pcall(fdn.sleep, 30)
        cleaned = not ok and errors.is(err, errors.Cancelled)
        cancelled:set()
        error(err, 0)
      end)
      app:get("/ok", function() return "ok" end)
    end, function(base, server)
      local c = tcp.connect { host = "127.0.0.1", port = server.port }
      c:write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
      fdn.sleep(0.05)
      c:close()
      cancelled:wait(5)
      assert.is_true(cleaned)
      assert.equal("ok", http.request { url = base .. "/ok" }.body)
    end)
    assert.is_true(finished[1].cancelled)
    assert.is_nil(finished[1].status)
    assert.equal(0, #records_of("http.handler_failed"))
  end, REAL))

  it("with cancel_on_disconnect = false answers a client that half-closed", T.async(function()
    serving({ cancel_on_disconnect = false }, function(app)
      app:get("/slow", function()
        fdn.sleep(0.05)
        return "done"
      end)
    end, function(_, server)
      local c = tcp.connect { host = "127.0.0.1", port = server.port }
      c:write("GET /slow HTTP/1.0\r\n\r\n")
      c:shutdown()
      local parts = {}
      while true do
        local d = c:read(nil, 5)
        if d == nil then break end
        parts[#parts + 1] = d
      end
      c:close()
      local text = table.concat(parts)
      assert.truthy(text:find("^HTTP/1%.1 200"), text)
      assert.truthy(text:find("done$"), text)
    end)
  end, REAL))

  it("checks the helpers' arguments", T.async(function()
    expect_arg("fdn.http.escape", "s", http.escape, 42)
    expect_arg("fdn.http.unescape", "s", http.unescape, nil)
    expect_arg("fdn.http.unescape", "plus", http.unescape, "a", "yes")
    expect_arg("fdn.http.parse_query", "qs", http.parse_query, {})
    expect_arg("fdn.http.build_query", "t", http.build_query, "a=1")
    expect_arg("fdn.http.build_query", "t.a", http.build_query, { a = function() end })
    expect_arg("fdn.http.build_query", "t.a[2]", http.build_query, { a = { "x", {} } })
    expect_arg("fdn.http.error", "message", http.error, 404, { text = "x" })
    expect_arg("fdn.http.app", "opts.cancel_on_disconnect", http.app, { cancel_on_disconnect = 1 })
    assert.equal("a%20b", http.escape("a b"))
    assert.equal("a b", http.unescape("a+b", true))
    assert.same({ a = { "1", "2" }, b = "x y" }, http.parse_query("a=1&b=x+y&a=2"))
    assert.equal("a=1&a=2&b=x%20y&c=true", http.build_query { a = { 1, 2 }, b = "x y", c = true })
    serving(nil, function(app)
      app:get("/", function(req)
        expect_arg("req:header", "name", req.header, req, 1)
        expect_arg("req:body", "self", req.body, {})
        return req:header("Host") and "ok" or "no host"
      end)
    end, function(base)
      assert.equal("ok", http.request { url = base .. "/" }.body)
    end)
  end, REAL))
end)
