local fdn = require "fdn"
local log = require "fdn.log"
local cjson = require "cjson"

describe("fdn.log", function()
  local records
  before_each(function()
    records = {}
    log.configure { level = "debug", format = "json", sink = function(r) records[#records + 1] = r end }
  end)
  after_each(function()
    log.configure { level = "info", format = "console", sink = "stderr" }
  end)

  it("makes flat records with event, level, time and the call's fields", function()
    local t0 = os.time()
    log.info("user_loaded", { user_id = 42 })
    assert.equal(1, #records)
    local r = records[1]
    assert.equal("user_loaded", r.event)
    assert.equal("info", r.level)
    assert.equal(42, r.user_id)
    assert.is_true(r.time >= t0 - 1 and r.time <= os.time() + 1)
  end)

  it("drops records below the level", function()
    log.configure { level = "warn" }
    log.debug("quiet")
    log.info("quiet")
    log.warn("loud")
    assert.equal(1, #records)
    assert.equal("loud", records[1].event)
    assert.is_false(log.enabled("info"))
  end)

  it("merges task-local context, bound fields and call fields, later ones winning", function()
    fdn.run(function()
      fdn.context.set("request_id", "r-9")
      local db = log.bind { component = "db", shared = "bound" }
      db.warn("slow", { ms = 812, shared = "call" })
    end)
    local r = records[1]
    assert.equal("r-9", r.request_id)
    assert.equal("db", r.component)
    assert.equal(812, r.ms)
    assert.equal("call", r.shared)
  end)

  it("names loggers", function()
    log.get("payments").error("declined")
    assert.equal("payments", records[1].logger)
    assert.equal(log.get("payments"), log.get("payments"))
  end)

  it("renders values JSON cannot hold without raising", function()
    local cyclic = {}
    cyclic.self = cyclic
    local encoded = log.encode_json {
      event = "odd", f = function() end, nan = 0 / 0, inf = math.huge,
      cyc = cyclic, co = coroutine.create(function() end), [true] = "boolean key",
      err = fdn.errors.Timeout.new("late"),
    }
    local back = cjson.decode(encoded)
    assert.equal("odd", back.event)
    assert.matches("^function", back.f)
    assert.equal("nan", back.nan)
    assert.equal("inf", back.inf)
    assert.equal("<cycle>", back.cyc.self)
    assert.equal("Timeout", back.err.type)
    assert.equal("boolean key", back["<boolean>"])
  end)

  it("writes JSON lines and readable console lines to a file", function()
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

  it("reports a failing function sink instead of raising", function()
    log.configure { sink = function() error("sink down") end }
    assert.has_no.errors(function() log.info("x") end)
  end)

  it("rejects bad configuration", function()
    local errors = fdn.errors
    local ok, err = pcall(log.configure, { level = "loud" })
    assert.is_false(ok)
    assert.is_true(errors.is(err, errors.InvalidArgument))
    ok, err = pcall(log.configure, { format = "xml" })
    assert.is_false(ok)
    assert.matches("opts.format", err.message)
    ok, err = pcall(log.configure, { sink = 5 })
    assert.is_false(ok)
    assert.matches("opts.sink", err.message)
  end)
end)

describe("fdn lazy loading", function()
  it("loads modules on first use and returns nil for unknown names", function()
    assert.equal(require("fdn.log"), fdn.log)
    assert.equal(require("fdn.events"), fdn.events)
    assert.is_nil(fdn.NoSuchThing)
    assert.is_nil(fdn._private)
  end)
end)
