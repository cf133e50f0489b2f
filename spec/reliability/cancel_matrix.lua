--- The cancellation matrix (docs/reliability-matrices.md, item 7).
--
-- Each scenario has a "user" task that works a primitive through a
-- typical sequence of suspensions. A dry run counts them (N); then for
-- every k in 1..N the scenario runs again, on a fresh virtual-clock
-- engine, with the user cancelled at its k-th suspension. After each run
-- the scenario's invariants must hold (permits back to the limit, queue
-- and batch counts adding up, every resource closed exactly once...),
-- fdn.testing's leak check must find no task, timer or handle left, and
-- after a full GC the binding's task slots and Lua registry must be back
-- at their baseline.
--
-- How the k-th suspension is found: before fdn loads, the suspending
-- functions of fdn.core are wrapped. When the user enters one, the wrapper
-- spawns a watcher; the watcher runs once the user has yielded, and if the
-- user is still inside that same call, it was a suspension: the watcher
-- counts it and, at k, cancels the user there, while it is parked (or just
-- woken, not yet running: both are real interleavings).
--
--   luajit spec/reliability/cancel_matrix.lua      (make cancel-matrix)
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)reliability/") or "spec/")
  .. "?.lua;" .. package.path

local core = require "fdn.core"

-- The watch, installed before any fdn module captures these functions.
local watch = { target = nil, cancel_at = nil, count = 0, seq = 0, inside = nil, landed = false }
local c_current, c_spawn = core.current, core.spawn

local function leave(mine, ...)
  if watch.inside == mine then
    watch.inside = nil
  end
  return ...
end

local function watched(f)
  return function(...)
    if watch.target == nil or c_current() ~= watch.target then
      return f(...)
    end
    watch.seq = watch.seq + 1
    local mine = watch.seq
    watch.inside = mine
    c_spawn(function()
      if watch.inside == mine and watch.target ~= nil then
        watch.count = watch.count + 1
        if watch.count == watch.cancel_at then
          watch.landed = watch.target:cancel("cancel matrix") ~= false
        end
      end
    end)
    return leave(mine, f(...))
  end
end

for _, name in ipairs { "sleep", "park", "park_for", "limiter_acquire", "queue_get", "queue_put",
  "event_wait", "join_wait", "group_wait", "nursery_wait", "bulkhead_enter" } do
  core[name] = watched(core[name])
end
do
  local batcher_new = core.batcher_new
  core.batcher_new = function(...)
    local c = batcher_new(...)
    c.wait, c.wait_space = watched(c.wait), watched(c.wait_space)
    return c
  end
end

local C = require "reliability.common"
local fdn = C.fdn
local errors = require "fdn.errors"
local T = require "fdn.testing"

local say = C.say
local failures, checked = {}, 0
local figures = { scenarios = 0, runs = 0, suspensions = 0 }

local function fail(text)
  failures[#failures + 1] = text
  say("FAIL " .. text)
end

local function noop() end

-- Values a queue still references (its userdata's environment holds the
-- queued items): must be exactly its length, or an aborted put kept one.
local function queue_refs(q)
  local n = 0
  for _ in pairs(debug.getfenv(q)) do n = n + 1 end
  return n
end

-- Scenarios -------------------------------------------------------------------------
-- setup() runs in the harness task and returns env; user(env) runs as the
-- watched task; settle(env) lets the rest finish (closes, releases);
-- check(env) returns a list of broken invariants.

local S = {}
local function scenario(s)
  S[#S + 1] = s
end

local function expect(problems, cond, text)
  if not cond then
    problems[#problems + 1] = text
  end
end

scenario {
  name = "Semaphore (acquire, with, fdn.with)",
  setup = function()
    local env = { sem = fdn.Semaphore.new(2), holders = {} }
    -- Two holders keep the user waiting for a while, twice.
    for i = 1, 2 do
      env.holders[i] = fdn.spawn(function()
        for _ = 1, 2 do
          env.sem:acquire()
          fdn.sleep(1)
          env.sem:release()
          fdn.sleep(0.5)
        end
      end)
    end
    fdn.sleep(0)
    return env
  end,
  user = function(env)
    -- A bare acquire must be paired with a release however the wait ends,
    -- as Semaphore:with does.
    env.sem:acquire()
    local ok, err = pcall(fdn.sleep, 0.2)
    env.sem:release()
    if not ok then error(err, 0) end
    env.sem:with(function() fdn.sleep(0.3) end)
    fdn.with(env.sem, function() fdn.sleep(0.1) end)
    env.sem:acquire(5)
    env.sem:release()
  end,
  settle = function(env)
    for _, h in ipairs(env.holders) do h:join() end
  end,
  check = function(env)
    local p = {}
    expect(p, env.sem:available() == 2 and env.sem:held() == 0 and env.sem:waiting() == 0,
      string.format("permits: available %d, held %d, waiting %d (limit 2)",
        env.sem:available(), env.sem:held(), env.sem:waiting()))
    return p
  end,
}

scenario {
  name = "Queue put (full) and get (empty)",
  setup = function()
    local env = { q = fdn.Queue.new(2), put = 0, got = 0 }
    env.consumer = fdn.spawn(function()
      for _ = 1, 6 do
        local ok = pcall(function() env.q:get() end)
        if not ok then return end
        env.got = env.got + 1
        fdn.sleep(0.5)
      end
    end)
    return env
  end,
  user = function(env)
    for i = 1, 5 do
      env.q:put(i)
      env.put = env.put + 1
    end
    -- Then read one back as a consumer too (the queue may be empty).
    env.q:put("last")
    env.put = env.put + 1
    env.q:get(3)
    env.got = env.got + 1
  end,
  settle = function(env)
    env.consumer:cancel()
    env.consumer:wait()
  end,
  check = function(env)
    local p = {}
    local getters, putters = env.q:waiting()
    expect(p, env.put == env.got + env.q:len(), string.format(
      "put %d ~= got %d + left %d", env.put, env.got, env.q:len()))
    expect(p, getters == 0 and putters == 0, "waiters left: " .. getters .. ", " .. putters)
    expect(p, queue_refs(env.q) == env.q:len(), string.format(
      "the queue references %d value(s) but holds %d", queue_refs(env.q), env.q:len()))
    return p
  end,
}

scenario {
  name = "Queue get (the user consumes, competing with another)",
  setup = function()
    local env = { q = fdn.Queue.new(3), put = 0, got = 0 }
    env.producer = fdn.spawn(function()
      for i = 1, 8 do
        fdn.sleep(i % 3 == 0 and 1 or 0.25)
        env.q:put(i)
        env.put = env.put + 1
      end
    end)
    env.rival = fdn.spawn(function()
      while true do
        local ok = pcall(env.q.get, env.q)
        if not ok then return end
        env.got = env.got + 1
        fdn.sleep(0.6)
      end
    end)
    return env
  end,
  user = function(env)
    for _ = 1, 4 do
      env.q:get()
      env.got = env.got + 1
    end
    local ok = pcall(env.q.get, env.q, 0.1) -- may time out
    if ok then env.got = env.got + 1 end
  end,
  settle = function(env)
    env.producer:join()
    fdn.sleep(2)
    env.rival:cancel()
    env.rival:wait()
  end,
  check = function(env)
    local p = {}
    local getters, putters = env.q:waiting()
    expect(p, env.put == env.got + env.q:len(), string.format(
      "put %d ~= got %d + left %d: an item was lost or taken twice", env.put, env.got,
      env.q:len()))
    expect(p, getters == 0 and putters == 0, "waiters left: " .. getters .. ", " .. putters)
    expect(p, queue_refs(env.q) == env.q:len(), string.format(
      "the queue references %d value(s) but holds %d", queue_refs(env.q), env.q:len()))
    return p
  end,
}

scenario {
  name = "Event wait",
  setup = function()
    local env = { ev = fdn.Event.new() }
    env.setter = fdn.spawn(function()
      for _ = 1, 3 do
        fdn.sleep(1)
        env.ev:set()
      end
    end)
    return env
  end,
  user = function(env)
    for _ = 1, 3 do
      env.ev:wait()
      env.ev:clear()
    end
    pcall(env.ev.wait, env.ev, 0.5) -- times out
  end,
  settle = function(env) env.setter:join() end,
  check = function(env)
    local p = {}
    expect(p, env.ev:waiting() == 0, env.ev:waiting() .. " waiter(s) left")
    return p
  end,
}

scenario {
  name = "TaskManager (children, body, exit)",
  setup = function() return { children = {}, ran = 0 } end,
  user = function(env)
    fdn.with(fdn.TaskManager.new { max_concurrent = 2 }, function(tm)
      for i = 1, 4 do
        env.children[i] = tm:create_task(function()
          fdn.sleep(i * 0.5)
          env.ran = env.ran + 1
        end)
      end
      fdn.sleep(0.7)
      tm:create_task(fdn.sleep, 0.1)
      fdn.sleep(0.2)
    end)
  end,
  check = function(env)
    local p = {}
    for i, t in ipairs(env.children) do
      local st = t:status()
      expect(p, st == "done" or st == "cancelled", "child " .. i .. " is " .. st)
    end
    return p
  end,
}

scenario {
  name = "ConcurrentExecutor map",
  setup = function() return { calls = 0, done = 0 } end,
  user = function(env)
    local ex = fdn.ConcurrentExecutor.new({ max_workers = 2 })
    local function work(x)
      env.calls = env.calls + 1
      fdn.sleep(x)
      env.done = env.done + 1
      return x
    end
    ex:map(work, { 0.5, 1, 0.25, 0.75, 0.1 }, { progress_callback = function() fdn.sleep(0) end })
    fdn.sleep(0.1)
    local i = 0
    ex:map(work, function()
      i = i + 1
      return i <= 3 and 0.2 or nil
    end)
  end,
  check = function(env)
    local p = {}
    expect(p, env.done <= env.calls, "more completions than calls")
    return p
  end,
}

scenario {
  name = "TaskPool submit (full), gather_results, close",
  setup = function() return { accepted = {}, ran = {} } end,
  user = function(env)
    local pool = fdn.TaskPool.new { pool_size = 1, queue_size = 1 }
    env.pool = pool
    for i = 1, 4 do
      local n = pool:submit(function()
        fdn.sleep(0.5)
        env.ran[i] = (env.ran[i] or 0) + 1
        return i
      end)
      env.accepted[#env.accepted + 1] = n
    end
    pool:gather_results()
    pool:close()
  end,
  settle = function(env)
    if env.pool then env.pool:close() end
  end,
  check = function(env)
    local p = {}
    local pool = env.pool
    if pool then
      expect(p, pool:pending() == 0, "pending " .. pool:pending())
      expect(p, pool._admit == nil or pool._admit:held() == 0, "queue places held")
      expect(p, pool._done_upto == pool._submitted, string.format(
        "finished up to %d of %d submitted", pool._done_upto, pool._submitted))
      expect(p, #env.accepted == pool._submitted, string.format(
        "%d submits returned, the pool counts %d", #env.accepted, pool._submitted))
    end
    for i, n in pairs(env.ran) do
      expect(p, n == 1, "job " .. i .. " ran " .. n .. " times")
    end
    return p
  end,
}

scenario {
  name = "retry backoff",
  setup = function() return { attempts = 0 } end,
  user = function(env)
    local f = fdn.retry { max_attempts = 4, delay = 1, backoff = 2 } (function()
      env.attempts = env.attempts + 1
      fdn.sleep(0.1)
      if env.attempts < 4 then error("flaky", 0) end
      return "ok"
    end)
    env.result = f()
  end,
  check = function(env)
    local p = {}
    expect(p, env.attempts <= 4, env.attempts .. " attempts")
    return p
  end,
}

scenario {
  name = "Batcher add (full), flush, close",
  setup = function()
    local env = { added = {}, delivered = {}, failed = {}, dropped = {} }
    env.b = fdn.Batcher.new {
      batch_size = 2, max_pending = 2, flush_interval = 1,
      handler = function(items)
        fdn.sleep(0.5)
        for _, x in ipairs(items) do
          env.delivered[#env.delivered + 1] = x
        end
      end,
      on_error = function(_, items)
        for _, x in ipairs(items) do env.failed[#env.failed + 1] = x end
      end,
    }
    return env
  end,
  user = function(env)
    for i = 1, 7 do
      env.b:add(i)
      env.added[#env.added + 1] = i
      if i == 3 then env.b:flush() end
    end
    env.b:close()
  end,
  settle = function(env)
    local ok, err = pcall(env.b.close, env.b)
    if not ok then env.close_error = err end
  end,
  check = function(env)
    local p = {}
    local seen, total = {}, 0
    for _, list in ipairs { env.delivered, env.failed, env.dropped } do
      for _, x in ipairs(list) do
        expect(p, not seen[x], "item " .. tostring(x) .. " delivered twice")
        seen[x] = true
        total = total + 1
      end
    end
    for _, x in ipairs(env.added) do
      expect(p, seen[x], "item " .. x .. " was added but never flushed, failed or dropped")
    end
    expect(p, total == #env.added, string.format("flushed %d + failed %d + dropped %d ~= added %d",
      #env.delivered, #env.failed, #env.dropped, #env.added))
    local st = env.b:stats()
    expect(p, st.added == #env.added, "stats().added " .. st.added .. " ~= " .. #env.added)
    expect(p, st.buffered == 0 and st.in_flight == 0, "buffered " .. st.buffered
      .. ", in flight " .. st.in_flight)
    expect(p, env.close_error == nil, "close raised " .. C.show(env.close_error))
    return p
  end,
}

scenario {
  name = "Batcher drop_oldest, failing batches, flush and close",
  setup = function()
    local env = { handles = {}, delivered = {}, failed = {} }
    local calls = 0
    env.b = fdn.Batcher.new {
      batch_size = 2, max_pending = 3, overflow = "drop_oldest", flush_interval = 0.5,
      max_concurrent_flushes = 2,
      handler = function(items)
        calls = calls + 1
        fdn.sleep(0.3)
        if calls % 2 == 0 then error("batch " .. calls .. " failed", 0) end
        for _, x in ipairs(items) do env.delivered[#env.delivered + 1] = x end
      end,
      on_error = function(_, items)
        for _, x in ipairs(items) do env.failed[#env.failed + 1] = x end
      end,
    }
    return env
  end,
  user = function(env)
    for i = 1, 9 do
      env.handles[i] = env.b:add(i)
      if i % 4 == 0 then env.b:flush() end
    end
    fdn.sleep(0.2)
    env.b:close()
  end,
  settle = function(env)
    local ok, err = pcall(env.b.close, env.b)
    if not ok then env.close_error = err end
  end,
  check = function(env)
    local p = {}
    local seen, dropped = {}, 0
    for _, list in ipairs { env.delivered, env.failed } do
      for _, x in ipairs(list) do
        expect(p, not seen[x], "item " .. x .. " reached the handler or on_error twice")
        seen[x] = true
      end
    end
    for i, h in pairs(env.handles) do
      local ok, err = h:wait()
      if not ok and errors.is(err, errors.QueueFull) then
        dropped = dropped + 1
        expect(p, not seen[i], "item " .. i .. " was dropped and delivered")
      else
        expect(p, seen[i], "item " .. i .. " was added but never flushed, failed or dropped")
      end
    end
    local added = 0
    for _ in pairs(env.handles) do added = added + 1 end
    expect(p, #env.delivered + #env.failed + dropped == added, string.format(
      "flushed %d + failed %d + dropped %d ~= added %d", #env.delivered, #env.failed,
      dropped, added))
    local st = env.b:stats()
    expect(p, st.added == added and st.dropped == dropped, string.format(
      "stats: added %d, dropped %d (counted %d, %d)", st.added, st.dropped, added, dropped))
    expect(p, env.close_error == nil, "close raised " .. C.show(env.close_error))
    return p
  end,
}

scenario {
  name = "cache single-flight (the user waits for another caller)",
  setup = function()
    local env = { computed = 0 }
    env.f = fdn.cache { name = "matrix-waiter" } (function(k)
      env.computed = env.computed + 1
      fdn.sleep(1)
      fdn.sleep(1)
      return k
    end)
    env.leader = fdn.spawn(env.f, "a")
    env.other = fdn.spawn(function() fdn.sleep(0.5) return env.f("a") end)
    fdn.sleep(0)
    return env
  end,
  user = function(env)
    env.got = env.f("a")
    env.got2 = env.f("b")
  end,
  settle = function(env)
    env.lead_result = env.leader:join()
    env.other_result = env.other:join()
  end,
  check = function(env)
    local p = {}
    local st = env.f:stats()
    expect(p, st.in_flight == 0, "computations still in flight: " .. st.in_flight)
    expect(p, env.lead_result == "a" and env.other_result == "a", "callers got "
      .. tostring(env.lead_result) .. ", " .. tostring(env.other_result))
    expect(p, next(env.f._flights) == nil, "a flight is left")
    return p
  end,
}

scenario {
  name = "cache single-flight (the user leads, others wait)",
  setup = function()
    local env = { computed = 0, results = {} }
    env.f = fdn.cache { name = "matrix-leader" } (function(k)
      env.computed = env.computed + 1
      fdn.sleep(1)
      fdn.sleep(1)
      return k
    end)
    env.waiters = {}
    for i = 1, 2 do
      env.waiters[i] = fdn.spawn(function()
        fdn.sleep(0.5)
        env.results[i] = env.f("a")
      end)
    end
    return env
  end,
  user = function(env)
    env.got = env.f("a")
  end,
  settle = function(env)
    for _, w in ipairs(env.waiters) do w:join() end
  end,
  check = function(env)
    local p = {}
    expect(p, env.f:stats().in_flight == 0, "computations still in flight")
    expect(p, env.results[1] == "a" and env.results[2] == "a", "waiters got "
      .. tostring(env.results[1]) .. ", " .. tostring(env.results[2]))
    expect(p, next(env.f._flights) == nil, "a flight is left")
    return p
  end,
}

scenario {
  name = "RateLimiter acquire",
  setup = function() return { rl = fdn.RateLimiter.new { rate = 2, burst = 1 } } end,
  user = function(env)
    for _ = 1, 4 do env.rl:acquire() end
    env.rl:call(noop)
  end,
  check = function(env)
    local p = {}
    expect(p, env.rl:tokens() > -1e-9, "tokens " .. env.rl:tokens()
      .. ": a cancelled reservation was kept")
    return p
  end,
}

scenario {
  name = "Bulkhead acquire and call",
  setup = function()
    local env = { bh = fdn.Bulkhead.new { max_concurrent = 1, max_queue = 5 } }
    env.holder = fdn.spawn(function()
      for _ = 1, 2 do
        env.bh:call(fdn.sleep, 1)
        fdn.sleep(0.2)
      end
    end)
    fdn.sleep(0)
    return env
  end,
  user = function(env)
    env.bh:acquire()
    local ok, err = pcall(fdn.sleep, 0.3)
    env.bh:release()
    if not ok then error(err, 0) end
    env.bh:call(fdn.sleep, 0.5)
  end,
  settle = function(env) env.holder:join() end,
  check = function(env)
    local p = {}
    local st = env.bh:stats()
    expect(p, st.active == 0 and st.waiting == 0, "active " .. st.active .. ", waiting "
      .. st.waiting)
    return p
  end,
}

scenario {
  name = "BackgroundTaskManager shutdown",
  setup = function() return { runs = 0 } end,
  user = function(env)
    local m = fdn.BackgroundTaskManager.new { shutdown_timeout = 5 }
    env.m = m
    m:start_task("slow", function()
      fdn.sleep(2)
      env.runs = env.runs + 1
    end, { interval = 1 })
    m:start_task("fast", noop, { interval = 0.5 })
    fdn.sleep(2.5)
    m:pause("fast")
    fdn.sleep(0.2)
    m:stop_task("fast")
    m:shutdown()
  end,
  settle = function(env)
    if env.m then env.m:shutdown { timeout = 0 } end
  end,
  check = function(env)
    local p = {}
    if env.m then
      for name, st in pairs(env.m:status()) do
        expect(p, st.state == "stopped", name .. " is " .. st.state)
      end
    end
    return p
  end,
}

scenario {
  name = "fdn.timeout (nested)",
  setup = function() return {} end,
  user = function(env)
    fdn.timeout(10, function()
      fdn.sleep(1)
      pcall(fdn.timeout, 0.5, fdn.sleep, 2) -- the inner one expires
      fdn.sleep(1)
    end)
    env.finished = true
  end,
  check = function()
    local p = {}
    -- The task's scope stack must be whole: a fresh timeout works.
    local ok, err = pcall(fdn.timeout, 1, fdn.sleep, 0)
    expect(p, ok, "a later fdn.timeout failed: " .. C.show(err))
    return p
  end,
}

scenario {
  name = "fdn.with exits (an __exit that suspends)",
  setup = function() return { entered = 0, exited = 0, exit_done = 0 } end,
  user = function(env)
    local m = {
      __enter = function(self)
        env.entered = env.entered + 1
        return self
      end,
      __exit = function()
        env.exited = env.exited + 1
        fdn.sleep(0.5)
        fdn.sleep(0.5)
        env.exit_done = env.exit_done + 1
      end,
    }
    fdn.with(m, function() fdn.sleep(1) fdn.sleep(1) end)
  end,
  check = function(env)
    local p = {}
    expect(p, env.exited == env.entered, string.format("entered %d, exited %d", env.entered,
      env.exited))
    expect(p, env.exit_done == env.exited, "an __exit was cut short (shielded exits finish)")
    return p
  end,
}

scenario {
  name = "ResourceManager closes (closes that suspend)",
  setup = function() return { closed = {}, order = {} } end,
  user = function(env)
    local function resource(name)
      return { close = function()
        env.closed[name] = (env.closed[name] or 0) + 1
        fdn.sleep(0.5)
        env.order[#env.order + 1] = name
      end }
    end
    local rm = fdn.ResourceManager.new()
    env.rm = rm
    rm:manage(resource("outer"), function()
      rm:manage(resource("inner"), function() fdn.sleep(1) end)
      rm:manage(resource("registered"))
      fdn.sleep(1)
    end)
    rm:close_all()
  end,
  settle = function(env)
    if env.rm then pcall(env.rm.close_all, env.rm) end
  end,
  check = function(env)
    local p = {}
    for name, n in pairs(env.closed) do
      expect(p, n == 1, name .. " closed " .. n .. " times")
    end
    if env.closed.inner and env.closed.outer then
      local pos = {}
      for i, name in ipairs(env.order) do pos[name] = i end
      expect(p, (pos.inner or 0) < (pos.outer or math.huge), "closed outer before inner")
    end
    expect(p, env.rm == nil or env.rm:pending() == 0, "resources left unclosed")
    return p
  end,
}

scenario {
  name = "gather",
  setup = function() return {} end,
  user = function(env)
    env.tasks = {}
    for i = 1, 3 do
      env.tasks[i] = fdn.spawn(function() fdn.sleep(i * 0.5) fdn.sleep(0.1) return i end)
    end
    fdn.gather(env.tasks)
    fdn.gather(fdn.spawn(fdn.sleep, 0.2), fdn.spawn(fdn.sleep, 0.1))
  end,
  check = function(env)
    local p = {}
    for i, t in ipairs(env.tasks or {}) do
      local st = t:status()
      expect(p, st == "done" or st == "cancelled", "gathered task " .. i .. " is " .. st)
    end
    return p
  end,
}

-- Running ---------------------------------------------------------------------------------

-- A full collection: the JIT's traces dropped first (a trace holds the
-- closures and tables it was specialised on as constants, which would
-- look like a leak), then collections repeated until memory stops
-- shrinking, since each cycle only finalizes the objects that the previous
-- cycle's finalized ones kept alive (a failed task's handle keeps its
-- results alive, which may hold a batcher, whose finalizer drops its
-- reference to the engine).
local function anchors()
  if jit then
    jit.flush()
  end
  local before = math.huge
  for _ = 1, 20 do
    collectgarbage()
    local now = collectgarbage("count")
    if now >= before then break end
    before = now
  end
  local s = core.anchor_stats()
  return s.slots, s.registry, s.worker_stack + s.scratch_stack
end

-- Runs scenario `s` once, cancelling the user at its k-th suspension (k nil:
-- never). Returns the suspensions counted and the problems found.
local function run(s, k)
  local problems = {}
  local ok, err = pcall(T.run, function()
    local env = s.setup()
    watch.count, watch.cancel_at, watch.landed = 0, k, false
    local user = fdn.spawn(s.user, env)
    watch.target = user
    local done, uerr = user:wait()
    watch.target, watch.inside = nil, nil
    if not done and not (k and errors.is(uerr, errors.Cancelled)) then
      problems[#problems + 1] = "the user failed: " .. C.show(uerr)
    end
    if k and not watch.landed then
      problems[#problems + 1] = "the cancellation at suspension " .. k .. " never landed"
    end
    if s.settle then
      local sok, serr = pcall(s.settle, env)
      if not sok then
        problems[#problems + 1] = "settling failed: " .. C.show(serr)
      end
    end
    fdn.sleep(0) -- let the watchers of the last suspensions end
    for _, problem in ipairs(s.check(env)) do
      problems[#problems + 1] = problem
    end
  end, { timeout = 30 })
  if not ok then
    problems[#problems + 1] = "the run failed (a leak, a hang or a crash of the harness): "
      .. C.show(err)
  end
  return watch.count, problems
end

local function main()
  local only = os.getenv("FDN_MATRIX_ONLY")
  if only and only ~= "" then
    local kept = {}
    for _, s in ipairs(S) do
      if s.name:find(only, 1, true) then kept[#kept + 1] = s end
    end
    S = kept
  end
  C.with_log_capture(function()
    -- Warm up, so module caches and interned strings are not counted.
    for _, s in ipairs(S) do run(s, nil) end
    local slots0, registry0, stacks0 = anchors()
    for _, s in ipairs(S) do
      figures.scenarios = figures.scenarios + 1
      C.trace(s.name .. " dry run")
      local n, problems = run(s, nil)
      checked = checked + 1
      if #problems > 0 or n == 0 then
        fail(s.name .. " (no cancellation): " .. (n == 0 and "the user never suspended; "
          or "") .. table.concat(problems, "; "))
      end
      for k = 1, n do
        C.trace(s.name .. " k=" .. k)
        local _, kp = run(s, k)
        if C.verbose then
          say(string.format("    k=%d registry=%d", k, select(2, anchors())))
        end
        checked = checked + 1
        figures.runs = figures.runs + 1
        if #kp > 0 then
          fail(string.format("%s, cancelled at suspension %d of %d: %s", s.name, k, n,
            table.concat(kp, "; ")))
        end
      end
      figures.suspensions = figures.suspensions + n
      say(string.format("  %-52s cancelled at each of %d suspensions", s.name, n))
      local slots, registry, stacks = anchors()
      checked = checked + 1
      if slots ~= slots0 or registry ~= registry0 or stacks ~= stacks0 then
        fail(string.format("%s: after a full GC the binding holds %d task slot(s), %d registry "
          .. "reference(s) and %d value(s) on its threads (baseline %d, %d, %d): leaked", s.name,
          slots, registry, stacks, slots0, registry0, stacks0))
      end
    end
  end)
  C.trace("done")
  C.finish("cancel-matrix", checked, #failures, {
    string.format("%d scenarios", figures.scenarios),
    string.format("%d cancellation points (every suspension of every scenario's user)",
      figures.runs),
    "task slots and registry back to baseline after each scenario",
  })
end

main()
