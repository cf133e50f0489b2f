-- Regressions found by the yield-boundary matrix
-- (spec/reliability/yield_matrix.lua): a suspending primitive called where
-- no task can suspend must raise an InvalidState naming itself and leave
-- nothing behind.
local fdn = require "fdn"
local core = require "fdn.core"
local errors = require "fdn.errors"
local T = require "fdn.testing"

local function in_coroutine(fn)
  local co = coroutine.create(fn)
  local ok, err = coroutine.resume(co)
  assert.equal("dead", coroutine.status(co))
  return ok, err
end

local function in_sort(fn)
  return pcall(table.sort, { 2, 1 }, function(a, b)
    fn()
    return a < b
  end)
end

local function in_gsub(fn)
  local ok, err = pcall(string.gsub, "a", ".", function() fn() end)
  return ok, not ok and err or nil
end

local function refuses(name, ok, err)
  assert.is_false(ok, name .. " did not raise")
  assert.is_true(errors.is(err, errors.InvalidState), errors.format(err))
  assert.is_truthy(err.message:find(name, 1, true), err.message)
  assert.is_falsy(err.message:find("attempt to yield", 1, true))
end

describe("yield boundaries", function()
  it("core.suspendable says whether the caller may suspend", T.async(function()
    assert.is_true(core.suspendable())
    local seen = {}
    assert.is_true(in_coroutine(function() seen[1] = core.suspendable() end))
    assert.is_true(in_sort(function() seen[2] = core.suspendable() end))
    assert.same({ false, false }, seen)
    refuses("my:thing", in_gsub(function() core.check_suspendable("my:thing") end))
  end))

  it("handle:wait leaves no waiter on the batch when it cannot wait", T.async(function()
    local gate = fdn.Event.new()
    local b = fdn.Batcher.new { batch_size = 10, handler = function() gate:wait() end }
    local h = b:add(1)
    refuses("handle:wait", in_coroutine(function() h:wait() end))
    assert.is_false(h[1][8] and #h[1][8] > 0)
    gate:set()
    b:close()
    assert.is_true((h:wait()))
  end))

  it("a cached call that cannot wait for another caller's computation leaves no waiter",
    T.async(function()
      local gate = fdn.Event.new()
      local cached = fdn.cache { name = "users" } (function(k)
        gate:wait()
        return k
      end)
      local leader = fdn.spawn(cached, "k")
      fdn.sleep(0)
      refuses("users", in_sort(function() cached("k") end))
      assert.equal(0, #cached._flights.k.waiters)
      gate:set()
      assert.equal("k", leader:join())
    end))

  it("RateLimiter:acquire gives its tokens back when it cannot wait", T.async(function()
    local rl = fdn.RateLimiter.new { rate = 1, burst = 1 }
    assert.is_true(rl:try_acquire())
    local before = rl:tokens()
    refuses("RateLimiter:acquire", in_gsub(function() rl:acquire() end))
    assert.near(before, rl:tokens(), 1e-9)
  end))

  it("TaskPool:close that cannot wait keeps the pool open and its jobs", T.async(function()
    local gate = fdn.Event.new()
    local pool = fdn.TaskPool.new { pool_size = 1, queue_size = 2 }
    local ran = 0
    pool:submit(function() gate:wait() end)
    fdn.sleep(0)
    pool:submit(function() ran = ran + 1 end)
    refuses("TaskPool:close", in_coroutine(function() pool:close() end))
    refuses("TaskPool:cancel", in_sort(function() pool:cancel() end))
    pool:submit(function() ran = ran + 1 end)
    gate:set()
    pool:close()
    assert.equal(2, ran)
  end))

  it("TaskManager:__exit that cannot wait leaves the manager open and its child running",
    T.async(function()
      local tm = fdn.TaskManager.new()
      tm:__enter()
      local child = tm:create_task(fdn.sleep, 1)
      refuses("TaskManager:__exit", in_gsub(function() tm:__exit(nil) end))
      assert.equal("open", tm._state)
      assert.is_false(child:status() == "cancelled" or child:status() == "done")
      tm:__exit(nil)
      assert.equal("done", child:status())
    end))

  it("fdn.with(TaskManager) refuses to open a scope it could not close", T.async(function()
    local started = false
    refuses("TaskManager:__enter", in_sort(function()
      fdn.with(fdn.TaskManager.new(), function(tm)
        tm:create_task(function() started = true end)
      end)
    end))
    fdn.sleep(0)
    assert.is_false(started)
  end))

  it("ConcurrentExecutor:map starts no worker when it could not wait for them", T.async(function()
    local calls = 0
    local ex = fdn.ConcurrentExecutor.new { max_workers = 2 }
    refuses("ConcurrentExecutor:map", in_coroutine(function()
      ex:map(function() calls = calls + 1 end, { 1, 2 })
    end))
    fdn.sleep(0)
    assert.equal(0, calls)
  end))

  it("BackgroundTaskManager:shutdown from outside a task leaves the manager running", function()
    local m = fdn.BackgroundTaskManager.new()
    refuses("BackgroundTaskManager:shutdown", pcall(m.shutdown, m))
    assert.is_false(m:is_shut_down())
  end)

  it("primitives name themselves, not the step they suspend in", T.async(function()
    local s = fdn.Semaphore.new(0)
    refuses("Semaphore:acquire", in_coroutine(function() s:with(function() end) end))
    refuses("Semaphore:acquire", in_sort(function() fdn.with(s, function() end) end))
    local f = fdn.retry { delay = 1, max_attempts = 2 } (function() error("x") end)
    refuses("fdn.retry", in_gsub(function() f() end))
    refuses("fdn.timeout", in_coroutine(function() fdn.timeout(1, fdn.sleep, 1) end))
  end))
end)
