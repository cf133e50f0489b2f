local fdn = require "fdn"
local errors = fdn.errors
local events = require "fdn.events"

local VIRTUAL = { clock = "virtual" }

local function expect_error(class, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(errors.is(err, class), "expected " .. tostring(class) .. ", got " .. tostring(err))
  return err
end

local module_pool = fdn.TaskPool.new { pool_size = 2, queue_size = 3 } -- before any engine

describe("fdn.TaskPool", function()
  after_each(function()
    events.reset()
  end)

  it("returns every job's result in submission order", function()
    local results = fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 4, queue_size = 10 }
      for i = 1, 30 do
        local n = pool:submit(function(x, y)
          fdn.sleep((31 - x) * 0.01) -- later jobs finish sooner
          return x * y, "dropped"
        end, i, 2)
        assert.equal(i, n)
      end
      local results = pool:gather_results()
      pool:close()
      return results
    end, VIRTUAL)
    assert.equal(30, results.n)
    for i = 1, 30 do
      assert.equal(i * 2, results[i])
    end
  end)

  it("runs at most pool_size jobs at once", function()
    local in_flight, max_in_flight, done = 0, 0, 0
    fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 5, queue_size = 50 }
      for i = 1, 300 do
        pool:submit(function()
          in_flight = in_flight + 1
          max_in_flight = math.max(max_in_flight, in_flight)
          fdn.sleep((i % 3) * 0.01)
          in_flight = in_flight - 1
          done = done + 1
        end)
      end
      pool:close()
    end, VIRTUAL)
    assert.equal(5, max_in_flight)
    assert.equal(300, done)
  end)

  it("never holds more than queue_size accepted but unstarted jobs", function()
    local accepted, started, max_unstarted, full = 0, 0, 0, 0
    fdn.run(function()
      events.subscribe("task_pool.full", function() full = full + 1 end)
      local pool = fdn.TaskPool.new { pool_size = 3, queue_size = 4 }
      local producers = {}
      for p = 1, 3 do
        producers[p] = fdn.spawn(function()
          for _ = 1, 100 do
            pool:submit(function()
              started = started + 1
              fdn.sleep(0.01)
            end)
            accepted = accepted + 1
            max_unstarted = math.max(max_unstarted, accepted - started)
            assert(pool:pending() <= 4)
          end
        end)
      end
      fdn.gather(producers)
      pool:close()
    end, VIRTUAL)
    assert.equal(300, started)
    assert.equal(4, max_unstarted)
    assert.is_true(full > 0)
  end)

  it("makes submit wait while the queue is full", function()
    fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 1, queue_size = 1 }
      local gate = fdn.Event.new()
      pool:submit(function() gate:wait() end) -- running
      pool:submit(function() end)              -- queued: full now
      local third_accepted = false
      local submitter = fdn.spawn(function()
        pool:submit(function() end)
        third_accepted = true
      end)
      fdn.sleep(1)
      assert.equal("waiting", submitter:status())
      assert.is_false(third_accepted)
      gate:set()
      submitter:join()
      assert.is_true(third_accepted)
      pool:close()
    end, VIRTUAL)
  end)

  it("keeps a job's error as its result; the worker goes on", function()
    local workers = {}
    fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 1 }
      for i = 1, 5 do
        pool:submit(function()
          workers[fdn.current()] = true
          if i % 2 == 0 then
            error("job " .. i .. " failed", 0)
          end
          return i
        end)
      end
      local results = pool:gather_results { return_errors = true }
      assert.same({ 1, "job 2 failed", 3, "job 4 failed", 5, n = 5 }, results)
      pool:close()
    end)
    local n = 0
    for _ in pairs(workers) do
      n = n + 1
    end
    assert.equal(1, n)
  end)

  it("gather_results raises the first failure with the later ones attached", function()
    fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 3, name = "resizer" }
      local failed = {}
      events.subscribe("task_pool.job_failed", function(_, data) failed[#failed + 1] = data.job end)
      local e1, e2 = errors.Error.new("first"), errors.Error.new("second")
      pool:submit(function() fdn.sleep(2) error(e2) end)
      pool:submit(function() fdn.sleep(1) error(e1) end)
      pool:submit(function() return "fine" end)
      local err = expect_error(errors.Error, pool.gather_results, pool)
      assert.equal(e1, err)
      assert.same({ e2 }, err.suppressed)
      assert.same({ 2, 1 }, failed)
      -- Gathered results are forgotten; the next batch starts after them.
      pool:submit(function() return "next" end)
      assert.same({ "next", n = 1 }, pool:gather_results())
      assert.same({ n = 0 }, pool:gather_results())
      pool:close()
    end, VIRTUAL)
  end)

  it("close runs what is queued, waits for the workers, then refuses jobs", function()
    local ran = 0
    fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 2, queue_size = 10, name = "drain" }
      local closed
      events.subscribe("task_pool.closed", function(_, data) closed = data end)
      for _ = 1, 10 do
        pool:submit(function()
          fdn.sleep(1)
          ran = ran + 1
        end)
      end
      local t0 = fdn.now()
      pool:close()
      assert.equal(10, ran)
      assert.equal(5, fdn.now() - t0)
      assert.same({ name = "drain", jobs = 10, failed = 0 }, closed)
      local err = expect_error(errors.Closed, pool.submit, pool, function() end)
      assert.matches("TaskPool 'drain':submit", err.message)
      pool:close() -- again: harmless
      assert.equal(10, pool:gather_results().n)
    end, VIRTUAL)
  end)

  it("close wakes submitters waiting for a place with Closed", function()
    fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 1, queue_size = 1 }
      pool:submit(function() fdn.sleep(1) end)
      pool:submit(function() fdn.sleep(1) end)
      local blocked = {}
      for i = 1, 3 do
        blocked[i] = fdn.spawn(function() pool:submit(function() end) end)
      end
      fdn.sleep(0)
      pool:close()
      for i = 1, 3 do
        local ok, err = blocked[i]:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Closed))
      end
      assert.equal(2, pool:gather_results().n)
    end, VIRTUAL)
  end)

  it("cancel stops the running jobs and drops the queued ones", function()
    fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 2, queue_size = 5 }
      for _ = 1, 6 do
        pool:submit(function() fdn.sleep(60) return "finished" end)
      end
      fdn.sleep(1)
      pool:cancel()
      local results = pool:gather_results { return_errors = true }
      assert.equal(6, results.n)
      for i = 1, 6 do
        assert.is_true(errors.is(results[i], errors.Cancelled))
      end
      assert.matches("dropped before it started", results[6].message)
      expect_error(errors.Closed, pool.submit, pool, function() end)
    end, VIRTUAL)
  end)

  it("cancels its workers when the task closing it is cancelled", function()
    local cut_short = 0
    fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 2 }
      local closer = fdn.spawn(function()
        for _ = 1, 2 do
          pool:submit(function()
            local ok = pcall(fdn.sleep, 60)
            if not ok then
              cut_short = cut_short + 1
            end
          end)
        end
        pool:close()
      end)
      fdn.sleep(1)
      closer:cancel()
      local ok, err = closer:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
    end, VIRTUAL)
    assert.equal(2, cut_short)
  end)

  it("closes as an fdn.with manager: drains on success, cancels on error", function()
    fdn.run(function()
      local done = 0
      local pool = fdn.TaskPool.new { pool_size = 2 }
      fdn.with(pool, function(p)
        for _ = 1, 4 do
          p:submit(function() fdn.sleep(fdn.cleanup_timeout * 3) done = done + 1 end)
        end
      end)
      assert.equal(4, done)
      local cut = fdn.TaskPool.new { pool_size = 2 }
      local ok, err = pcall(fdn.with, cut, function(p)
        p:submit(function() fdn.sleep(60) done = done + 1 end)
        fdn.sleep(1)
        error("body failed", 0)
      end)
      assert.is_false(ok)
      assert.equal("body failed", err)
      assert.equal(4, done)
    end, VIRTUAL)
  end)

  it("keeps memory flat over many jobs: results are forgotten once gathered or not kept", function()
    local growth = {}
    fdn.run(function()
      for _, keep in ipairs({ true, false }) do
        local pool = fdn.TaskPool.new { pool_size = 4, queue_size = 16, keep_results = keep }
        collectgarbage()
        collectgarbage()
        local base = collectgarbage("count")
        for i = 1, 50000 do
          pool:submit(function() return "result " .. i end)
          if keep and i % 1000 == 0 then
            assert.equal(1000, pool:gather_results().n)
          end
        end
        local last = pool:gather_results()
        pool:close()
        assert.equal(keep and 0 or 50000, last.n)
        assert.is_nil(last[1])
        collectgarbage()
        collectgarbage()
        growth[#growth + 1] = collectgarbage("count") - base
      end
    end)
    for _, kb in ipairs(growth) do
      assert.is_true(kb < 200, "heap grew by " .. kb .. " KB")
    end
  end)

  it("made at module level, starts its workers in the engine that submits", function()
    local r = fdn.run(function()
      module_pool:submit(function() fdn.sleep(0.1) return "from module pool" end)
      local results = module_pool:gather_results()
      module_pool:close()
      return results[1]
    end, VIRTUAL)
    assert.equal("from module pool", r)
  end)

  it("refuses a submit from a cancelled task, even with room", function()
    fdn.run(function()
      local pool = fdn.TaskPool.new { pool_size = 1, queue_size = 5 }
      local t = fdn.spawn(function()
        fdn.current():cancel()
        return pool:submit(function() end)
      end)
      local ok, err = t:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
      assert.equal(0, pool:pending())
      assert.same({ n = 0 }, pool:gather_results())
      pool:close()
    end)
  end)

  it("must submit from a task", function()
    local pool = fdn.TaskPool.new { pool_size = 1 }
    expect_error(errors.InvalidState, pool.submit, pool, function() end)
    pool:close()
  end)

  it("rejects bad arguments with InvalidArgument naming the parameter", function()
    local P = fdn.TaskPool
    expect_error(errors.InvalidArgument, P.new)
    expect_error(errors.InvalidArgument, P.new, { queue_size = 3 })
    for _, bad in ipairs({ 0, -1, 1.5, math.huge, "2" }) do
      local err = expect_error(errors.InvalidArgument, P.new, { pool_size = bad })
      assert.matches("opts.pool_size", err.message)
    end
    for _, bad in ipairs({ 0, -3, 2.5, "4" }) do
      local err = expect_error(errors.InvalidArgument, P.new, { pool_size = 1, queue_size = bad })
      assert.matches("opts.queue_size", err.message)
    end
    expect_error(errors.InvalidArgument, P.new, { pool_size = 1, name = true })
    assert.equal(math.huge, P.new({ pool_size = 1, queue_size = math.huge }).queue_size)
    fdn.run(function()
      local pool = P.new { pool_size = 1 }
      local err = expect_error(errors.InvalidArgument, pool.submit, pool, "job")
      assert.matches("TaskPool:submit: bad argument 'fn'", err.message)
      expect_error(errors.InvalidArgument, pool.gather_results, pool, 1)
      pool:close()
    end)
  end)
end)
