local fdn = require "fdn"
local errors = fdn.errors

local function virtual(fn)
  return fdn.run(fn, { clock = "virtual" })
end

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("fdn.Bulkhead", function()
  it("runs at most max_concurrent calls at once, the rest in FIFO order #fifo", function()
    virtual(function()
      local bh = fdn.Bulkhead.new { max_concurrent = 2, max_queue = 10 }
      local running, max_running, order = 0, 0, {}
      local tasks = {}
      for i = 1, 6 do
        tasks[i] = fdn.spawn(bh.call, bh, function()
          running = running + 1
          max_running = math.max(max_running, running)
          order[#order + 1] = i
          fdn.sleep(1)
          running = running - 1
          return i
        end)
      end
      assert.same({ 1, 2, 3, 4, 5, 6 }, fdn.gather(tasks))
      assert.equal(2, max_running)
      assert.same({ 1, 2, 3, 4, 5, 6 }, order)
      assert.equal(3, fdn.now())
      local s = bh:stats()
      assert.equal(0, s.active)
      assert.equal(0, s.waiting)
      assert.equal(6, s.admitted)
    end)
  end)

  it("rejects with QueueFull past max_queue waiters #fifo", function()
    virtual(function()
      local bh = fdn.Bulkhead.new { max_concurrent = 1, max_queue = 1 }
      local holder = fdn.spawn(bh.call, bh, fdn.sleep, 5)
      local waiter = fdn.spawn(bh.call, bh, function() return "waited" end)
      fdn.sleep(0)
      local err = catch(bh.call, bh, function() error("must not run") end)
      assert.is_true(errors.is(err, errors.QueueFull))
      assert.matches("no room in the queue", err.message)
      holder:join()
      assert.equal("waited", waiter:join())
      assert.equal(1, bh:stats().rejected)
      -- max_queue = 0 (the default): no waiting at all.
      local strict = fdn.Bulkhead.new { max_concurrent = 1 }
      local h2 = fdn.spawn(strict.call, strict, fdn.sleep, 1)
      fdn.sleep(0)
      assert.is_true(errors.is(catch(strict.call, strict, print), errors.QueueFull))
      h2:join()
    end)
  end)

  it("rejects with Timeout a waiter that gets no slot in time", function()
    virtual(function()
      local bh = fdn.Bulkhead.new { max_concurrent = 1, max_queue = 5, timeout = 2 }
      local holder = fdn.spawn(bh.call, bh, fdn.sleep, 10)
      fdn.sleep(0)
      local err = catch(bh.call, bh, print)
      assert.is_true(errors.is(err, errors.Timeout))
      assert.equal(2, fdn.now())
      local s = bh:stats()
      assert.equal(1, s.timed_out)
      assert.equal(0, s.waiting)
      assert.equal(1, s.active)
      holder:join()
      assert.equal(0, bh:stats().active)
      local instant = fdn.Bulkhead.new { max_concurrent = 1, max_queue = 5, timeout = 0 }
      local h2 = fdn.spawn(instant.call, instant, fdn.sleep, 1)
      fdn.sleep(0)
      assert.is_true(errors.is(catch(instant.call, instant, print), errors.Timeout))
      h2:join()
    end)
  end)

  it("gives back a slot handed to a waiter cancelled before it could run #fifo", function()
    virtual(function()
      local bh = fdn.Bulkhead.new { max_concurrent = 1, max_queue = 5 }
      bh:acquire() -- the main task holds the only slot
      local ran = {}
      local unlucky = fdn.spawn(bh.call, bh, function() ran[#ran + 1] = "unlucky" end)
      local next_one = fdn.spawn(bh.call, bh, function() ran[#ran + 1] = "next" end)
      fdn.sleep(0)
      assert.equal(2, bh:stats().waiting)
      -- Release hands the slot to `unlucky`, which is now ready but has not
      -- run; it is cancelled in that very instant.
      bh:release()
      assert.equal("ready", unlucky:status())
      unlucky:cancel()
      local ok, err = unlucky:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      next_one:join()
      assert.same({ "next" }, ran)
      local s = bh:stats()
      assert.equal(0, s.active)
      assert.equal(0, s.waiting)
      -- The slot is really free: two more calls run one after the other.
      bh:call(print)
      assert.equal(0, bh:stats().active)
    end)
  end)

  it("leaks no slot when a waiter's timeout falls when the slot is released", function()
    virtual(function()
      local bh = fdn.Bulkhead.new { max_concurrent = 1, max_queue = 5, timeout = 1 }
      local holder = fdn.spawn(bh.call, bh, fdn.sleep, 1)
      fdn.sleep(0)
      local waiter = fdn.spawn(bh.call, bh, function() return "ran" end)
      local ok, v = waiter:wait()
      holder:join()
      assert.is_true(ok == true and v == "ran" or errors.is(v, errors.Timeout))
      assert.equal(0, bh:stats().active)
      assert.equal("again", bh:call(function() return "again" end))
    end)
  end)

  it("frees a waiter cancelled while queued, leaving the queue in order #fifo", function()
    virtual(function()
      local bh = fdn.Bulkhead.new { max_concurrent = 1, max_queue = 5 }
      local holder = fdn.spawn(bh.call, bh, fdn.sleep, 2)
      local order = {}
      local a = fdn.spawn(bh.call, bh, function() order[#order + 1] = "a" end)
      local b = fdn.spawn(bh.call, bh, function() order[#order + 1] = "b" end)
      local c = fdn.spawn(bh.call, bh, function() order[#order + 1] = "c" end)
      fdn.sleep(1)
      b:cancel()
      assert.equal(2, bh:stats().waiting)
      fdn.gather({ holder, a, c })
      assert.is_false((b:wait()))
      assert.same({ "a", "c" }, order)
      assert.equal(0, bh:stats().active)
    end)
  end)

  it("releases the slot when the call fails, and re-raises the error", function()
    virtual(function()
      local bh = fdn.Bulkhead.new { max_concurrent = 1 }
      local boom = errors.Error.new("boom")
      assert.equal(boom, catch(bh.call, bh, function() error(boom) end))
      assert.equal(0, bh:stats().active)
      local guarded = bh:wrap(function(x) return x * 2 end)
      assert.equal(4, guarded(2))
    end)
  end)

  it("rejects bad settings", function()
    for _, case in ipairs {
      { { max_concurrent = 0 }, "max_concurrent" }, { {}, "max_concurrent" },
      { { max_concurrent = 1.5 }, "max_concurrent" },
      { { max_concurrent = 1, max_queue = -1 }, "max_queue" },
      { { max_concurrent = 1, max_queue = 0 / 0 }, "max_queue" },
      { { max_concurrent = 1, timeout = -1 }, "timeout" },
      { { max_concurrent = 1, timeout = 0 / 0 }, "timeout" },
      { { max_concurrent = 1, max_qeue = 1 }, "max_qeue" },
    } do
      local err = catch(fdn.Bulkhead.new, case[1])
      assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
      assert.equal(case[2], err.context.parameter)
    end
    assert.is_true(errors.is(catch(fdn.Bulkhead.new, 5), errors.InvalidArgument))
  end)
end)
