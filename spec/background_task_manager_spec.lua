local fdn = require "fdn"
local errors = fdn.errors
local events = require "fdn.events"
local log = require "fdn.log"
local h = require "helpers"

local function vrun(fn, opts)
  opts = opts or {}
  opts.clock = "virtual"
  return fdn.run(fn, opts)
end

local function capture_logs()
  local records = {}
  log.configure { level = "debug", sink = function(r) records[#records + 1] = r end }
  return records
end

-- fn that records the engine time of each run start (and can take long).
local function timed(duration)
  local starts = {}
  return function()
    starts[#starts + 1] = fdn.now()
    if duration then
      fdn.sleep(duration)
    end
  end, starts
end

describe("fdn.BackgroundTaskManager", function()
  before_each(function()
    log.configure { level = "info", sink = function() end }
  end)

  after_each(function()
    events.reset()
    log.configure { level = "info", sink = "stderr", format = "console" }
  end)

  describe("schedules", function()
    it("runs at once and then every interval", function()
      local fn, starts = timed(0.1)
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("sync", fn, { interval = 10 })
        fdn.sleep(35)
        m:shutdown()
      end)
      assert.same({ 0, 10, 20, 30 }, starts)
    end)

    it("with run_immediately = false, first runs one interval from now", function()
      local fn, starts = timed()
      vrun(function()
        fdn.sleep(3)
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("sync", fn, { interval = 10, run_immediately = false })
        assert.equal(13, m:status("sync").next_run)
        fdn.sleep(25)
        m:shutdown()
      end)
      assert.same({ 13, 23 }, starts)
    end)

    it("keeps the schedule when a run fails, and logs and counts the failure", function()
      local records = capture_logs()
      local n = 0
      local status
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("flaky", function()
          n = n + 1
          if n % 2 == 0 then
            error(errors.Error.new("upstream down"))
          end
        end, { interval = 1 })
        fdn.sleep(4.5) -- runs at 0 1 2 3 4
        status = m:status().flaky
        m:shutdown()
      end)
      assert.equal(5, n)
      assert.equal(5, status.runs)
      assert.equal(2, status.failures)
      assert.equal(0, status.consecutive_failures)
      assert.is_nil(status.last_error)
      local failed = 0
      for _, r in ipairs(records) do
        if r.event == "background.run_failed" then
          failed = failed + 1
          assert.equal("flaky", r.task)
          assert.equal("upstream down", r.error.message)
        end
      end
      assert.equal(2, failed)
    end)

    it("keeps the last error until a run succeeds", function()
      capture_logs()
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("down", function() error("still down", 0) end, { interval = 1 })
        fdn.sleep(2.5)
        local st = m:status("down")
        assert.equal("still down", st.last_error)
        assert.equal(3, st.consecutive_failures)
        m:shutdown()
      end)
    end)

    it("draws jitter from fdn.random: the same seed gives the same times", function()
      local function times(seed)
        local fn, starts = timed()
        vrun(function()
          local m = fdn.BackgroundTaskManager.new()
          m:start_task("j", fn, { interval = 10, jitter = 0.5 })
          fdn.sleep(100)
          m:shutdown()
        end, { seed = seed })
        return starts
      end
      local a, b, c = times(7), times(7), times(8)
      assert.same(a, b)
      assert.are_not.same(a, c)
      assert.equal(0, a[1]) -- run_immediately is not delayed
      for i = 2, #a do
        local tick = (i - 1) * 10
        assert.is_true(a[i] >= tick and a[i] < tick + 5, "run " .. i .. " at " .. a[i])
      end
    end)
  end)

  describe("runs that outlast the interval", function()
    it("never overlap; skip (default) skips the missed ticks and counts them", function()
      local active, peak = 0, 0
      local starts = {}
      local skipped_events = 0
      events.subscribe("background.run_skipped", function(_, e)
        skipped_events = skipped_events + e.skipped
      end)
      local status
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("slow", function()
          active = active + 1
          peak = math.max(peak, active)
          starts[#starts + 1] = fdn.now()
          fdn.sleep(2.5)
          active = active - 1
        end, { interval = 1 })
        fdn.sleep(9.5)
        status = m:status("slow")
        m:shutdown()
      end)
      assert.equal(1, peak)
      -- 0 (ends 2.5: ticks 1, 2 missed) 3 (ends 5.5) 6 (ends 8.5) 9
      assert.same({ 0, 3, 6, 9 }, { starts[1], starts[2], starts[3], starts[4] })
      assert.equal(6, status.skipped)
      assert.equal(6, status.missed)
      -- The run at 9 finished during the shutdown, at 11.5: two more.
      assert.equal(8, skipped_events)
    end)

    it("delay: the next run is an interval after the late one finished", function()
      local fn, starts = timed(2.5)
      local status
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("slow", fn, { interval = 1, missed = "delay" })
        fdn.sleep(10)
        status = m:status("slow")
        m:shutdown()
      end)
      assert.same({ 0, 3.5, 7 }, { starts[1], starts[2], starts[3] })
      assert.equal(0, status.skipped)
      assert.is_true(status.missed > 0)
    end)

    it("burst: the missed ticks run back to back until caught up", function()
      local starts = {}
      local slow = true
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("catch_up", function()
          starts[#starts + 1] = fdn.now()
          if slow then
            slow = false
            fdn.sleep(3.5) -- ticks 1, 2, 3 are missed
          else
            fdn.sleep(0.25)
          end
        end, { interval = 1, missed = "burst" })
        fdn.sleep(6.1)
        m:shutdown()
      end)
      -- 0 (ends 3.5), then ticks 1 2 3 run late at 3.5 3.75 4.0, then 4 at 4.25, 5, 6
      assert.same({ 0, 3.5, 3.75, 4, 4.25, 5, 6 }, starts)
    end)

    it("computes next ticks as Tokio's missed-tick behaviours do", function()
      local next_tick = require("fdn.background_task_manager")._next_tick
      local t = { interval = 10 }
      for _, c in ipairs {
        { "skip", 0, 5, 10, 0 }, { "skip", 0, 10, 10, 0 }, { "skip", 0, 10.5, 20, 1 },
        { "skip", 0, 35, 40, 3 }, { "delay", 0, 35, 45, 3 }, { "burst", 0, 35, 10, 3 },
      } do
        t.missed = c[1]
        local tick, missed = next_tick(t, c[2], c[3])
        assert.equal(c[4], tick, c[1] .. " " .. c[3])
        assert.equal(c[5], missed)
      end
    end)
  end)

  describe("control", function()
    it("pause holds the schedule, resume picks it up at the next tick", function()
      local fn, starts = timed(0.5)
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("p", fn, { interval = 2 })
        fdn.sleep(0.2)
        m:pause("p") -- the run in flight finishes
        assert.equal(true, m:status("p").paused)
        fdn.sleep(5) -- t = 5.2: ticks 2 and 4 did not run
        assert.equal("paused", m:status("p").state)
        assert.is_nil(m:status("p").next_run)
        m:resume("p")
        assert.equal(6, m:status("p").next_run)
        fdn.sleep(3)
        m:pause("p")
        m:pause("p")
        m:resume("p")
        m:resume("p")
        fdn.sleep(1)
        m:shutdown()
      end)
      assert.same({ 0, 6, 8 }, starts)
    end)

    it("stop_task lets the run in flight finish and frees the name", function()
      local done = {}
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("s", function()
          fdn.sleep(2)
          done[#done + 1] = fdn.now()
        end, { interval = 10 })
        fdn.sleep(1)
        local st = m:stop_task("s")
        assert.equal(2, fdn.now())
        assert.equal("stopped", st.state)
        assert.equal(1, st.runs)
        assert.is_nil(m:status().s)
        m:start_task("s", function() end, { interval = 10 }) -- the name is free again
        m:shutdown()
      end)
      assert.same({ 2 }, done)
    end)

    it("stop_task cancels a run that outlasts its timeout", function()
      capture_logs()
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        local cleaned = false
        m:start_task("stuck", function()
          fdn.with({ __exit = function() cleaned = true end }, function()
            fdn.sleep(3600)
          end)
        end, { interval = 10 })
        fdn.sleep(1)
        local st = m:stop_task("stuck", { timeout = 5 })
        assert.equal(6, fdn.now())
        assert.is_true(cleaned)
        assert.equal(1, st.cancelled_runs)
        m:shutdown()
      end)
    end)

    it("a run timeout cancels the run and counts it as failed", function()
      capture_logs()
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("t", function() fdn.sleep(100) end, { interval = 10, timeout = 3 })
        fdn.sleep(14)
        local st = m:status("t")
        assert.equal(2, st.runs)
        assert.equal(2, st.failures)
        assert.is_true(errors.is(st.last_error, errors.Timeout))
        m:shutdown()
      end)
    end)

    it("refuses duplicate names", function()
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("dup", function() end, { interval = 1 })
        local ok, err = pcall(m.start_task, m, "dup", function() end, { interval = 1 })
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.InvalidArgument))
        assert.matches("already running", err.message)
        m:shutdown()
      end)
    end)
  end)

  describe("shutdown", function()
    it("waits for runs in flight up to the timeout, then cancels them", function()
      capture_logs()
      local result, ended_at, cleaned
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("quick", function() fdn.sleep(2) end, { interval = 100 })
        m:start_task("stuck", function()
          fdn.with({ __exit = function() cleaned = fdn.now() end }, function()
            fdn.sleep(3600)
          end)
        end, { interval = 100 })
        m:start_task("idle", function() end, { interval = 100, run_immediately = false })
        fdn.sleep(1)
        result = m:shutdown { timeout = 10 }
        ended_at = fdn.now()
        local st = m:status()
        assert.equal("stopped", st.quick.state)
        assert.equal("stopped", st.stuck.state)
        assert.equal("stopped", st.idle.state)
        assert.equal(1, st.quick.runs)
        assert.equal(0, st.idle.runs)
        local ok, err = pcall(m.start_task, m, "late", function() end, { interval = 1 })
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Closed))
        assert.same(result, m:shutdown()) -- again: the same outcome
        assert.is_true(m:is_shut_down())
      end)
      assert.same({ "stuck" }, result.cancelled)
      assert.equal(11, ended_at)
      assert.equal(11, cleaned)
    end)

    it("returns as soon as every run is done", function()
      vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("a", function() fdn.sleep(3) end, { interval = 100 })
        fdn.sleep(1)
        assert.same({ cancelled = {} }, m:shutdown { timeout = 60 })
        assert.equal(3, fdn.now())
      end)
    end)

    it("keeps the engine running until the manager is shut down", function()
      local fn, starts = timed()
      local finished = vrun(function()
        local m = fdn.BackgroundTaskManager.new()
        m:start_task("tick", fn, { interval = 5 })
        fdn.spawn(function()
          fdn.sleep(21)
          m:shutdown()
        end)
        return fdn.now() -- the main task ends here; the manager goes on
      end)
      assert.equal(0, finished)
      assert.same({ 0, 5, 10, 15, 20 }, starts)
    end)

    it("is what fdn.with does on exit", function()
      local fn, starts = timed()
      vrun(function()
        fdn.with(fdn.BackgroundTaskManager.new { shutdown_timeout = 1 }, function(m)
          m:start_task("w", fn, { interval = 1 })
          fdn.sleep(2.5)
        end)
        assert.equal(2.5, fdn.now())
      end)
      assert.same({ 0, 1, 2 }, starts)
    end)
  end)

  describe("events", function()
    it("emits task and run lifecycle events", function()
      local got = {}
      events.subscribe("background.*", function(name, e)
        got[#got + 1] = name .. ":" .. tostring(e.task)
      end)
      capture_logs()
      vrun(function()
        local m = fdn.BackgroundTaskManager.new { name = "mgr" }
        m:start_task("e", function() fdn.sleep(1.5) end, { interval = 1 })
        fdn.sleep(0.5)
        m:stop_task("e")
        m:shutdown()
      end)
      assert.same({ "background.task_started:e", "background.run_started:e",
        "background.run_finished:e", "background.run_skipped:e", "background.task_stopped:e",
        "background.shutdown:nil" }, got)
    end)
  end)

  describe("bad arguments", function()
    local f = function() end
    local cases = {
      { "name", nil, f, { interval = 1 } },
      { "name", "", f, { interval = 1 } },
      { "fn", "n", 42, { interval = 1 } },
      { "opts", "n", f, nil },
      { "opts.interval", "n", f, {} },
      { "opts.interval", "n", f, { interval = 0 } },
      { "opts.interval", "n", f, { interval = -5 } },
      { "opts.interval", "n", f, { interval = math.huge } },
      { "opts.jitter", "n", f, { interval = 1, jitter = 2 } },
      { "opts.jitter", "n", f, { interval = 1, jitter = -0.1 } },
      { "opts.run_immediately", "n", f, { interval = 1, run_immediately = "yes" } },
      { "opts.missed", "n", f, { interval = 1, missed = "catch_up" } },
      { "opts.timeout", "n", f, { interval = 1, timeout = 0 } },
    }
    for _, c in ipairs(cases) do
      it("start_task rejects a bad " .. c[1], function()
        local m = fdn.BackgroundTaskManager.new()
        local ok, err = pcall(m.start_task, m, c[2], c[3], c[4])
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
        assert.equal(c[1], err.context.parameter)
      end)
    end

    it("start_task outside any engine fails and leaves the name free", function()
      local m = fdn.BackgroundTaskManager.new()
      local ok, err = pcall(m.start_task, m, "x", function() end, { interval = 1 })
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidState))
      assert.same({}, m:status())
      vrun(function()
        m:start_task("x", function() end, { interval = 1 })
        m:shutdown()
      end)
    end)

    it("rejects unknown names and bad options elsewhere", function()
      local m = fdn.BackgroundTaskManager.new()
      for _, method in ipairs { "stop_task", "pause", "resume", "status" } do
        local ok, err = pcall(m[method], m, "nope")
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.InvalidArgument))
        assert.matches("no task named 'nope'", err.message)
      end
      local ok, err = pcall(m.shutdown, m, { timeout = -1 })
      assert.is_false(ok)
      assert.equal("opts.timeout", err.context.parameter)
      ok, err = pcall(fdn.BackgroundTaskManager.new, { shutdown_timeout = "x" })
      assert.is_false(ok)
      assert.equal("opts.shutdown_timeout", err.context.parameter)
      ok, err = pcall(fdn.BackgroundTaskManager.new, 5)
      assert.is_false(ok)
      assert.equal("opts", err.context.parameter)
    end)
  end)
end)

describe("fdn-lua with a BackgroundTaskManager", function()
  it("shuts managers down on SIGTERM: runs in flight finish within the timeout #signals", function()
    local script = h.write_temp([[
      local m = fdn.BackgroundTaskManager.new { shutdown_timeout = 1 }
      m:start_task("sync", function()
        io.stdout:write("run started\n")
        io.stdout:flush()
        fdn.sleep(0.4)
        io.stdout:write("run finished\n")
        io.stdout:flush()
      end, { interval = 60 })
      m:start_task("stuck", function()
        local ok, err = pcall(fdn.sleep, 3600)
        io.stdout:write("stuck run: ", fdn.errors.format(err):match("^%S+"), "\n")
        io.stdout:flush()
      end, { interval = 60 })
      fdn.on_shutdown(function(sig)
        io.stdout:write("hook: ", sig, "\n")
        io.stdout:flush()
      end)
    ]])
    local t0 = os.time()
    local code, out = h.sh(h.quote(h.fdn_lua_path) .. " " .. h.quote(script)
      .. " & pid=$!; sleep 0.2; kill -TERM $pid; wait $pid")
    assert.equal(143, code)
    assert.matches("run started\n", out)
    assert.matches("run finished\n", out)
    assert.matches("hook: SIGTERM\n", out)
    assert.matches("stuck run: Cancelled:", out)
    assert.is_true(os.time() - t0 < 30)
    os.remove(script)
  end)
end)
