local h = require "helpers"

local function example(name, args)
  return h.fdn_lua(h.quote(h.root .. "/examples/" .. name) .. (args and (" " .. args) or ""))
end

describe("batching, caching and background examples", function()
  it("batcher.lua batches rows and answers lookups with one handler call", function()
    local code, out = example("batcher.lua", "60")
    assert.equal(0, code)
    assert.equal("wrote 25 rows (1..25)\nwrote 25 rows (26..50)\nwrote 10 rows (51..60)\n"
      .. "added 60 rows in 3 batches (2 full, 1 at close)\n"
      .. "10 lookups answered by 1 handler call: user-6, error: no user 7, user-8\n", out)
  end)

  it("cache.lua shares one upstream call and expires entries", function()
    local code, out = example("cache.lua")
    assert.equal(0, code)
    assert.equal("50 concurrent lookups got 1.08 with 1 upstream call\n"
      .. "after a hit and a new key: 2 upstream calls\n"
      .. "after the ttl: 3 upstream calls\n"
      .. "hits 1, misses 53 (49 joined a running call), 4 upstream calls\n", out)
  end)

  it("background.lua runs, logs failures, and shuts down cleanly #walltime", function()
    local code, out, err = example("background.lua")
    assert.equal(0, code)
    assert.matches("^data_sync: ran 3 or more times\n", out)
    local failed, runs = out:match("flaky: failed (%d+) of (%d+) runs, last error: upstream unavailable\n")
    assert.is_not_nil(failed, out)
    assert.equal(failed, runs)
    assert.matches("shut down, 0 run%(s%) cancelled; data_sync synced every run\n$", out)
    assert.matches("background.run_failed", err)
  end)
end)
