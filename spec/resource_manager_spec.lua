local fdn = require "fdn"
local log = require "fdn.log"
local events = require "fdn.events"
local errors = fdn.errors
local ResourceManager = fdn.ResourceManager

local function vrun(fn)
  return fdn.run(fn, { clock = "virtual" })
end

-- A resource that records its closing in `journal`; opts.delay makes close
-- suspend, opts.fail makes it raise.
local function resource(name, journal, opts)
  opts = opts or {}
  return setmetatable({ name = name, closes = 0 }, {
    __index = {
      close = function(self)
        if opts.delay then
          fdn.sleep(opts.delay)
        end
        self.closes = self.closes + 1
        journal[#journal + 1] = name
        if opts.fail then
          error(opts.fail, 0)
        end
      end,
    },
    __tostring = function() return "Res(" .. name .. ")" end,
  })
end

describe("fdn.ResourceManager", function()
  local records, journal
  before_each(function()
    records, journal = {}, {}
    log.configure { level = "info", format = "json", sink = function(r) records[#records + 1] = r end }
  end)
  after_each(function()
    log.configure { level = "info", format = "console", sink = "stderr", levels = {} }
    events.reset()
  end)

  it("closes the resource after the body and returns the body's results", function()
    local rm = ResourceManager.new()
    local res = resource("db", journal)
    local a, b = vrun(function()
      return rm:manage(res, function(r, extra)
        assert.equal(res, r)
        assert.same({}, journal)
        return "rows", extra
      end, "more")
    end)
    assert.equal("rows", a)
    assert.equal("more", b)
    assert.same({ "db" }, journal)
    assert.equal(0, rm:pending())
  end)

  it("closes after an error and re-raises the body's error", function()
    local rm = ResourceManager.new()
    local boom = errors.Error.new("boom")
    local ok, err = pcall(vrun, function()
      rm:manage(resource("db", journal), function() error(boom) end)
    end)
    assert.is_false(ok)
    assert.equal(boom, err)
    assert.same({ "db" }, journal)
  end)

  it("closes on cancellation, letting a close that suspends finish", function()
    local rm = ResourceManager.new()
    local res = resource("conn", journal, { delay = 2 })
    vrun(function()
      local t = fdn.spawn(function()
        rm:manage(res, function() fdn.sleep(100) end)
      end)
      fdn.sleep(1)
      t:cancel()
      local ok, err = t:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.equal(3, fdn.now())
    end)
    assert.equal(1, res.closes)
  end)

  it("cuts off a close that takes longer than close_timeout", function()
    local rm = ResourceManager.new { close_timeout = 1 }
    local hung = resource("hung", journal, { delay = 1000 })
    vrun(function()
      local ok, err = pcall(rm.manage, rm, hung, function() return 1 end)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Timeout))
      assert.matches("closing Res%(hung%) took longer than 1s", err.message)
      assert.equal(1, fdn.now())
    end)
    assert.same({}, journal)
  end)

  it("uses fdn.cleanup_timeout when no close_timeout is given", function()
    local saved = fdn.cleanup_timeout
    fdn.cleanup_timeout = 2
    local rm = ResourceManager.new()
    vrun(function()
      local ok, err = pcall(rm.manage, rm, resource("hung", journal, { delay = 50 }), function() end)
      fdn.cleanup_timeout = saved
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Timeout))
      assert.equal(2, fdn.now())
    end)
  end)

  it("closes nested resources newest first, also when the innermost body fails", function()
    local rm = ResourceManager.new()
    local pending
    local ok, err = pcall(vrun, function()
      rm:manage(resource("outer", journal), function()
        rm:manage(resource("middle", journal, { delay = 1 }), function()
          rm:manage(resource("inner", journal), function()
            pending = rm:pending()
            error("deep failure", 0)
          end)
        end)
      end)
    end)
    assert.is_false(ok)
    assert.equal("deep failure", err)
    assert.equal(3, pending)
    assert.same({ "inner", "middle", "outer" }, journal)
  end)

  it("keeps the body's error when close fails too: both are reported", function()
    local rm = ResourceManager.new()
    local body_err = errors.Error.new("body broke")
    local ok, err = pcall(vrun, function()
      rm:manage(resource("db", journal, { fail = "close broke" }), function() error(body_err) end)
    end)
    assert.is_false(ok)
    assert.equal(body_err, err)
    assert.same({ "close broke" }, err.suppressed)
    assert.equal(1, #records)
    assert.equal("resource.close_failed", records[1].event)
    assert.equal("fdn.resource_manager", records[1].logger)
    assert.equal("error", records[1].level)
    assert.equal("close broke", records[1].error)
    assert.equal("Res(db)", records[1].resource)
    ok, err = pcall(vrun, function()
      rm:manage(resource("db2", journal, { fail = "close broke again" }), function() error("plain", 0) end)
    end)
    assert.is_false(ok)
    assert.equal("plain", err)
    assert.equal("close broke again", records[2].error)
  end)

  it("raises the close error when the body succeeded", function()
    local rm = ResourceManager.new()
    local ok, err = pcall(rm.manage, rm, resource("db", journal, { fail = "close broke" }), function() end)
    assert.is_false(ok)
    assert.equal("close broke", err)
    assert.equal(0, #records)
  end)

  it("registers resources and deferred functions for close_all, run newest first", function()
    local rm = ResourceManager.new()
    local res = resource("file", journal)
    assert.equal(res, rm:manage(res))
    rm:defer(function(a, b) journal[#journal + 1] = "deferred " .. a .. b end, "x", "y")
    rm:manage(resource("socket", journal))
    assert.equal(3, rm:pending())
    vrun(function() rm:close_all() end)
    assert.same({ "socket", "deferred xy", "file" }, journal)
    rm:close_all()
    assert.same({ "socket", "deferred xy", "file" }, journal)
    assert.equal(0, rm:pending())
  end)

  it("closes nothing twice, even with close_all running concurrently or under a body", function()
    local rm = ResourceManager.new()
    local slow = resource("slow", journal, { delay = 1 })
    local quick = resource("quick", journal)
    local in_use = resource("in_use", journal)
    vrun(function()
      rm:manage(slow)
      rm:manage(quick)
      local body = fdn.spawn(rm.manage, rm, in_use, function() fdn.sleep(5) return "body done" end)
      fdn.sleep(0)
      local a = fdn.spawn(rm.close_all, rm)
      local b = fdn.spawn(rm.close_all, rm)
      fdn.gather(a, b)
      assert.equal("body done", body:join())
    end)
    assert.equal(1, slow.closes)
    assert.equal(1, quick.closes)
    assert.equal(1, in_use.closes)
    assert.same({ "in_use", "quick", "slow" }, journal)
  end)

  it("closes everything before raising the first close error, with the rest suppressed", function()
    local rm = ResourceManager.new()
    rm:manage(resource("a", journal, { fail = errors.Closed.new("a failed") }))
    rm:manage(resource("b", journal))
    rm:manage(resource("c", journal, { fail = "c failed" }))
    local ok, err = pcall(rm.close_all, rm)
    assert.is_false(ok)
    assert.equal("c failed", err)
    assert.same({ "c", "b", "a" }, journal)
    assert.equal("a failed", records[1].error.message)
    ok, err = pcall(rm.close_all, rm)
    assert.is_true(ok, tostring(err))
    rm:manage(resource("x", journal, { fail = errors.Closed.new("x failed") }))
    rm:manage(resource("y", journal, { fail = "y failed" }))
    ok, err = pcall(rm.close_all, rm)
    assert.is_false(ok)
    assert.equal("y failed", err)
    rm:manage(resource("p", journal, { fail = "p failed" }))
    rm:manage(resource("q", journal, { fail = errors.Closed.new("q failed") }))
    ok, err = pcall(rm.close_all, rm)
    assert.is_false(ok)
    assert.equal("q failed", err.message)
    assert.same({ "p failed" }, err.suppressed)
  end)

  it("works as an fdn.with manager, closing everything at the exit", function()
    vrun(function()
      local value = fdn.with(ResourceManager.new(), function(rm)
        rm:manage(resource("a", journal))
        rm:defer(function() journal[#journal + 1] = "cleanup" end)
        return "ok"
      end)
      assert.equal("ok", value)
    end)
    assert.same({ "cleanup", "a" }, journal)
  end)

  it("emits resource.closed and resource.close_failed", function()
    local got = {}
    events.subscribe("resource.*", function(name, data) got[#got + 1] = { name, data } end)
    local rm = ResourceManager.new()
    local ok_res = resource("ok", journal, { delay = 1 })
    vrun(function()
      rm:manage(ok_res, function() end)
      pcall(rm.manage, rm, resource("bad", journal, { fail = "nope" }), function() end)
    end)
    assert.equal("resource.closed", got[1][1])
    assert.equal(ok_res, got[1][2].resource)
    assert.equal(1, got[1][2].duration)
    assert.equal("resource.close_failed", got[2][1])
    assert.equal("nope", got[2][2].error)
  end)

  it("accepts any object with a close method, such as a file", function()
    local rm = ResourceManager.new()
    local f = io.tmpfile()
    rm:manage(f, function(file) file:write("x") end)
    assert.equal("closed file", io.type(f))
  end)

  it("rejects bad arguments", function()
    local rm = ResourceManager.new()
    local cases = {
      { function() ResourceManager.new(5) end, "'opts'" },
      { function() ResourceManager.new { close_timeout = -1 } end, "opts.close_timeout" },
      { function() ResourceManager.new { close_timeout = 0 / 0 } end, "opts.close_timeout" },
      { function() rm:manage(nil, function() end) end, "'resource'" },
      { function() rm:manage({}, function() end) end, "'resource'" },
      { function() rm:manage({ close = 5 }, function() end) end, "'resource'" },
      { function() rm:manage(io.stdout, 5) end, "'fn'" },
      { function() rm:manage(1, function() end) end, "'resource'" },
      { function() rm:defer(5) end, "'fn'" },
      { function() rm.manage({}, io.stdout) end, "'self'" },
      { function() rm.close_all() end, "'self'" },
      { function() rm.defer(nil, print) end, "'self'" },
      { function() rm.pending(5) end, "'self'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok, c[2])
      assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
      assert.matches(c[2], err.message)
    end
    -- a userdata without __index is refused, not crashed on
    local ok, err = pcall(rm.manage, rm, newproxy(), function() end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    assert.equal(0, rm:pending())
  end)
end)
