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

  it("rejects bad arguments", function()
    local ok, err = pcall(fdn.context.set, 1, 2)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    ok, err = pcall(fdn.context.with, "x", function() end)
    assert.is_false(ok)
    assert.matches("'fields'", err.message)
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

  it("rejects bad arguments", function()
    local ok, err = pcall(events.subscribe, "", function() end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    ok, err = pcall(events.subscribe, "x", 5)
    assert.is_false(ok)
    assert.matches("'fn'", err.message)
  end)
end)
