local fdn = require "fdn"
local log = require "fdn.log"
local events = require "fdn.events"
local cjson = require "cjson"
local errors = fdn.errors
local OperationContext = fdn.OperationContext

local function vrun(fn)
  return fdn.run(fn, { clock = "virtual" })
end

local function by_event(records)
  local t = {}
  for _, r in ipairs(records) do
    t[r.event] = r
  end
  return t
end

describe("fdn.OperationContext", function()
  local records
  before_each(function()
    records = {}
    log.configure { level = "trace", format = "json", sink = function(r) records[#records + 1] = r end }
  end)
  after_each(function()
    log.configure { level = "info", format = "console", sink = "stderr", levels = {} }
    events.reset()
  end)

  it("logs started and completed with duration_ms, the success fields and the new() fields", function()
    local result = vrun(function()
      return fdn.with(OperationContext.new("data_processing", { source = "s3" }), function(ctx)
        assert.equal("string", type(ctx.operation_id))
        fdn.sleep(2)
        ctx:success { result_count = 3 }
        return "done", ctx.operation_id
      end)
    end)
    assert.equal("done", result)
    assert.equal(2, #records)
    local started, completed = records[1], records[2]
    assert.equal("data_processing.started", started.event)
    assert.equal("info", started.level)
    assert.equal("s3", started.source)
    assert.equal("data_processing.completed", completed.event)
    assert.equal(2000, completed.duration_ms)
    assert.equal(3, completed.result_count)
    assert.equal("s3", completed.source)
    assert.equal(started.operation_id, completed.operation_id)
    assert.is_nil(started.parent_operation_id)
  end)

  it("puts the id on every record inside, in child tasks too, and takes it out at the end", function()
    local id
    vrun(function()
      fdn.with(OperationContext.new("job"), function(ctx)
        id = ctx.operation_id
        log.info("inside")
        local child = fdn.spawn(function()
          fdn.sleep(1)
          log.info("in_child")
          return fdn.spawn(function()
            log.info("in_grandchild")
            return fdn.context.get("operation_id")
          end):join()
        end)
        assert.equal(id, child:join())
      end)
      log.info("after")
      assert.is_nil(fdn.context.get("operation_id"))
    end)
    local r = by_event(records)
    assert.equal(id, r.inside.operation_id)
    assert.equal(id, r.in_child.operation_id)
    assert.equal(id, r.in_grandchild.operation_id)
    assert.is_nil(r.after.operation_id)
  end)

  it("gives nested operations the parent's id, and restores the parent's afterwards", function()
    local outer_id, inner_id
    vrun(function()
      fdn.with(OperationContext.new("outer"), function(outer)
        outer_id = outer.operation_id
        fdn.with(OperationContext.new("inner", { step = 1 }), function(inner)
          inner_id = inner.operation_id
          assert.equal(outer_id, inner.parent_operation_id)
          log.info("in_inner")
        end)
        log.info("back_in_outer")
      end)
    end)
    local r = by_event(records)
    assert.are_not.equal(outer_id, inner_id)
    assert.equal(outer_id, r["inner.started"].parent_operation_id)
    assert.equal(outer_id, r["inner.completed"].parent_operation_id)
    assert.equal(1, r["inner.completed"].step)
    assert.equal(inner_id, r.in_inner.operation_id)
    assert.equal(outer_id, r.in_inner.parent_operation_id)
    assert.equal(outer_id, r.back_in_outer.operation_id)
    assert.is_nil(r.back_in_outer.parent_operation_id)
  end)

  it("logs an error the body raises as failed and re-raises the same value", function()
    local boom = errors.Error.new("boom")
    local ok, err = pcall(vrun, function()
      fdn.with(OperationContext.new("load", { file = "a.csv" }), function(ctx)
        ctx:add_metadata { rows = 10 }
        fdn.sleep(0.5)
        error(boom)
      end)
    end)
    assert.is_false(ok)
    assert.equal(boom, err)
    local failed = by_event(records)["load.failed"]
    assert.equal("error", failed.level)
    assert.equal(boom, failed.error)
    assert.equal(500, failed.duration_ms)
    assert.equal("a.csv", failed.file)
    assert.equal(10, failed.rows)
    assert.is_nil(by_event(records)["load.completed"])
    ok, err = pcall(vrun, function()
      fdn.with(OperationContext.new("s"), function() error("plain string", 0) end)
    end)
    assert.is_false(ok)
    assert.equal("plain string", err)
    assert.equal("plain string", by_event(records)["s.failed"].error)
  end)

  it("logs a failure reported with ctx:error{} and does not raise when the body returns", function()
    local value = vrun(function()
      return fdn.with(OperationContext.new("sync"), function(ctx)
        ctx:error { error = "partner down", partner = "acme" }
        return "fallback"
      end)
    end)
    assert.equal("fallback", value)
    local r = by_event(records)
    assert.equal("partner down", r["sync.failed"].error)
    assert.equal("acme", r["sync.failed"].partner)
    assert.equal(0, r["sync.failed"].duration_ms)
    assert.is_nil(r["sync.completed"])
  end)

  it("takes an error value in ctx:error, and logs one failed record if the body raises after", function()
    local e1, e2 = errors.Timeout.new("first"), errors.Closed.new("second")
    vrun(function()
      fdn.with(OperationContext.new("a"), function(ctx) ctx:error(e1) end)
      pcall(fdn.with, OperationContext.new("b"), function(ctx)
        ctx:error { attempt = 2 }
        error(e2)
      end)
    end)
    local failed = {}
    for _, r in ipairs(records) do
      if r.event:find("failed$") then
        failed[#failed + 1] = r
      end
    end
    assert.equal(2, #failed)
    assert.equal(e1, failed[1].error)
    assert.equal(e2, failed[2].error)
    assert.equal(2, failed[2].attempt)
  end)

  it("logs cancellation as cancelled, not failed, and re-raises it", function()
    local err
    vrun(function()
      local t = fdn.spawn(function()
        fdn.with(OperationContext.new("long"), function()
          fdn.sleep(100)
        end)
      end)
      fdn.sleep(3)
      t:cancel("user abort")
      local _, e = t:wait()
      err = e
    end)
    assert.is_true(errors.is(err, errors.Cancelled))
    local r = by_event(records)
    assert.equal("warn", r["long.cancelled"].level)
    assert.equal(3000, r["long.cancelled"].duration_ms)
    assert.matches("user abort", r["long.cancelled"].reason)
    assert.is_nil(r["long.failed"])
  end)

  it("logs a timeout inside it as cancelled", function()
    vrun(function()
      local ok, err = pcall(fdn.timeout, 1, function()
        fdn.with(OperationContext.new("slow"), function() fdn.sleep(5) end)
      end)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Timeout))
    end)
    assert.equal(1000, by_event(records)["slow.cancelled"].duration_ms)
  end)

  it("makes unique ids that repeat under the same seed", function()
    local function ids(seed)
      local got = {}
      fdn.run(function()
        for i = 1, 50 do
          fdn.with(OperationContext.new("op"), function(ctx) got[i] = ctx.operation_id end)
        end
      end, { seed = seed, clock = "virtual" })
      return got
    end
    local a, b, c = ids(7), ids(7), ids(8)
    assert.same(a, b)
    assert.are_not.same(a, c)
    local seen = {}
    for _, id in ipairs(a) do
      assert.matches("^%x+$", id)
      assert.equal(16, #id)
      assert.is_nil(seen[id])
      seen[id] = true
    end
  end)

  it("writes through a given logger at a given level, and parses back as JSON", function()
    local path = os.tmpname()
    log.configure { format = "json", sink = path }
    vrun(function()
      fdn.with(OperationContext.new("report", { kind = "daily" }, { logger = log.get("jobs"), level = "debug" }),
        function(ctx) ctx:success { pages = 4 } end)
    end)
    log.configure { sink = function() end }
    local lines = {}
    for line in io.lines(path) do
      lines[#lines + 1] = cjson.decode(line)
    end
    os.remove(path)
    assert.equal(2, #lines)
    assert.equal("jobs", lines[1].logger)
    assert.equal("debug", lines[1].level)
    assert.equal("report.completed", lines[2].event)
    assert.equal(4, lines[2].pages)
    assert.equal("daily", lines[2].kind)
    assert.equal(lines[1].operation_id, lines[2].operation_id)
    assert.is_true(lines[2].duration_ms >= 0)
  end)

  it("still fails loudly when its level is filtered out", function()
    log.configure { level = "error" }
    pcall(vrun, function()
      fdn.with(OperationContext.new("quiet"), function() error("loud", 0) end)
    end)
    assert.equal(1, #records)
    assert.equal("quiet.failed", records[1].event)
  end)

  it("emits its lifecycle on the event bus", function()
    local got = {}
    events.subscribe("operation.*", function(name, data) got[#got + 1] = { name, data } end)
    vrun(function()
      fdn.with(OperationContext.new("op", { k = 1 }), function() fdn.sleep(1) end)
      pcall(fdn.with, OperationContext.new("bad"), function() error("x", 0) end)
    end)
    assert.equal("operation.started", got[1][1])
    assert.equal("op", got[1][2].name)
    assert.equal("operation.completed", got[2][1])
    assert.equal(1, got[2][2].duration)
    assert.equal(1, got[2][2].fields.k)
    assert.equal(got[1][2].operation_id, got[2][2].operation_id)
    assert.equal("operation.failed", got[4][1])
    assert.equal("x", got[4][2].error)
  end)

  it("runs once", function()
    vrun(function()
      local op = OperationContext.new("once")
      fdn.with(op, function() end)
      assert.equal("completed", op.status)
      local ok, err = pcall(fdn.with, op, function() end)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidState))
      assert.matches("already started", err.message)
      ok, err = pcall(op.success, op, {})
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidState))
      assert.matches("over", err.message)
      local fresh = OperationContext.new("fresh")
      ok, err = pcall(fresh.add_metadata, fresh, {})
      assert.is_false(ok)
      assert.matches("not started", err.message)
    end)
  end)

  it("rejects bad arguments", function()
    local op = OperationContext.new("x")
    local cases = {
      { OperationContext.new, { n = 1, nil }, "'name'" },
      { OperationContext.new, { "" }, "'name'" },
      { OperationContext.new, { "x", 5 }, "'fields'" },
      { OperationContext.new, { n = 3, "x", nil, 5 }, "'opts'" },
      { OperationContext.new, { n = 3, "x", nil, { logger = 5 } }, "opts.logger" },
      { OperationContext.new, { n = 3, "x", nil, { level = "loud" } }, "opts.level" },
      { OperationContext.new, { n = 3, "x", nil, { level = "off" } }, "opts.level" },
      { op.success, { {} }, "'self'" },
      { op.__enter, { {} }, "'self'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1], unpack(c[2], 1, c[2].n or #c[2]))
      assert.is_false(ok, c[3])
      assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
      assert.matches(c[3], err.message)
    end
    vrun(function()
      fdn.with(OperationContext.new("args"), function(ctx)
        local ok, err = pcall(ctx.success, ctx, 5)
        assert.is_false(ok)
        assert.matches("ctx:success: bad argument 'fields'", err.message)
        ok, err = pcall(ctx.add_metadata, ctx, "x")
        assert.is_false(ok)
        assert.matches("ctx:add_metadata: bad argument 'fields'", err.message)
      end)
    end)
  end)
end)
