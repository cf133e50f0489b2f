local fdn = require "fdn"
local errors = fdn.errors
local events = require "fdn.events"

local VIRTUAL = { clock = "virtual" }

-- Made at module level: no engine exists yet.
local shared = fdn.Semaphore.new(1)

local function expect_error(class, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(errors.is(err, class), "expected " .. tostring(class) .. ", got " .. tostring(err))
  return err
end

describe("fdn.Semaphore", function()
  after_each(function()
    events.reset()
  end)

  it("never lets more than n tasks hold it, over hundreds of tasks", function()
    local in_flight, max_in_flight, done = 0, 0, 0
    fdn.run(function()
      local sem = fdn.Semaphore.new(7)
      local tasks = {}
      for i = 1, 300 do
        tasks[i] = fdn.spawn(function()
          sem:acquire()
          in_flight = in_flight + 1
          max_in_flight = math.max(max_in_flight, in_flight)
          fdn.sleep((i % 5) * 0.01)
          in_flight = in_flight - 1
          sem:release()
          done = done + 1
        end)
      end
      fdn.gather(tasks)
      assert.equal(7, sem:available())
      assert.equal(0, sem:held())
    end, VIRTUAL)
    assert.equal(7, max_in_flight)
    assert.equal(300, done)
  end)

  it("wakes waiters in FIFO order #fifo", function()
    local order = {}
    fdn.run(function()
      local sem = fdn.Semaphore.new(1)
      sem:acquire()
      local tasks = {}
      for i = 1, 10 do
        tasks[i] = fdn.spawn(function()
          sem:with(function()
            order[#order + 1] = i
            fdn.sleep(0.001 * (11 - i)) -- later ones would be quicker
          end)
        end)
      end
      fdn.sleep(0)
      assert.equal(10, sem:waiting())
      sem:release()
      fdn.gather(tasks)
    end, VIRTUAL)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, order)
  end)

  it("hands a released permit to the longest waiter, never to a newcomer", function()
    fdn.run(function()
      local sem = fdn.Semaphore.new(1)
      sem:acquire()
      local got = false
      local waiter = fdn.spawn(function()
        sem:acquire()
        got = true
        sem:release()
      end)
      fdn.sleep(0)
      sem:release()
      -- The permit now belongs to the waiter, which has not run yet.
      assert.is_false(sem:try_acquire())
      assert.equal(0, sem:available())
      assert.is_false(got)
      waiter:join()
      assert.is_true(got)
      assert.is_true(sem:try_acquire())
      sem:release()
    end)
  end)

  it("with returns fn's results and releases the permit however fn ends", function()
    fdn.run(function()
      local sem = fdn.Semaphore.new(2)
      local a, b, c = sem:with(function(x, y) return x + y, "two", nil end, 1, 2)
      assert.same({ 3, "two" }, { a, b, c })
      assert.equal(2, sem:available())
      local boom = errors.Error.new("boom")
      local ok, err = pcall(sem.with, sem, function()
        fdn.sleep(0)
        error(boom)
      end)
      assert.is_false(ok)
      assert.equal(boom, err)
      assert.equal(2, sem:available())
      ok, err = pcall(sem.with, sem, function() error("plain string", 0) end)
      assert.is_false(ok)
      assert.equal("plain string", err)
      assert.equal(2, sem:available())
    end)
  end)

  it("raises InvalidState when released more times than acquired", function()
    fdn.run(function()
      local sem = fdn.Semaphore.new(2)
      local err = expect_error(errors.InvalidState, sem.release, sem)
      assert.matches("released more times than acquired", err.message)
      sem:acquire()
      sem:release()
      expect_error(errors.InvalidState, sem.release, sem)
      assert.equal(2, sem:available())
      assert.equal(2, sem:limit())
    end)
  end)

  it("lets a cancelled waiter leave the queue without taking a permit #fifo", function()
    local order = {}
    fdn.run(function()
      local sem = fdn.Semaphore.new(1)
      sem:acquire()
      local function waiter(name)
        return fdn.spawn(function()
          sem:acquire()
          order[#order + 1] = name
          sem:release()
        end)
      end
      local a, b, c = waiter("a"), waiter("b"), waiter("c")
      fdn.sleep(0)
      assert.equal(3, sem:waiting())
      b:cancel("not needed")
      fdn.sleep(0)
      assert.equal(2, sem:waiting())
      local ok, err = b:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.matches("Semaphore:acquire: not needed", err.message)
      sem:release()
      a:join()
      c:join()
      assert.equal(1, sem:available())
      assert.equal(0, sem:held())
    end)
    assert.same({ "a", "c" }, order)
  end)

  it("keeps a permit handed to a waiter cancelled before it ran, and with releases it", function()
    local reached = {}
    fdn.run(function()
      local sem = fdn.Semaphore.new(1)
      sem:acquire()
      local waiter = fdn.spawn(function()
        sem:with(function()
          reached[#reached + 1] = "holding"
          fdn.sleep(1) -- the pending cancellation strikes here
          reached[#reached + 1] = "unreachable"
        end)
      end)
      fdn.sleep(0)
      sem:release() -- hands the permit to the waiter (now ready)...
      assert.equal("ready", waiter:status())
      waiter:cancel() -- ...which is cancelled before it runs
      assert.equal(1, sem:held()) -- counted once, for the waiter
      local ok, err = waiter:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.equal(0, sem:held())
      assert.equal(1, sem:available())
      -- The plain acquire form: the permit is the task's, to release.
      sem:acquire()
      local raw = fdn.spawn(function()
        sem:acquire()
        local held_by_me = sem:held()
        local slept = pcall(fdn.sleep, 0)
        sem:release()
        return held_by_me, slept
      end)
      fdn.sleep(0)
      sem:release()
      raw:cancel()
      local held, slept = raw:join()
      assert.equal(1, held)
      assert.is_false(slept)
      assert.equal(0, sem:held())
    end)
    assert.same({ "holding" }, reached)
  end)

  it("times out an acquire after the given seconds, holding nothing", function()
    fdn.run(function()
      local sem = fdn.Semaphore.new(1)
      sem:acquire()
      local t0 = fdn.now()
      local err = expect_error(errors.Timeout, sem.acquire, sem, 2.5)
      assert.equal(2.5, fdn.now() - t0)
      assert.matches("Semaphore:acquire", err.message)
      assert.equal(0, sem:waiting())
      assert.equal(1, sem:held())
      -- 0 means "only if free now".
      expect_error(errors.Timeout, sem.acquire, sem, 0)
      sem:release()
      sem:acquire(0)
      sem:release()
    end, VIRTUAL)
  end)

  it("raises Cancelled in a cancelled task even when a permit is free", function()
    fdn.run(function()
      local sem = fdn.Semaphore.new(3)
      local t = fdn.spawn(function()
        fdn.current():cancel()
        local ok, err = pcall(sem.acquire, sem)
        return ok, errors.is(err, errors.Cancelled), sem:held()
      end)
      local ok, cancelled, held = t:join()
      assert.is_false(ok)
      assert.is_true(cancelled)
      assert.equal(0, held)
    end)
  end)

  it("grows to wake waiters and shrinks by letting releases pay the debt", function()
    local in_flight, max_in_flight = 0, 0
    fdn.run(function()
      local sem = fdn.Semaphore.new(1)
      local resized = {}
      events.subscribe("semaphore.resized", function(_, data) resized[#resized + 1] = data end)
      local tasks = {}
      for i = 1, 12 do
        tasks[i] = fdn.spawn(function()
          sem:with(function()
            in_flight = in_flight + 1
            max_in_flight = math.max(max_in_flight, in_flight)
            fdn.sleep(1)
            in_flight = in_flight - 1
          end)
        end)
      end
      fdn.sleep(0.5)
      assert.equal(1, in_flight)
      sem:resize(4)
      fdn.sleep(0)
      assert.equal(4, in_flight) -- three more got in at once
      sem:resize(2)
      assert.equal(0, sem:available())
      fdn.sleep(0.75) -- the first one finished: debt, nobody new
      assert.equal(3, in_flight)
      fdn.gather(tasks)
      assert.same({ limit = 4, previous = 1 }, resized[1])
      assert.same({ limit = 2, previous = 4 }, resized[2])
    end, VIRTUAL)
    assert.equal(4, max_in_flight)
  end)

  it("close wakes every waiter with Closed; held permits can still be released", function()
    fdn.run(function()
      local sem = fdn.Semaphore.new(1, { name = "db" })
      local closed
      events.subscribe("semaphore.closed", function(_, data) closed = data end)
      sem:acquire()
      local waiters = {}
      for i = 1, 3 do
        waiters[i] = fdn.spawn(function() sem:acquire() end)
      end
      fdn.sleep(0)
      sem:close()
      sem:close()
      for i = 1, 3 do
        local ok, err = waiters[i]:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Closed))
        assert.matches("Semaphore 'db':acquire", err.message)
      end
      assert.same({ name = "db", woken = 3 }, closed)
      assert.is_true(sem:is_closed())
      expect_error(errors.Closed, sem.acquire, sem)
      expect_error(errors.Closed, sem.try_acquire, sem)
      sem:release()
      assert.equal(0, sem:held())
      assert.equal("db", sem:name())
    end)
  end)

  it("made at module level, serves one fdn.run after another #fifo", function()
    for _ = 1, 3 do
      local order = {}
      fdn.run(function()
        local a = fdn.spawn(function() shared:with(function() fdn.sleep(0.01) order[#order + 1] = "a" end) end)
        local b = fdn.spawn(function() shared:with(function() order[#order + 1] = "b" end) end)
        fdn.gather(a, b)
      end, VIRTUAL)
      assert.same({ "a", "b" }, order)
      assert.equal(1, shared:available())
    end
  end)

  it("works as an fdn.with manager", function()
    fdn.run(function()
      local sem = fdn.Semaphore.new(1)
      local r = fdn.with(sem, function(s)
        assert.equal(sem, s)
        assert.equal(0, sem:available())
        return "inside"
      end)
      assert.equal("inside", r)
      assert.equal(1, sem:available())
      pcall(fdn.with, sem, function() error("x") end)
      assert.equal(1, sem:available())
    end)
  end)

  it("takes a free permit outside any task but cannot wait there", function()
    local sem = fdn.Semaphore.new(1)
    sem:acquire()
    local err = expect_error(errors.InvalidState, sem.acquire, sem)
    assert.matches("Semaphore:acquire", err.message)
    sem:release()
    fdn.run(function()
      local t = fdn.spawn(function()
        sem:acquire()
        -- A nested coroutine cannot wait on the task's behalf.
        local co = coroutine.create(function() return pcall(sem.acquire, sem) end)
        local _, ok, e = coroutine.resume(co)
        sem:release()
        return ok, e
      end)
      local ok, e = t:join()
      assert.is_false(ok)
      assert.is_true(errors.is(e, errors.InvalidState))
      assert.matches("nested coroutine", e.message)
    end)
  end)

  it("rejects bad arguments with InvalidArgument naming the parameter", function()
    local S = fdn.Semaphore
    for _, bad in ipairs({ -1, 1.5, "3", 0 / 0, math.huge, 1e300 }) do
      local err = expect_error(errors.InvalidArgument, S.new, bad)
      assert.matches("Semaphore.new: bad argument 'n'", err.message)
    end
    expect_error(errors.InvalidArgument, S.new)
    expect_error(errors.InvalidArgument, S.new, 1, "opts")
    expect_error(errors.InvalidArgument, S.new, 1, { name = 7 })
    local sem = S.new(1)
    fdn.run(function()
      local err = expect_error(errors.InvalidArgument, sem.acquire, sem, -1)
      assert.matches("'timeout'", err.message)
      expect_error(errors.InvalidArgument, sem.acquire, sem, "soon")
      err = expect_error(errors.InvalidArgument, sem.with, sem, 42)
      assert.matches("Semaphore:with: bad argument 'fn'", err.message)
      expect_error(errors.InvalidArgument, sem.resize, sem, -2)
      err = expect_error(errors.InvalidArgument, sem.acquire, {})
      assert.matches("'self'", err.message)
      expect_error(errors.InvalidArgument, sem.release, fdn.Queue.new(1))
      assert.equal(1, sem:available())
    end)
  end)
end)
