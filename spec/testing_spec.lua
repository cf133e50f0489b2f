local fdn = require "fdn"
local core = require "fdn.core"
local T = require "fdn.testing"
local events = require "fdn.events"
local h = require "helpers"
local errors = fdn.errors

-- Runs a spec file through busted in a subprocess, the way scripts/test.sh
-- runs the suite (same LUA_PATH/LUA_CPATH, inherited), with TAP output.
local function busted_file(source, env)
  local path = h.write_temp(source, "_spec.lua")
  local code, out, err = h.sh((env or "") .. " busted --lua=luajit -o TAP " .. h.quote(path))
  os.remove(path)
  return code, out .. err, path
end

local function find(haystack, needle)
  return haystack:find(needle, 1, true) ~= nil
end

-- The number of the first line of `source` that contains `marker`.
local function line_of(source, marker)
  local n = 1
  for line in source:gmatch("([^\n]*)\n") do
    if find(line, marker) then
      return n
    end
    n = n + 1
  end
  error("marker not found: " .. marker)
end

describe("fdn.testing.run", function()
  it("returns every result of fn", function()
    local a, b, c = T.run(function()
      return 1, nil, "three"
    end)
    assert.equal(1, a)
    assert.is_nil(b)
    assert.equal("three", c)
  end)

  it("runs fn on a fresh engine with a virtual clock by default", function()
    local start, after, clock = T.run(function()
      local t0 = fdn.now()
      fdn.sleep(3600)
      return t0, fdn.now(), core.engine_running():stats().clock
    end)
    assert.equal(0, start)
    assert.equal(3600, after)
    assert.equal("virtual", clock)
    assert.is_nil(core.engine_running())
  end)

  it("runs on the real clock when asked", function()
    local clock, elapsed = T.run(function()
      local t0 = fdn.now()
      fdn.sleep(0.002)
      return core.engine_running():stats().clock, fdn.now() - t0
    end, { clock = "real" })
    assert.equal("real", clock)
    assert.is_true(elapsed >= 0.002)
  end)

  it("re-raises fn's error value, adding the seed to an fdn error's context", function()
    local ok, err = pcall(T.run, function() error("plain", 0) end)
    assert.is_false(ok)
    assert.equal("plain", err)
    local mine = errors.Closed.new("mine")
    ok, err = pcall(T.run, function() fdn.sleep(1) error(mine) end, { seed = 42 })
    assert.is_false(ok)
    assert.equal(mine, err)
    assert.equal(42, err.context.seed)
    assert.matches("seed=42", tostring(err))
  end)

  it("fails on its wall-clock timeout, even under a virtual clock, listing where tasks wait",
    function()
      local source = debug.getinfo(1, "S").short_src
      local ok, err = pcall(T.run, function()
        fdn.spawn_with({ name = "ticker" }, function()
          while true do fdn.sleep(3600) end -- marker:ticker
        end)
        core.park() -- marker:main
      end, { timeout = 0.2 })
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Timeout))
      assert.matches("timed out after 0%.2s of wall%-clock time", err.message)
      assert.matches("virtual time [%d%.e+]+s", err.message)
      assert.matches("^[^\n]*testing_spec.lua:%d+: fdn.testing: test timed out", err.message)
      assert.equal(2, #err.tasks)
      local main, ticker = err.tasks[1], err.tasks[2]
      assert.equal("test", main.name)
      assert.equal("fdn.park", main.waiting_in)
      assert.equal("ticker", ticker.name)
      assert.equal("fdn.sleep", ticker.waiting_in)
      local me = io.open(source):read("*a")
      assert.equal(source .. ":" .. line_of(me, "marker:main"), main.location)
      assert.equal(source .. ":" .. line_of(me, "marker:ticker"), ticker.location)
      assert.is_true(find(err.message, "task " .. main.id .. " (test) waiting in fdn.park at "
        .. main.location))
      assert.matches("%(ticker%) [^\n]*fdn.sleep at " .. ticker.location:gsub("%p", "%%%0"), err.message)
      assert.is_nil(core.engine_running())
      -- The next run gets a fresh engine.
      assert.equal(7, T.run(function() return 7 end))
    end)

  it("stops a task that keeps yielding without ever sleeping", function()
    local ok, err = pcall(T.run, function()
      while true do fdn.sleep(0) end
    end, { timeout = 0.1 })
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Timeout))
    assert.equal("ready", err.tasks[1].status)
  end)

  it("fails with a Leak listing tasks the spec left running, then cancels them", function()
    local cleaned = false
    local ok, err = pcall(T.run, function()
      fdn.spawn_with({ name = "poller" }, function()
        local slept = pcall(fdn.sleep, 10)
        cleaned = not slept
      end)
      fdn.sleep(1)
    end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, T.Leak))
    assert.is_true(errors.is(err, errors.InvalidState))
    assert.equal(1, #err.tasks)
    assert.equal("poller", err.tasks[1].name)
    assert.matches("task %d+ %(poller%) waiting in fdn.sleep at .*testing_spec.lua:%d+", err.message)
    assert.matches("allow_leaks", err.message)
    assert.is_true(cleaned)
  end)

  it("reports a task spawned but never started, with where its function is", function()
    local ok, err = pcall(T.run, function()
      fdn.spawn(function() end)
    end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, T.Leak))
    assert.matches("not started yet %(function at .*testing_spec.lua:%d+%)", err.message)
  end)

  it("lets a spec opt out of leak checks; what is left is cancelled and cleaned up", function()
    local cleaned = false
    assert.equal("ok", T.run(function()
      fdn.spawn(function()
        local slept = pcall(fdn.sleep, 10)
        cleaned = not slept
      end)
      fdn.sleep(0)
      return "ok"
    end, { allow_leaks = true }))
    assert.is_true(cleaned)
  end)

  it("does not count daemon tasks as leaks", function()
    local stopped = false
    T.run(function()
      fdn.spawn_with({ daemon = true }, function()
        local ok = pcall(function() while true do fdn.sleep(1) end end)
        stopped = not ok
      end)
      fdn.sleep(5)
    end)
    assert.is_true(stopped)
  end)

  it("reports a deadlock instead of waiting for the timeout", function()
    local ok, err = pcall(T.run, function()
      local main = fdn.current()
      fdn.spawn(function() main:join() end):join()
    end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Deadlock))
    assert.matches("task:join at .*testing_spec.lua:%d+", err.message)
    assert.equal(2, #err.tasks)
  end)

  it("says when a deadlock comes from sleeping with autojump off", function()
    local ok, err = pcall(T.run, function() fdn.sleep(1) end, { autojump = false })
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.Deadlock))
    assert.matches("autojump off", err.message)
  end)

  it("repeats fdn.random draws for a seed, and differs across seeds", function()
    local function draws(seed)
      return T.run(function()
        local t = {}
        for i = 1, 4 do t[i] = fdn.random(1e6) end
        return t
      end, { seed = seed })
    end
    assert.same(draws(11), draws(11))
    assert.are_not.same(draws(11), draws(12))
  end)

  it("refuses to start inside a running engine", function()
    fdn.run(function()
      local ok, err = pcall(T.run, function() end)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidState))
      assert.matches("already running", err.message)
    end)
  end)

  it("rejects bad arguments with InvalidArgument naming the parameter", function()
    local cases = {
      { { 42 }, "'fn'" },
      { { function() end, "virtual" }, "'opts'" },
      { { function() end, { timeout = 0 } }, "'opts.timeout'" },
      { { function() end, { timeout = -1 } }, "'opts.timeout'" },
      { { function() end, { timeout = 0 / 0 } }, "'opts.timeout'" },
      { { function() end, { timeout = "5" } }, "'opts.timeout'" },
      { { function() end, { clock = "sundial" } }, "'opts.clock'" },
      { { function() end, { seed = 1.5 } }, "'opts.seed'" },
      { { function() end, { autojump = 1 } }, "'opts.autojump'" },
      { { function() end, { timout = 5 } }, "'opts.timout'" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(T.run, unpack(case[1]))
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidArgument))
      assert.is_true(find(err.message, "fdn.testing.run"))
      assert.is_true(find(err.message, case[2]), err.message)
    end
  end)

  it("emits its lifecycle on the event bus", function()
    local seen = {}
    local off = events.subscribe("testing.*", function(name, data)
      seen[#seen + 1] = name .. ":" .. tostring(data.name)
    end)
    T.run(function() end, { name = "probe" })
    pcall(T.run, function() fdn.spawn(function() end) end, { name = "leaky" })
    pcall(T.run, function() core.park() end, { name = "stuck" })
    pcall(T.run, function() while true do fdn.sleep(1) end end, { name = "busy", timeout = 0.05 })
    off()
    assert.same({ "testing.started:probe", "testing.finished:probe",
      "testing.started:leaky", "testing.finished:leaky", "testing.leaked:nil",
      "testing.started:stuck", "testing.finished:stuck",
      "testing.started:busy", "testing.timed_out:busy" }, seen)
  end)
end)

describe("engine:run options", function()
  it("runs until a detached task finishes, leaving the others as they are", function()
    local engine = core.engine_new { clock = "virtual" }
    local other = fdn.spawn(function() fdn.sleep(100) end)
    local task = fdn.spawn(function() fdn.sleep(1) return "first" end)
    local stuck, status = engine:run(task, { detach = true })
    assert.is_nil(stuck)
    assert.equal("done", status)
    assert.equal("first", task:join())
    assert.equal("waiting", other:status())
    assert.equal(1, engine:now())
    status = select(2, engine:run(nil, {}))
    assert.equal("done", status)
    assert.equal("done", other:status())
    engine:close()
  end)

  it("keeps daemons alive across a detached run", function()
    local engine = core.engine_new { clock = "virtual" }
    local daemon = fdn.spawn_with({ daemon = true }, function() fdn.sleep(100) end)
    local task = fdn.spawn(function() fdn.sleep(1) end)
    engine:run(task, { detach = true })
    assert.equal("waiting", daemon:status())
    assert.is_true(daemon:describe().daemon)
    engine:close()
    assert.equal("cancelled", daemon:status())
  end)

  it("validates its options", function()
    local engine = core.engine_new {}
    local ok, err = pcall(engine.run, engine, nil, { timeout = -1 })
    assert.is_false(ok)
    assert.matches("opts.timeout", err.message)
    ok, err = pcall(engine.run, engine, nil, { detach = true })
    assert.is_false(ok)
    assert.matches("'task'", err.message)
    ok, err = pcall(engine.run, engine, nil, 5)
    assert.is_false(ok)
    assert.matches("'opts'", err.message)
    engine:close()
  end)
end)

describe("fdn.testing.clock", function()
  it("advances virtual time from a task, running what falls due in order", function()
    local log = {}
    local now = T.run(function()
      local clock = T.clock()
      fdn.spawn(function()
        for _ = 1, 3 do
          fdn.sleep(1)
          log[#log + 1] = "tick@" .. fdn.now()
        end
      end)
      fdn.spawn(function()
        fdn.sleep(2.5)
        log[#log + 1] = "once@" .. fdn.now()
      end)
      assert.equal(2.5, clock:advance(2.5))
      log[#log + 1] = "advanced@" .. clock:now()
      clock:advance(10)
      return clock:now()
    end, { autojump = false })
    assert.same({ "tick@1", "tick@2", "once@2.5", "advanced@2.5", "tick@3" }, log)
    assert.equal(12.5, now)
  end)

  it("with autojump off, wakes nothing until advanced past its deadline", function()
    T.run(function()
      local clock = T.clock()
      clock:autojump(false)
      local woke = false
      local t = fdn.spawn(function() fdn.sleep(1) woke = true end)
      fdn.sleep(0)
      assert.equal(1, clock:next_deadline())
      clock:advance(0.999)
      assert.is_false(woke)
      clock:advance(0.001)
      assert.is_true(woke)
      assert.is_nil(clock:next_deadline())
      t:join()
      clock:autojump(true)
      fdn.sleep(5)
      assert.equal(6, clock:now())
    end)
  end)

  it("with autojump on, fires nothing past the window before advance returns", function()
    T.run(function()
      local clock = T.clock()
      local woke_at
      local t = fdn.spawn(function() fdn.sleep(10) woke_at = fdn.now() end)
      clock:advance(4)
      assert.is_nil(woke_at)
      assert.equal(4, clock:now())
      t:join()
      assert.equal(10, woke_at)
    end)
  end)

  it("raises Cancelled in a cancelled advance, leaving time where it was", function()
    T.run(function()
      local clock = T.clock()
      local advancer = fdn.spawn(function() clock:advance(100) end)
      fdn.sleep(0)
      assert.equal("clock:advance", advancer:describe().waiting_in)
      advancer:cancel("enough")
      local ok, err = advancer:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.matches("enough", err.message)
      assert.equal(0, clock:now())
    end, { autojump = false })
  end)

  it("advances from outside a task too", function()
    local engine = core.engine_new { clock = "virtual", autojump = false }
    local t = fdn.spawn(function() fdn.sleep(3) return fdn.now() end)
    assert.equal(4, T.clock():advance(4))
    assert.equal(3, t:join())
    engine:close()
  end)

  it("refuses two advancing tasks, a real clock, and bad arguments", function()
    T.run(function()
      local clock = T.clock()
      local first = fdn.spawn(function() clock:advance(5) end)
      fdn.sleep(0)
      local err = T.assert_raises(errors.InvalidState, clock.advance, clock, 1)
      assert.matches("already advancing", err.message)
      first:join()
      for _, bad in ipairs { -1, 0 / 0, math.huge, "1" } do
        err = T.assert_raises(errors.InvalidArgument, clock.advance, clock, bad)
        assert.matches("'seconds'", err.message)
      end
      T.assert_raises(errors.InvalidArgument, clock.autojump, clock, "yes")
    end, { autojump = false })
    T.run(function()
      local err = T.assert_raises(errors.InvalidState, function() T.clock():advance(1) end)
      assert.matches("virtual", err.message)
    end, { clock = "real" })
    local err = T.assert_raises(errors.InvalidState, T.clock)
    assert.matches("no engine is running", err.message)
  end)
end)

describe("fdn.testing.mock_async", function()
  local api
  before_each(function()
    api = {
      fetch = function(url) return "real " .. url end,
    }
  end)

  it("replaces the function, returns what it is told, records calls", function()
    local original = api.fetch
    T.run(function()
      local fetch = T.mock_async(api, "fetch"):returns(200, "ok")
      assert.equal(fetch, api.fetch)
      fdn.sleep(2)
      local caller = fdn.spawn(function() return api.fetch("https://x", { retry = 1 }) end)
      local status, body = caller:join()
      assert.equal(200, status)
      assert.equal("ok", body)
      assert.equal(1, fetch:call_count())
      local call = fetch.calls[1]
      assert.equal(caller, call.task)
      assert.equal(2, call.time)
      assert.equal("https://x", fetch:args(1))
      assert.same({ retry = 1 }, select(2, fetch:args()))
      fetch:restore()
      assert.equal(original, api.fetch)
      fetch:restore()
      assert.equal(original, api.fetch)
    end)
  end)

  it("raises the error value it is given", function()
    local boom = errors.Timeout.new("upstream slow")
    T.run(function()
      T.mock_async(api, "fetch"):raises(boom)
      local ok, err = pcall(api.fetch, "u")
      assert.is_false(ok)
      assert.equal(boom, err)
    end)
  end)

  it("waits its delay on the engine clock, and a cancelled caller stops waiting", function()
    T.run(function()
      T.mock_async(api, "fetch"):delay(2):returns("late")
      assert.equal("late", api.fetch())
      assert.equal(2, fdn.now())
      local caller = fdn.spawn(function() return api.fetch() end)
      fdn.sleep(1)
      caller:cancel()
      local ok, err = caller:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.equal(3, fdn.now())
    end)
  end)

  it("uses queued per-call behaviours in order, then the default", function()
    local e1, e2 = errors.Timeout.new("one"), errors.Closed.new("two")
    T.run(function()
      local fetch = T.mock_async(api, "fetch")
      fetch:raises_once(e1):queue({ raises = e2, delay = 3 }, { returns = { n = 2, nil, "x" } })
        :returns_once("four"):returns("default")
      local got = {}
      for i = 1, 5 do
        local ok, a, b = pcall(api.fetch, i)
        got[i] = { ok, a, b, fdn.now() }
      end
      assert.same({ false, e1, nil, 0 }, got[1])
      assert.same({ false, e2, nil, 3 }, got[2])
      assert.same({ true, nil, "x", 3 }, got[3])
      assert.same({ true, "four", nil, 3 }, got[4])
      assert.same({ true, "default", nil, 3 }, got[5])
      assert.equal(5, fetch:call_count())
    end)
  end)

  it("invokes a function or the original, which may suspend", function()
    T.run(function()
      local fetch = T.mock_async(api, "fetch"):invokes(function(url)
        fdn.sleep(1)
        return "fake " .. url
      end)
      assert.equal("fake a", api.fetch("a"))
      fetch:calls_original()
      assert.equal("real b", api.fetch("b"))
      assert.equal(1, fdn.now())
    end)
  end)

  it("is restored when the run that made it ends, also when it fails", function()
    local original = api.fetch
    T.run(function() T.mock_async(api, "fetch") end)
    assert.equal(original, api.fetch)
    pcall(T.run, function()
      T.mock_async(api, "fetch")
      error("spec failed")
    end)
    assert.equal(original, api.fetch)
    pcall(T.run, function()
      T.mock_async(api, "fetch")
      core.park()
    end, { timeout = 0.05 })
    assert.equal(original, api.fetch)
  end)

  it("restores stacked fakes back to the real function in any order", function()
    local original = api.fetch
    local a = T.mock_async(api, "fetch")
    local b = T.mock_async(api, "fetch")
    a:restore()
    assert.equal(b, api.fetch)
    b:restore()
    assert.equal(original, api.fetch)
  end)

  it("answers luassert's spy assertions", function()
    T.run(function()
      local fetch = T.mock_async(api, "fetch"):returns("r")
      api.fetch("a", 1)
      api.fetch("b", { k = 2 })
      assert.spy(fetch).was.called(2)
      assert.spy(api.fetch).was.called_with("a", 1)
      assert.spy(fetch).was.called_with("b", { k = 2 })
      assert.spy(fetch).was_not.called_with("c")
      assert.spy(fetch).was.called_with(match.is_string(), match.is_table())
      assert.spy(fetch).was.returned_with("r")
      assert.has_error(function() assert.spy(fetch).was.called(3) end)
      fetch:clear()
      assert.spy(fetch).was_not.called()
    end)
  end)

  it("emits testing.mock_called", function()
    local seen = {}
    local off = events.subscribe("testing.mock_called", function(_, d)
      seen[#seen + 1] = d.name .. "#" .. d.call .. ":" .. tostring(d.args[1])
    end)
    T.run(function()
      T.mock_async(api, "fetch")
      api.fetch("u1")
      api.fetch("u2")
    end)
    off()
    assert.same({ "fetch#1:u1", "fetch#2:u2" }, seen)
  end)

  it("rejects bad arguments", function()
    local function bad(param, fn, ...)
      local err = T.assert_raises(errors.InvalidArgument, fn, ...)
      assert.is_true(find(err.message, param), err.message)
    end
    T.run(function()
      bad("'tbl'", T.mock_async, "api", "fetch")
      bad("'name'", T.mock_async, api, nil)
      bad("'name'", T.mock_async, api, "missing")
      local fetch = T.mock_async(api, "fetch")
      bad("'err'", fetch.raises, fetch, nil)
      bad("'err'", fetch.raises_once, fetch, nil)
      bad("'seconds'", fetch.delay, fetch, -1)
      bad("'seconds'", fetch.delay, fetch, 0 / 0)
      bad("'fn'", fetch.invokes, fetch, 5)
      bad("'behaviour'", fetch.queue, fetch)
      bad("'behaviour #1'", fetch.queue, fetch, "x")
      bad("'behaviour #2.retruns'", fetch.queue, fetch, {}, { retruns = {} })
      bad("at most one", fetch.queue, fetch, { returns = {}, raises = "e" })
      bad("'behaviour #1.delay'", fetch.queue, fetch, { delay = -2 })
      bad("'behaviour #1.returns'", fetch.queue, fetch, { returns = 5 })
      bad("'behaviour #1.invokes'", fetch.queue, fetch, { invokes = 5 })
      assert.equal(0, #fetch._queue)
    end)
  end)
end)

describe("fdn.testing.assert_raises", function()
  it("returns the error when its class (or a subclass) was raised", function()
    T.run(function()
      local err = T.assert_raises(errors.InvalidState, function()
        fdn.sleep(1)
        error(errors.Deadlock.new("stuck"))
      end)
      assert.equal("stuck", err.message)
      err = T.assert_raises(errors.Error, error, "any string", 0)
      assert.equal("any string", err)
    end)
  end)

  it("fails, pointing at the asserting line, when nothing or something else is raised", function()
    T.run(function()
      local ok, err = pcall(function() T.assert_raises(errors.Timeout, function() end) end)
      assert.is_false(ok)
      assert.matches("testing_spec.lua:%d+: fdn.testing.assert_raises: expected "
        .. "fdn.errors.Timeout, but the function returned normally", tostring(err))
      ok, err = pcall(T.assert_raises, errors.Timeout, error, errors.Closed.new("shut"))
      assert.is_false(ok)
      assert.matches("but the function raised Closed: shut", tostring(err))
    end)
  end)

  it("lets the task's own cancellation through", function()
    T.run(function()
      local t = fdn.spawn(T.assert_raises, errors.Timeout, fdn.sleep, 10)
      fdn.sleep(0)
      t:cancel()
      local ok, err = t:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
    end)
  end)

  it("rejects a class that is not an fdn error class", function()
    local err = T.assert_raises(errors.InvalidArgument, T.assert_raises, "Timeout", error)
    assert.matches("'class'", err.message)
    err = T.assert_raises(errors.InvalidArgument, T.assert_raises, errors.Timeout, 3)
    assert.matches("'fn'", err.message)
  end)
end)

describe("fdn.testing.eventually", function()
  it("returns pred's value once it holds, polling on the engine clock #fifo", function()
    T.run(function()
      local ready
      fdn.spawn(function() fdn.sleep(3) ready = "yes" end)
      assert.equal("yes", T.eventually(function() return ready end, { interval = 0.5 }))
      assert.equal(3, fdn.now())
    end)
  end)

  it("fails after its timeout with the last error pred raised", function()
    T.run(function()
      local ok, err = pcall(T.eventually, function() error("not yet", 0) end,
        { timeout = 2, interval = 0.5 })
      assert.is_false(ok)
      assert.matches("condition not met within 2s of engine time; last error: not yet", tostring(err))
      assert.equal(2, fdn.now())
    end)
  end)

  it("rejects bad arguments and use outside a task", function()
    local err = T.assert_raises(errors.InvalidState, T.eventually, function() return true end)
    assert.matches("must be called from a task", err.message)
    for _, case in ipairs {
      { { 5 }, "'pred'" },
      { { print, 5 }, "'opts'" },
      { { print, { timeout = -1 } }, "'opts.timeout'" },
      { { print, { interval = 0 } }, "'opts.interval'" },
    } do
      err = T.assert_raises(errors.InvalidArgument, T.eventually, unpack(case[1]))
      assert.matches(case[2], err.message)
    end
  end)
end)

describe("fdn.testing.async", function()
  it("runs a spec body as a task on a fresh virtual-clock engine", T.async(function()
    assert.is_not_nil(fdn.current())
    fdn.sleep(86400)
    assert.equal(86400, fdn.now())
  end))

  it("takes options", T.async(function()
    assert.equal("real", core.engine_running():stats().clock)
    assert.equal(5, core.engine_running():stats().seed)
  end, { clock = "real", seed = 5 }))

  describe("wrapping hooks", function()
    local prepared
    before_each(T.async(function()
      fdn.sleep(2)
      prepared = fdn.now()
    end))

    it("runs each on an engine of its own", T.async(function()
      assert.equal(2, prepared)
      assert.equal(0, fdn.now())
    end))
  end)

  it("rejects bad arguments when wrapping", function()
    local err = T.assert_raises(errors.InvalidArgument, T.async, nil)
    assert.matches("fdn.testing.async", err.message)
    err = T.assert_raises(errors.InvalidArgument, T.async, print, { clock = 1 })
    assert.matches("'opts.clock'", err.message)
  end)
end)

local shared = { fetch = function() return "real" end }
local original_fetch = shared.fetch
local seen_real_fetch = {}

T.describe("fdn.testing.describe", function()
  local server, requests
  before_each(function()
    seen_real_fetch[#seen_real_fetch + 1] = shared.fetch == original_fetch
    T.mock_async(shared, "fetch"):returns("fake")
    requests = {}
    server = fdn.spawn_with({ name = "server" }, function()
      while true do
        fdn.sleep(1)
        requests[#requests + 1] = fdn.now()
      end
    end)
    fdn.sleep(1.5)
  end)

  after_each(function()
    fdn.sleep(1)
    server:cancel()
    server:wait()
  end)

  it("runs hooks and spec on one engine: fixture tasks keep running, time carries on", function()
    assert.equal(1.5, fdn.now())
    assert.same({ 1 }, requests)
    fdn.sleep(2)
    assert.same({ 1, 2, 3 }, requests)
    assert.equal("fake", shared.fetch())
  end)

  it("restores the fakes its hooks made after each spec", function()
    assert.same({ true, true }, seen_real_fetch)
  end)

  T.describe("nested", function()
    before_each(function()
      fdn.sleep(0.5)
    end)

    it("shares the outer block's engine, adding its own hooks #fifo", function()
      assert.equal(2, fdn.now())
      assert.same({ 1, 2 }, requests)
    end)

    it("takes per-spec options", T.async(function()
      assert.equal(2, fdn.now())
    end, { timeout = 30 }))
  end, { timeout = 20 })

  describe("inside a plain describe", function()
    it("still runs on the spec's engine", function()
      assert.equal("waiting", server:status())
    end)
  end)
end)

describe("fdn.testing.describe, after its specs", function()
  it("left no engine bound and restored every fake", function()
    assert.is_nil(core.engine_running())
    assert.equal(original_fetch, shared.fetch)
  end)

  it("rejects bad arguments", function()
    local err = T.assert_raises(errors.InvalidArgument, T.describe, 5, function() end)
    assert.matches("'name'", err.message)
    err = T.assert_raises(errors.InvalidArgument, T.describe, "x", "body")
    assert.matches("'fn'", err.message)
    err = T.assert_raises(errors.InvalidArgument, T.describe, "x", function() end, { timout = 1 })
    assert.matches("'opts.timout'", err.message)
    err = T.assert_raises(errors.InvalidState, T.describe, "x", setfenv(function() end, {}))
    assert.matches("busted spec file", err.message)
  end)
end)

describe("fdn.testing in a busted run (subprocess)", function()
  it("fails a hanging spec with the tasks still alive and where each waits", function()
    local source = [[
local fdn = require "fdn"
local T = require "fdn.testing"
describe("job", function()
  it("hangs", T.async(function()
    local heartbeat = fdn.spawn_with({ name = "heartbeat" }, function()
      while true do fdn.sleep(1) end
    end)
    local worker = fdn.spawn_with({ name = "worker" }, function()
      require("fdn.core").park()
    end)
    worker:join()
    heartbeat:cancel()
  end, { timeout = 0.3 }))
  it("passes afterwards", T.async(function() fdn.sleep(1) end))
end)
]]
    local code, out, path = busted_file(source)
    assert.are_not.equal(0, code)
    assert.is_true(find(out, "not ok 1 - job hangs"), out)
    assert.is_true(find(out, "\nok 2 - job passes afterwards"), out)
    assert.is_true(find(out, "Timeout: " .. path .. ":4: fdn.testing: test timed out after 0.3s"), out)
    assert.matches("task %d+ %(test%) waiting in task:join at [^\n]*:11", out)
    assert.matches("task %d+ %(heartbeat%) [^\n]* fdn.sleep at [^\n]*:6", out)
    assert.matches("task %d+ %(worker%) waiting in fdn.park at [^\n]*:9", out)
    assert.matches("seed=%d+", out)
  end)

  it("fails a spec that leaves work behind, and lets one opt out", function()
    local source = [[
local fdn = require "fdn"
local T = require "fdn.testing"
describe("job", function()
  it("leaks", T.async(function()
    fdn.spawn_with({ name = "flusher" }, function()
      fdn.sleep(60)
    end)
    fdn.sleep(0)
  end))
  it("opts out", T.async(function()
    fdn.spawn(function() fdn.sleep(60) end)
  end, { allow_leaks = true }))
  it("is pending", T.async(function()
    fdn.sleep(1)
    pending("not written yet")
  end))
end)
]]
    local code, out = busted_file(source)
    assert.are_not.equal(0, code)
    assert.is_true(find(out, "not ok 1 - job leaks"), out)
    assert.is_true(find(out, "\nok 2 - job opts out"), out)
    assert.matches("\nok 3 %- # SKIP [^\n]*not written yet\n", out)
    assert.matches("Leak: [^\n]*:4: fdn.testing: the spec left work behind", out)
    assert.matches("task %d+ %(flusher%) waiting in fdn.sleep at [^\n]*:6", out)
  end)

  it("reports leaks and hangs in T.describe hooks", function()
    local source = [[
local fdn = require "fdn"
local T = require "fdn.testing"
T.describe("fixture leaks", function()
  before_each(function()
    fdn.spawn_with({ name = "fixture" }, function() fdn.sleep(600) end)
  end)
  it("passes its own assertions", function() fdn.sleep(1) end)
end)
T.describe("hook hangs", function()
  before_each(function()
    fdn.spawn(function() while true do fdn.sleep(1) end end)
    require("fdn.core").park()
  end)
  after_each(function() io.write("AFTER-EACH-RAN\n") end)
  it("never runs", function() error("body ran") end)
end, { timeout = 0.2 })
]]
    local code, out = busted_file(source)
    assert.are_not.equal(0, code)
    assert.matches("task %d+ %(fixture%) waiting in fdn.sleep at [^\n]*:5", out)
    assert.matches("before_each timed out after 0.2s", out)
    assert.matches("task %d+ %(before_each%) waiting in fdn.park at [^\n]*:12", out)
    assert.is_false(find(out, "body ran"))
    assert.is_true(find(out, "AFTER-EACH-RAN"))
  end)

  it("prints the seed of a failing spec, and FDN_SEED replays it", function()
    local source = [[
local fdn = require "fdn"
local T = require "fdn.testing"
it("draws", T.async(function()
  error("drew " .. fdn.random(1e9) .. " and " .. fdn.random(1e9), 0)
end))
]]
    local _, out = busted_file(source)
    local seed = out:match("fdn.testing: seed (%d+)")
    local drew = out:match("drew (%d+ and %d+)")
    assert.is_not_nil(seed, out)
    assert.is_not_nil(drew, out)
    local _, again = busted_file(source, "FDN_SEED=" .. seed)
    assert.equal(drew, again:match("drew (%d+ and %d+)"))
    assert.equal(seed, again:match("fdn.testing: seed (%d+)"))
  end)
end)
