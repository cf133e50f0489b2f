local fdn = require "fdn"
local errors = fdn.errors
local log = require "fdn.log"
local events = require "fdn.events"

local function virtual(fn)
  return fdn.run(fn, { clock = "virtual" })
end

local function fail()
  error(errors.Error.new("down"))
end

local function ok(...)
  return ...
end

local function catch(fn, ...)
  local okk, err = pcall(fn, ...)
  assert.is_false(okk, "expected an error")
  return err
end

describe("fdn.CircuitBreaker", function()
  local records
  before_each(function()
    records = {}
    log.configure { level = "debug", sink = function(r) records[#records + 1] = r end }
  end)
  after_each(function()
    log.configure { level = "info", format = "console", sink = "stderr" }
  end)

  it("passes calls and results through while closed", function()
    virtual(function()
      local b = fdn.CircuitBreaker.new {}
      assert.equal("closed", b:state())
      local x, y, z = b:call(ok, 1, nil, 3)
      assert.same({ 1, nil, 3 }, { x, y, z })
      assert.equal(3, select("#", b:call(ok, 1, nil, 3)))
      local err = catch(b.call, b, fail)
      assert.equal("down", err.message)
    end)
  end)

  it("opens after failure_threshold failures in a row and then rejects without calling", function()
    virtual(function()
      local b = fdn.CircuitBreaker.new { failure_threshold = 3, recovery_timeout = 10 }
      catch(b.call, b, fail)
      catch(b.call, b, fail)
      b:call(ok) -- a success resets the run
      catch(b.call, b, fail)
      catch(b.call, b, fail)
      assert.equal("closed", b:state())
      catch(b.call, b, fail)
      assert.equal("open", b:state())
      local called = false
      fdn.sleep(4)
      local err = catch(b.call, b, function()
        called = true
      end)
      assert.is_false(called)
      assert.is_true(errors.is(err, errors.CircuitOpen))
      assert.equal(6, err.retry_after)
      assert.equal("open", err.context.state)
      assert.matches("circuit is open", err.message)
      local c = b:counts()
      assert.equal(6, c.calls)
      assert.equal(5, c.failures)
      assert.equal(1, c.successes)
      assert.equal(1, c.rejected)
      assert.equal(1, c.opened)
      assert.equal("open", c.state)
    end)
  end)

  it("says half_open once recovery_timeout has passed, and a probe success closes it", function()
    virtual(function()
      local b = fdn.CircuitBreaker.new { failure_threshold = 1, recovery_timeout = 30 }
      catch(b.call, b, fail)
      fdn.sleep(29.5)
      assert.equal("open", b:state())
      fdn.sleep(0.5)
      assert.equal("half_open", b:state())
      assert.equal("fine", b:call(ok, "fine"))
      assert.equal("closed", b:state())
    end)
  end)

  it("opens again when a probe fails, for another full recovery_timeout", function()
    virtual(function()
      local b = fdn.CircuitBreaker.new { failure_threshold = 2, recovery_timeout = 5 }
      catch(b.call, b, fail)
      catch(b.call, b, fail)
      fdn.sleep(5)
      catch(b.call, b, fail) -- the probe
      assert.equal("open", b:state())
      fdn.sleep(4.9)
      assert.is_true(errors.is(catch(b.call, b, ok), errors.CircuitOpen))
      fdn.sleep(0.1)
      assert.equal("half_open", b:state())
    end)
  end)

  it("lets only half_open_max probes through at once #fifo", function()
    virtual(function()
      local b = fdn.CircuitBreaker.new { failure_threshold = 1, recovery_timeout = 1,
        half_open_max = 2, success_threshold = 2 }
      catch(b.call, b, fail)
      fdn.sleep(1)
      local running, max_running = 0, 0
      local function slow_probe()
        running = running + 1
        max_running = math.max(max_running, running)
        fdn.sleep(1)
        running = running - 1
        return "probed"
      end
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = fdn.spawn(function()
          return fdn.try(b.call, b, slow_probe)
        end)
      end
      local outcomes = {}
      for i = 1, 5 do
        local okk, v = tasks[i]:join()
        outcomes[i] = okk and v or (errors.is(v, errors.CircuitOpen) and "rejected" or tostring(v))
      end
      assert.same({ "probed", "probed", "rejected", "rejected", "rejected" }, outcomes)
      assert.equal(2, max_running)
      assert.equal("closed", b:state())
      local err = select(2, pcall(function()
        local b2 = fdn.CircuitBreaker.new { failure_threshold = 1, recovery_timeout = 0 }
        catch(b2.call, b2, fail)
        fdn.spawn(b2.call, b2, fdn.sleep, 1)
        fdn.sleep(0)
        b2:call(ok)
      end))
      assert.is_true(errors.is(err, errors.CircuitOpen))
      assert.matches("half%-open and its 1 probe is already in flight", err.message)
      assert.equal("half_open", err.context.state)
    end)
  end)

  it("opens on a failure rate over the window", function()
    virtual(function()
      local b = fdn.CircuitBreaker.new { failure_threshold = 0, failure_rate = 0.5,
        minimum_calls = 4, window = 10 }
      catch(b.call, b, fail)
      b:call(ok)
      catch(b.call, b, fail)
      assert.equal("closed", b:state()) -- 2 of 3: too few calls yet
      b:call(ok)
      assert.equal("open", b:state()) -- 2 of 4
    end)
    virtual(function()
      local b = fdn.CircuitBreaker.new { failure_threshold = 0, failure_rate = 0.5,
        minimum_calls = 4, window = 10 }
      for _ = 1, 3 do
        catch(b.call, b, fail)
      end
      fdn.sleep(11) -- those left the window
      for _ = 1, 3 do
        b:call(ok)
      end
      catch(b.call, b, fail)
      assert.equal("closed", b:state()) -- 1 of 4
    end)
  end)

  it("counts only failures failure_on accepts; Cancelled never counts", function()
    virtual(function()
      local Server = errors.define("ServerError")
      local b = fdn.CircuitBreaker.new { failure_threshold = 2, failure_on = Server }
      for _ = 1, 5 do
        catch(b.call, b, function() error(errors.InvalidArgument.new("caller's fault")) end)
      end
      assert.equal("closed", b:state())
      local t = fdn.spawn(b.call, b, fdn.sleep, 100)
      fdn.sleep(1)
      t:cancel()
      t:wait()
      catch(b.call, b, function() error(Server.new("500")) end)
      assert.equal("closed", b:state())
      catch(b.call, b, function() error(Server.new("500")) end)
      assert.equal("open", b:state())
      assert.equal(6, b:counts().ignored)
    end)
  end)

  it("treats nil, err returns as failures with failure_if_result", function()
    virtual(function()
      local b = fdn.CircuitBreaker.new { failure_threshold = 2, failure_if_result = "nil" }
      local v, e = b:call(function() return nil, "refused" end)
      assert.is_nil(v)
      assert.equal("refused", e)
      b:call(function() return nil, "refused" end)
      assert.equal("open", b:state())
      local p = fdn.CircuitBreaker.new { failure_threshold = 1,
        failure_if_result = function(status) return status >= 500 end }
      assert.equal(200, p:call(ok, 200))
      assert.equal(503, p:call(ok, 503))
      assert.equal("open", p:state())
    end)
  end)

  it("logs and emits every state change, in order", function()
    local seen = {}
    local unsubscribe = events.subscribe("breaker.state_changed", function(_, d)
      seen[#seen + 1] = d.name .. ":" .. d.from .. ">" .. d.to
    end)
    virtual(function()
      local b = fdn.CircuitBreaker.new { name = "payments", failure_threshold = 1,
        recovery_timeout = 2 }
      catch(b.call, b, fail)
      fdn.sleep(2)
      b:call(ok)
      b:trip()
      b:reset()
    end)
    unsubscribe()
    assert.same({ "payments:closed>open", "payments:open>half_open",
      "payments:half_open>closed", "payments:closed>open", "payments:open>closed" }, seen)
    assert.equal(5, #records)
    assert.equal("breaker.state_changed", records[1].event)
    assert.equal("warn", records[1].level)
    assert.equal("payments", records[1].breaker)
    assert.equal("open", records[1].to)
    assert.equal(1, records[1].consecutive_failures)
    assert.equal("info", records[2].level)
    assert.equal("fdn.circuit_breaker", records[2].logger)
  end)

  it("wraps a function", function()
    virtual(function()
      local b = fdn.CircuitBreaker.new { failure_threshold = 1 }
      local guarded = b:wrap(function(x)
        if x == "bad" then
          error("no")
        end
        return x
      end)
      assert.equal("good", guarded("good"))
      catch(guarded, "bad")
      assert.is_true(errors.is(catch(guarded, "good"), errors.CircuitOpen))
    end)
  end)

  it("serves several engines, even when time restarts", function()
    local b = fdn.CircuitBreaker.new { failure_threshold = 1, recovery_timeout = 10 }
    virtual(function()
      fdn.sleep(100)
      catch(b.call, b, fail)
    end)
    virtual(function()
      assert.equal("open", b:state()) -- a new clock at 0: the open period restarts
      fdn.sleep(10)
      assert.equal("half_open", b:state())
      b:call(ok)
    end)
    assert.equal("closed", b:state())
  end)

  it("composes with fdn.retry, which waits what CircuitOpen asks for", function()
    virtual(function()
      local b = fdn.CircuitBreaker.new { failure_threshold = 1, recovery_timeout = 7 }
      local n = 0
      local call = fdn.retry { max_attempts = 5, delay = 1, backoff = "fixed" } (b:wrap(function()
        n = n + 1
        if n == 1 then
          error("first failure")
        end
        return "recovered"
      end))
      assert.equal("recovered", call())
      -- t=0 fail (opens), t=1 rejected (retry_after 6), t=7 probe succeeds.
      assert.equal(7, fdn.now())
      assert.equal(2, n)
    end)
  end)

  it("rejects bad options with InvalidArgument naming the field", function()
    for _, case in ipairs {
      { { failure_threshold = -1 }, "failure_threshold" },
      { { failure_threshold = 1.5 }, "failure_threshold" },
      { { failure_rate = 2 }, "failure_rate" },
      { { failure_rate = 0 / 0 }, "failure_rate" },
      { { recovery_timeout = -1 }, "recovery_timeout" },
      { { recovery_timeout = "30" }, "recovery_timeout" },
      { { half_open_max = 0 }, "half_open_max" },
      { { success_threshold = 0 }, "success_threshold" },
      { { window = 0 }, "window" },
      { { failure_on = 5 }, "failure_on" },
      { { failure_if_result = "nope" }, "failure_if_result" },
      { { name = {} }, "name" },
      { { threshold = 3 }, "threshold" },
    } do
      local err = catch(fdn.CircuitBreaker.new, case[1])
      assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
      assert.equal(case[2], err.context.parameter)
    end
    local b = fdn.CircuitBreaker.new()
    assert.is_true(errors.is(catch(b.wrap, b, 1), errors.InvalidArgument))
  end)
end)
