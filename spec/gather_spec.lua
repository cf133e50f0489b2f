local fdn = require "fdn"
local T = require "fdn.testing"
local errors = fdn.errors

describe("fdn.gather", function()
  it("returns first results in input order, not completion order", function()
    local finished = {}
    local res = T.run(function()
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = fdn.spawn(function()
          fdn.sleep((6 - i) * 0.002)
          finished[#finished + 1] = i
          return i, "second value is dropped"
        end)
      end
      return fdn.gather(tasks)
    end)
    assert.same({ 1, 2, 3, 4, 5 }, res)
    assert.same({ 5, 4, 3, 2, 1 }, finished)
  end)

  it("takes tasks as separate arguments too", function()
    local res = T.run(function()
      return fdn.gather(fdn.spawn(function() return "a" end), fdn.spawn(function() return "b" end))
    end)
    assert.same({ "a", "b" }, res)
  end)

  it("returns an empty list for no tasks", function()
    assert.same({}, T.run(function() return fdn.gather({}) end))
    assert.same({}, T.run(function() return fdn.gather() end))
  end)

  it("raises the first error in time, after cancelling and waiting for the others",
    function()
      local cancelled_finished = false
      local ok, err = pcall(T.run, function()
        local slow_fail = fdn.spawn(function()
          fdn.sleep(0.05)
          error("late error", 0)
        end)
        local fast_fail = fdn.spawn(function()
          fdn.sleep(0.01)
          error("early error", 0)
        end)
        local sleeper = fdn.spawn(function()
          local okk = pcall(fdn.sleep, 10)
          assert(not okk)
          cancelled_finished = true
        end)
        fdn.gather(slow_fail, fast_fail, sleeper)
      end)
      assert.is_false(ok)
      assert.equal("early error", err)
      assert.is_true(cancelled_finished)
    end)

  it("puts errors in their slots with return_errors", function()
    local res = T.run(function()
      return fdn.gather({
        fdn.spawn(function() return 1 end),
        fdn.spawn(function() error("two", 0) end),
        fdn.spawn(function() fdn.sleep(0.001) return 3 end),
      }, { return_errors = true })
    end)
    assert.equal(1, res[1])
    assert.equal("two", res[2])
    assert.equal(3, res[3])
  end)

  it("works on tasks that finished before it was called", function()
    local res = T.run(function()
      local a = fdn.spawn(function() return "done early" end)
      fdn.sleep(0.001)
      assert.equal("done", a:status())
      return fdn.gather({ a, fdn.spawn(function() return "later" end) })
    end)
    assert.same({ "done early", "later" }, res)
  end)

  it("cancels the gathered tasks when the gathering task is cancelled", T.async(function()
    local child = fdn.spawn(function() fdn.sleep(10) end)
    local gatherer = fdn.spawn(function() return fdn.gather(child) end)
    fdn.sleep(0.001)
    gatherer:cancel("stop")
    local ok, err = gatherer:wait()
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Cancelled))
    child:wait()
    assert.equal("cancelled", child:status())
  end))

  it("rejects a list holding something other than a task", T.async(function()
    local first = fdn.spawn(function() end)
    local ok, err = pcall(fdn.gather, { first, "nope" })
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    assert.matches("tasks%[2%]", err.message)
    first:join()
  end))
end)
