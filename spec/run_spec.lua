local fdn = require "fdn"
local errors = fdn.errors

describe("fdn.run", function()
  it("returns every result of the main function", function()
    local a, b, c = fdn.run(function()
      return 1, nil, "three"
    end)
    assert.equal(1, a)
    assert.is_nil(b)
    assert.equal("three", c)
  end)

  it("re-raises the main function's error value unchanged", function()
    local ok, err = pcall(fdn.run, function()
      error("plain string", 0)
    end)
    assert.is_false(ok)
    assert.equal("plain string", err)
    local mine = errors.Timeout.new("mine")
    ok, err = pcall(fdn.run, function()
      error(mine)
    end)
    assert.is_false(ok)
    assert.equal(mine, err)
  end)

  it("waits for tasks the main function left running", function()
    local finished = false
    fdn.run(function()
      fdn.spawn(function()
        fdn.sleep(0.02)
        finished = true
      end)
    end, { clock = "virtual" })
    assert.is_true(finished)
  end)

  it("cancels the tasks left behind when the main function fails, running their cleanups",
    function()
      local cleaned, reached = false, false
      local ok, err = pcall(fdn.run, function()
        fdn.spawn(function()
          local okk = pcall(fdn.sleep, 3600)
          cleaned = not okk
          fdn.sleep(1)
          reached = true
        end)
        fdn.sleep(0)
        error("main failed", 0)
      end)
      assert.is_false(ok)
      assert.equal("main failed", err)
      assert.is_true(cleaned)
      assert.is_false(reached)
    end)

  it("cancels daemon tasks once only daemons are left", function()
    local ticks, outcome = 0, nil
    local t0 = os.clock()
    fdn.run(function()
      fdn.spawn_with({ daemon = true, name = "ticker" }, function()
        while true do
          ticks = ticks + 1
          local ok, err = pcall(fdn.sleep, 10)
          if not ok then
            outcome = err
            error(err)
          end
        end
      end)
      fdn.sleep(0)
    end)
    assert.equal(1, ticks)
    assert.is_true(errors.is(outcome, errors.Cancelled))
    assert.is_true(os.clock() - t0 < 5)
  end)

  it("refuses to start inside a running engine", function()
    fdn.run(function()
      local ok, err = pcall(fdn.run, function() end)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidState))
      assert.matches("already running", err.message)
    end)
  end)

  it("rejects bad arguments with InvalidArgument naming the parameter", function()
    local ok, err = pcall(fdn.run, 42)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    assert.matches("fdn.run", err.message)
    assert.matches("'fn'", err.message)
    ok, err = pcall(fdn.run, function() end, { clock = "sundial" })
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    assert.matches("opts.clock", err.message)
    ok, err = pcall(fdn.run, function() end, "virtual")
    assert.is_false(ok)
    assert.matches("'opts'", err.message)
  end)

  it("reports a deadlock instead of hanging when the main task can never wake", function()
    local ok, err = pcall(fdn.run, function()
      local main = fdn.current()
      local blocker = fdn.spawn(function()
        main:join()
      end)
      blocker:join()
    end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Deadlock))
    assert.matches("task:join", err.message)
    assert.matches("run_spec.lua:%d+", err.message)
  end)

  it("can run again after a previous run finished or failed", function()
    pcall(fdn.run, function() error("x") end)
    assert.equal(7, fdn.run(function() return 7 end))
  end)
end)

describe("fdn.run with a virtual clock", function()
  it("finishes a one-hour sleep in well under a second of real time", function()
    -- fdn.now outside an engine reads the real monotonic clock.
    local start = fdn.now()
    local elapsed = fdn.run(function()
      local t0 = fdn.now()
      fdn.sleep(3600)
      return fdn.now() - t0
    end, { clock = "virtual" })
    assert.equal(3600, elapsed)
    assert.is_true(fdn.now() - start < 1, "an hour of virtual time took a second of real time")
  end)

  it("wakes sleepers in deadline order, deterministically", function()
    local order = {}
    fdn.run(function()
      for _, d in ipairs { 30, 10, 20, 10, 5 } do
        fdn.spawn(function()
          fdn.sleep(d)
          order[#order + 1] = d .. "@" .. fdn.now()
        end)
      end
    end, { clock = "virtual" })
    assert.same({ "5@5", "10@10", "10@10", "20@20", "30@30" }, order)
  end)
end)

describe("seeded randomness", function()
  it("repeats fdn.random draws for the same seed and differs across seeds", function()
    local function draws(seed)
      return fdn.run(function()
        local t = {}
        for i = 1, 5 do t[i] = fdn.random(1000) end
        t[6] = fdn.random()
        return t
      end, { seed = seed })
    end
    assert.same(draws(7), draws(7))
    assert.are_not.same(draws(7), draws(8))
    local x = fdn.random(3)
    assert.is_true(x >= 1 and x <= 3 and x % 1 == 0)
  end)

  it("rejects a bad seed or range", function()
    local ok, err = pcall(fdn.run, function() end, { seed = -3 })
    assert.is_false(ok)
    assert.matches("opts.seed", err.message)
    ok, err = pcall(fdn.random, 0)
    assert.is_false(ok)
    assert.matches("fdn.random", err.message)
  end)
end)
