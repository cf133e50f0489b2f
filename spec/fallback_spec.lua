local fdn = require "fdn"
local errors = fdn.errors

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("fdn.fallback", function()
  it("returns the first alternative's results when it works, calling no other", function()
    local called = {}
    local chain = fdn.fallback(function(x)
      called[#called + 1] = 1
      return x, x * 2, nil
    end, function()
      called[#called + 1] = 2
    end)
    assert.equal(3, select("#", chain(21)))
    local a, b = chain(21)
    assert.equal(21, a)
    assert.equal(42, b)
    assert.same({ 1, 1 }, called)
  end)

  it("tries each in turn with the same arguments until one works", function()
    local seen = {}
    local chain = fdn.fallback(function(k)
      seen[#seen + 1] = "api:" .. k
      error(errors.Timeout.new("api slow"))
    end, function(k)
      seen[#seen + 1] = "mirror:" .. k
      error("mirror down")
    end, function(k)
      seen[#seen + 1] = "cache:" .. k
      return "cached " .. k
    end)
    assert.equal("cached item", chain("item"))
    assert.same({ "api:item", "mirror:item", "cache:item" }, seen)
  end)

  it("raises the last error with the earlier ones attached when all fail", function()
    local e1, e3 = errors.Timeout.new("first"), errors.Closed.new("third")
    local chain = fdn.fallback(function() error(e1) end, function() error("second", 0) end,
      function() error(e3) end)
    local err = catch(chain)
    assert.equal(e3, err)
    assert.same({ e1, "second" }, err.fallback_errors)
    local t = err:to_table()
    assert.equal("first", t.fallback_errors[1].message)
    assert.equal("second", t.fallback_errors[2])
    -- Raised again: the list is this call's, not an ever-growing one.
    err = catch(chain)
    assert.equal(2, #err.fallback_errors)
  end)

  it("keeps a string last error as it is and reports the earlier ones", function()
    local reports = {}
    local saved = fdn.report
    fdn.report = function(kind, info)
      reports[#reports + 1] = { kind, info }
    end
    local chain = fdn.fallback(function() error(errors.Timeout.new("slow")) end,
      function() error("last words", 0) end)
    local err = catch(chain)
    fdn.report = saved
    assert.equal("last words", err)
    assert.equal(1, #reports)
    assert.equal("fallback_errors", reports[1][1])
    assert.matches("Timeout: slow", reports[1][2].message)
  end)

  it("stops at Cancelled without trying the rest", function()
    local second = false
    local chain = fdn.fallback(function()
      error(errors.Cancelled.new("stop"))
    end, function()
      second = true
    end)
    assert.is_true(errors.is(catch(chain), errors.Cancelled))
    assert.is_false(second)
    fdn.run(function()
      local reached = false
      local t = fdn.spawn(fdn.fallback(function() fdn.sleep(10) end, function()
        reached = true
      end))
      fdn.sleep(1)
      t:cancel()
      assert.is_false((t:wait()))
      assert.is_false(reached)
    end, { clock = "virtual" })
  end)

  it("emits fallback.failed for each failing alternative", function()
    local seen = {}
    local unsubscribe = require("fdn.events").subscribe("fallback.failed", function(_, d)
      seen[#seen + 1] = d.index
    end)
    fdn.fallback(function() error("a") end, function() error("b") end, function() return 1 end)()
    unsubscribe()
    assert.same({ 1, 2 }, seen)
  end)

  it("rejects no function or a non-function", function()
    local err = catch(fdn.fallback)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    err = catch(fdn.fallback, print, 42)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    assert.equal("f2", err.context.parameter)
  end)
end)
