local fdn = require "fdn"
local errors = fdn.errors
local events = require "fdn.events"

local VIRTUAL = { clock = "virtual" }

local shared = fdn.Queue.new(2) -- made before any engine exists

local function expect_error(class, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(errors.is(err, class), "expected " .. tostring(class) .. ", got " .. tostring(err))
  return err
end

local function full_gc()
  collectgarbage()
  collectgarbage()
end

describe("fdn.Queue", function()
  after_each(function()
    events.reset()
  end)

  it("passes values between tasks in FIFO order", function()
    local got = fdn.run(function()
      local q = fdn.Queue.new(3)
      local producer = fdn.spawn(function()
        for i = 1, 20 do
          q:put(i)
        end
        q:close()
      end)
      local got = {}
      for v in q:iter() do
        got[#got + 1] = v
      end
      producer:join()
      return got
    end)
    local want = {}
    for i = 1, 20 do
      want[i] = i
    end
    assert.same(want, got)
  end)

  it("makes put wait while full, and keeps the waiting putters' order #fifo", function()
    fdn.run(function()
      local q = fdn.Queue.new(2)
      q:put("a")
      q:put("b")
      assert.is_true(q:is_full())
      local putters = {}
      for i, v in ipairs({ "c", "d", "e" }) do
        putters[i] = fdn.spawn(function() q:put(v) end)
      end
      fdn.sleep(0)
      local getters_waiting, putters_waiting = q:waiting()
      assert.equal(0, getters_waiting)
      assert.equal(3, putters_waiting)
      assert.equal("waiting", putters[1]:status())
      local got = {}
      for i = 1, 5 do
        got[i] = q:get()
      end
      assert.same({ "a", "b", "c", "d", "e" }, got)
      fdn.gather(putters)
      assert.is_true(q:is_empty())
    end)
  end)

  it("hands each value to the longest waiting getter #fifo", function()
    fdn.run(function()
      local q = fdn.Queue.new(1)
      local getters = {}
      for i = 1, 4 do
        getters[i] = fdn.spawn(function() return q:get() end)
      end
      fdn.sleep(0)
      for i = 1, 4 do
        q:put(i * 10) -- never waits: a getter takes each at once
      end
      assert.equal(0, q:len())
      assert.same({ 10, 20, 30, 40 }, fdn.gather(getters))
    end)
  end)

  it("try_put and try_get never wait", function()
    fdn.run(function()
      local q = fdn.Queue.new(1)
      assert.same({ false }, { q:try_get() })
      assert.is_true(q:try_put("x"))
      assert.is_false(q:try_put("y"))
      assert.same({ true, "x" }, { q:try_get() })
      assert.is_true(q:try_put(nil))
      assert.same({ true, nil }, { q:try_get() })
    end)
  end)

  it("carries nil and any other value", function()
    fdn.run(function()
      local q = fdn.Queue.new(math.huge)
      local t, f = {}, function() end
      for _, v in ipairs({ 1, "s", t, f, true }) do
        q:put(v)
      end
      q:put(nil)
      q:put(false)
      assert.equal(7, #q)
      assert.equal(1, q:get())
      assert.equal("s", q:get())
      assert.equal(t, q:get())
      assert.equal(f, q:get())
      assert.equal(true, q:get())
      assert.is_nil(q:get())
      assert.equal(false, q:get())
    end)
  end)

  it("close refuses puts at once and lets getters drain, then raises Closed", function()
    fdn.run(function()
      local q = fdn.Queue.new(5, { name = "jobs" })
      local closed
      events.subscribe("queue.closed", function(_, data) closed = data end)
      q:put(1)
      q:put(2)
      q:close()
      q:close()
      assert.same({ name = "jobs", remaining = 2 }, closed)
      assert.is_true(q:is_closed())
      local err = expect_error(errors.Closed, q.put, q, 3)
      assert.matches("Queue 'jobs':put", err.message)
      expect_error(errors.Closed, q.try_put, q, 3)
      assert.equal(1, q:get())
      assert.same({ true, 2 }, { q:try_get() })
      err = expect_error(errors.Closed, q.get, q)
      assert.matches("Queue 'jobs':get", err.message)
      expect_error(errors.Closed, q.try_get, q)
    end)
  end)

  it("close wakes waiting getters and waiting putters with Closed", function()
    fdn.run(function()
      local empty = fdn.Queue.new(1)
      local getters = {}
      for i = 1, 3 do
        getters[i] = fdn.spawn(function() return empty:get() end)
      end
      local full = fdn.Queue.new(1)
      full:put("kept")
      local putter = fdn.spawn(function() full:put("refused") end)
      fdn.sleep(0)
      empty:close()
      full:close()
      for i = 1, 3 do
        local ok, err = getters[i]:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Closed))
      end
      local ok, err = putter:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Closed))
      -- The refused value was never queued.
      assert.equal("kept", full:get())
      expect_error(errors.Closed, full.get, full)
    end)
  end)

  it("lets a cancelled getter leave without taking a value", function()
    fdn.run(function()
      local q = fdn.Queue.new(1)
      local a = fdn.spawn(function() return q:get() end)
      local b = fdn.spawn(function() return q:get() end)
      fdn.sleep(0)
      a:cancel()
      fdn.sleep(0)
      q:put("only")
      assert.equal("only", b:join())
      assert.is_false((a:wait()))
      assert.equal(0, q:len())
    end)
  end)

  it("does not queue the value of a cancelled putter", function()
    fdn.run(function()
      local q = fdn.Queue.new(1)
      q:put(1)
      local p = fdn.spawn(function() q:put(2) end)
      local p3 = fdn.spawn(function() q:put(3) end)
      fdn.sleep(0)
      p:cancel()
      local ok, err = p:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.equal(1, q:get())
      assert.equal(3, q:get())
      p3:join()
      assert.same({ false }, { q:try_get() })
    end)
  end)

  it("keeps a value handed to a getter cancelled before it ran", function()
    fdn.run(function()
      local q = fdn.Queue.new(1)
      local getter = fdn.spawn(function()
        local v = q:get()
        local ok = pcall(fdn.sleep, 0) -- the cancellation strikes here
        return v, ok
      end)
      fdn.sleep(0)
      q:put("handed")
      assert.equal("ready", getter:status())
      getter:cancel()
      local v, slept = getter:join()
      assert.equal("handed", v)
      assert.is_false(slept)
      assert.equal(0, q:len())
    end)
  end)

  it("times out waiting puts and gets", function()
    fdn.run(function()
      local q = fdn.Queue.new(1)
      local t0 = fdn.now()
      expect_error(errors.Timeout, q.get, q, 1.5)
      assert.equal(1.5, fdn.now() - t0)
      q:put("x")
      local err = expect_error(errors.Timeout, q.put, q, "y", 2)
      assert.matches("Queue:put", err.message)
      assert.equal(3.5, fdn.now() - t0)
      expect_error(errors.Timeout, q.put, q, "z", 0)
      assert.same({ 0, 0 }, { q:waiting() })
      assert.equal("x", q:get(0))
      expect_error(errors.Timeout, q.get, q, 0)
      -- A value arriving in time is delivered.
      fdn.spawn(function() fdn.sleep(1) q:put("late") end)
      assert.equal("late", q:get(5))
    end, VIRTUAL)
  end)

  it("holds no reference to a value once it is got, refused or dropped", function()
    local weak = setmetatable({}, { __mode = "k" })
    local function value(tag)
      local v = { tag = tag }
      weak[v] = tag
      return v
    end
    local q = fdn.Queue.new(2)
    local dropped = fdn.Queue.new(3)
    fdn.run(function()
      q:put(value("got"))
      assert.equal("got", q:get().tag)
      q:put(value("queued"))
      q:put(value("queued"))
      -- A cancelled putter's value, a timed-out one, a refused one.
      local p = fdn.spawn(function() q:put(value("cancelled")) end)
      local p2 = fdn.spawn(function() q:put(value("timed out"), 0.01) end)
      fdn.sleep(0)
      p:cancel()
      p:wait()
      p2:wait()
      q:get()
      q:get()
      q:close()
      expect_error(errors.Closed, q.put, q, value("refused"))
      expect_error(errors.Closed, q.try_put, q, value("refused"))
      dropped:put(value("dropped"))
    end)
    full_gc()
    -- The queue itself is alive: only what it still holds may remain.
    local left = {}
    for _, tag in pairs(weak) do
      left[#left + 1] = tag
    end
    assert.same({ "dropped" }, left)
    assert.equal(1, dropped:len())
    dropped = nil -- luacheck: ignore
    full_gc()
    assert.is_nil(next(weak))
    assert.equal(0, q:len())
  end)

  it("grows without limit for math.huge and reports its sizes", function()
    fdn.run(function()
      local q = fdn.Queue.new(math.huge)
      assert.equal(math.huge, q:maxsize())
      for i = 1, 10000 do
        q:put(i)
      end
      assert.equal(10000, q:len())
      assert.is_false(q:is_full())
      local sum = 0
      while not q:is_empty() do
        sum = sum + q:get()
      end
      assert.equal(50005000, sum)
      assert.equal(3, fdn.Queue.new(3):maxsize())
    end)
  end)

  it("made at module level, serves one fdn.run after another", function()
    for round = 1, 3 do
      local got = fdn.run(function()
        fdn.spawn(function()
          for i = 1, 4 do
            shared:put(round * 10 + i)
          end
        end)
        local got = {}
        for i = 1, 4 do
          got[i] = shared:get()
        end
        return got
      end)
      assert.same({ round * 10 + 1, round * 10 + 2, round * 10 + 3, round * 10 + 4 }, got)
    end
  end)

  it("can be filled outside any task but cannot wait there", function()
    local q = fdn.Queue.new(1)
    q:put("pre")
    local err = expect_error(errors.InvalidState, q.put, q, "more")
    assert.matches("Queue:put: no engine is running", err.message)
    assert.equal("pre", q:get())
    expect_error(errors.InvalidState, q.get, q)
    assert.equal(0, q:len())
  end)

  it("rejects bad arguments with InvalidArgument naming the parameter", function()
    for _, bad in ipairs({ 0, -1, 1.5, "2", 0 / 0, -math.huge, 1e300 }) do
      local err = expect_error(errors.InvalidArgument, fdn.Queue.new, bad)
      assert.matches("Queue.new: bad argument 'maxsize'", err.message)
    end
    expect_error(errors.InvalidArgument, fdn.Queue.new)
    expect_error(errors.InvalidArgument, fdn.Queue.new, 1, 5)
    expect_error(errors.InvalidArgument, fdn.Queue.new, 1, { name = false })
    fdn.run(function()
      local q = fdn.Queue.new(1)
      local err = expect_error(errors.InvalidArgument, q.put, q, 1, -1)
      assert.matches("Queue:put: bad argument 'timeout'", err.message)
      expect_error(errors.InvalidArgument, q.get, q, "later")
      expect_error(errors.InvalidArgument, q.get, {})
      expect_error(errors.InvalidArgument, q.try_put, fdn.Semaphore.new(1), 1)
      -- Nothing was queued by the failed calls.
      assert.equal(0, q:len())
    end)
  end)
end)
