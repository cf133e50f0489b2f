local fdn = require "fdn"
local errors = fdn.errors
local events = require "fdn.events"

local VIRTUAL = { clock = "virtual" }

local module_manager = fdn.TaskManager.new { max_concurrent = 2, name = "module" } -- no engine yet

local function expect_error(class, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(errors.is(err, class), "expected " .. tostring(class) .. ", got " .. tostring(err))
  return err
end

-- Runs fn under a virtual clock with fdn.report captured.
local function run_capturing_reports(fn)
  local reports = {}
  local saved = fdn.report
  fdn.report = function(kind, info) reports[#reports + 1] = { kind = kind, info = info } end
  local ok, err = pcall(fdn.run, fn, VIRTUAL)
  collectgarbage()
  collectgarbage()
  fdn.report = saved
  return ok, err, reports
end

describe("fdn.TaskManager", function()
  after_each(function()
    events.reset()
  end)

  it("never runs more than max_concurrent children at a time, over hundreds", function()
    local in_flight, max_in_flight, done = 0, 0, 0
    fdn.run(function()
      fdn.with(fdn.TaskManager.new { max_concurrent = 8 }, function(tm)
        for i = 1, 400 do
          tm:create_task(function()
            in_flight = in_flight + 1
            max_in_flight = math.max(max_in_flight, in_flight)
            fdn.sleep((i % 7) * 0.01)
            in_flight = in_flight - 1
            done = done + 1
          end)
        end
        assert.equal(400, tm:active())
      end)
    end, VIRTUAL)
    assert.equal(8, max_in_flight)
    assert.equal(400, done)
  end)

  it("returns each Task at once and starts children in creation order #fifo", function()
    local started = {}
    fdn.run(function()
      fdn.with(fdn.TaskManager.new { max_concurrent = 2 }, function(tm)
        local tasks = {}
        for i = 1, 6 do
          tasks[i] = tm:create_task(function(x)
            started[#started + 1] = x
            fdn.sleep(0.1 * (7 - x))
            return x * x, "dropped"
          end, i)
          assert.equal("ready", tasks[i]:status())
        end
        assert.same({ 1, 4, 9, 16, 25, 36 }, tm:gather(tasks))
        assert.same({ 4, 9 }, tm:gather(tasks[2], tasks[3]))
      end)
    end, VIRTUAL)
    assert.same({ 1, 2, 3, 4, 5, 6 }, started)
  end)

  it("leaves the scope only when every child has finished", function()
    local finished = {}
    fdn.run(function()
      local t0 = fdn.now()
      local tm = fdn.TaskManager.new()
      fdn.with(tm, function()
        for i = 1, 5 do
          tm:create_task(function()
            fdn.sleep(i)
            finished[i] = true
          end)
        end
      end)
      assert.equal(5, fdn.now() - t0)
      assert.equal(0, tm:active())
    end, VIRTUAL)
    assert.same({ true, true, true, true, true }, finished)
  end)

  it("waits for children longer than the cleanup timeout when nothing failed", function()
    local done = false
    fdn.run(function()
      fdn.with(fdn.TaskManager.new(), function(tm)
        tm:create_task(function()
          fdn.sleep(fdn.cleanup_timeout * 20)
          done = true
        end)
      end)
    end, VIRTUAL)
    assert.is_true(done)
  end)

  it("cancels the siblings and the body when a child fails, and raises that error", function()
    local boom = errors.Error.new("boom")
    local late = errors.Error.new("late cleanup failure")
    local sibling, body_reached_end, seen
    local ok, err, reports = run_capturing_reports(function()
      events.subscribe("task_manager.task_failed", function(_, data) seen = seen or data end)
      fdn.with(fdn.TaskManager.new { name = "fetchers" }, function(tm)
        sibling = tm:create_task(function()
          local slept = pcall(fdn.sleep, 60)
          assert(not slept)
          error(late) -- fails while cancelled: attached, not lost
        end)
        tm:create_task(function()
          fdn.sleep(1)
          error(boom)
        end)
        fdn.sleep(3600)
        body_reached_end = true
      end)
    end)
    assert.is_false(ok)
    assert.equal(boom, err) -- the original value
    assert.same({ late }, err.suppressed)
    assert.is_nil(body_reached_end)
    assert.equal("failed", sibling:status())
    assert.equal("fetchers", seen.name)
    assert.equal(boom, seen.error)
    -- Every failure reached the caller: nothing is reported as unjoined.
    assert.same({}, reports)
  end)

  it("raises a child's string error as is", function()
    local ok, err = pcall(fdn.run, function()
      fdn.with(fdn.TaskManager.new(), function(tm)
        tm:create_task(function() error("plain failure", 0) end)
        tm:create_task(function() fdn.sleep(10) end)
      end)
    end, VIRTUAL)
    assert.is_false(ok)
    assert.equal("plain failure", err)
  end)

  it("keeps a failing child's own traceback (children run unwrapped)", function()
    local child
    pcall(fdn.run, function()
      fdn.with(fdn.TaskManager.new(), function(tm)
        child = tm:create_task(function()
          local function deep_inside_the_child()
            error("plain", 0)
          end
          deep_inside_the_child()
        end)
      end)
    end)
    assert.equal("failed", child:status())
    assert.matches("deep_inside_the_child", child:traceback())
    assert.not_matches("task_manager%.lua", child:traceback())
  end)

  it("reports the other failures when the raised error cannot carry them", function()
    local ok, err, reports = run_capturing_reports(function()
      fdn.with(fdn.TaskManager.new { collect_errors = false }, function(tm)
        tm:create_task(function() fdn.sleep(1) error("first", 0) end)
        tm:create_task(function()
          pcall(fdn.sleep, 10)
          error(errors.Error.new("second, while cancelled"))
        end)
      end)
    end)
    assert.is_false(ok)
    assert.equal("first", err)
    assert.equal(1, #reports)
    assert.equal("suppressed_error", reports[1].kind)
    assert.matches("second, while cancelled", reports[1].info.message)
  end)

  it("ends a child cancelled while it waits for a slot without running it", function()
    local ran = {}
    fdn.run(function()
      fdn.with(fdn.TaskManager.new { max_concurrent = 1 }, function(tm)
        local first = tm:create_task(function() fdn.sleep(1) ran[#ran + 1] = 1 end)
        local second = tm:create_task(function() ran[#ran + 1] = 2 end)
        local third = tm:create_task(function() ran[#ran + 1] = 3 end)
        assert.equal(3, tm:active())
        second:cancel()
        fdn.gather({ first, second, third }, { return_errors = true })
        assert.equal("cancelled", second:status())
      end)
    end, VIRTUAL)
    assert.same({ 1, 3 }, ran)
  end)

  it("refuses new children once a failure is stopping it", function()
    local refused
    pcall(fdn.run, function()
      fdn.with(fdn.TaskManager.new(), function(tm)
        tm:create_task(function()
          fdn.sleep(0.5)
          error("first", 0)
        end)
        tm:create_task(function()
          local ok = pcall(fdn.sleep, 10)
          if not ok then
            refused = select(2, pcall(tm.create_task, tm, function() end))
          end
        end)
      end)
    end, VIRTUAL)
    assert.is_true(errors.is(refused, errors.Closed))
  end)

  it("cancels the children when the body fails, and raises the body's error", function()
    local child
    local ok, err = pcall(fdn.run, function()
      fdn.with(fdn.TaskManager.new(), function(tm)
        child = tm:create_task(function() fdn.sleep(60) end)
        fdn.sleep(1)
        error("body broke", 0)
      end)
    end, VIRTUAL)
    assert.is_false(ok)
    assert.equal("body broke", err)
    assert.equal("cancelled", child:status())
  end)

  it("with collect_errors keeps siblings running and collects their errors", function()
    local finished = 0
    local tm = fdn.TaskManager.new { collect_errors = true, max_concurrent = 2 }
    local ok, _, reports = run_capturing_reports(function()
      fdn.with(tm, function()
        for i = 1, 6 do
          tm:create_task(function()
            fdn.sleep(i)
            if i % 2 == 0 then
              error("failed " .. i, 0)
            end
            finished = finished + 1
          end)
        end
      end)
    end)
    assert.is_true(ok)
    assert.equal(3, finished)
    assert.same({ "failed 2", "failed 4", "failed 6" }, tm:errors())
    assert.same({}, reports)
  end)

  it("cancels the children and raises Cancelled when its task is cancelled", function()
    local child_cleaned = false
    fdn.run(function()
      local child
      local owner = fdn.spawn(function()
        fdn.with(fdn.TaskManager.new(), function(tm)
          child = tm:create_task(function()
            local ok = pcall(fdn.sleep, 60)
            fdn.shielded(function() fdn.sleep(0.1) end)
            child_cleaned = not ok
          end)
        end)
      end)
      fdn.sleep(1) -- the owner waits in the scope's exit by now
      owner:cancel("shutting down")
      local ok, err = owner:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.equal("done", child:status()) -- it caught the cancellation and cleaned up
    end, VIRTUAL)
    assert.is_true(child_cleaned)
  end)

  it("does not hang on a child cancelled before it ever ran", function()
    fdn.run(function()
      fdn.with(fdn.TaskManager.new { max_concurrent = 1 }, function(tm)
        local a = tm:create_task(function() fdn.sleep(1) return "a" end)
        local b = tm:create_task(function() return "never" end)
        b:cancel()
        assert.equal("a", a:join())
        local ok, err = b:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Cancelled))
      end)
    end, VIRTUAL)
  end)

  it("lets children create more children while the scope waits", function()
    local count = 0
    fdn.run(function()
      fdn.with(fdn.TaskManager.new { max_concurrent = 3 }, function(tm)
        local function spread(depth)
          count = count + 1
          fdn.sleep(0.1)
          if depth < 4 then
            tm:create_task(spread, depth + 1)
            tm:create_task(spread, depth + 1)
          end
        end
        tm:create_task(spread, 1)
      end)
    end, VIRTUAL)
    assert.equal(15, count)
  end)

  it("can be entered again once closed, and emits task_manager.closed", function()
    local closed = {}
    fdn.run(function()
      events.subscribe("task_manager.closed", function(_, data) closed[#closed + 1] = data end)
      local tm = fdn.TaskManager.new { name = "again" }
      for _ = 1, 2 do
        fdn.with(tm, function()
          tm:create_task(function() end)
        end)
      end
      local err = expect_error(errors.InvalidState, tm.create_task, tm, function() end)
      assert.matches("TaskManager 'again':create_task", err.message)
    end)
    assert.same({ name = "again", tasks = 1, failed = 0 }, closed[2])
  end)

  it("lets fdn.run break a deadlock inside the scope, waiting children included", function()
    local ok, err = pcall(fdn.run, function()
      local never = fdn.Event.new()
      fdn.with(fdn.TaskManager.new { max_concurrent = 2 }, function(tm)
        for _ = 1, 10 do
          tm:create_task(function() never:wait() end)
        end
      end)
    end, VIRTUAL)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Deadlock))
    -- The engine closed cleanly: another run works.
    assert.equal("after", fdn.run(function() return "after" end))
  end)

  it("made at module level, serves one fdn.run after another", function()
    for round = 1, 2 do
      local r = fdn.run(function()
        return fdn.with(module_manager, function(tm)
          return tm:gather(tm:create_task(function() fdn.sleep(1) return round end),
            tm:create_task(function() return round * 10 end))
        end)
      end, VIRTUAL)
      assert.same({ round, round * 10 }, r)
    end
  end)

  it("must be entered from a task", function()
    local tm = fdn.TaskManager.new()
    expect_error(errors.InvalidState, tm.__enter, tm)
    expect_error(errors.InvalidState, tm.create_task, tm, function() end)
    fdn.run(function()
      fdn.with(tm, function()
        expect_error(errors.InvalidState, tm.__enter, tm)
      end)
    end)
  end)

  it("rejects bad arguments with InvalidArgument naming the parameter", function()
    local TM = fdn.TaskManager
    expect_error(errors.InvalidArgument, TM.new, 5)
    for _, bad in ipairs({ 0, -1, 2.5, "4" }) do
      local err = expect_error(errors.InvalidArgument, TM.new, { max_concurrent = bad })
      assert.matches("opts.max_concurrent", err.message)
    end
    expect_error(errors.InvalidArgument, TM.new, { name = {} })
    TM.new { max_concurrent = math.huge }
    fdn.run(function()
      fdn.with(TM.new(), function(tm)
        local err = expect_error(errors.InvalidArgument, tm.create_task, tm, "nope")
        assert.matches("TaskManager:create_task: bad argument 'fn'", err.message)
      end)
    end)
  end)
end)
