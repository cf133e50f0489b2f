local errors = require "fdn.errors"

describe("fdn.errors for the resilience modules", function()
  it("matches errors against a class, a list of classes or a predicate", function()
    local HttpError = errors.define("HttpError")
    local by_class = errors.matcher(HttpError)
    assert.is_true(by_class(HttpError.new("x")))
    assert.is_false(by_class(errors.Timeout.new("x")))
    assert.is_false(by_class("a string"))
    local by_list = errors.matcher { errors.Timeout, HttpError }
    assert.is_true(by_list(errors.Timeout.new("t")))
    assert.is_true(by_list(HttpError.new("h")))
    assert.is_false(by_list(errors.Closed.new("c")))
    local pred = function() return true end
    assert.equal(pred, errors.matcher(pred))
    assert.is_true(errors.matcher(nil)("anything"))
    assert.is_true(errors.matcher(errors.Error)("strings are Errors"))
  end)

  it("rejects what is not a class, a list of classes or a function", function()
    for _, bad in ipairs { 42, "Timeout", {}, { errors.Timeout, 3 } } do
      local ok, err = pcall(errors.matcher, bad, "fdn.thing", "catch")
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidArgument))
      assert.matches("^fdn.thing: bad argument 'catch", err.message)
    end
  end)

  it("tells Cancelled and its subclasses apart quickly", function()
    local Shutdown = errors.define("Shutdown", errors.Cancelled)
    assert.is_true(errors.is_cancelled(errors.Cancelled.new("c")))
    assert.is_true(errors.is_cancelled(Shutdown.new("s")))
    assert.is_false(errors.is_cancelled(errors.Timeout.new("t")))
    assert.is_false(errors.is_cancelled("cancelled"))
    assert.is_false(errors.is_cancelled({}))
    assert.is_false(errors.is_cancelled(nil))
  end)

  it("flattens RetryExhausted with its attempts, errors and cause", function()
    local e1 = errors.Timeout.new("slow", { context = { host = "a" } })
    local err = errors.RetryExhausted.new("gave up", {
      cause = "last", attempts = 2, errors = { e1, "last" },
      context = { attempts = 2 },
    })
    local t = err:to_table()
    assert.equal("RetryExhausted", t.type)
    assert.equal("RETRY_EXHAUSTED", t.code)
    assert.equal(2, t.attempts)
    assert.equal("last", t.cause)
    assert.equal("Timeout", t.errors[1].type)
    assert.equal("a", t.errors[1].host)
    assert.equal("last", t.errors[2])
    assert.equal(2, err.attempts)
    assert.equal(e1, err.errors[1])
  end)

  it("keeps and flattens retry_after and suppressed errors", function()
    local err = errors.CircuitOpen.new("open", { retry_after = 12.5 })
    assert.equal(12.5, err.retry_after)
    assert.equal(12.5, err:to_table().retry_after)
    local outer = errors.Error.new("outer", { suppressed = { errors.Closed.new("exit") } })
    assert.equal("Closed", outer:to_table().suppressed[1].type)
  end)
end)
