local fdn = require "fdn"
local log = require "fdn.log"
local errors = fdn.errors

local function vrun(fn)
  return fdn.run(fn, { clock = "virtual" })
end

describe("fdn.async_logger", function()
  local records
  before_each(function()
    records = {}
    log.configure { level = "trace", format = "json", sink = function(r) records[#records + 1] = r end }
  end)
  after_each(function()
    log.configure { level = "info", format = "console", sink = "stderr", levels = {} }
  end)

  it("logs entry and exit with the duration, and returns every result unchanged", function()
    local handle = fdn.async_logger("api_request")(function(a, b)
      fdn.sleep(1.5)
      return a + b, nil, "third"
    end)
    local r1, r2, r3, n
    vrun(function()
      local function count(...) return select("#", ...), ... end
      n, r1, r2, r3 = count(handle(2, 3))
    end)
    assert.equal(3, n)
    assert.equal(5, r1)
    assert.is_nil(r2)
    assert.equal("third", r3)
    assert.equal(2, #records)
    assert.equal("api_request.started", records[1].event)
    assert.equal("info", records[1].level)
    assert.is_nil(records[1].args)
    assert.equal("api_request.completed", records[2].event)
    assert.equal(1500, records[2].duration_ms)
    assert.is_nil(records[2].result)
  end)

  it("logs a failure with the error and re-raises the very same value", function()
    local boom = errors.Error.new("boom")
    local failing = fdn.async_logger("job")(function() fdn.sleep(0.25) error(boom) end)
    local stringly = fdn.async_logger("job2")(function() error("just a string", 0) end)
    vrun(function()
      local ok, err = pcall(failing)
      assert.is_false(ok)
      assert.equal(boom, err)
      ok, err = pcall(stringly)
      assert.is_false(ok)
      assert.equal("just a string", err)
    end)
    assert.equal("job.failed", records[2].event)
    assert.equal("error", records[2].level)
    assert.equal(boom, records[2].error)
    assert.equal(250, records[2].duration_ms)
    assert.equal("just a string", records[4].error)
  end)

  it("logs a cancellation as cancelled", function()
    local slow = fdn.async_logger("slow_call")(function() fdn.sleep(60) end)
    vrun(function()
      local t = fdn.spawn(slow)
      fdn.sleep(2)
      t:cancel("enough")
      local ok, err = t:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
    end)
    assert.equal("slow_call.cancelled", records[2].event)
    assert.equal("warn", records[2].level)
    assert.equal(2000, records[2].duration_ms)
    assert.matches("enough", records[2].reason)
  end)

  it("logs arguments and results when asked, through a function to redact", function()
    local plain = fdn.async_logger("p", { log_args = true, log_result = true })(function(a, b)
      return a .. b
    end)
    local multi = fdn.async_logger("m", { log_result = true })(function() return 1, 2 end)
    local redacted = fdn.async_logger("login", {
      log_args = function(user) return { user = user } end,
      log_result = function(token) return #token end,
    })(function(_, _) return "secret-token" end)
    vrun(function()
      plain("a", "b")
      multi()
      redacted("ann", "hunter2")
    end)
    assert.same({ "a", "b" }, records[1].args)
    assert.equal("ab", records[2].result)
    assert.same({ 1, 2 }, records[4].result)
    assert.same({ user = "ann" }, records[5].args)
    assert.equal(12, records[6].result)
    for _, r in ipairs(records) do
      assert.is_nil(log.encode_json(r):find("hunter2", 1, true))
    end
  end)

  it("survives a failing redaction function", function()
    local f = fdn.async_logger("f", { log_args = function() error("bad redactor", 0) end })(function()
      return "ok"
    end)
    assert.equal("ok", vrun(f))
    assert.matches("log_args failed: bad redactor", records[1].args)
  end)

  it("uses the level, logger, fields and task-local context given", function()
    log.configure { level = "info" }
    local quiet = fdn.async_logger("poll", { level = "debug", logger = log.get("poller"), fields = { queue = "q1" } })
    local ok_fn = quiet(function() return true end)
    local bad_fn = quiet(function() error("poll failed", 0) end)
    vrun(function()
      fdn.context.set("request_id", "r-5")
      ok_fn()
      pcall(bad_fn)
    end)
    assert.equal(1, #records) -- debug records filtered, the failure still logged
    assert.equal("poll.failed", records[1].event)
    assert.equal("poller", records[1].logger)
    assert.equal("q1", records[1].queue)
    assert.equal("r-5", records[1].request_id)
  end)

  it("works outside any task and as fdn.async_logger.new", function()
    local f = fdn.async_logger.new("plain")(function(x) return x * 2 end)
    assert.equal(8, f(4))
    assert.equal("plain.completed", records[2].event)
    assert.is_true(records[2].duration_ms >= 0)
  end)

  it("rejects bad arguments", function()
    local cases = {
      { function() fdn.async_logger() end, "'name'" },
      { function() fdn.async_logger("") end, "'name'" },
      { function() fdn.async_logger("x", 5) end, "'opts'" },
      { function() fdn.async_logger("x", { level = "loud" }) end, "opts.level" },
      { function() fdn.async_logger("x", { log_args = "yes" }) end, "opts.log_args" },
      { function() fdn.async_logger("x", { log_result = 1 }) end, "opts.log_result" },
      { function() fdn.async_logger("x", { logger = {} }) end, "opts.logger" },
      { function() fdn.async_logger("x", { fields = "f" }) end, "opts.fields" },
      { function() fdn.async_logger("x")(nil) end, "'fn'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok, c[2])
      assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
      assert.matches(c[2], err.message)
    end
  end)
end)
