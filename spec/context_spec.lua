local fdn = require "fdn"
local T = require "fdn.testing"
local errors = fdn.errors

describe("fdn.context", function()
  it("sets and gets values within a task", T.async(function()
    assert.is_nil(fdn.context.get("request_id"))
    fdn.context.set("request_id", "r-1")
    assert.equal("r-1", fdn.context.get("request_id"))
  end))

  it("is inherited by spawned tasks, copy-on-write", T.async(function()
    fdn.context.set("user", "ann")
    local child = fdn.spawn(function()
      local seen = fdn.context.get("user")
      fdn.context.set("user", "bob")
      return seen, fdn.context.get("user")
    end)
    local seen, changed = child:join()
    assert.equal("ann", seen)
    assert.equal("bob", changed)
    assert.equal("ann", fdn.context.get("user"))
  end))

  it("adds fields for the duration of with(), also on error", T.async(function()
    local inner = fdn.context.with({ op = "load" }, function()
      fdn.sleep(0)
      return fdn.context.get("op")
    end)
    assert.equal("load", inner)
    assert.is_nil(fdn.context.get("op"))
    local ok = pcall(fdn.context.with, { op = "x" }, function() error("boom") end)
    assert.is_false(ok)
    assert.is_nil(fdn.context.get("op"))
  end))

  it("keeps each task's context separate across suspensions", function()
    local seen, order = {}, {}
    T.run(function()
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = fdn.spawn(function()
          fdn.context.set("i", i)
          fdn.sleep(0.001 * (6 - i))
          seen[i] = fdn.context.get("i")
          order[#order + 1] = i
        end)
      end
      fdn.gather(tasks)
    end)
    assert.same({ 1, 2, 3, 4, 5 }, seen)
    -- They resumed in the reverse of the order they set their values.
    assert.same({ 5, 4, 3, 2, 1 }, order)
  end)

  it("works outside any task too", function()
    fdn.context.with({ script = "x" }, function()
      assert.equal("x", fdn.context.get("script"))
    end)
    assert.is_nil(fdn.context.get("script"))
  end)

  it("gives the main task of a run the process-wide context", function()
    fdn.context.with({ service = "billing" }, function()
      fdn.run(function()
        assert.equal("billing", fdn.context.get("service"))
        fdn.context.set("request_id", "r-1")
        assert.equal("billing", fdn.context.get("service"))
        assert.equal("r-1", fdn.spawn(fdn.context.get, "request_id"):join())
      end)
      assert.is_nil(fdn.context.get("request_id"))
    end)
    assert.is_nil(fdn.context.get("service"))
  end)

  it("removes a key set to nil, and restores inherited context after with()", function()
    fdn.run(function()
      fdn.context.set("a", 1)
      fdn.context.set("a", nil)
      assert.is_nil(fdn.context.get("a"))
      assert.is_nil(next(fdn.context.current()))
    end)
  end)

  it("keeps private keys of fdn modules out of the way", function()
    local key = {}
    fdn.run(function()
      fdn.context._set(key, "mine")
      assert.equal("mine", fdn.context._get(key))
      assert.equal("mine", fdn.spawn(fdn.context._get, key):join())
    end)
    assert.is_nil(fdn.context._get(key))
  end)

  it("rejects bad arguments", function()
    local ok, err = pcall(fdn.context.set, 1, 2)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    ok, err = pcall(fdn.context.with, "x", function() end)
    assert.is_false(ok)
    assert.matches("'fields'", err.message)
    ok, err = pcall(fdn.context.with, {}, 5)
    assert.is_false(ok)
    assert.matches("'fn'", err.message)
    ok, err = pcall(fdn.context.get, 5)
    assert.is_false(ok)
    assert.matches("fdn.context.get: bad argument 'key'", err.message)
  end)
end)

describe("fdn.events", function()
  local events = require "fdn.events"
  after_each(function() events.reset() end)

  it("delivers to exact, prefix and catch-all subscribers in order", function()
    local got = {}
    events.subscribe("retry.attempt", function(name) got[#got + 1] = "exact:" .. name end)
    events.subscribe("retry.*", function(name) got[#got + 1] = "prefix:" .. name end)
    events.subscribe("*", function(name) got[#got + 1] = "all:" .. name end)
    events.emit("retry.attempt", {})
    events.emit("cache.hit", {})
    assert.same({ "exact:retry.attempt", "prefix:retry.attempt", "all:retry.attempt",
      "all:cache.hit" }, got)
  end)

  it("passes the data and stops delivering after unsubscribe", function()
    local got = {}
    local off = events.subscribe("x", function(_, data) got[#got + 1] = data.n end)
    events.emit("x", { n = 1 })
    off()
    off()
    events.emit("x", { n = 2 })
    assert.same({ 1 }, got)
    assert.is_false(events.has("x"))
  end)

  it("reports a failing subscriber without breaking the emitter or the others", function()
    local reports, got = {}, {}
    local saved = fdn.report
    fdn.report = function(kind, info) reports[#reports + 1] = { kind, info } end
    events.subscribe("e", function() error("subscriber broke", 0) end)
    events.subscribe("e", function() got[#got + 1] = true end)
    events.emit("e", {})
    fdn.report = saved
    assert.equal(1, #got)
    assert.equal("event_subscriber_failed", reports[1][1])
    assert.equal("subscriber broke", reports[1][2].error)
  end)

  it("matches suffix patterns, and callable tables subscribe too", function()
    local got = {}
    events.subscribe("*.failed", function(name) got[#got + 1] = name end)
    events.subscribe("batch.flushed", setmetatable({}, {
      __call = function(_, name) got[#got + 1] = "callable:" .. name end,
    }))
    events.emit("retry.failed", {})
    events.emit("failed", {})
    events.emit("batch.flushed", {})
    events.emit("batch.failed_twice", {})
    assert.same({ "retry.failed", "callable:batch.flushed" }, got)
    assert.is_true(events.has("x.failed"))
    assert.is_false(events.has("x.failing"))
  end)

  it("lets a subscriber unsubscribe while the event is delivered", function()
    local got = {}
    local off
    off = events.subscribe("e", function() got[#got + 1] = 1 off() end)
    events.subscribe("e", function() got[#got + 1] = 2 end)
    events.emit("e")
    events.emit("e")
    assert.same({ 1, 2, 2 }, got)
  end)

  it("reports a failing subscriber with its traceback", function()
    local reports = {}
    local saved = fdn.report
    fdn.report = function(kind, info) reports[#reports + 1] = { kind, info } end
    events.subscribe("e", function() error(errors.Closed.new("gone")) end)
    events.emit("e", {})
    fdn.report = saved
    assert.is_true(errors.is(reports[1][2].error, errors.Closed))
    assert.equal("e", reports[1][2].event)
    assert.matches("context_spec.lua", reports[1][2].traceback)
  end)

  it("keeps working when names are made up without end", function()
    local n = 0
    events.subscribe("id.*", function() n = n + 1 end)
    for i = 1, 10000 do
      events.emit("id." .. i, nil)
    end
    assert.equal(10000, n)
  end)

  it("rejects bad arguments", function()
    local ok, err = pcall(events.subscribe, "", function() end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    ok, err = pcall(events.subscribe, "x", 5)
    assert.is_false(ok)
    assert.matches("'fn'", err.message)
    ok, err = pcall(events.subscribe, nil, function() end)
    assert.is_false(ok)
    assert.matches("'pattern'", err.message)
    ok, err = pcall(events.emit, 5, {})
    assert.is_false(ok)
    assert.matches("fdn.events.emit: bad argument 'name'", err.message)
    ok, err = pcall(events.has, {})
    assert.is_false(ok)
    assert.matches("fdn.events.has: bad argument 'name'", err.message)
  end)

  describe("task lifecycle", function()
    it("emits task.failed with the task, its error and traceback, in the task's context", function()
      local got = {}
      events.subscribe("task.failed", function(name, data)
        got[#got + 1] = { name = name, data = data, op = fdn.context.get("operation_id") }
      end)
      fdn.run(function()
        fdn.context.set("operation_id", "op-1")
        local t = fdn.spawn_with({ name = "loader" }, function()
          error(errors.Timeout.new("slow"))
        end)
        assert.is_false((t:wait()))
        local ok = fdn.spawn(function() return 1 end):wait()
        assert.is_true(ok)
      end)
      assert.equal(1, #got)
      local data = got[1].data
      assert.equal("task.failed", got[1].name)
      assert.equal("loader", data.name)
      assert.equal("number", type(data.task_id))
      assert.is_true(errors.is(data.error, errors.Timeout))
      assert.matches("context_spec.lua", data.traceback)
      assert.equal("op-1", got[1].op)
    end)

    it("emits task.cancelled, also for a task cancelled before it ran", function()
      local got = {}
      events.subscribe("task.*", function(name, data) got[#got + 1] = { name, data } end)
      fdn.run(function()
        local sleeper = fdn.spawn(fdn.sleep, 10)
        fdn.sleep(0)
        sleeper:cancel("shutting down")
        sleeper:wait()
        local unstarted = fdn.spawn(function() end)
        unstarted:cancel()
        unstarted:wait()
      end, { clock = "virtual" })
      assert.equal(2, #got)
      assert.equal("task.cancelled", got[1][1])
      assert.matches("shutting down", got[1][2].reason)
      assert.is_true(errors.is(got[1][2].error, errors.Cancelled))
      assert.equal("task.cancelled", got[2][1])
      assert.matches("before it started", got[2][2].reason)
    end)

    it("survives subscribers that raise or try to suspend", function()
      local reports = {}
      local saved = fdn.report
      fdn.report = function(kind, info) reports[#reports + 1] = { kind, info } end
      events.subscribe("task.failed", function() error("subscriber broke", 0) end)
      events.subscribe("task.failed", function() fdn.sleep(1) end)
      local value = fdn.run(function()
        local t = fdn.spawn(function() error("x", 0) end)
        t:wait()
        return "still running"
      end)
      fdn.report = saved
      assert.equal("still running", value)
      assert.equal(2, #reports)
      assert.equal("subscriber broke", reports[1][2].error)
      assert.matches("cannot suspend", tostring(reports[2][2].error))
    end)

    it("stops emitting once nobody listens", function()
      local n = 0
      local off = events.subscribe("task.failed", function() n = n + 1 end)
      local function fail_one()
        fdn.run(function()
          fdn.spawn(function() error("x", 0) end):wait()
        end)
      end
      fail_one()
      off()
      fail_one()
      events.subscribe("task.failed", function() n = n + 1 end)
      events.reset()
      fail_one()
      assert.equal(1, n)
    end)
  end)
end)
