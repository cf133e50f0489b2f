local fdn = require "fdn"
local log = require "fdn.log"
local events = require "fdn.events"
local cjson = require "cjson"
local h = require "helpers"
local errors = fdn.errors

local DEFAULTS = { level = "info", format = "console", sink = "stderr", color = "auto", levels = {} }

local function is_invalid_argument(err, pattern)
  assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
  if pattern then
    assert.matches(pattern, err.message)
  end
end

local function capture(level)
  local records = {}
  log.configure { level = level or "trace", format = "json", sink = function(r) records[#records + 1] = r end }
  return records
end

describe("fdn.log", function()
  local records
  before_each(function()
    records = capture("debug")
  end)
  after_each(function()
    log.configure(DEFAULTS)
    events.reset()
  end)

  it("makes flat records with event, level, time and the call's fields", function()
    local t0 = os.time()
    log.info("user_loaded", { user_id = 42 })
    assert.equal(1, #records)
    local r = records[1]
    assert.equal("user_loaded", r.event)
    assert.equal("info", r.level)
    assert.equal(42, r.user_id)
    assert.is_nil(r.logger)
    -- Unix seconds (not milliseconds, not monotonic time). The margin
    -- allows for the wall clock being stepped by time sync during the run.
    assert.is_true(math.abs(r.time - t0) < 300, "time is Unix seconds")
  end)

  it("drops records below the level and returns nothing", function()
    log.configure { level = "warn" }
    assert.is_nil(log.debug("quiet"))
    assert.is_nil(log.debug(5)) -- below the level nothing runs, argument checks included
    log.info("quiet", { big = string.rep("x", 10) })
    log.warn("loud")
    log.error("louder")
    assert.equal(2, #records)
    assert.equal("loud", records[1].event)
    assert.is_false(log.enabled("info"))
    assert.is_true(log.enabled("error"))
    log.configure { level = "off" }
    log.error("silenced")
    assert.equal(2, #records)
    assert.is_false(log.enabled("error"))
  end)

  it("accepts level names in any case", function()
    log.configure { level = "WARN" }
    assert.equal("warn", log.config().level)
  end)

  it("merges task-local context, bound fields and call fields, later ones winning", function()
    fdn.run(function()
      fdn.context.set("request_id", "r-9")
      fdn.context.set("shared", "context")
      local db = log.bind { component = "db", shared = "bound" }
      db.warn("slow", { ms = 812, shared = "call" })
      db.warn("slow_again")
    end)
    local r = records[1]
    assert.equal("r-9", r.request_id)
    assert.equal("db", r.component)
    assert.equal(812, r.ms)
    assert.equal("call", r.shared)
    assert.equal("bound", records[2].shared)
  end)

  it("keeps the head keys as the logger's own, whatever the fields say", function()
    log.info("real", { event = "fake", level = "error", time = 1, logger = "x" })
    local r = records[1]
    assert.equal("real", r.event)
    assert.equal("info", r.level)
    assert.is_true(r.time > 1)
    assert.is_nil(r.logger)
  end)

  it("leaves out context keys that are not strings (private to fdn modules)", function()
    fdn.run(function()
      fdn.context._set({}, "hidden")
      fdn.context.set("visible", 1)
      log.info("x")
    end)
    for k in pairs(records[1]) do
      assert.equal("string", type(k))
    end
    assert.equal(1, records[1].visible)
  end)

  it("names loggers, and bound loggers keep the name", function()
    log.get("payments").error("declined")
    log.get("payments").bind({ card = "visa" }).warn("retrying")
    assert.equal("payments", records[1].logger)
    assert.equal("payments", records[2].logger)
    assert.equal("visa", records[2].card)
    assert.equal(log.get("payments"), log.get("payments"))
  end)

  it("logs at a level given by name", function()
    log.log("warn", "by_name", { n = 1 })
    log.get("named").log("debug", "by_name_too")
    assert.equal("warn", records[1].level)
    assert.equal("debug", records[2].level)
    assert.equal("named", records[2].logger)
  end)

  describe("levels per logger", function()
    it("applies to the logger and its dotted children, also to loggers made earlier", function()
      local pool = log.get("app.db.pool")
      log.configure { level = "warn", levels = { ["app.db"] = "debug", ["app.db.pool.noisy"] = "error" } }
      pool.debug("pool_debug")
      log.get("app.db").info("db_info")
      log.get("app").info("app_info")           -- the default: warn
      log.info("root_info")
      log.get("app.db.pool.noisy").warn("noisy_warn")
      local got = {}
      for i, r in ipairs(records) do
        got[i] = r.event
      end
      assert.same({ "pool_debug", "db_info" }, got)
      assert.is_true(log.enabled("debug", "app.db.pool"))
      assert.is_false(log.enabled("debug", "other"))
      assert.is_true(pool.enabled("debug"))
      assert.same({ ["app.db"] = "debug", ["app.db.pool.noisy"] = "error" }, log.config().levels)
    end)

    it("are replaced by the next levels option, and bound loggers follow their name", function()
      log.configure { level = "error", levels = { svc = "debug" } }
      local bound = log.get("svc").bind { x = 1 }
      bound.debug("shown")
      log.configure { levels = {} }
      bound.debug("hidden")
      bound.error("shown_too")
      assert.equal(2, #records)
      assert.equal("shown_too", records[2].event)
    end)
  end)

  describe("JSON", function()
    it("writes the head keys first, then the fields, on one line", function()
      local line = log.encode_json { event = "e", level = "info", time = 1712345678.25, logger = "n", a = 1 }
      assert.equal('{"time":1712345678.250000,"level":"info","event":"e","logger":"n","a":1}', line)
      assert.equal('{"a":1}', log.encode_json { a = 1 })
      assert.equal("{}", log.encode_json {})
      assert.equal('{"level":"info","b":true}', log.encode_json { level = "info", b = true })
    end)

    it("renders values JSON cannot hold without raising", function()
      local cyclic = {}
      cyclic.self = cyclic
      local shared = { 1 }
      local deep = {}
      local node = deep
      for _ = 1, 20 do
        node.next = {}
        node = node.next
      end
      local encoded = log.encode_json {
        event = "odd", f = function() end, nan = 0 / 0, inf = math.huge, ninf = -math.huge,
        cyc = cyclic, co = coroutine.create(function() end), [true] = "boolean key",
        err = fdn.errors.Timeout.new("late", { context = { url = "/x" } }),
        ud = io.stdout, twice = { a = shared, b = shared }, deep = deep,
        sparse = { [1] = "a", [1000] = "b" }, [7] = "number key", [{}] = "table key",
        obj = setmetatable({}, { __tostring = function() return "Obj<1>" end }),
        nested_nan = { 0 / 0 }, fields = { [1.5] = "float key", [math.huge] = "inf key" },
      }
      local back = cjson.decode(encoded)
      assert.equal("odd", back.event)
      assert.matches("^function", back.f)
      assert.equal("nan", back.nan)
      assert.equal("inf", back.inf)
      assert.equal("-inf", back.ninf)
      assert.equal("<cycle>", back.cyc.self)
      assert.matches("^thread", back.co)
      assert.matches("^file", back.ud)
      assert.equal("Timeout", back.err.type)
      assert.equal("late", back.err.message)
      assert.equal("/x", back.err.url)
      assert.equal("boolean key", back["<boolean>"])
      assert.equal("number key", back["7"])
      assert.equal("table key", back["<table>"])
      assert.same({ 1 }, back.twice.a)
      assert.same({ 1 }, back.twice.b) -- shared, not cyclic
      assert.equal("Obj<1>", back.obj)
      assert.equal("nan", back.nested_nan[1])
      assert.equal("a", back.sparse["1"])
      assert.equal("float key", back.fields["1.5"])
      assert.equal("inf key", back.fields.inf)
      local depth, n = 0, back.deep
      while type(n) == "table" do
        depth, n = depth + 1, n.next
      end
      assert.equal("<table: too deep>", n)
      assert.is_true(depth < 10)
    end)

    it("repairs invalid UTF-8 and escapes control characters", function()
      local encoded = log.encode_json {
        event = "bad\255event", ["key\254"] = "v", s = "ok é \192\128 \237\160\128 end",
        ctl = "a\nb\tc\1d\"e\\f", nested = { "x\255" },
      }
      local back = cjson.decode(encoded)
      assert.equal("bad\239\191\189event", back.event)
      assert.equal("v", back["key\239\191\189"])
      -- an overlong form and a surrogate: each byte becomes U+FFFD
      assert.equal("ok é \239\191\189\239\191\189 \239\191\189\239\191\189\239\191\189 end", back.s)
      assert.equal("a\nb\tc\1d\"e\\f", back.ctl)
      assert.equal("x\239\191\189", back.nested[1])
      assert.is_nil(encoded:find("[%z\1-\31]"))
      assert.is_nil(encoded:find("\255", 1, true))
    end)

    it("writes numbers whole when they are integers, else to 14 digits", function()
      local back = log.encode_json { i = 42, neg = -7, big = 2 ^ 40, f = 12.5, tiny = 2.5e-7, third = 1 / 3 }
      assert.matches('"i":42[,}]', back)
      assert.matches('"neg":%-7[,}]', back)
      assert.matches('"big":1099511627776[,}]', back)
      assert.matches('"f":12.5[,}]', back)
      local decoded = cjson.decode(back)
      assert.near(2.5e-7, decoded.tiny, 1e-20)
      assert.near(1 / 3, decoded.third, 1e-13)
      for _ = 1, 2000 do
        local v = (math.random() - 0.5) * 10 ^ math.random(-12, 20)
        local got = cjson.decode(log.encode_json { v = v }).v
        assert.is_true(math.abs(got - v) <= math.abs(v) * 1e-13, string.format("%.17g -> %.17g", v, got))
      end
    end)

    it("keeps the time to the microsecond", function()
      assert.equal('{"time":1712345678.123457}', log.encode_json { time = 1712345678.1234567 })
      assert.equal('{"time":-0.500000}', log.encode_json { time = -0.5 })
      assert.equal('{"time":"nan"}', log.encode_json { time = 0 / 0 })
    end)

    it("makes list-like fields an object at the top level", function()
      log.info("listy", { "a", "b" })
      local back = cjson.decode(log.encode_json(records[1]))
      assert.equal("a", back["1"])
      assert.equal("listy", back.event)
    end)

    it("parses back every record written in JSON", function()
      local path = os.tmpname()
      log.configure { level = "info", format = "json", sink = path }
      fdn.run(function()
        fdn.context.set("request_id", "r-1")
        log.get("svc").info("one", { list = { 1, 2, 3 }, map = { k = "v" }, err = errors.Closed.new("c") })
        log.warn("two", { text = "multi\nline" })
      end)
      log.configure { sink = function() end }
      local lines = {}
      for line in io.lines(path) do
        lines[#lines + 1] = cjson.decode(line)
      end
      os.remove(path)
      assert.equal(2, #lines)
      assert.equal("one", lines[1].event)
      assert.equal("svc", lines[1].logger)
      assert.equal("r-1", lines[1].request_id)
      assert.same({ 1, 2, 3 }, lines[1].list)
      assert.equal("Closed", lines[1].err.type)
      assert.equal("multi\nline", lines[2].text)
      assert.equal("warn", lines[2].level)
    end)
  end)

  describe("console", function()
    it("writes one readable line: time, level, logger, event, sorted key=value pairs", function()
      local line = log.format_console {
        event = "user_loaded", level = "info", time = 0.5, logger = "users",
        user_id = 42, name = "Ann Lee", ok = true, ratio = 0.25, ms = 12.3456789,
      }
      assert.equal('1970-01-01T00:00:00.500Z INFO  [users] user_loaded ms=12.346 name="Ann Lee" '
        .. "ok=true ratio=0.25 user_id=42", line)
    end)

    it("escapes what would break the line, and repairs invalid UTF-8", function()
      local line = log.format_console { event = "e", level = "warn", time = 0,
        text = 'a\nb "q" \\ \1', empty = "", bad = "x\255", uni = "café", ["odd key"] = 1 }
      assert.is_nil(line:find("\n", 1, true))
      assert.matches('text="a\\nb \\"q\\" \\\\ \\x01"', line, 1, true)
      assert.matches('empty=""', line, 1, true)
      assert.matches("bad=x\239\191\189", line, 1, true)
      assert.matches("uni=café", line, 1, true)
      assert.matches('"odd key"=1', line, 1, true)
    end)

    it("renders errors as their text, tables as JSON, and a traceback below the line", function()
      local line = log.format_console { event = "e", level = "error", time = 0,
        error = errors.Timeout.new("late", { context = { n = 1 } }), list = { 1, 2 },
        traceback = "stack traceback:\n\tfile.lua:1: in main chunk" }
      local first, rest = line:match("^([^\n]*)\n(.*)$")
      assert.matches('error="Timeout: late {n=1}"', first, 1, true)
      assert.matches("list=[1,2]", first, 1, true)
      assert.equal("    stack traceback:\n    \tfile.lua:1: in main chunk", rest)
    end)

    it("colours only when asked to (or on a terminal)", function()
      local r = { event = "e", level = "error", time = 0 }
      assert.matches("\27%[31mERROR", log.format_console(r, true))
      assert.is_nil(log.format_console(r, false):find("\27", 1, true))
      local path = os.tmpname()
      log.configure { format = "console", sink = path, color = true }
      log.error("coloured")
      log.configure { sink = path, color = false }
      log.error("plain")
      log.configure { sink = function() end, color = "auto" }
      local f = io.open(path)
      local text = f:read("*a")
      f:close()
      os.remove(path)
      local first, second = text:match("^([^\n]*)\n([^\n]*)\n$")
      assert.matches("\27[31m", first, 1, true)
      assert.is_nil(second:find("\27", 1, true))
    end)
  end)

  describe("sinks", function()
    it("append JSON lines and console lines to a file", function()
      local path = os.tmpname()
      log.configure { level = "info", format = "json", sink = path }
      log.info("to_file", { n = 1 })
      log.configure { format = "console" }
      log.info("as_text", { msg = "two words" })
      log.configure { sink = function() end }
      local f = io.open(path)
      local first, second = f:read("*l"), f:read("*l")
      f:close()
      os.remove(path)
      local r = cjson.decode(first)
      assert.equal("to_file", r.event)
      assert.equal(1, r.n)
      assert.matches("INFO +as_text msg=\"two words\"", second)
    end)

    it("switch from one file to another", function()
      local a, b = os.tmpname(), os.tmpname()
      log.configure { format = "json", sink = a }
      log.info("in_a")
      log.configure { sink = b }
      log.info("in_b")
      log.configure { sink = function() end }
      local fa, fb = io.open(a):read("*a"), io.open(b):read("*a")
      os.remove(a)
      os.remove(b)
      assert.matches("in_a", fa)
      assert.is_nil(fa:find("in_b", 1, true))
      assert.matches("in_b", fb)
    end)

    it("write to an open file", function()
      local file = io.tmpfile()
      log.configure { format = "json", sink = file }
      log.info("to_handle")
      log.configure { sink = function() end }
      file:seek("set")
      assert.equal("to_handle", cjson.decode(file:read("*l")).event)
      file:close()
    end)

    it("hand each record to a function, which may suspend", function()
      local got = {}
      log.configure { sink = function(r)
        fdn.sleep(0)
        got[#got + 1] = r.event
      end }
      fdn.run(function()
        log.info("a")
        log.info("b")
      end)
      assert.same({ "a", "b" }, got)
    end)
  end)

  it("rejects bad configuration", function()
    local cases = {
      { { level = "loud" }, "opts.level" },
      { { format = "xml" }, "opts.format" },
      { { sink = 5 }, "opts.sink" },
      { { sink = "" }, "opts.sink" },
      { { sink = "/nonexistent-dir/x.log" }, "cannot open" },
      { { color = "yes" }, "opts.color" },
      { { levels = 5 }, "opts.levels" },
      { { levels = { db = "loud" } }, 'opts.levels%["db"%]' },
      { { lvl = "debug" }, "opts.lvl" },
      { "debug", "'opts'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(log.configure, c[1])
      assert.is_false(ok, c[2])
      is_invalid_argument(err, c[2])
    end
    -- a rejected configuration changes nothing
    assert.equal("debug", log.config().level)
    log.info("still_captured")
    assert.equal("still_captured", records[#records].event)
  end)

  it("rejects bad arguments to every function", function()
    local cases = {
      { log.info, { 5 }, "fdn.log.info: bad argument 'event'" },
      { log.info, { "x", 5 }, "'fields'" },
      { log.debug, {}, "'event'" },
      { function() log:info("x") end, {}, "with a dot, not a colon" },
      { log.get("n").warn, { {} }, 'log.get%("n"%).warn' },
      { log.bind, { 5 }, "'fields'" },
      { log.get, { 5 }, "'name'" },
      { log.get, { "" }, "'name'" },
      { log.log, { "loud", "x" }, "'level'" },
      { log.log, { "off", "x" }, "'level'" },
      { log.log, { "info", 5 }, "'event'" },
      { log.enabled, { "loud" }, "'level'" },
      { log.enabled, { "info", 5 }, "'name'" },
      { log.get("n").enabled, { 3 }, "'level'" },
      { log.encode_json, { 5 }, "'record'" },
      { log.format_console, { "x" }, "'record'" },
      { log.log_events, { 5 }, "'opts'" },
      { log.log_events, { { pattern = 5 } }, "opts.pattern" },
      { log.log_events, { { level = "x" } }, "opts.level" },
      { log.log_events, { { levels = { a = "x" } } }, "opts.levels" },
      { log.log_events, { { levels = 1 } }, "opts.levels" },
      { log.log_events, { { logger = 1 } }, "opts.logger" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1], unpack(c[2]))
      assert.is_false(ok, c[3])
      is_invalid_argument(err, c[3])
    end
  end)

  describe("as an event subscriber", function()
    it("logs lifecycle events as records, failures at warn", function()
      local off = log.log_events()
      events.emit("batch.flushed", { size = 100 })
      events.emit("job.failed", { error = "x" })
      events.emit("scalar.event", 5)
      off()
      events.emit("batch.flushed", { size = 1 })
      assert.equal(3, #records)
      assert.equal("batch.flushed", records[1].event)
      assert.equal("fdn.events", records[1].logger)
      assert.equal("info", records[1].level)
      assert.equal(100, records[1].size)
      assert.equal("warn", records[2].level)
      assert.equal(5, records[3].data)
    end)

    it("takes a pattern, a level, levels per event and a logger name", function()
      log.log_events { pattern = "cache.*", level = "debug", levels = { ["cache.evicted"] = "off",
        ["cache.hit"] = "info" }, logger = "metrics" }
      events.emit("cache.miss", { key = "a" })
      events.emit("cache.hit", { key = "a" })
      events.emit("cache.evicted", { key = "a" })
      events.emit("other.thing", {})
      assert.equal(2, #records)
      assert.equal("debug", records[1].level)
      assert.equal("metrics", records[1].logger)
      assert.equal("info", records[2].level)
    end)

    it("skips events below the logger's level", function()
      log.configure { level = "warn" }
      log.log_events { level = "info" }
      events.emit("x.done", {})
      events.emit("x.failed", {})
      assert.equal(1, #records)
      assert.equal("x.failed", records[1].event)
    end)

    it("logs a failed task with its error, traceback and context", function()
      log.log_events { pattern = "task.*" }
      fdn.run(function()
        fdn.context.set("request_id", "r-7")
        local t = fdn.spawn(function() error("worker broke", 0) end)
        t:wait()
      end)
      local r = records[1]
      assert.equal("task.failed", r.event)
      assert.equal("warn", r.level)
      assert.equal("worker broke", r.error)
      assert.equal("r-7", r.request_id)
      assert.matches("stack traceback", r.traceback)
    end)
  end)

  describe("reports", function()
    it("go through the logger as error records of the 'fdn' logger", function()
      local ok = pcall(fdn.run, function()
        fdn.spawn(function() error(errors.Closed.new("lost work"), 0) end)
        fdn.sleep(0.001)
      end)
      collectgarbage()
      collectgarbage()
      assert.is_true(ok)
      assert.equal(1, #records)
      local r = records[1]
      assert.equal("unjoined_task_failed", r.event)
      assert.equal("error", r.level)
      assert.equal("fdn", r.logger)
      assert.equal("number", type(r.task_id))
      assert.is_true(errors.is(r.error, errors.Closed))
      assert.matches("log_spec.lua", r.traceback)
      assert.matches("failed and nobody joined it: Closed: lost work", r.message)
    end)

    it("report a failed task exactly once even when the report itself collects garbage", function()
      local saved, reports = fdn.report, 0
      fdn.report = function(kind)
        if kind == "unjoined_task_failed" then
          reports = reports + 1
        end
        collectgarbage()
        collectgarbage()
      end
      pcall(fdn.run, function()
        for _ = 1, 3 do
          fdn.spawn(function() error("lost", 0) end)
        end
        fdn.sleep(0)
      end)
      collectgarbage()
      collectgarbage()
      fdn.report = saved
      assert.equal(3, reports)
    end)

    it("of a handle collected while the engine runs come from the next pass, not the finalizer",
      function()
        local in_finalizer
        -- Spawned in a frame of its own, so no stack slot keeps the handle.
        local function drop(message)
          fdn.spawn(function() error(message, 0) end)
        end
        fdn.run(function()
          drop("dropped")
          fdn.sleep(0) -- the task fails; its handle is garbage
          -- (Under FDN_GC_STRESS the hook may collect and report it first.)
          local before = #records
          collectgarbage()
          collectgarbage()
          in_finalizer = #records - before
          -- The next scheduling pass reports it (a sleep of 0 may resume
          -- in the same pass: a timer is sure to start a new one).
          fdn.sleep(0.001)
          assert.equal(1, #records)
          assert.equal("unjoined_task_failed", records[1].event)
          assert.matches("dropped", records[1].message)
        end)
        assert.equal(0, in_finalizer)
        assert.equal(1, #records)
      end)

    it("of a handle collected in a task that never yields again come at the run's end", function()
      local before_end
      local function drop(message)
        fdn.spawn(function() error(message, 0) end)
      end
      fdn.run(function()
        drop("late")
        fdn.sleep(0)
        local before = #records
        collectgarbage()
        collectgarbage()
        before_end = #records - before
      end)
      assert.equal(0, before_end)
      assert.equal(1, #records)
      assert.matches("late", records[1].message)
    end)

    it("report deadlocks and failed __exit calls", function()
      local core = require "fdn.core"
      fdn.run(function()
        fdn.spawn_with({ name = "stuck" }, function() core.park("forever") end)
        local bad = { __exit = function() error("exit broke", 0) end }
        pcall(fdn.with, bad, function() error("body broke", 0) end)
      end)
      local kinds = {}
      for _, r in ipairs(records) do
        kinds[r.event] = r
      end
      assert.equal("exit broke", kinds.exit_failed.error)
      assert.equal("exit broke", kinds.exit_failed.message)
      assert.equal("fdn", kinds.deadlock.logger)
      assert.matches("stuck", kinds.deadlock.message)
      assert.equal("stuck", kinds.deadlock.tasks[1].name)
    end)

    it("report a failing event subscriber", function()
      events.subscribe("e", function() error("subscriber broke", 0) end)
      events.emit("e", {})
      local r = records[1]
      assert.equal("event_subscriber_failed", r.event)
      assert.equal("e", r.event_name)
      assert.equal("subscriber broke", r.error)
      assert.matches("a subscriber to e failed", r.message)
      assert.matches("log_spec.lua", r.traceback)
    end)

    it("are dropped only by level off", function()
      log.configure { level = "off" }
      pcall(fdn.run, function()
        fdn.spawn(function() error("quiet", 0) end)
      end)
      collectgarbage()
      assert.equal(0, #records)
    end)
  end)
end)

describe("fdn.log in a process", function()
  local function run(code, env)
    local script = h.write_temp(code)
    local rc, out, err = h.fdn_lua(h.quote(script), env)
    os.remove(script)
    return rc, out, err
  end

  it("takes level and format from FDN_LOG_LEVEL and FDN_LOG_FORMAT", function()
    local rc, _, err = run([[require("fdn.log").debug("dbg", {n = 1})]],
      "FDN_LOG_LEVEL=DEBUG FDN_LOG_FORMAT=json")
    assert.equal(0, rc)
    local r = cjson.decode(err)
    assert.equal("dbg", r.event)
    assert.equal(1, r.n)
  end)

  it("warns about bad environment values and keeps the defaults", function()
    local rc, _, err = run([[require("fdn.log").info("shown") require("fdn.log").debug("hidden")]],
      "FDN_LOG_LEVEL=loud FDN_LOG_FORMAT=xml")
    assert.equal(0, rc)
    assert.matches('ignoring FDN_LOG_LEVEL="loud"', err)
    assert.matches('ignoring FDN_LOG_FORMAT="xml"', err)
    assert.matches("INFO  shown", err)
    assert.is_nil(err:find("hidden", 1, true))
  end)

  it("logs events from FDN_LOG_EVENTS", function()
    local rc, _, err = run([[require("fdn.events").emit("job.done", {n = 2})]], "FDN_LOG_EVENTS=job.*")
    assert.equal(0, rc)
    assert.matches("%[fdn.events%] job.done n=2", err)
  end)

  it("writes reports on stderr when the sink fails, and says the sink failed", function()
    local rc, _, err = run([[
      require("fdn.log").configure{sink = function() error("sink down", 0) end}
      fdn.spawn(function() error("orphan", 0) end)
    ]])
    assert.equal(0, rc)
    assert.matches("the log sink failed: sink down", err)
    assert.matches("fdn: task %d+ failed and nobody joined it: orphan", err)
  end)

  it("sends a record logged by the sink itself to stderr instead of recursing", function()
    local rc, out, err = run([[
      local log = require("fdn.log")
      log.configure{sink = function(r)
        if r.event == "outer" then log.info("inner") end
        print("sink:" .. r.event)
      end}
      log.info("outer")
    ]])
    assert.equal(0, rc)
    assert.equal("sink:outer\n", out)
    assert.matches("INFO  inner", err)
  end)
end)

describe("fdn-lua log options", function()
  it("--log-level and --log-format set the logger up", function()
    local rc, _, err = h.fdn_lua([[--log-level=debug --log-format json -e "require('fdn.log').debug('x')"]])
    assert.equal(0, rc)
    assert.equal("x", cjson.decode(err).event)
    rc, _, err = h.fdn_lua([[--log-level error --log-format=console -e "require('fdn.log').warn('w')"]])
    assert.equal(0, rc)
    assert.equal("", err)
  end)

  it("--log-events logs lifecycle events", function()
    local rc, _, err = h.fdn_lua(
      [[--log-events=task.* -e "fdn.spawn(function() error('boom', 0) end):wait()"]])
    assert.equal(0, rc)
    assert.matches("WARN  %[fdn.events%] task.failed error=boom", err)
  end)

  it("rejects bad values and missing arguments", function()
    local rc, _, err = h.fdn_lua([[--log-level loud -e "print(1)"]])
    assert.equal(1, rc)
    assert.matches("bad value for %-%-log%-level: 'loud'", err)
    rc, _, err = h.fdn_lua([[--log-format=xml -e "print(1)"]])
    assert.equal(1, rc)
    assert.matches("bad value for %-%-log%-format", err)
    rc, _, err = h.fdn_lua([[--log-level]])
    assert.equal(1, rc)
    assert.matches("needs an argument", err)
  end)

  it("lists the options in --help", function()
    local _, out = h.fdn_lua("--help")
    assert.matches("%-%-log%-level", out)
    assert.matches("%-%-log%-format", out)
    assert.matches("%-%-log%-events", out)
  end)
end)

describe("fdn lazy loading", function()
  it("loads modules on first use and returns nil for unknown names", function()
    assert.equal(require("fdn.log"), fdn.log)
    assert.equal(require("fdn.events"), fdn.events)
    assert.equal(require("fdn.operation_context"), fdn.OperationContext)
    assert.equal(require("fdn.event_tracker"), fdn.EventTracker)
    assert.equal(require("fdn.resource_manager"), fdn.ResourceManager)
    assert.equal(require("fdn.async_logger"), fdn.async_logger)
    assert.is_nil(fdn.NoSuchThing)
    assert.is_nil(fdn._private)
  end)
end)
