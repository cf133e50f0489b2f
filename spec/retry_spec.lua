local fdn = require "fdn"
local errors = fdn.errors
local events = require "fdn.events"

local function virtual(fn, seed)
  return fdn.run(fn, { clock = "virtual", seed = seed })
end

-- A function failing `n` times (raising `make_err(i)`), then returning its
-- arguments; records the engine time of each attempt.
local function flaky(n, make_err)
  local self = { times = {}, attempts = 0 }
  self.fn = function(...)
    self.attempts = self.attempts + 1
    self.times[#self.times + 1] = fdn.now()
    if self.attempts <= n then
      error(make_err and make_err(self.attempts) or ("failure " .. self.attempts), 0)
    end
    return ...
  end
  return self
end

local function waits_of(times)
  local w = {}
  for i = 2, #times do
    w[i - 1] = times[i] - times[i - 1]
  end
  return w
end

local function close_list(expected, got, tol)
  assert.equal(#expected, #got)
  for i = 1, #expected do
    assert.is_true(math.abs(expected[i] - got[i]) <= (tol or 1e-9),
      string.format("wait %d: expected %s, got %s", i, expected[i], got[i]))
  end
end

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("fdn.retry", function()
  it("retries until the function succeeds and returns all its results", function()
    virtual(function()
      local f = flaky(2)
      local retried = fdn.retry { max_attempts = 5, delay = 1 } (f.fn)
      local a, b, c, d, e, g = retried(1, nil, "three", nil, 5, 6)
      assert.equal(3, f.attempts)
      assert.same({ 1, nil, "three", nil, 5, 6 }, { a, b, c, d, e, g })
      assert.equal(6, select("#", retried(1, nil, "three", nil, 5, 6)))
      assert.equal(0, select("#", retried()))
      assert.equal(2, select("#", retried(nil, nil)))
    end)
  end)

  it("makes exactly max_attempts attempts, then raises RetryExhausted", function()
    virtual(function()
      local f = flaky(100)
      local err = catch(fdn.retry { max_attempts = 4, delay = 0.5 } (f.fn))
      assert.equal(4, f.attempts)
      assert.is_true(errors.is(err, errors.RetryExhausted))
      assert.equal(4, err.attempts)
      assert.same({ "failure 1", "failure 2", "failure 3", "failure 4" }, err.errors)
      assert.equal("failure 4", err.cause)
      assert.equal(4, err.context.attempts)
      assert.equal("exhausted", err.context.reason)
      assert.matches("all 4 attempts failed", err.message)
      assert.matches("caused by: failure 4", tostring(err))
      local t = err:to_table()
      assert.equal("RetryExhausted", t.type)
      assert.equal(4, t.attempts)
      assert.same({ "failure 1", "failure 2", "failure 3", "failure 4" }, t.errors)
      assert.equal("failure 4", t.cause)
    end)
  end)

  it("keeps each attempt's error value, fdn errors included", function()
    virtual(function()
      local made = {}
      local f = flaky(3, function(i)
        made[i] = errors.Timeout.new("slow " .. i, { context = { try = i } })
        return made[i]
      end)
      local err = catch(fdn.retry { max_attempts = 3, delay = 0 } (f.fn))
      assert.equal(made[1], err.errors[1])
      assert.equal(made[3], err.errors[3])
      assert.equal(made[3], err.cause)
      assert.equal("slow 2", err:to_table().errors[2].message)
    end)
  end)

  it("with max_attempts = 1 calls once and never waits", function()
    virtual(function()
      local f = flaky(1)
      local err = catch(fdn.retry { max_attempts = 1, delay = 10 } (f.fn))
      assert.equal(1, f.attempts)
      assert.same({ "failure 1" }, err.errors)
      assert.equal(0, fdn.now())
    end)
  end)

  describe("waits", function()
    local function sequence(opts, failures)
      return virtual(function()
        local f = flaky(failures)
        local seen = {}
        opts.max_attempts = failures + 1
        opts.on_retry = function(_, _, delay)
          seen[#seen + 1] = delay
        end
        fdn.retry(opts)(f.fn)()
        close_list(seen, waits_of(f.times))
        return seen
      end)
    end

    it("follow delay * backoff^(k-1) by default (exponential)", function()
      close_list({ 0.1, 0.2, 0.4, 0.8, 1.6 }, sequence({ delay = 0.1, backoff = 2 }, 5))
      close_list({ 1, 2, 4 }, sequence({}, 3))
      close_list({ 0.5, 1.5, 4.5 }, sequence({ delay = 0.5, backoff = "exponential", factor = 3 }, 3))
    end)

    it("stay fixed, grow linearly or by Fibonacci numbers", function()
      close_list({ 0.3, 0.3, 0.3 }, sequence({ delay = 0.3, backoff = "fixed" }, 3))
      close_list({ 0.3, 0.3, 0.3 }, sequence({ delay = 0.3, backoff = 1 }, 3))
      close_list({ 1, 2, 3, 4 }, sequence({ delay = 1, backoff = "linear" }, 4))
      close_list({ 1, 1.5, 2, 2.5 }, sequence({ delay = 1, backoff = "linear", factor = 0.5 }, 4))
      close_list({ 1, 1, 2, 3, 5, 8, 13 }, sequence({ delay = 1, backoff = "fibonacci" }, 7))
    end)

    it("are capped at max_delay", function()
      close_list({ 1, 2, 4, 5, 5, 5 }, sequence({ delay = 1, backoff = 2, max_delay = 5 }, 6))
      close_list({ 2, 2 }, sequence({ delay = 3, backoff = "fixed", max_delay = 2 }, 2))
    end)

    it("with zero delay never suspend", function()
      virtual(function()
        local f = flaky(4)
        local other_ran = false
        fdn.spawn(function()
          other_ran = true
        end)
        fdn.retry { max_attempts = 5, delay = 0 } (f.fn)()
        assert.equal(5, f.attempts)
        assert.is_false(other_ran)
      end)
    end)

    local function jittered(jitter, seed, n)
      return virtual(function()
        local f = flaky(n)
        local seen = {}
        fdn.retry {
          max_attempts = n + 1, delay = 0.1, backoff = 2, max_delay = 3, jitter = jitter,
          on_retry = function(_, _, delay)
            seen[#seen + 1] = delay
          end,
        } (f.fn)()
        close_list(seen, waits_of(f.times))
        return seen
      end, seed)
    end

    it("with full jitter are uniform in [0, d]", function()
      local seen = jittered("full", 11, 40)
      local below_half = 0
      for k, w in ipairs(seen) do
        local d = math.min(0.1 * 2 ^ (k - 1), 3)
        assert.is_true(w >= 0 and w <= d, "wait " .. k .. " = " .. w)
        if w < d / 2 then
          below_half = below_half + 1
        end
      end
      assert.is_true(below_half > 5 and below_half < 35)
    end)

    it("with equal jitter are in [d/2, d]", function()
      local seen = jittered("equal", 12, 40)
      local distinct = {}
      for k, w in ipairs(seen) do
        local d = math.min(0.1 * 2 ^ (k - 1), 3)
        assert.is_true(w >= d / 2 - 1e-9 and w <= d + 1e-9, "wait " .. k .. " = " .. w)
        distinct[w] = true
      end
      assert.is_true(#seen > 30 and next(distinct) ~= nil)
    end)

    it("with decorrelated jitter are in [delay, min(max_delay, 3 * previous)]", function()
      local seen = jittered("decorrelated", 13, 60)
      local prev, at_cap = 0.1, 0
      for k, w in ipairs(seen) do
        assert.is_true(w >= 0.1 - 1e-9, "wait " .. k .. " = " .. w)
        assert.is_true(w <= math.min(3, 3 * prev) + 1e-9, "wait " .. k .. " = " .. w)
        prev = w
        if w == 3 then
          at_cap = at_cap + 1
        end
      end
      assert.is_true(at_cap > 0)
    end)

    it("with jitter = true are full jitter", function()
      local function run(jitter)
        return virtual(function()
          local f = flaky(8)
          local seen = {}
          fdn.retry { max_attempts = 9, delay = 1, jitter = jitter,
            on_retry = function(_, _, d) seen[#seen + 1] = d end } (f.fn)()
          return seen
        end, 5)
      end
      assert.same(run("full"), run(true))
      assert.same({ 1, 2, 4, 8 }, { unpack(run(false), 1, 4) })
    end)

    it("repeat exactly in runs given the same seed, and differ with another", function()
      assert.same(jittered("full", 99, 10), jittered("full", 99, 10))
      assert.are_not.same(jittered("full", 99, 10), jittered("full", 100, 10))
    end)

    it("can be previewed with fdn.retry.delays", function()
      close_list({ 0.1, 0.2, 0.4, 0.5 },
        fdn.retry.delays({ delay = 0.1, backoff = 2, max_delay = 0.5 }, 4))
      local a = fdn.retry.delays({ delay = 1, jitter = "full" }, 5, 3)
      assert.same(a, fdn.retry.delays({ delay = 1, jitter = "full" }, 5, 3))
      assert.equal(5, #a)
    end)
  end)

  describe("retry_on", function()
    local Transient = errors.define("Transient")
    local Permanent = errors.define("Permanent")

    it("retries only errors of the given class (subclasses included)", function()
      virtual(function()
        local SubTransient = errors.define("SubTransient", Transient)
        local f = flaky(2, function(i)
          return i == 1 and Transient.new("t") or SubTransient.new("s")
        end)
        assert.equal("ok", fdn.retry { retry_on = Transient, delay = 0 } (f.fn)("ok"))
        assert.equal(3, f.attempts)
        local g = flaky(5, function()
          return Permanent.new("p")
        end)
        local err = catch(fdn.retry { retry_on = Transient, delay = 1 } (g.fn))
        assert.equal(1, g.attempts)
        assert.is_true(errors.is(err, Permanent)) -- raised as is, not wrapped
        assert.equal(0, fdn.now())
      end)
    end)

    it("takes a list of classes", function()
      virtual(function()
        local f = flaky(2, function(i)
          return i == 1 and errors.Timeout.new("t") or Transient.new("x")
        end)
        fdn.retry { retry_on = { errors.Timeout, Transient }, delay = 0 } (f.fn)()
        assert.equal(3, f.attempts)
        local g = flaky(1, function()
          return "a string error"
        end)
        local err = catch(fdn.retry { retry_on = { errors.Timeout }, delay = 0 } (g.fn))
        assert.equal("a string error", err)
        assert.equal(1, g.attempts)
      end)
    end)

    it("takes a predicate", function()
      virtual(function()
        local seen = {}
        local f = flaky(3, function(i)
          return { status = i < 3 and 503 or 404 }
        end)
        local err = catch(fdn.retry {
          delay = 0, max_attempts = 10,
          retry_on = function(e)
            seen[#seen + 1] = e.status
            return e.status == 503
          end,
        } (f.fn))
        assert.equal(404, err.status)
        assert.equal(3, f.attempts)
        assert.same({ 503, 503, 404 }, seen)
      end)
    end)

    it("never retries Cancelled, whatever it says", function()
      virtual(function()
        local f = flaky(5, function()
          return errors.Cancelled.new("stop")
        end)
        local err = catch(fdn.retry { retry_on = errors.Error, delay = 0 } (f.fn))
        assert.is_true(errors.is(err, errors.Cancelled))
        assert.equal(1, f.attempts)
        local g = flaky(5, function()
          return errors.Cancelled.new("stop")
        end)
        catch(fdn.retry { retry_on = function() return true end, delay = 0 } (g.fn))
        assert.equal(1, g.attempts)
      end)
    end)
  end)

  describe("Retry-After", function()
    it("waits what the error asks for instead of the backoff", function()
      virtual(function()
        local f = flaky(2, function(i)
          return errors.Error.new("busy", { retry_after = i == 1 and 7 or 0 })
        end)
        local seen = {}
        fdn.retry {
          delay = 1, jitter = "full",
          on_retry = function(_, _, d)
            seen[#seen + 1] = d
          end,
        } (f.fn)()
        close_list({ 7, 0 }, seen)
        close_list({ 7, 0 }, waits_of(f.times))
      end)
    end)

    it("is honoured within max_delay", function()
      virtual(function()
        local f = flaky(1, function()
          return { retry_after = 3600 }
        end)
        fdn.retry { delay = 1, max_delay = 30 } (f.fn)()
        close_list({ 30 }, waits_of(f.times))
      end)
    end)

    it("still obeys the deadlines", function()
      virtual(function()
        local f = flaky(5, function()
          return { retry_after = 20 }
        end)
        local err = catch(fdn.retry { delay = 1, deadline = 10 } (f.fn))
        assert.equal(1, f.attempts)
        assert.equal("deadline", err.context.reason)
        assert.matches("next wait %(20s%)", err.message)
        assert.equal(0, fdn.now())
      end)
    end)

    it("ignores a retry_after that is not a non-negative number", function()
      virtual(function()
        local f = flaky(2, function(i)
          return { retry_after = i == 1 and -5 or 0 / 0 }
        end)
        fdn.retry { delay = 2, backoff = "fixed" } (f.fn)()
        close_list({ 2, 2 }, waits_of(f.times))
      end)
    end)
  end)

  describe("the nil, err convention", function()
    local function nil_flaky(n)
      local self = { attempts = 0, times = {} }
      self.fn = function(x)
        self.attempts = self.attempts + 1
        self.times[#self.times + 1] = fdn.now()
        if self.attempts <= n then
          return nil, "not yet " .. self.attempts
        end
        return x, "extra"
      end
      return self
    end

    it("retries nil, err returns without raising anything", function()
      virtual(function()
        local f = nil_flaky(2)
        local errs = {}
        local retried = fdn.retry {
          delay = 1, retry_if_result = "nil",
          on_retry = function(attempt, err)
            errs[attempt] = err
          end,
        } (f.fn)
        local a, b = retried(42)
        assert.equal(42, a)
        assert.equal("extra", b)
        assert.equal(3, f.attempts)
        assert.same({ "not yet 1", "not yet 2" }, errs)
        close_list({ 1, 2 }, waits_of(f.times))
      end)
    end)

    it("returns the last nil, err when exhausted, or raises by option", function()
      virtual(function()
        local f = nil_flaky(10)
        local a, b = fdn.retry { delay = 0, retry_if_result = "nil" } (f.fn)(1)
        assert.is_nil(a)
        assert.equal("not yet 3", b)
        assert.equal(3, f.attempts)
        local g = nil_flaky(10)
        local err = catch(fdn.retry {
          delay = 0, retry_if_result = "nil", raise_on_exhaustion = true,
        } (g.fn), 1)
        assert.is_true(errors.is(err, errors.RetryExhausted))
        assert.equal("not yet 3", err.cause)
        assert.same({ "not yet 1", "not yet 2", "not yet 3" }, err.errors)
      end)
    end)

    it("lets raised errors through untouched unless retry_on is given", function()
      virtual(function()
        local f = flaky(1)
        local err = catch(fdn.retry { delay = 0, retry_if_result = "nil" } (f.fn))
        assert.equal("failure 1", err)
        assert.equal(1, f.attempts)
        local g = flaky(1)
        assert.equal("x", fdn.retry {
          delay = 0, retry_if_result = "nil", retry_on = errors.Error,
        } (g.fn)("x"))
        assert.equal(2, g.attempts)
      end)
    end)

    it("takes any predicate over the results", function()
      virtual(function()
        local statuses = { 503, 502, 200 }
        local n = 0
        local get = fdn.retry {
          delay = 0.5, backoff = "fixed",
          retry_if_result = function(status)
            return status >= 500
          end,
          on_retry = function(_, err)
            assert.is_true(err >= 500) -- the failing result stands for the error
          end,
        } (function()
          n = n + 1
          return statuses[n], "body " .. n
        end)
        local status, body = get()
        assert.equal(200, status)
        assert.equal("body 3", body)
        assert.equal(1, fdn.now())
      end)
    end)

    it("honours retry_after on the returned error", function()
      virtual(function()
        local n = 0
        local get = fdn.retry { delay = 1, retry_if_result = "nil" } (function()
          n = n + 1
          if n == 1 then
            return nil, { retry_after = 4 }
          end
          return "ok"
        end)
        assert.equal("ok", get())
        assert.equal(4, fdn.now())
      end)
    end)
  end)

  describe("deadlines", function()
    it("gives up when the next wait would end past its own deadline", function()
      virtual(function()
        local f = flaky(100)
        local err = catch(fdn.retry {
          max_attempts = 100, delay = 2, backoff = "fixed", deadline = 5,
        } (f.fn))
        -- Attempts at 0, 2, 4; a wait to 6 would pass the deadline at 5.
        assert.equal(3, f.attempts)
        assert.equal(4, fdn.now())
        assert.is_true(errors.is(err, errors.RetryExhausted))
        assert.equal("deadline", err.context.reason)
        assert.matches("retry deadline", err.message)
      end)
    end)

    it("never starts a wait that would end past an enclosing fdn.timeout", function()
      virtual(function()
        local f = flaky(100)
        local retried = fdn.retry { max_attempts = 10, delay = 4, backoff = 2 } (f.fn)
        local err = catch(fdn.timeout, 10, retried)
        -- Attempts at 0 and 4; the next wait (8 s) would end at 12: give up
        -- at 4 with the reason, rather than sleep into the timeout.
        assert.equal(2, f.attempts)
        assert.equal(4, fdn.now())
        assert.is_true(errors.is(err, errors.RetryExhausted))
        assert.equal("limit", err.context.reason)
        assert.matches("enclosing deadline %(in 6s%)", err.message)
        assert.equal("failure 2", err.cause)
      end)
    end)

    it("reads the innermost deadline up to a shield", function()
      virtual(function()
        assert.is_nil(require("fdn.core").current_deadline())
        fdn.timeout(10, function()
          fdn.sleep(1)
          assert.equal(9, require("fdn.core").current_deadline())
          fdn.timeout(3, function()
            assert.equal(3, require("fdn.core").current_deadline())
          end)
          fdn.shielded(function()
            assert.equal(fdn.cleanup_timeout, require("fdn.core").current_deadline())
          end)
        end)
      end)
    end)

    it("is cancelled in the attempt in flight by an enclosing fdn.timeout", function()
      virtual(function()
        local attempts = 0
        local retried = fdn.retry { max_attempts = 5, delay = 0 } (function()
          attempts = attempts + 1
          fdn.sleep(100)
        end)
        local err = catch(fdn.timeout, 5, retried)
        assert.is_true(errors.is(err, errors.Timeout))
        assert.is_true(errors.is(err.cause, errors.Cancelled))
        assert.equal(1, attempts)
        assert.equal(5, fdn.now())
      end)
    end)

    it("stops at once when the task is cancelled during a backoff", function()
      virtual(function()
        local f = flaky(100)
        local retried = fdn.retry { max_attempts = 5, delay = 60 } (f.fn)
        local task = fdn.spawn(retried)
        fdn.sleep(1)
        task:cancel("shutting down")
        local ok, err = task:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Cancelled))
        assert.matches("shutting down", err.message)
        assert.equal(1, f.attempts)
        assert.equal(1, fdn.now())
        assert.equal(1, fdn.retry.stats(retried).failures)
      end)
    end)
  end)

  it("keeps separate state for concurrent calls of one function", function()
    virtual(function()
      local counts = {}
      local retried = fdn.retry { max_attempts = 5, delay = 1, backoff = "fixed" } (function(key, fails)
        counts[key] = (counts[key] or 0) + 1
        if counts[key] <= fails then
          error(key .. " failed")
        end
        return key
      end)
      local a = fdn.spawn(retried, "a", 3)
      local b = fdn.spawn(retried, "b", 1)
      local c = fdn.spawn(retried, "c", 9)
      assert.equal("a", a:join())
      assert.equal("b", b:join())
      local ok, err = c:wait()
      assert.is_false(ok)
      assert.equal(5, err.attempts)
      assert.same({ a = 4, b = 2, c = 5 }, counts)
      local s = fdn.retry.stats(retried)
      assert.same({ calls = 3, attempts = 11, successes = 2, failures = 1, retries = 8 }, s)
    end)
  end)

  it("counts calls, attempts, successes and failures per wrapped function", function()
    virtual(function()
      local f = flaky(1)
      local one = fdn.retry { delay = 0 } (f.fn)
      local other = fdn.retry { delay = 0 } (f.fn)
      one()
      one()
      other()
      assert.same({ calls = 2, attempts = 3, successes = 2, failures = 0, retries = 1 },
        fdn.retry.stats(one))
      assert.same({ calls = 1, attempts = 1, successes = 1, failures = 0, retries = 0 },
        fdn.retry.stats(other))
      assert.is_true(errors.is(catch(fdn.retry.stats, print), errors.InvalidArgument))
    end)
  end)

  it("emits retry.attempt, retry.succeeded and retry.exhausted", function()
    local seen = {}
    local unsubscribe = events.subscribe("retry.*", function(name, data)
      seen[#seen + 1] = { name, data.name, data.attempt or data.attempts, data.delay, data.reason }
    end)
    virtual(function()
      local f = flaky(1)
      fdn.retry { name = "db", delay = 0.5 } (f.fn)()
      local g = flaky(5)
      pcall(fdn.retry { name = "api", max_attempts = 2, delay = 0 } (g.fn))
    end)
    unsubscribe()
    assert.same({
      { "retry.attempt", "db", 1, 0.5 },
      { "retry.succeeded", "db", 2 },
      { "retry.attempt", "api", 1, 0 },
      { "retry.exhausted", "api", 2, nil, "exhausted" },
    }, seen)
  end)

  it("raises an on_retry hook's error and stops", function()
    virtual(function()
      local f = flaky(3)
      local err = catch(fdn.retry {
        delay = 0, on_retry = function()
          error("hook broke", 0)
        end,
      } (f.fn))
      assert.equal("hook broke", err)
      assert.equal(1, f.attempts)
    end)
  end)

  it("retries without a running engine when no wait is needed", function()
    local f = flaky(2)
    assert.equal("x", fdn.retry { delay = 0 } (f.fn)("x"))
    local g = flaky(2)
    local err = catch(fdn.retry { delay = 1 } (g.fn))
    assert.is_true(errors.is(err, errors.InvalidState))
  end)

  describe("rejects bad policy values with InvalidArgument naming the field", function()
    local cases = {
      { { max_attempts = 0 }, "max_attempts" },
      { { max_attempts = -1 }, "max_attempts" },
      { { max_attempts = 2.5 }, "max_attempts" },
      { { max_attempts = 0 / 0 }, "max_attempts" },
      { { max_attempts = "3" }, "max_attempts" },
      { { delay = -1 }, "delay" },
      { { delay = 0 / 0 }, "delay" },
      { { delay = "1" }, "delay" },
      { { max_delay = -0.5 }, "max_delay" },
      { { deadline = 0 / 0 }, "deadline" },
      { { jitter = "gaussian" }, "jitter" },
      { { jitter = 1 }, "jitter" },
      { { backoff = "quadratic" }, "backoff" },
      { { backoff = 0.5 }, "backoff" },
      { { backoff = 0 / 0 }, "backoff" },
      { { backoff = 2, factor = 3 }, "factor" },
      { { backoff = "fixed", factor = 3 }, "factor" },
      { { backoff = "exponential", factor = 0.5 }, "factor" },
      { { backoff = "linear", factor = -1 }, "factor" },
      { { retry_on = 42 }, "retry_on" },
      { { retry_on = { errors.Timeout, "x" } }, "retry_on[2]" },
      { { on_retry = true }, "on_retry" },
      { { retry_if_result = "none" }, "retry_if_result" },
      { { name = 7 }, "name" },
      { { max_attemps = 3 }, "max_attemps" },
    }
    for _, case in ipairs(cases) do
      local opts, field = case[1], case[2]
      it(field .. " = " .. tostring(opts[field] or next(opts)), function()
        local err = catch(fdn.retry, opts)
        assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
        assert.equal(field, err.context.parameter)
        assert.equal("fdn.retry", err.context["function"])
        assert.matches("fdn.retry: bad argument '" .. field:gsub("%p", "%%%0") .. "'", err.message)
      end)
    end

    it("and a missing function", function()
      local err = catch(fdn.retry {}, nil)
      assert.is_true(errors.is(err, errors.InvalidArgument))
      assert.equal("fn", err.context.parameter)
      assert.is_true(errors.is(catch(fdn.retry, 5), errors.InvalidArgument))
    end)
  end)
end)
