local fdn = require "fdn"
local errors = fdn.errors
local log = require "fdn.log"
local events = require "fdn.events"

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- A function that fails `n` times with make_err(i), then returns "ok".
local function failing(n, make_err)
  local self = { calls = 0 }
  self.fn = function(...)
    self.calls = self.calls + 1
    if self.calls <= n then
      error(make_err and make_err(self.calls) or errors.Error.new("fail " .. self.calls), 0)
    end
    return "ok", ...
  end
  return self
end

describe("fdn.error_boundary", function()
  local records
  before_each(function()
    records = {}
    log.configure { level = "debug", sink = function(r) records[#records + 1] = r end }
  end)
  after_each(function()
    log.configure { level = "info", format = "console", sink = "stderr" }
  end)

  it("returns the function's results when it succeeds, logging nothing", function()
    local f = failing(0)
    local a, b, c = fdn.error_boundary { fallback = "fb" } (f.fn)(1, 2)
    assert.same({ "ok", 1, 2 }, { a, b, c })
    assert.equal(1, f.calls)
    assert.equal(0, #records)
  end)

  it("makes up to 1 + retry_count calls, then returns the fallback value", function()
    local f = failing(100)
    local guarded = fdn.error_boundary { fallback = "default", retry_count = 3 } (f.fn)
    assert.equal("default", guarded())
    assert.equal(4, f.calls)
    local g = failing(2)
    assert.equal("ok", fdn.error_boundary { fallback = "default", retry_count = 2 } (g.fn)())
    assert.equal(3, g.calls)
    local h = failing(1)
    assert.equal("default", fdn.error_boundary { fallback = "default" } (h.fn)())
    assert.equal(1, h.calls)
  end)

  it("calls a fallback function with the last error and the arguments", function()
    local f = failing(5)
    local got_err, got_arg
    local x, y = fdn.error_boundary {
      retry_count = 1,
      fallback = function(err, arg)
        got_err, got_arg = err, arg
        return "fallback for " .. arg, 2
      end,
    } (f.fn)("key")
    assert.equal("fallback for key", x)
    assert.equal(2, y)
    assert.equal("fail 2", got_err.message)
    assert.equal("key", got_arg)
  end)

  it("returns nil when no fallback is given", function()
    assert.is_nil(fdn.error_boundary {} (failing(1).fn)())
  end)

  it("lets errors outside catch pass through at once, unchanged", function()
    local Transient = errors.define("Transient")
    local permanent = errors.InvalidState.new("broken")
    local f = failing(5, function()
      return permanent
    end)
    local err = catch(fdn.error_boundary { catch = Transient, retry_count = 3, fallback = 0 } (f.fn))
    assert.equal(permanent, err)
    assert.equal(1, f.calls)
    assert.equal(0, #records)
    local g = failing(5, function()
      return "plain string"
    end)
    assert.equal("plain string", catch(fdn.error_boundary {
      catch = { errors.Timeout, Transient }, fallback = 0,
    } (g.fn)))
    local h = failing(1, function()
      return Transient.new("t")
    end)
    assert.equal("ok", fdn.error_boundary {
      catch = function(e) return errors.is(e, Transient) end, retry_count = 1,
    } (h.fn)())
  end)

  it("never catches Cancelled, whatever catch says", function()
    local f = failing(5, function()
      return errors.Cancelled.new("stop")
    end)
    local err = catch(fdn.error_boundary { catch = errors.Error, fallback = 1, retry_count = 2 } (f.fn))
    assert.is_true(errors.is(err, errors.Cancelled))
    assert.equal(1, f.calls)
    fdn.run(function()
      local t = fdn.spawn(fdn.error_boundary { fallback = "swallowed?" } (function()
        fdn.sleep(100)
      end))
      fdn.sleep(1)
      t:cancel()
      local ok, e = t:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(e, errors.Cancelled))
    end, { clock = "virtual" })
  end)

  it("logs each caught error with its context, and the task's", function()
    fdn.run(function()
      fdn.context.with({ request_id = "r-1" }, function()
        local f = failing(5, function(i)
          return errors.Timeout.new("slow " .. i, { context = { host = "db1" } })
        end)
        fdn.error_boundary { name = "settings", retry_count = 1, fallback = {} } (f.fn)()
      end)
    end)
    assert.equal(2, #records)
    local r1, r2 = records[1], records[2]
    assert.equal("error_boundary.caught", r1.event)
    assert.equal("warn", r1.level)
    assert.equal("fdn.error_boundary", r1.logger)
    assert.equal("settings", r1.boundary)
    assert.equal(1, r1.attempt)
    assert.is_true(r1.will_retry)
    assert.equal("r-1", r1.request_id)
    assert.equal("slow 1", r1.error.message)
    assert.equal("db1", r1.error.context.host)
    assert.equal("error", r2.level)
    assert.is_false(r2.will_retry)
    local json = log.encode_json(log.sanitize(r2))
    assert.matches('"host":"db1"', json)
    assert.matches('"type":"Timeout"', json)
  end)

  it("logs nothing with log_errors = false", function()
    fdn.error_boundary { log_errors = false, retry_count = 2 } (failing(9).fn)()
    assert.equal(0, #records)
  end)

  it("emits error_boundary.caught and error_boundary.fallback", function()
    local seen = {}
    local unsubscribe = events.subscribe("error_boundary.*", function(name, data)
      seen[#seen + 1] = name .. ":" .. data.name .. ":" .. tostring(data.attempt)
    end)
    fdn.error_boundary { name = "b", retry_count = 1, log_errors = false } (failing(9).fn)()
    unsubscribe()
    assert.same({ "error_boundary.caught:b:1", "error_boundary.caught:b:2",
      "error_boundary.fallback:b:nil" }, seen)
  end)

  it("raises the fallback function's own error", function()
    local err = catch(fdn.error_boundary {
      log_errors = false,
      fallback = function()
        error("fallback broke", 0)
      end,
    } (failing(1).fn))
    assert.equal("fallback broke", err)
  end)

  it("rejects bad options with InvalidArgument naming the field", function()
    for _, case in ipairs {
      { { retry_count = -1 }, "retry_count" },
      { { retry_count = 1.5 }, "retry_count" },
      { { retry_count = 0 / 0 }, "retry_count" },
      { { catch = 42 }, "catch" },
      { { catch = {} }, "catch" },
      { { name = false }, "name" },
      { { fallbck = 1 }, "fallbck" },
    } do
      local err = catch(fdn.error_boundary, case[1])
      assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
      assert.equal(case[2], err.context.parameter)
    end
    assert.is_true(errors.is(catch(fdn.error_boundary, 3), errors.InvalidArgument))
    assert.is_true(errors.is(catch(fdn.error_boundary {}, "not fn"), errors.InvalidArgument))
  end)
end)
