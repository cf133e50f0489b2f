local fdn = require "fdn"
local log = require "fdn.log"
local events = require "fdn.events"
local errors = fdn.errors
local EventTracker = fdn.EventTracker

local function vrun(fn)
  return fdn.run(fn, { clock = "virtual" })
end

describe("fdn.EventTracker", function()
  after_each(function()
    events.reset()
    log.configure { level = "info", format = "console", sink = "stderr", levels = {} }
  end)

  it("records name, status, duration, start and metadata, and returns the body's results", function()
    local tr = EventTracker.new()
    local t0 = os.time()
    local a, b = vrun(function()
      return tr:track("data_download", function(ev, url)
        fdn.sleep(2.5)
        ev:add_metadata { size_bytes = 1024, url = url }
        ev:add_metadata { attempt = 1 }
        return "body", 2
      end, "http://x")
    end)
    assert.equal("body", a)
    assert.equal(2, b)
    local list = tr:get_events()
    assert.equal(1, #list)
    local e = list[1]
    assert.equal("data_download", e.name)
    assert.equal("ok", e.status)
    assert.equal(2.5, e.duration)
    assert.same({ size_bytes = 1024, url = "http://x", attempt = 1 }, e.metadata)
    assert.is_nil(e.error)
    assert.is_nil(e.parent)
    -- Unix seconds; the margin allows for the wall clock being stepped.
    assert.is_true(math.abs(e.start - t0) < 300, "start is Unix seconds")
  end)

  it("records failures and cancellations and re-raises the error unchanged", function()
    local tr = EventTracker.new()
    local boom = errors.Error.new("boom")
    vrun(function()
      local ok, err = pcall(tr.track, tr, "parse", function() fdn.sleep(1) error(boom) end)
      assert.is_false(ok)
      assert.equal(boom, err)
      local t = fdn.spawn(function()
        tr:track("download", function() fdn.sleep(100) end)
      end)
      fdn.sleep(3)
      t:cancel()
      assert.is_false((t:wait()))
    end)
    local list = tr:get_events()
    assert.equal("failed", list[1].status)
    assert.equal(boom, list[1].error)
    assert.equal(1, list[1].duration)
    assert.equal("cancelled", list[2].status)
    assert.is_true(errors.is(list[2].error, errors.Cancelled))
    assert.equal(3, list[2].duration)
  end)

  it("knows the parent of a nested track, also across spawned tasks", function()
    local tr = EventTracker.new()
    vrun(function()
      tr:track("job", function(job)
        tr:track("step", function(step)
          assert.equal(job.id, step.parent)
          tr:track("substep", function() end)
        end)
        local child = fdn.spawn(function()
          fdn.sleep(1)
          return tr:track("in_child", function(ev) return ev.parent end)
        end)
        assert.equal(job.id, child:join())
      end)
      tr:track("after", function() end)
    end)
    local by = {}
    for _, e in ipairs(tr:get_events()) do
      by[e.name] = e
    end
    assert.equal(by.job.id, by.step.parent)
    assert.equal("job", by.step.parent_name)
    assert.equal(by.step.id, by.substep.parent)
    assert.equal(by.job.id, by.in_child.parent)
    assert.is_nil(by.job.parent)
    assert.is_nil(by.after.parent)
  end)

  it("keeps siblings in concurrent tasks apart, and trackers apart from each other", function()
    local tr, other = EventTracker.new(), EventTracker.new()
    vrun(function()
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = fdn.spawn(function()
          return tr:track("sibling", function(ev)
            fdn.sleep(i)
            return other:track("other", function(o) return o.parent end), ev.parent
          end)
        end)
      end
      for i = 1, 3 do
        local other_parent, parent = tasks[i]:join()
        assert.is_nil(other_parent)
        assert.is_nil(parent)
      end
    end)
    assert.equal(3, #tr:get_events())
  end)

  it("keeps at most max_events, dropping the oldest and counting them", function()
    local tr = EventTracker.new { max_events = 3 }
    for i = 1, 5 do
      tr:track("e" .. i, function() end)
    end
    local names = {}
    for i, e in ipairs(tr:get_events()) do
      names[i] = e.name
    end
    assert.same({ "e3", "e4", "e5" }, names)
    assert.equal(2, tr:dropped())
    assert.equal(1, tr:summary().e1.count) -- counts survive the drop
    assert.equal(0, tr:summary().e1.kept)
    tr:clear()
    assert.same({}, tr:get_events())
    assert.equal(0, tr:dropped())
    assert.same({}, tr:summary())
  end)

  it("summarises count, failures and p50/p95 duration per name", function()
    local tr = EventTracker.new()
    vrun(function()
      for i = 1, 20 do
        pcall(tr.track, tr, "fetch", function()
          fdn.sleep(i)
          if i % 5 == 0 then error("every fifth fails") end
        end)
      end
      tr:track("other", function() fdn.sleep(0.5) end)
    end)
    local s = tr:summary()
    assert.equal(20, s.fetch.count)
    assert.equal(4, s.fetch.failures)
    assert.equal(0, s.fetch.cancelled)
    assert.equal(10, s.fetch.p50)
    assert.equal(19, s.fetch.p95)
    assert.equal(20, s.fetch.max)
    assert.equal(10.5, s.fetch.mean)
    assert.equal(1, s.other.count)
    assert.equal(0.5, s.other.p50)
    assert.equal(0.5, s.other.p95)
  end)

  it("emits each recorded event on the bus", function()
    local got = {}
    events.subscribe("event_tracker.recorded", function(_, data) got[#got + 1] = data end)
    local tr = EventTracker.new()
    tr:track("x", function(ev) ev:add_metadata { n = 1 } end)
    assert.equal(1, #got)
    assert.equal("x", got[1].name)
    assert.equal("ok", got[1].status)
    assert.equal(1, got[1].metadata.n)
  end)

  it("does not put its bookkeeping into log records", function()
    local records = {}
    log.configure { level = "info", sink = function(r) records[#records + 1] = r end }
    local tr = EventTracker.new()
    vrun(function()
      tr:track("x", function() log.info("inside") end)
    end)
    for k in pairs(records[1]) do
      assert.equal("string", type(k))
    end
  end)

  it("rejects bad arguments", function()
    local tr = EventTracker.new()
    local cases = {
      { function() EventTracker.new(5) end, "'opts'" },
      { function() EventTracker.new { max_events = 0 } end, "opts.max_events" },
      { function() EventTracker.new { max_events = 1.5 } end, "opts.max_events" },
      { function() tr:track(nil, function() end) end, "'name'" },
      { function() tr:track("x") end, "'fn'" },
      { function() tr.track({}, "x", function() end) end, "'self'" },
      { function() tr.get_events() end, "'self'" },
      { function() tr.summary(5) end, "'self'" },
      { function() tr.clear() end, "'self'" },
      { function() tr.dropped() end, "'self'" },
      { function() tr:track("x", function(ev) ev:add_metadata(5) end) end, "'fields'" },
      { function() tr:track("x", function(ev) ev.add_metadata({}, {}) end) end, "'self'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok, c[2])
      assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
      assert.matches(c[2], err.message)
    end
    assert.equal(math.huge, EventTracker.new { max_events = math.huge }._max)
  end)
end)
