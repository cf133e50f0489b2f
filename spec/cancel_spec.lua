local fdn = require "fdn"
local T = require "fdn.testing"
local errors = fdn.errors

describe("task:cancel", function()
  it("wakes a sleeping task at once with Cancelled carrying the reason", function()
    local elapsed, err = T.run(function()
      local t = fdn.spawn(function() fdn.sleep(3600) end)
      fdn.sleep(0.001)
      local t0 = fdn.now()
      assert.is_true(t:cancel("user asked"))
      local _, e = t:wait()
      return fdn.now() - t0, e
    end)
    assert.is_true(elapsed < 0.5)
    assert.is_true(errors.is(err, errors.Cancelled))
    assert.matches("user asked", err.message)
  end)

  it("is sticky: after a caught Cancelled every suspension raises again", function()
    local attempts = 0
    T.run(function()
      local t = fdn.spawn(function()
        for _ = 1, 3 do
          local ok = pcall(fdn.sleep, 10)
          if not ok then attempts = attempts + 1 end
        end
        return "kept going without suspending"
      end)
      fdn.sleep(0)
      t:cancel()
      assert.equal("kept going without suspending", t:join())
      assert.equal(0, fdn.now())
    end)
    assert.equal(3, attempts)
  end)

  it("is a no-op once the task finished", T.async(function()
    local t = fdn.spawn(function() return 1 end)
    t:join()
    assert.is_false(t:cancel())
    assert.equal("done", t:status())
    assert.equal(1, t:join())
  end))

  it("stops a task cancelled before it started from running at all", function()
    local ran = false
    T.run(function()
      local t = fdn.spawn(function() ran = true end)
      t:cancel("early")
      local ok, err = t:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.equal("cancelled", t:status())
    end)
    assert.is_false(ran)
  end)

  it("wakes a task waiting in join without disturbing the joined task", T.async(function()
    local target = fdn.spawn(function() fdn.sleep(0.01) return "target ok" end)
    local joiner = fdn.spawn(function() return target:join() end)
    fdn.sleep(0.001)
    joiner:cancel()
    local ok = joiner:wait()
    assert.is_false(ok)
    assert.equal("waiting", target:status())
    assert.equal("target ok", target:join())
  end))

  it("lets a task cancel itself, seen at its next suspension", function()
    local after_cancel = false
    T.run(function()
      local t = fdn.spawn(function()
        fdn.current():cancel("self")
        after_cancel = true
        fdn.sleep(0)
        return "unreachable"
      end)
      local ok, err = t:wait()
      assert.is_false(ok)
      assert.matches("self", err.message)
    end)
    assert.is_true(after_cancel)
  end)

  it("runs a shielded cleanup that suspends after cancellation", function()
    local cleaned = false
    T.run(function()
      local t = fdn.spawn(function()
        local ok = pcall(fdn.sleep, 10)
        fdn.shielded(function()
          fdn.sleep(0.001)
          cleaned = true
        end)
        assert(not ok)
      end)
      fdn.sleep(0)
      t:cancel()
      t:wait()
    end)
    assert.is_true(cleaned)
  end)
end)

describe("suspending where it cannot", function()
  it("raises a clear error outside any task", function()
    local ok, err = pcall(fdn.sleep, 0)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidState))
    T.run(function()
      local t = fdn.spawn(function() end)
      ok = pcall(function()
        -- A plain function called from a C callback still runs in the task.
        return t:join()
      end)
      assert.is_true(ok)
    end)
  end)

  it("raises a clear error from a user's own nested coroutine", T.async(function()
    local co = coroutine.create(function() fdn.sleep(0.001) end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidState))
    assert.matches("nested coroutine", err.message)
  end))

  it("raises a clear error inside a table.sort comparator", T.async(function()
    local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b)
      fdn.sleep(0)
      return a < b
    end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidState))
    assert.matches("cannot yield", err.message)
  end))

  it("raises a clear error inside a string.gsub callback", T.async(function()
    local ok, err = pcall(string.gsub, "abc", "%w", function()
      fdn.sleep(0)
    end)
    assert.is_false(ok)
    assert.matches("cannot yield", err.message)
  end))
end)

describe("fdn.sleep", function()
  it("rejects negative, NaN and non-number durations", T.async(function()
    for _, bad in ipairs { -1, 0 / 0, "1", {} } do
      local ok, err = pcall(fdn.sleep, bad)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidArgument))
      assert.matches("fdn.sleep", err.message)
      assert.matches("'seconds'", err.message)
    end
    local ok, err = pcall(fdn.sleep)
    assert.matches("got nil", err.message)
    assert.is_false(ok)
  end))

  it("with 0 lets other ready tasks run first", function()
    local order = {}
    T.run(function()
      local other = fdn.spawn(function() order[#order + 1] = "other" end)
      order[#order + 1] = "before"
      fdn.sleep(0)
      order[#order + 1] = "after"
      other:join()
    end)
    assert.same({ "before", "other", "after" }, order)
  end)

  it("sleeps at least the requested time on the real clock", function()
    local elapsed = fdn.run(function()
      local t0 = fdn.now()
      fdn.sleep(0.02)
      return fdn.now() - t0
    end)
    assert.is_true(elapsed >= 0.02)
  end)
end)
