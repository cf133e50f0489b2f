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

local function near(expected, got)
  assert.is_true(math.abs(expected - got) < 1e-6,
    string.format("expected %s, got %s", tostring(expected), tostring(got)))
end

describe("fdn.RateLimiter", function()
  it("lets a burst through at once, then paces calls at the rate", function()
    virtual(function()
      local limiter = fdn.RateLimiter.new { rate = 10, burst = 3 }
      local times = {}
      for i = 1, 7 do
        limiter:acquire()
        times[i] = fdn.now()
      end
      local expected = { 0, 0, 0, 0.1, 0.2, 0.3, 0.4 }
      for i = 1, 7 do
        near(expected[i], times[i])
      end
    end)
  end)

  it("refills while idle, never beyond the burst", function()
    virtual(function()
      local limiter = fdn.RateLimiter.new { rate = 2, burst = 2 }
      limiter:acquire()
      limiter:acquire()
      fdn.sleep(60)
      near(2, limiter:tokens())
      limiter:acquire()
      limiter:acquire()
      near(60, fdn.now())
      limiter:acquire()
      near(60.5, fdn.now())
    end)
  end)

  it("serves concurrent callers in the order they asked #fifo", function()
    virtual(function()
      local limiter = fdn.RateLimiter.new { rate = 4 }
      local order, tasks = {}, {}
      for i = 1, 5 do
        tasks[i] = fdn.spawn(function()
          limiter:acquire()
          order[#order + 1] = { i, fdn.now() }
        end)
      end
      fdn.gather(tasks)
      for i = 1, 5 do
        assert.equal(i, order[i][1])
        near((i - 1) * 0.25, order[i][2])
      end
    end)
  end)

  it("try_acquire takes a token only if one is there, never jumping the queue", function()
    virtual(function()
      local limiter = fdn.RateLimiter.new { rate = 1, burst = 2 }
      assert.is_true(limiter:try_acquire())
      assert.is_true(limiter:try_acquire())
      assert.is_false(limiter:try_acquire())
      local waiter = fdn.spawn(limiter.acquire, limiter)
      fdn.sleep(0.5)
      assert.is_false(limiter:try_acquire()) -- the waiter's token comes first
      waiter:join()
      near(1, fdn.now())
      fdn.sleep(1)
      assert.is_true(limiter:try_acquire())
      assert.is_true(fdn.RateLimiter.new { rate = 1, burst = 5 }:try_acquire(5))
    end)
  end)

  it("raises Timeout at once, taking nothing, when the token is due too late", function()
    virtual(function()
      local limiter = fdn.RateLimiter.new { rate = 1 }
      limiter:acquire()
      local err = catch(limiter.acquire, limiter, 1, 0.5)
      assert.is_true(errors.is(err, errors.Timeout))
      assert.equal(0, fdn.now())
      assert.equal(1, err.context.wait)
      limiter:acquire(1, 1) -- due in exactly 1 s: fine
      near(1, fdn.now())
    end)
  end)

  it("gives a cancelled waiter's tokens back", function()
    virtual(function()
      local limiter = fdn.RateLimiter.new { rate = 1 }
      limiter:acquire()
      local waiter = fdn.spawn(limiter.acquire, limiter)
      fdn.sleep(0.2)
      waiter:cancel()
      local ok, err = waiter:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      limiter:acquire() -- would have waited until 2 s had the token been lost
      near(1, fdn.now())
    end)
  end)

  it("wraps and calls functions", function()
    virtual(function()
      local limiter = fdn.RateLimiter.new { rate = 2 }
      local f = limiter:wrap(function(x) return x, fdn.now() end)
      local _, t1 = f(1)
      local _, t2 = f(2)
      near(0, t1)
      near(0.5, t2)
      assert.equal("v", limiter:call(function(v) return v end, "v"))
      near(1, fdn.now())
      assert.equal("boom", catch(limiter.call, limiter, function() error("boom", 0) end))
    end)
  end)

  it("rejects bad settings and token counts", function()
    for _, case in ipairs {
      { { rate = 0 }, "rate" }, { { rate = -1 }, "rate" }, { { rate = 0 / 0 }, "rate" },
      { { rate = math.huge }, "rate" }, { {}, "rate" }, { { rate = 1, burst = 0.5 }, "burst" },
      { { rate = 1, burst = 0 / 0 }, "burst" }, { { rate = 1, brust = 2 }, "brust" },
    } do
      local err = catch(fdn.RateLimiter.new, case[1])
      assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
      assert.equal(case[2], err.context.parameter)
    end
    local limiter = fdn.RateLimiter.new { rate = 1, burst = 2 }
    local err = catch(limiter.try_acquire, limiter, 3)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    assert.equal("tokens", err.context.parameter)
    err = catch(limiter.acquire, limiter, 1, -1)
    assert.equal("timeout", err.context.parameter)
  end)
end)
