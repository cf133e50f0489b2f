-- Regressions found by the bad-argument sweep (spec/reliability/sweep.lua):
-- each was a plain Lua error, a silent acceptance or an error naming the
-- wrong function before it was fixed.
local fdn = require "fdn"
local errors = require "fdn.errors"
local T = require "fdn.testing"

local function refused(fname, param, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, fname .. " accepted it")
  assert.is_true(errors.is(err, errors.InvalidArgument), "not an InvalidArgument: "
    .. errors.format(err))
  assert.is_truthy(tostring(err.message):find(fname, 1, true), err.message)
  assert.is_truthy(tostring(err.message):find("'" .. param, 1, true), err.message)
  return err
end

local function noop() end

describe("bad arguments", function()
  it("fdn.spawn and spawn_with refuse a table or userdata that cannot be called", T.async(function()
    refused("fdn.spawn", "fn", fdn.spawn, {})
    refused("fdn.spawn", "fn", fdn.spawn, newproxy(true))
    refused("fdn.spawn_with", "fn", fdn.spawn_with, {}, fdn.Event.new())
    -- A callable table is still a function.
    local t = fdn.spawn(setmetatable({}, { __call = function() return 7 end }))
    assert.equal(7, t:join())
  end))

  it("fdn.gather refuses a task count past the list's end before allocating for it",
    T.async(function()
      -- Found beside the sweep: {n = 1e10} made the C side calloc 80 GB.
      refused("fdn.gather", "tasks.n", fdn.gather, { n = 1e10 })
      refused("fdn.gather", "tasks.n", fdn.gather, { n = -1 })
      refused("fdn.gather", "tasks.n", fdn.gather, { n = "3" })
      refused("fdn.gather", "tasks[2]", fdn.gather, { n = 3, fdn.spawn(noop) })
      refused("fdn.gather", "tasks.n", require("fdn.core").group_new, {}, 2 ^ 40)
      assert.same({ 1 }, fdn.gather { n = 1, fdn.spawn(function() return 1 end) })
    end))

  it("fdn.random refuses NaN instead of converting it to an integer", function()
    refused("fdn.random", "n", fdn.random, 0 / 0)
  end)

  it("fdn.with refuses a foreign userdata it cannot index", T.async(function()
    refused("fdn.with", "manager", fdn.with, newproxy(true), noop)
  end))

  it("task:wait names itself", T.async(function()
    local t = fdn.spawn(noop)
    refused("task:wait", "task", t.wait, nil)
    t:join()
  end))

  it("errors.argerror and errors.matcher check their own arguments", function()
    refused("errors.argerror", "fname", errors.argerror, nil, "p", "x", 1)
    refused("errors.argerror", "level", errors.argerror, "f", "p", "x", 1, "2")
    refused("errors.matcher", "fname", errors.matcher, nil, 1)
    refused("errors.matcher", "param", errors.matcher, nil, "f", {})
  end)

  it("error methods called on something else name themselves", function()
    local e = errors.Error.new("x")
    refused("Error:to_table", "self", e.to_table, {})
    refused("Error:is", "self", e.is, "x", errors.Error)
    refused("Error:is", "class", e.is, e, "Error")
  end)

  it("methods called with '.' instead of ':' raise InvalidArgument naming self", T.async(function()
    local objects = {
      { "Semaphore:with", fdn.Semaphore.new(1), "with" },
      { "Semaphore:name", fdn.Semaphore.new(1), "name" },
      { "Queue:iter", fdn.Queue.new(1), "iter" },
      { "Event:name", fdn.Event.new(), "name" },
      { "TaskManager:gather", fdn.TaskManager.new(), "gather" },
      { "TaskPool:submit", fdn.TaskPool.new { pool_size = 1 }, "submit" },
      { "Batcher:add", fdn.Batcher.new { handler = noop }, "add" },
      { "cache:__call", fdn.cache {} (noop), "__call" },
      { "Bulkhead:call", fdn.Bulkhead.new { max_concurrent = 1 }, "call" },
      { "CircuitBreaker:state", fdn.CircuitBreaker.new(), "state" },
      { "clock:now", T.clock(), "now" },
    }
    for _, o in ipairs(objects) do
      refused(o[1], "self", o[2][o[3]], nil, noop)
      refused(o[1], "self", o[2][o[3]], {}, noop)
    end
  end))

  it("Bulkhead, RateLimiter and CircuitBreaker:call refuse a non-function before using a slot, "
    .. "a token or the breaker's count", T.async(function()
    local bh = fdn.Bulkhead.new { max_concurrent = 1 }
    refused("Bulkhead:call", "fn", bh.call, bh, 42)
    assert.equal(0, bh:stats().active)
    local rl = fdn.RateLimiter.new { rate = 1, burst = 1 }
    refused("RateLimiter:call", "fn", rl.call, rl, "x")
    assert.is_true(rl:try_acquire())
    local br = fdn.CircuitBreaker.new { failure_threshold = 1 }
    refused("CircuitBreaker:call", "fn", br.call, br, {})
    assert.equal("closed", br:state())
    assert.equal(0, br:counts().failures)
  end))

  it("BackgroundTaskManager:stop_task checks opts", T.async(function()
    local m = fdn.BackgroundTaskManager.new()
    m:start_task("t", noop, { interval = 10, run_immediately = false })
    refused("BackgroundTaskManager:stop_task", "opts", m.stop_task, m, "t", true)
    refused("BackgroundTaskManager:stop_task", "opts", m.stop_task, m, "t", "")
    assert.equal("scheduled", m:status("t").state)
    m:shutdown { timeout = 0 }
  end))

  it("fdn.retry.delays names itself and bounds n", function()
    refused("fdn.retry.delays", "opts", fdn.retry.delays, true, 3)
    refused("fdn.retry.delays", "n", fdn.retry.delays, {}, 2 ^ 53)
    assert.same({ 1, 2 }, fdn.retry.delays({ delay = 1 }, 2, 0))
  end)

  it("fdn.log.enabled refuses an empty logger name itself", function()
    refused("fdn.log.enabled", "name", require("fdn.log").enabled, "info", "")
  end)

  it("fdn.testing.fail, mock:args and mock:called check their arguments", T.async(function()
    refused("fdn.testing.fail", "level", T.fail, "message", true)
    local tbl = { f = noop }
    local m = T.mock_async(tbl, "f")
    tbl.f(1)
    refused("mock:args", "i", m.args, m, "1")
    refused("mock:called", "compare", m.called, m, 1, 2)
    assert.equal(1, m:args(1))
  end))
end)
