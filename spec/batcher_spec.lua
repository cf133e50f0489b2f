local fdn = require "fdn"
local errors = fdn.errors
local events = require "fdn.events"
local log = require "fdn.log"

local function vrun(fn, opts)
  opts = opts or {}
  opts.clock = opts.clock or "virtual"
  return fdn.run(fn, opts)
end

-- A handler that records every batch: its items, reason-free timing and
-- the engine time it started.
local function recorder(opts)
  opts = opts or {}
  local rec = { batches = {}, times = {}, delivered = {} }
  rec.handler = function(items)
    rec.batches[#rec.batches + 1] = items
    rec.times[#rec.times + 1] = fdn.now()
    if opts.delay then
      fdn.sleep(opts.delay)
    end
    for i = 1, #items do
      rec.delivered[#rec.delivered + 1] = items[i]
    end
  end
  return rec
end

local function count_by_value(list)
  local t = {}
  for _, v in ipairs(list) do
    t[v] = (t[v] or 0) + 1
  end
  return t
end

local function quiet_logs()
  local records = {}
  log.configure { level = "trace", sink = function(r) records[#records + 1] = r end }
  return records
end

for _, mode in ipairs { "FFI fast paths", "classic calls only" } do
describe("fdn.Batcher (" .. mode .. ")", function()
  before_each(function()
    log.configure { level = "info", sink = function() end }
    require("fdn.batcher").use_ffi = mode == "FFI fast paths"
  end)

  after_each(function()
    log.configure { level = "info", sink = "stderr", format = "console" }
    events.reset()
    require("fdn.batcher").use_ffi = true
  end)

  describe("triggers", function()
    it("seals a batch when batch_size items wait, in add order", function()
      local r = recorder()
      local stats = vrun(function()
        local b = fdn.Batcher.new { batch_size = 3, flush_interval = math.huge, handler = r.handler }
        for i = 1, 7 do
          b:add(i)
        end
        fdn.sleep(0)
        fdn.sleep(0)
        assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, r.batches)
        b:close()
        return b:stats()
      end)
      assert.same({ { 1, 2, 3 }, { 4, 5, 6 }, { 7 } }, r.batches)
      assert.same({ size = 2, time = 0, manual = 0, close = 1 }, stats.reasons)
      assert.equal(7, stats.added)
      assert.equal(3, stats.batches)
      assert.equal(3, stats.flushed)
      assert.equal(0, stats.failed)
    end)

    it("flushes flush_interval after the first item of each batch", function()
      local r = recorder()
      local reasons = {}
      events.subscribe("batch.flushed", function(_, e) reasons[#reasons + 1] = e.reason end)
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 10, flush_interval = 2, handler = r.handler }
        b:add("a")
        fdn.sleep(1.5)
        b:add("b")
        fdn.sleep(1) -- t = 2.5: flushed at t = 2
        fdn.sleep(3) -- t = 5.5: nothing open, nothing flushed
        b:add("c") -- its batch's clock starts now
        fdn.sleep(10)
        b:close()
      end)
      assert.same({ { "a", "b" }, { "c" } }, r.batches)
      assert.same({ 2, 7.5 }, r.times)
      assert.same({ "time", "time" }, reasons)
    end)

    it("keeps the engine running until the time trigger flushes an unclosed batcher", function()
      local r = recorder()
      local finished = vrun(function()
        local b = fdn.Batcher.new { batch_size = 10, flush_interval = 30, handler = r.handler }
        b:add(1)
        b:add(2)
        return fdn.now()
      end)
      assert.equal(0, finished)
      assert.same({ { 1, 2 } }, r.batches)
      assert.same({ 30 }, r.times)
    end)

    it("flush() seals the open batch and returns once its handler call is done", function()
      local r = recorder { delay = 1 }
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 3, flush_interval = math.huge, handler = r.handler }
        for i = 1, 5 do
          b:add(i)
        end
        b:flush()
        -- Both the full batch and the flushed one are done, in order.
        assert.same({ { 1, 2, 3 }, { 4, 5 } }, r.batches)
        assert.same({ 1, 2, 3, 4, 5 }, r.delivered)
        assert.equal(2, fdn.now())
        b:flush() -- nothing open: returns at once
        assert.equal(2, fdn.now())
        local s = b:stats()
        assert.equal(1, s.reasons.manual)
        b:close()
      end)
    end)

    it("never hands an empty batch to the handler", function()
      local r = recorder()
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 2, flush_interval = 1, handler = r.handler }
        b:flush()
        b:add(1)
        b:add(2) -- sealed by size: the timer has nothing left
        fdn.sleep(5)
        b:flush()
        b:close()
        b:close()
      end)
      assert.same({ { 1, 2 } }, r.batches)
    end)

    it("a batch_size of 1 flushes each item by itself", function()
      local r = recorder()
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 1, handler = r.handler }
        for i = 1, 4 do
          b:add(i)
        end
        b:close()
      end)
      assert.same({ { 1 }, { 2 }, { 3 }, { 4 } }, r.batches)
    end)
  end)

  describe("close", function()
    it("flushes what is left, waits for flushes in flight, then refuses adds", function()
      local r = recorder { delay = 5 }
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 2, flush_interval = math.huge, handler = r.handler }
        b:add(1)
        b:add(2)
        b:add(3)
        fdn.sleep(1) -- the first flush is in flight
        b:close()
        assert.equal(10, fdn.now())
        assert.same({ 1, 2, 3 }, r.delivered)
        local ok, err = pcall(b.add, b, 4)
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Closed))
        assert.is_true(b:is_closed())
        assert.equal(1, b:stats().reasons.close)
      end)
    end)

    it("is what fdn.with does on exit, also when the body fails", function()
      local r = recorder()
      local ok, err = pcall(vrun, function()
        fdn.with(fdn.Batcher.new { batch_size = 10, handler = r.handler }, function(b)
          b:add("x")
          b:add("y")
          error("body failed", 0)
        end)
      end)
      assert.is_false(ok)
      assert.equal("body failed", err)
      assert.same({ { "x", "y" } }, r.batches)
    end)

    it("wakes producers blocked on a full batcher with Closed", function()
      vrun(function()
        local gate = false
        local b = fdn.Batcher.new { batch_size = 1, max_pending = 1, flush_interval = math.huge,
          handler = function()
            while not gate do
              fdn.sleep(1)
            end
          end }
        b:add(1) -- in flight, held by the handler
        b:add(2) -- buffered: full now
        local blocked = fdn.spawn(function() return b:add(3) end)
        fdn.sleep(0.5)
        assert.equal("waiting", blocked:status())
        local closer = fdn.spawn(function() b:close() end)
        fdn.sleep(0.5)
        local ok, err = blocked:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Closed))
        gate = true
        closer:join()
      end)
    end)

    it("closing a batcher that was never used needs no engine", function()
      local b = fdn.Batcher.new { handler = function() end }
      b:close()
      local ok, err = pcall(b.add, b, 1)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Closed))
    end)
  end)

  describe("backpressure and overflow", function()
    it("block: add suspends the producer; never more than max_pending wait", function()
      local started, finished, added, worst, blocked = 0, 0, 0, 0, 0
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 10, max_pending = 25, flush_interval = 1,
          handler = function(items)
            started = started + #items
            fdn.sleep(0.1)
            finished = finished + #items
          end }
        for i = 1, 2000 do
          local t0 = fdn.now()
          b:add(i)
          if fdn.now() > t0 then
            blocked = blocked + 1
          end
          added = added + 1
          local waiting = b:stats().buffered
          worst = math.max(worst, waiting)
          assert.is_true(waiting <= 25, "buffered " .. waiting)
          -- Besides those, one batch is being flushed (or about to be).
          assert.is_true(added - finished <= 25 + 10, "held " .. (added - finished))
          assert.is_true(added - started <= 25 + 10)
        end
        b:close()
      end)
      assert.equal(2000, finished)
      assert.equal(25, worst) -- the limit was reached, and held
      assert.is_true(blocked > 100)
    end)

    it("error: add raises QueueFull when max_pending items wait", function()
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 2, max_pending = 4, overflow = "error",
          flush_interval = math.huge, handler = function() fdn.sleep(1) end }
        for i = 1, 6 do -- [1,2] in flight, [3,4] [5,6] waiting
          b:add(i)
        end
        local ok, err = pcall(b.add, b, 7)
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.QueueFull))
        assert.matches("4 items are already waiting", err.message)
        fdn.sleep(1.5) -- one batch done: room again
        b:add(7)
        b:close()
        assert.equal(7, b:stats().added)
      end)
    end)

    it("drop_oldest: drops the oldest waiting items, counts them and says so", function()
      local r = recorder { delay = 1 }
      local dropped_events = 0
      events.subscribe("batch.dropped", function() dropped_events = dropped_events + 1 end)
      local records = quiet_logs()
      local handles
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 2, max_pending = 4, overflow = "drop_oldest",
          flush_interval = math.huge, handler = r.handler }
        handles = {}
        for i = 1, 9 do
          handles[i] = b:add(i)
        end
        b:close()
        assert.equal(3, b:stats().dropped)
        assert.equal(9, b:stats().added)
        for i = 1, 9 do
          local ok, res = handles[i]:wait()
          if i >= 3 and i <= 5 then
            assert.is_false(ok)
            assert.is_true(errors.is(res, errors.QueueFull))
          else
            assert.is_true(ok, "item " .. i)
          end
        end
      end)
      assert.same({ 1, 2, 6, 7, 8, 9 }, r.delivered)
      assert.equal(3, dropped_events)
      local warned = false
      for _, rec in ipairs(records) do
        if rec.event == "batcher.items_dropped" then
          warned = true
        end
      end
      assert.is_true(warned)
    end)

    it("a producer cancelled while blocked adds nothing", function()
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 1, max_pending = 1, flush_interval = math.huge,
          handler = function() fdn.sleep(10) end }
        b:add(1)
        b:add(2)
        local t = fdn.spawn(function() b:add(3) end)
        fdn.sleep(1)
        t:cancel("stop")
        local ok, err = t:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Cancelled))
        b:close()
        assert.equal(2, b:stats().added)
        assert.equal(2, b:stats().flushed)
      end)
    end)
  end)

  describe("flushes", function()
    it("runs one flush at a time by default, batches in order", function()
      local active, peak, order = 0, 0, {}
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 2, max_pending = 100, flush_interval = math.huge,
          handler = function(items)
            active = active + 1
            peak = math.max(peak, active)
            order[#order + 1] = items[1]
            fdn.sleep(1)
            active = active - 1
          end }
        for i = 1, 20 do
          b:add(i)
        end
        b:close()
      end)
      assert.equal(1, peak)
      assert.same({ 1, 3, 5, 7, 9, 11, 13, 15, 17, 19 }, order)
    end)

    it("max_concurrent_flushes runs that many at once, started in order", function()
      local active, peak, order = 0, 0, {}
      local finished_at
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 2, max_pending = 100, flush_interval = math.huge,
          max_concurrent_flushes = 3,
          handler = function(items)
            active = active + 1
            peak = math.max(peak, active)
            order[#order + 1] = items[1]
            fdn.sleep(1)
            active = active - 1
          end }
        for i = 1, 18 do
          b:add(i)
        end
        b:close()
        finished_at = fdn.now()
      end)
      assert.equal(3, peak)
      assert.same({ 1, 3, 5, 7, 9, 11, 13, 15, 17 }, order)
      assert.equal(3, finished_at) -- 9 batches, 3 at a time, 1 s each
    end)

    it("loses and duplicates nothing across failures and close (multiset of 5000 items)",
      function()
        quiet_logs()
        for _, concurrency in ipairs { 1, 4 } do
          local added, delivered, failed = {}, {}, {}
          vrun(function()
            local b = fdn.Batcher.new { batch_size = 37, max_pending = 200, flush_interval = 0.05,
              max_concurrent_flushes = concurrency,
              handler = function(items)
                fdn.sleep(fdn.random() * 0.02)
                if fdn.random() < 0.3 then
                  error("sink unavailable")
                end
                for _, v in ipairs(items) do
                  delivered[#delivered + 1] = v
                end
              end,
              on_error = function(_, items)
                for _, v in ipairs(items) do
                  failed[#failed + 1] = v
                end
              end }
            local producers = {}
            for p = 1, 5 do
              producers[p] = fdn.spawn(function()
                for i = 1, 1000 do
                  local v = p * 100000 + i
                  added[#added + 1] = v
                  b:add(v)
                  if fdn.random() < 0.05 then
                    fdn.sleep(fdn.random() * 0.1)
                  end
                end
              end)
            end
            fdn.gather(producers)
            b:close()
          end, { seed = 42 + concurrency })
          assert.equal(5000, #added)
          assert.is_true(#failed > 0 and #delivered > 0)
          local seen = count_by_value(delivered)
          for v, n in pairs(count_by_value(failed)) do
            seen[v] = (seen[v] or 0) + n
          end
          for _, v in ipairs(added) do
            assert.equal(1, seen[v], "item " .. v)
            seen[v] = nil
          end
          assert.is_nil(next(seen))
        end
      end)

    it("keeps each producer's items in add order across batches", function()
      local r = recorder()
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 7, flush_interval = 0.01, handler = r.handler }
        for i = 1, 500 do
          b:add(i)
          if i % 13 == 0 then
            fdn.sleep(0.02)
          end
        end
        b:close()
      end)
      for i = 1, 500 do
        assert.equal(i, r.delivered[i])
      end
      for _, batch in ipairs(r.batches) do
        assert.is_true(#batch >= 1 and #batch <= 7)
      end
    end)
  end)

  describe("handler failures", function()
    it("without retry or on_error, close raises BatchFailed with the undelivered items", function()
      local records = quiet_logs()
      vrun(function()
        local calls = 0
        local b = fdn.Batcher.new { batch_size = 2, flush_interval = math.huge, name = "sink",
          handler = function(items)
            calls = calls + 1
            if items[1] ~= 3 then
              error("boom " .. calls)
            end
          end }
        for i = 1, 5 do
          b:add(i)
        end
        local ok, err = pcall(b.close, b)
        assert.is_false(ok)
        assert.is_true(errors.is(err, fdn.Batcher.BatchFailed))
        assert.same({ 1, 2, 5 }, err.items)
        assert.equal(2, #err.errors)
        assert.matches("boom 1", tostring(err.cause))
        assert.matches("2 batch%(es%), 3 item%(s%)", err.message)
        assert.equal(2, b:stats().failed)
        b:close() -- raised once
      end)
      local logged = 0
      for _, rec in ipairs(records) do
        if rec.event == "batcher.batch_failed" and rec.level == "error" then
          logged = logged + 1
          assert.equal("sink", rec.batcher)
        end
      end
      assert.equal(2, logged)
    end)

    it("hands a failed batch to on_error(err, items) and close does not raise", function()
      quiet_logs()
      local seen = {}
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 2, flush_interval = math.huge,
          handler = function() error(errors.Error.new("down")) end,
          on_error = function(err, items)
            seen[#seen + 1] = { err.message, items }
          end }
        b:add("a")
        b:add("b")
        b:add("c")
        b:close()
      end)
      assert.same({ { "down", { "a", "b" } }, { "down", { "c" } } }, seen)
    end)

    it("an on_error that fails leaves the items to close", function()
      quiet_logs()
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 2, flush_interval = math.huge,
          handler = function() error("down") end,
          on_error = function() error("dead letter queue down too") end }
        b:add(1)
        local ok, err = pcall(b.close, b)
        assert.is_false(ok)
        assert.same({ 1 }, err.items)
      end)
    end)

    it("retries a failed batch with the retry wrapper before on_error", function()
      local attempts, delivered, on_error_calls = 0, {}, 0
      -- The shape fdn.retry{...} has: a function that wraps the handler.
      local function retry_3(fn)
        return function(items)
          for attempt = 1, 3 do
            local ok, err = pcall(fn, items)
            if ok then
              return err
            end
            if attempt == 3 then
              error(err, 0)
            end
            fdn.sleep(attempt)
          end
        end
      end
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 3, flush_interval = math.huge, retry = retry_3,
          handler = function(items)
            attempts = attempts + 1
            if attempts % 3 ~= 0 then
              error("flaky")
            end
            for _, v in ipairs(items) do
              delivered[#delivered + 1] = v
            end
          end,
          on_error = function() on_error_calls = on_error_calls + 1 end }
        for i = 1, 6 do
          b:add(i)
        end
        b:close()
        assert.equal(6, fdn.now()) -- two batches, each waited 1 + 2 s
      end)
      assert.equal(6, attempts)
      assert.same({ 1, 2, 3, 4, 5, 6 }, delivered)
      assert.equal(0, on_error_calls)
    end)

    it("a cancelled flusher drains what an unclosed batcher holds", function()
      quiet_logs()
      local got, failed = {}, {}
      local ok, err = pcall(vrun, function()
        local b = fdn.Batcher.new { batch_size = 10, flush_interval = 60,
          handler = function(items)
            fdn.sleep(1)
            for _, v in ipairs(items) do
              got[#got + 1] = v
            end
          end,
          on_error = function(e, items)
            assert.is_true(errors.is(e, errors.Cancelled))
            for _, v in ipairs(items) do
              failed[#failed + 1] = v
            end
          end }
        for i = 1, 35 do
          b:add(i)
        end
        fdn.sleep(0.5) -- the first batch is in its handler
        error("main failed", 0)
      end)
      assert.is_false(ok)
      assert.equal("main failed", err)
      -- The batch in flight was interrupted; everything else was flushed.
      assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, failed)
      assert.equal(25, #got)
      assert.equal(11, got[1])
    end)

    it("that drain is bounded by fdn.cleanup_timeout", function()
      quiet_logs()
      local saved = fdn.cleanup_timeout
      fdn.cleanup_timeout = 3
      local failed, t_end = 0, nil
      local ok = pcall(vrun, function()
        local b = fdn.Batcher.new { batch_size = 5, flush_interval = 60,
          handler = function() fdn.sleep(3600) end,
          on_error = function(_, items) failed = failed + #items end }
        for i = 1, 12 do
          b:add(i)
        end
        fdn.spawn(function()
          fdn.sleep(100)
          t_end = fdn.now()
        end)
        error("main failed", 0)
      end)
      fdn.cleanup_timeout = saved
      assert.is_false(ok)
      assert.is_nil(t_end)
      assert.equal(12, failed) -- nothing hangs, nothing is silently lost
    end)

    it("a failure of the main task still flushes a batcher closed by fdn.with", function()
      local r = recorder { delay = 1 }
      local ok = pcall(vrun, function()
        fdn.with(fdn.Batcher.new { batch_size = 100, handler = r.handler }, function(b)
          for i = 1, 250 do
            b:add(i)
          end
          error("main failed")
        end)
      end)
      assert.is_false(ok)
      assert.equal(250, #r.delivered)
    end)
  end)

  describe("misuse from inside the handler", function()
    it("refuses flush, close and a blocking add on its own batcher", function()
      vrun(function()
        local b
        local seen = {}
        b = fdn.Batcher.new { batch_size = 1, max_pending = 1, flush_interval = math.huge,
          handler = function(items)
            if items[1] == 1 then
              for _, call in ipairs {
                function() b:flush() end,
                function() b:close() end,
                function() b:add("again") b:add("blocks") end,
              } do
                local ok, err = pcall(call)
                seen[#seen + 1] = not ok and errors.is(err, errors.InvalidState)
                  and err.message:match("wait for itself") ~= nil
              end
            end
          end }
        b:add(1)
        b:flush()
        assert.same({ true, true, true }, seen)
        assert.is_false(b:is_closed())
        b:close()
        assert.equal(2, b:stats().added) -- 1 and "again"
      end)
    end)
  end)

  describe("per-item results", function()
    it("handle:wait() gives the item's result once its batch is flushed", function()
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 3, flush_interval = 1,
          handler = function(keys)
            fdn.sleep(0.5)
            local out = {}
            for i, k in ipairs(keys) do
              out[i] = k == "bad" and errors.Error.new("no such key: " .. k) or k:upper()
            end
            return out
          end }
        -- The dataloader pattern: callers batch transparently.
        local function load(key)
          return b:add(key):join()
        end
        local tasks = {}
        for i, k in ipairs { "a", "b", "bad", "d" } do
          tasks[i] = fdn.spawn(function() return fdn.try(load, k) end)
        end
        local results = {}
        for i, t in ipairs(tasks) do
          local _, ok, v = t:wait()
          results[i] = ok and v or ("error: " .. v.message)
        end
        assert.same({ "A", "B", "error: no such key: bad", "D" }, results)
        assert.equal(1.5, fdn.now()) -- "d" waited for its time trigger
        local h = b:add("e")
        assert.is_false(h:done())
        b:flush()
        assert.is_true(h:done())
        assert.same({ true, "E" }, { h:wait() })
        b:close()
      end)
    end)

    it("gives true, nil when the handler returns no list, and the error when the batch fails",
      function()
        quiet_logs()
        vrun(function()
          local fail = false
          local b = fdn.Batcher.new { batch_size = 2, flush_interval = math.huge,
            on_error = function() end,
            handler = function()
              if fail then
                error(errors.Error.new("sink down"))
              end
              return 42 -- not a list: no per-item results
            end }
          local h1 = b:add(1)
          b:add(2)
          b:flush()
          fail = true
          local h3 = b:add(3)
          b:close()
          assert.same({ true }, { h1:wait() })
          local ok, err = h3:wait()
          assert.is_false(ok)
          assert.equal("sink down", err.message)
          local ok2, err2 = pcall(h3.join, h3)
          assert.is_false(ok2)
          assert.equal(err, err2)
        end)
      end)

    it("a waiter cancelled while its batch is pending raises Cancelled", function()
      vrun(function()
        local b = fdn.Batcher.new { batch_size = 10, flush_interval = 100, handler = function() end }
        local h = b:add(1)
        local t = fdn.spawn(function() return h:wait() end)
        fdn.sleep(1)
        t:cancel()
        local ok, err = t:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Cancelled))
        b:close()
        assert.is_true(h:wait())
      end)
    end)
  end)

  describe("events and statistics", function()
    it("emits batch.flushed, batch.failed and batch.closed", function()
      local got = {}
      events.subscribe("batch.*", function(name, e)
        got[#got + 1] = { name, e.batcher, e.size, e.reason, e.ok }
      end)
      quiet_logs()
      vrun(function()
        local n = 0
        local b = fdn.Batcher.new { name = "ev", batch_size = 2, flush_interval = math.huge,
          on_error = function() end,
          handler = function()
            n = n + 1
            if n == 2 then
              error("x")
            end
          end }
        for i = 1, 3 do
          b:add(i)
        end
        b:close()
      end)
      assert.same({ "batch.flushed", "ev", 2, "size", true }, got[1])
      assert.same({ "batch.failed", "ev", 1 }, { got[2][1], got[2][2], got[2][3] })
      assert.same({ "batch.flushed", "ev", 1, "close", false }, got[3])
      assert.same({ "batch.closed", "ev" }, { got[4][1], got[4][2] })
    end)

    it("counts what happened", function()
      vrun(function()
        local b = fdn.Batcher.new { name = "st", batch_size = 2, flush_interval = 1,
          handler = function() end }
        assert.same({ size = 0, time = 0, manual = 0, close = 0 }, b:stats().reasons)
        b:add(1)
        b:add(2)
        b:add(3)
        assert.equal(3, b:stats().added)
        assert.equal(1, b:stats().buffered)
        fdn.sleep(2)
        b:add(4)
        b:flush()
        b:add(5)
        b:close()
        local s = b:stats()
        assert.equal("st", s.name)
        assert.is_true(s.closed)
        assert.equal(5, s.added)
        assert.equal(4, s.batches)
        assert.equal(4, s.flushed)
        assert.equal(0, s.buffered)
        assert.equal(0, s.in_flight)
        assert.same({ size = 1, time = 1, manual = 1, close = 1 }, s.reasons)
        assert.equal("fdn.Batcher(st)", tostring(b))
      end)
    end)
  end)

  it("takes the " .. mode, function()
    local b = fdn.Batcher.new { handler = function() end }
    local has_ffi = pcall(require, "ffi")
    assert.equal(mode == "FFI fast paths" and has_ffi, b._p ~= nil)
  end)

  describe("lifetime", function()
    local shared = fdn.Batcher.new { batch_size = 2, flush_interval = 1, handler = function() end }

    it("works across fdn.run calls when made outside any engine", function()
      for _ = 1, 2 do
        vrun(function()
          shared:add(1)
          shared:add(2)
          shared:add(3)
          shared:flush()
        end)
      end
      assert.equal(6, shared:stats().added)
      assert.equal(4, shared:stats().flushed)
    end)

    it("needs a task to add past its room, flush or close", function()
      local b = fdn.Batcher.new { handler = function() end }
      local ok, err = pcall(b.add, b, 1)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidState))
      assert.matches("no engine is running", err.message)
    end)
  end)

  describe("bad arguments", function()
    local h = function() end
    local cases = {
      { "opts", nil },
      { "opts", 5 },
      { "opts.handler", {} },
      { "opts.handler", { handler = 5 } },
      { "opts.batch_size", { handler = h, batch_size = 0 } },
      { "opts.batch_size", { handler = h, batch_size = 2.5 } },
      { "opts.batch_size", { handler = h, batch_size = "10" } },
      { "opts.flush_interval", { handler = h, flush_interval = -1 } },
      { "opts.flush_interval", { handler = h, flush_interval = 0 / 0 } },
      { "opts.max_pending", { handler = h, batch_size = 10, max_pending = 5 } },
      { "opts.max_pending", { handler = h, max_pending = -1 } },
      { "opts.max_concurrent_flushes", { handler = h, max_concurrent_flushes = 0 } },
      { "opts.max_concurrent_flushes", { handler = h, max_concurrent_flushes = 5000 } },
      { "opts.overflow", { handler = h, overflow = "spill" } },
      { "opts.on_error", { handler = h, on_error = true } },
      { "opts.retry", { handler = h, retry = 3 } },
      { "opts.retry", { handler = h, retry = function() return "not a function" end } },
      { "opts.name", { handler = h, name = 7 } },
    }
    for _, case in ipairs(cases) do
      it("rejects a bad " .. case[1], function()
        local ok, err = pcall(fdn.Batcher.new, case[2])
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
        assert.equal(case[1], err.context.parameter)
        assert.equal("fdn.Batcher.new", err.context["function"])
      end)
    end

    it("rejects a nil item", function()
      local b = fdn.Batcher.new { handler = h }
      local ok, err = pcall(b.add, b, nil)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidArgument))
      assert.equal("item", err.context.parameter)
    end)

    it("accepts math.huge for max_pending and flush_interval", function()
      vrun(function()
        local r = recorder()
        local b = fdn.Batcher.new { handler = r.handler, batch_size = 2, max_pending = math.huge,
          flush_interval = math.huge }
        for i = 1, 5 do
          b:add(i)
        end
        b:close()
        assert.equal(5, #r.delivered)
      end)
    end)
  end)
end)

end

describe("fdn-lua with a Batcher", function()
  local h = require "helpers"

  it("delivers every accepted item when sent SIGTERM mid-batch #signals", function()
    local out = os.tmpname()
    local script = h.write_temp([[
      local out = assert(io.open(arg[1], "w"))
      local b = fdn.Batcher.new { batch_size = 50, flush_interval = 0.2, max_pending = 200,
        handler = function(items)
          fdn.sleep(0.03) -- a slow sink: SIGTERM lands while batches are in flight
          for _, v in ipairs(items) do
            out:write(v, "\n")
          end
          out:flush()
        end }
      local added = 0
      local ok, err = pcall(function()
        while true do
          b:add(added + 1)
          added = added + 1
          if added % 7 == 0 then
            fdn.sleep(0.001)
          end
        end
      end)
      io.stdout:write("added=", added, " stopped by ", fdn.errors.format(err):match("^%S+"), "\n")
      io.stdout:flush()
    ]])
    local code, stdout = h.sh(h.quote(h.fdn_lua_path) .. " " .. h.quote(script) .. " " .. h.quote(out)
      .. " & pid=$!; sleep 0.5; kill -TERM $pid; wait $pid")
    assert.equal(143, code)
    local added = tonumber(stdout:match("added=(%d+)"))
    assert.is_not_nil(added, stdout)
    assert.is_true(added > 100, stdout)
    assert.matches("stopped by Closed", stdout)
    local seen, n = {}, 0
    for line in io.lines(out) do
      local v = tonumber(line)
      assert.is_nil(seen[v], "delivered twice: " .. line)
      seen[v] = true
      n = n + 1
    end
    assert.equal(added, n)
    for i = 1, added do
      assert.is_true(seen[i], "missing " .. i)
    end
    os.remove(out)
    os.remove(script)
  end)
end)
