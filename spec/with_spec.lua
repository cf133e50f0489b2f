local fdn = require "fdn"
local T = require "fdn.testing"
local errors = fdn.errors

local function manager(log, opts)
  opts = opts or {}
  return {
    __enter = function(self)
      log[#log + 1] = "enter"
      if opts.enter_fails then error("enter failed", 0) end
      return opts.entered or self
    end,
    __exit = function(_, err)
      if opts.exit_sleeps then fdn.sleep(opts.exit_sleeps) end
      log[#log + 1] = "exit:" .. tostring(err)
      if opts.exit_fails then error("exit failed", 0) end
    end,
  }
end

describe("fdn.with", function()
  it("enters, runs the body with the entered value, exits, returns the results", function()
    local log = {}
    local a, b = T.run(function()
      return fdn.with(manager(log, { entered = "resource" }), function(r)
        log[#log + 1] = "body:" .. r
        return 1, 2
      end)
    end)
    assert.same({ "enter", "body:resource", "exit:nil" }, log)
    assert.equal(1, a)
    assert.equal(2, b)
  end)

  it("exits on error with the error, then re-raises it unchanged", function()
    local log = {}
    local ok, err = pcall(T.run, function()
      fdn.with(manager(log), function() error("body failed", 0) end)
    end)
    assert.is_false(ok)
    assert.equal("body failed", err)
    assert.same({ "enter", "exit:body failed" }, log)
  end)

  it("runs neither body nor exit when enter raises", function()
    local log = {}
    local ok, err = pcall(T.run, function()
      fdn.with(manager(log, { enter_fails = true }), function() log[#log + 1] = "body" end)
    end)
    assert.is_false(ok)
    assert.equal("enter failed", err)
    assert.same({ "enter" }, log)
  end)

  it("exits on cancellation, and the exit may itself suspend", function()
    local log = {}
    T.run(function()
      local t = fdn.spawn(function()
        fdn.with(manager(log, { exit_sleeps = 0.01 }), function() fdn.sleep(10) end)
      end)
      fdn.sleep(0.001)
      t:cancel()
      local ok, err = t:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.equal(0.011, fdn.now())
    end)
    assert.equal("enter", log[1])
    assert.matches("^exit:Cancelled", log[2])
  end)

  it("keeps the body's error when the exit fails too, attaching the exit's", function()
    local log = {}
    local body_err = errors.Error.new("body")
    local ok, err = pcall(T.run, function()
      fdn.with(manager(log, { exit_fails = true }), function() error(body_err) end)
    end)
    assert.is_false(ok)
    assert.equal(body_err, err)
    assert.same({ "exit failed" }, err.suppressed)
  end)

  it("raises the exit's error when the body succeeded", function()
    local ok, err = pcall(T.run, function()
      fdn.with(manager({}, { exit_fails = true }), function() end)
    end)
    assert.is_false(ok)
    assert.equal("exit failed", err)
  end)

  it("rejects a manager without __exit and a non-function body", T.async(function()
    local _, err = pcall(fdn.with, {}, function() end)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    assert.matches("'manager'", err.message)
    _, err = pcall(fdn.with, manager({}), nil)
    assert.matches("'fn'", err.message)
  end))
end)

describe("fdn.try", function()
  it("returns true and the results on success", function()
    assert.same({ true, 1, 2 }, { fdn.try(function(a) return a, 2 end, 1) })
  end)

  it("returns false and the original error on failure", function()
    local ok, err = fdn.try(function() error("x", 0) end)
    assert.is_false(ok)
    assert.equal("x", err)
  end)

  it("never swallows Cancelled", T.async(function()
    local t = fdn.spawn(function()
      local ok = fdn.try(fdn.sleep, 10)
      return "swallowed", ok
    end)
    fdn.sleep(0.001)
    t:cancel()
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Cancelled))
  end))

  it("keeps the traceback of fdn errors", function()
    local _, err = fdn.try(function() error(errors.Error.new("with tb")) end)
    assert.is_string(err.traceback)
    assert.matches("with_spec.lua", err.traceback)
  end)
end)
