-- TaskPool starts its workers as jobs need them (found by the options
-- fuzzer: pool_size = 2^53 started 2^53 workers at the first submit and
-- ran the process out of memory; spec/fuzz/regress/options/).
local fdn = require "fdn"
local T = require "fdn.testing"

describe("TaskPool workers", function()
  it("a large pool_size runs jobs with only the workers they need", T.async(function()
    local engine = require("fdn.core").engine_running()
    local before = engine:stats().live
    local pool = fdn.TaskPool.new { pool_size = 1e5 }
    for i = 1, 3 do
      pool:submit(function(x) fdn.sleep(0.01) return x * 2 end, i)
    end
    assert.equal(before + 3, engine:stats().live) -- a worker per job, no more
    assert.same({ 2, 4, 6, n = 3 }, pool:gather_results())
    pool:close()
    assert.equal(before, engine:stats().live)
  end, { clock = "virtual" }))

  it("never runs more workers than pool_size, and reuses idle ones", T.async(function()
    local pool = fdn.TaskPool.new { pool_size = 2, queue_size = math.huge }
    local running, peak = 0, 0
    local function job()
      running = running + 1
      peak = math.max(peak, running)
      fdn.sleep(0.01)
      running = running - 1
    end
    for _ = 1, 10 do
      pool:submit(job)
    end
    pool:gather_results()
    assert.equal(2, peak)
    assert.equal(2, pool._nworkers)
    -- One job at a time: the idle workers take it, none is added.
    pool:submit(job)
    pool:gather_results()
    assert.equal(2, pool._nworkers)
    pool:close()
  end, { clock = "virtual" }))
end)
