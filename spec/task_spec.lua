local fdn = require "fdn"
local T = require "fdn.testing"
local errors = fdn.errors

describe("fdn.spawn and Task", function()
  it("queues the task as ready and runs it at the next turn", T.async(function()
    local ran = false
    local t = fdn.spawn(function() ran = true end)
    assert.equal("ready", t:status())
    assert.is_false(ran)
    fdn.sleep(0)
    assert.is_true(ran)
    assert.equal("done", t:status())
  end))

  it("passes arguments and returns every result through join", T.async(function()
    local t = fdn.spawn(function(a, b, c)
      fdn.sleep(0)
      return c, b, a
    end, 1, nil, 3)
    local x, y, z = t:join()
    assert.equal(3, x)
    assert.is_nil(y)
    assert.equal(1, z)
  end))

  it("gives each task a distinct id and a name", T.async(function()
    local a, b = fdn.spawn(function() end), fdn.spawn(function() end)
    assert.is_number(a.id)
    assert.are_not.equal(a.id, b.id)
    assert.equal("task-" .. a.id, a.name)
    local n = fdn.spawn_with({ name = "loader" }, function() end)
    assert.equal("loader", n.name)
    fdn.gather(a, b, n)
  end))

  it("reports the states a task passes through", T.async(function()
    local seen
    local t
    t = fdn.spawn(function()
      seen = t:status()
      fdn.sleep(0.01)
    end)
    assert.equal("ready", t:status())
    fdn.sleep(0)
    assert.equal("running", seen)
    assert.equal("waiting", t:status())
    t:join()
    assert.equal("done", t:status())
    local f = fdn.spawn(function() error("boom") end)
    f:wait()
    assert.equal("failed", f:status())
    local c = fdn.spawn(function() fdn.sleep(1) end)
    fdn.sleep(0)
    c:cancel()
    c:wait()
    assert.equal("cancelled", c:status())
  end))

  it("join raises the failed task's original error value", T.async(function()
    local t = fdn.spawn(function()
      fdn.sleep(0)
      error("exact string", 0)
    end)
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.equal("exact string", err)
    local e = errors.Error.new("table error")
    local t2 = fdn.spawn(function() error(e) end)
    ok, err = pcall(t2.join, t2)
    assert.is_false(ok)
    assert.equal(e, err)
  end))

  it("wait returns true and results, or false and the error, without raising", T.async(function()
    local ok, a, b = fdn.spawn(function() return "a", "b" end):wait()
    assert.same({ true, "a", "b" }, { ok, a, b })
    local ok2, err = fdn.spawn(function() error("bad", 0) end):wait()
    assert.is_false(ok2)
    assert.equal("bad", err)
  end))

  it("lets many tasks join the same task", T.async(function()
    local target = fdn.spawn(function() fdn.sleep(0.01) return 5 end)
    local joiners = {}
    for i = 1, 10 do
      joiners[i] = fdn.spawn(function() return target:join() * i end)
    end
    local results = fdn.gather(joiners)
    for i = 1, 10 do assert.equal(5 * i, results[i]) end
  end))

  it("joins a task that finished long ago, also after the engine closed", function()
    local t
    fdn.run(function()
      t = fdn.spawn(function() return "kept" end)
    end)
    assert.equal("done", t:status())
    assert.equal("kept", select(2, t:wait()))
  end)

  it("refuses a task joining itself", T.async(function()
    local ok, err = pcall(function() return fdn.current():join() end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidState))
  end))

  it("returns the running task from fdn.current, and nil outside one", function()
    assert.is_nil(fdn.current())
    T.run(function()
      local me = fdn.current()
      local t = fdn.spawn(function() return fdn.current() end)
      assert.equal(t, t:join())
      assert.are_not.equal(me, t)
    end)
  end)

  it("finishes tasks whose handles were dropped", function()
    local done = 0
    fdn.run(function()
      for _ = 1, 200 do
        fdn.spawn(function()
          fdn.sleep(0.001)
          collectgarbage()
          done = done + 1
        end)
      end
      collectgarbage()
    end, { clock = "virtual" })
    assert.equal(200, done)
  end)

  it("treats a bare coroutine.yield in a task like fdn.sleep(0) #fifo", function()
    local order = {}
    T.run(function()
      local a = fdn.spawn(function()
        order[#order + 1] = "a1"
        coroutine.yield("ignored")
        order[#order + 1] = "a2"
      end)
      local b = fdn.spawn(function() order[#order + 1] = "b" end)
      fdn.gather(a, b)
    end)
    assert.same({ "a1", "b", "a2" }, order)
  end)

  it("spawns and joins 100k tasks", function()
    -- Under FDN_GC_STRESS=task every resume collects the whole heap, so
    -- the count is cut: 100k tasks would take hours there.
    local n = os.getenv("FDN_GC_STRESS") == "task" and 2000 or 100000
    local sum = fdn.run(function()
      local tasks = {}
      for i = 1, n do
        tasks[i] = fdn.spawn(function()
          fdn.sleep(0)
          return i
        end)
      end
      local results = fdn.gather(tasks)
      local s = 0
      for i = 1, n do
        assert(results[i] == i)
        s = s + results[i]
      end
      return s
    end)
    assert.equal(n * (n + 1) / 2, sum)
  end)

  it("rejects a non-function with InvalidArgument", T.async(function()
    local ok, err = pcall(fdn.spawn, 12)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    assert.matches("fdn.spawn", err.message)
    assert.matches("'fn'", err.message)
    ok, err = pcall(fdn.spawn_with, { name = 3 }, function() end)
    assert.is_false(ok)
    assert.matches("opts.name", err.message)
  end))

  it("refuses to spawn without a running engine", function()
    local ok, err = pcall(fdn.spawn, function() end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidState))
    assert.matches("no engine is running", err.message)
  end)

  it("reports a failed task nobody joined, exactly once", function()
    local reports = {}
    local saved = fdn.report
    fdn.report = function(kind, info) reports[#reports + 1] = { kind, info } end
    local ok = pcall(T.run, function()
      fdn.spawn(function() error("lost?", 0) end)
      local joined = fdn.spawn(function() error("seen", 0) end)
      fdn.sleep(0.001)
      joined:wait()
    end)
    collectgarbage()
    collectgarbage()
    fdn.report = saved
    assert.is_true(ok)
    assert.equal(1, #reports)
    assert.equal("unjoined_task_failed", reports[1][1])
    assert.equal("lost?", reports[1][2].error)
    assert.matches("task_spec.lua", reports[1][2].traceback)
  end)
end)

describe("core.park and core.wake", function()
  local core = require "fdn.core"

  it("wakes a parked task with a value, and nothing else", T.async(function()
    local parked = fdn.spawn(function()
      return core.park()
    end)
    local sleeper = fdn.spawn(fdn.sleep, 0.01)
    fdn.sleep(0)
    assert.is_false(core.wake(sleeper, "no"))
    assert.equal("waiting", sleeper:status())
    collectgarbage()
    assert.is_true(core.wake(parked, "value"))
    assert.is_false(core.wake(parked, "twice"))
    local st, v = parked:join()
    assert.is_false(st)
    assert.equal("value", v)
    sleeper:join()
  end))

  it("returns the cancellation pair when a parked task is cancelled", T.async(function()
    local t = fdn.spawn(function() return core.park() end)
    fdn.sleep(0)
    assert.equal("fdn.park", t:describe().waiting_in)
    t:cancel()
    local st, cause = t:join()
    assert.equal(core.ECANCELED, st)
    assert.equal(core.CANCEL_TASK, cause)
  end))
end)
