-- The worked example of docs/testing.md: examples/report_job.lua tested
-- with its reports service mocked and its retry schedule checked on the
-- virtual clock.
local fdn = require "fdn"
local T = require "fdn.testing"
local log = require "fdn.log"
local errors = fdn.errors

package.path = (os.getenv("FDN_SOURCE_DIR") or ".") .. "/examples/?.lua;" .. package.path
local api = require "report_api"
local job = require "report_job"

local function call_times(mock)
  local times = {}
  for i, call in ipairs(mock.calls) do
    times[i] = call.time
  end
  return times
end

T.describe("report_job", function()
  local get, warnings

  before_each(function()
    warnings = {}
    log.configure { sink = function(record) warnings[#warnings + 1] = record end }
    get = T.mock_async(api, "get")
  end)

  after_each(function()
    log.configure { sink = "stderr" }
  end)

  it("sums the day's sales", function()
    get:delay(0.2):returns({ sales = { { amount = 10 }, { amount = 2.5 } } })
    assert.same({ day = "2024-05-01", sales = 2, total = 12.5 }, job.summarise("2024-05-01"))
    assert.spy(get).was.called(1)
    assert.spy(get).was.called_with("/reports/2024-05-01")
    assert.equal(0.2, fdn.now())
  end)

  it("retries a failing upstream after 1 s, then 2 s", function()
    local slow = errors.Timeout.new("upstream timed out")
    get:raises_once(slow):raises_once(slow):returns({ sales = {} })
    assert.equal(0, job.summarise("2024-05-01").total)
    assert.same({ 0, 1, 3 }, call_times(get))
    assert.equal(2, #warnings)
    assert.equal("report_fetch_failed", warnings[2].event)
    assert.equal(2, warnings[2].attempt)
  end)

  it("gives up after four attempts, keeping every error", function()
    get:raises(errors.Timeout.new("down"))
    local err = T.assert_raises(errors.RetryExhausted, job.summarise, "2024-05-01")
    assert.equal(4, #err.errors)
    assert.equal("down", err.cause.message)
    assert.same({ 0, 1, 3, 7 }, call_times(get))
  end)

  it("waits exactly the backoff, step by step on a clock under control", function()
    local clock = T.clock():autojump(false)
    local slow = errors.Timeout.new("upstream timed out")
    get:raises_once(slow):raises_once(slow):returns({ sales = { { amount = 1 } } })
    local run = fdn.spawn(job.summarise, "2024-05-01")
    clock:advance(0)
    assert.equal(1, get:call_count())
    clock:advance(0.999)
    assert.equal(1, get:call_count())
    clock:advance(0.001)
    assert.equal(2, get:call_count())
    clock:advance(2)
    assert.equal(3, get:call_count())
    assert.equal(1, run:join().total)
  end)

  it("stops waiting between attempts when its caller's deadline passes", function()
    get:raises(errors.Timeout.new("down"))
    T.assert_raises(errors.Timeout, fdn.timeout, 2.5, job.summarise, "2024-05-01")
    assert.equal(2.5, fdn.now())
    assert.equal(2, get:call_count())
  end)
end)

describe("report_job as a job script", function()
  local h = require "helpers"

  it("prints the day's summary, the same for the same seed", function()
    local script = h.quote(h.root .. "/examples/report_job.lua")
    local code, out = h.fdn_lua(script .. " 2024-05-01", "FDN_SEED=3 FDN_LOG_LEVEL=error")
    assert.equal(0, code)
    assert.matches("^2024%-05%-01: %d+ sales, total %d+%.%d%d\n$", out)
    local code2, again = h.fdn_lua(script .. " 2024-05-01", "FDN_SEED=3 FDN_LOG_LEVEL=error")
    assert.equal(0, code2)
    assert.equal(out, again)
  end)
end)
