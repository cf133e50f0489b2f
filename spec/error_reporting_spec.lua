-- Regressions found by the error matrix (spec/reliability/error_matrix.lua):
-- errors that were never reported.
local fdn = require "fdn"
local errors = require "fdn.errors"
local T = require "fdn.testing"

local function full_gc()
  if jit then jit.flush() end
  for _ = 1, 6 do collectgarbage() end
end

-- Records fdn.report's calls while fn runs.
local function reports_during(fn)
  local seen, real = {}, fdn.report
  fdn.report = function(kind, info) seen[#seen + 1] = { kind = kind, info = info } end
  local ok, err = pcall(fn)
  fdn.report = real
  assert(ok, err)
  return seen
end

describe("error reporting", function()
  it("TaskPool:gather_results raises a job's nil error instead of dropping it", T.async(function()
    local pool = fdn.TaskPool.new { pool_size = 1 }
    pool:submit(function() error(nil) end)
    pool:submit(function() return 2 end)
    local ok, err = pcall(pool.gather_results, pool)
    assert.is_false(ok)
    assert.is_nil(err)
    pool:close()
  end))

  it("a failed TaskPool job nobody gathers is reported once when the pool is collected",
    function()
      local failure = errors.Error.new("job failed")
      local seen = reports_during(function()
        T.run(function()
          local pool = fdn.TaskPool.new { pool_size = 2, name = "unread" }
          pool:submit(function() error(failure, 0) end)
          pool:submit(function() return 1 end)
          pool:close()
        end)
        full_gc()
        full_gc()
      end)
      assert.equal(1, #seen)
      assert.equal("unread_job_failed", seen[1].kind)
      assert.equal(failure, seen[1].info.error)
      assert.equal(1, seen[1].info.job)
      assert.matches("TaskPool 'unread': job 1 failed", seen[1].info.message)
    end)

  it("a TaskPool collected while the engine runs is reported by the next pass, not the collector",
    function()
      local seen, real = {}, fdn.report
      fdn.report = function(kind, info) seen[#seen + 1] = { kind = kind, info = info } end
      -- In a frame of its own, so no stack slot keeps the pool.
      local function drop()
        local pool = fdn.TaskPool.new { pool_size = 1 }
        pool:submit(function() error("dropped job", 0) end)
        pool:close()
      end
      local during_gc
      local ok, err = pcall(fdn.run, function()
        drop()
        full_gc()
        during_gc = #seen
        fdn.sleep(0.001) -- a timer starts a new scheduling pass
      end, { clock = "virtual" })
      fdn.report = real
      assert(ok, err)
      assert.equal(0, during_gc)
      assert.equal(1, #seen)
      assert.equal("unread_job_failed", seen[1].kind)
      assert.equal("dropped job", seen[1].info.error)
    end)

  it("a gathered failure, and a cancelled pool's dropped jobs, are not reported again", function()
    local seen = reports_during(function()
      T.run(function()
        local pool = fdn.TaskPool.new { pool_size = 1 }
        pool:submit(function() error("read", 0) end)
        assert.is_false(pcall(pool.gather_results, pool))
        local gate = fdn.Event.new()
        pool:submit(function() gate:wait() end)
        pool:submit(function() end)
        fdn.sleep(0)
        pool:cancel()
      end)
      full_gc()
      full_gc()
    end)
    assert.same({}, seen)
  end)

  it("fdn.with reports a nil __exit error that a failing body's error cannot carry",
    T.async(function()
      local body = errors.Error.new("body")
      local seen = reports_during(function()
        local ok, err = pcall(fdn.with, { __exit = function() error(nil) end },
          function() error(body, 0) end)
        assert.is_false(ok)
        assert.equal(body, err)
      end)
      assert.equal(1, #seen)
      assert.equal("exit_failed", seen[1].kind)
    end))
end)
