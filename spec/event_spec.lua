local fdn = require "fdn"
local errors = fdn.errors
local events = require "fdn.events"

local VIRTUAL = { clock = "virtual" }

local shared = fdn.Event.new() -- made before any engine exists

local function expect_error(class, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(errors.is(err, class), "expected " .. tostring(class) .. ", got " .. tostring(err))
  return err
end

describe("fdn.Event", function()
  after_each(function()
    events.reset()
  end)

  it("parks waiters until set, then wakes them all in FIFO order #fifo", function()
    local order = {}
    fdn.run(function()
      local ev = fdn.Event.new()
      assert.is_false(ev:is_set())
      local tasks = {}
      for i = 1, 1000 do
        tasks[i] = fdn.spawn(function()
          ev:wait()
          order[#order + 1] = i
        end)
      end
      fdn.sleep(0)
      assert.equal(1000, ev:waiting())
      assert.equal(0, #order)
      ev:set()
      assert.is_true(ev:is_set())
      assert.equal(0, ev:waiting())
      fdn.gather(tasks)
    end)
    assert.equal(1000, #order)
    for i = 1, 1000 do
      assert.equal(i, order[i])
    end
  end)

  it("lets waits through while set, and parks them again once cleared", function()
    fdn.run(function()
      local ev = fdn.Event.new()
      ev:set()
      ev:wait() -- returns at once
      ev:clear()
      assert.is_false(ev:is_set())
      local woke = false
      local t = fdn.spawn(function()
        ev:wait()
        woke = true
      end)
      fdn.sleep(1)
      assert.is_false(woke)
      ev:set()
      t:join()
      assert.is_true(woke)
    end, VIRTUAL)
  end)

  it("times out a wait after the given seconds", function()
    fdn.run(function()
      local ev = fdn.Event.new({ name = "ready" })
      local t0 = fdn.now()
      local err = expect_error(errors.Timeout, ev.wait, ev, 3)
      assert.matches("Event 'ready':wait", err.message)
      assert.equal(3, fdn.now() - t0)
      assert.equal(0, ev:waiting())
      expect_error(errors.Timeout, ev.wait, ev, 0)
      fdn.spawn(function() fdn.sleep(1) ev:set() end)
      ev:wait(2)
      assert.equal(4, fdn.now() - t0)
    end, VIRTUAL)
  end)

  it("lets a cancelled waiter leave while the others keep waiting", function()
    fdn.run(function()
      local ev = fdn.Event.new()
      local a = fdn.spawn(function() ev:wait() end)
      local b = fdn.spawn(function() ev:wait() return "b woke" end)
      fdn.sleep(0)
      a:cancel("gave up")
      local ok, err = a:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.matches("Event:wait: gave up", err.message)
      assert.equal(1, ev:waiting())
      ev:set()
      assert.equal("b woke", b:join())
    end)
  end)

  it("raises Cancelled in a cancelled task even when set", function()
    fdn.run(function()
      local ev = fdn.Event.new()
      ev:set()
      local t = fdn.spawn(function()
        fdn.current():cancel()
        ev:wait()
      end)
      local ok, err = t:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
    end)
  end)

  it("emits event.set with how many it woke", function()
    fdn.run(function()
      local seen
      events.subscribe("event.set", function(_, data) seen = data end)
      local ev = fdn.Event.new({ name = "go" })
      local t = fdn.spawn(function() ev:wait() end)
      fdn.sleep(0)
      ev:set()
      t:join()
      assert.same({ name = "go", woken = 1 }, seen)
      assert.equal("go", ev:name())
    end)
  end)

  it("made at module level, serves one fdn.run after another", function()
    for _ = 1, 2 do
      shared:clear()
      local r = fdn.run(function()
        local t = fdn.spawn(function() shared:wait() return "woke" end)
        fdn.sleep(0.5)
        shared:set()
        return t:join()
      end, VIRTUAL)
      assert.equal("woke", r)
    end
  end)

  it("checks a set event outside any task but cannot wait there", function()
    local ev = fdn.Event.new()
    expect_error(errors.InvalidState, ev.wait, ev)
    ev:set()
    ev:wait()
  end)

  it("rejects bad arguments with InvalidArgument naming the parameter", function()
    expect_error(errors.InvalidArgument, fdn.Event.new, "x")
    expect_error(errors.InvalidArgument, fdn.Event.new, { name = 1 })
    fdn.run(function()
      local ev = fdn.Event.new()
      local err = expect_error(errors.InvalidArgument, ev.wait, ev, -0.5)
      assert.matches("Event:wait: bad argument 'timeout'", err.message)
      expect_error(errors.InvalidArgument, ev.wait, ev, 0 / 0)
      expect_error(errors.InvalidArgument, ev.set, {})
      expect_error(errors.InvalidArgument, ev.is_set, fdn.Queue.new(1))
    end)
  end)
end)
