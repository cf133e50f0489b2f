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

local function range(n)
  local t = {}
  for i = 1, n do
    t[i] = i
  end
  return t
end

describe("fdn.ConcurrentExecutor", function()
  after_each(function()
    events.reset()
  end)

  it("returns results in input order, whatever order they finish in", function()
    local results = fdn.run(function()
      local ex = fdn.ConcurrentExecutor.new { max_workers = 4 }
      return ex:map(function(item, index)
        fdn.sleep((10 - index) * 0.1)
        return item .. "!", "second value dropped"
      end, { "a", "b", "c", "d", "e", "f", "g", "h", "i" })
    end, VIRTUAL)
    assert.same({ "a!", "b!", "c!", "d!", "e!", "f!", "g!", "h!", "i!", n = 9 }, results)
  end)

  it("never has more than max_workers calls in flight, over hundreds of items", function()
    local in_flight, max_in_flight, calls = 0, 0, 0
    fdn.run(function()
      local ex = fdn.ConcurrentExecutor.new { max_workers = 6 }
      local results = ex:map(function(x)
        calls = calls + 1
        in_flight = in_flight + 1
        max_in_flight = math.max(max_in_flight, in_flight)
        fdn.sleep((x % 4) * 0.05)
        in_flight = in_flight - 1
        return x * 2
      end, range(500))
      for i = 1, 500 do
        assert.equal(i * 2, results[i])
      end
    end, VIRTUAL)
    assert.equal(6, max_in_flight)
    assert.equal(500, calls)
  end)

  it("calls progress_callback once per finished item, in order of completion", function()
    local calls, finished = {}, {}
    fdn.run(function()
      local ex = fdn.ConcurrentExecutor.new { max_workers = 3 }
      ex:map(function(x)
        fdn.sleep((6 - x) * 0.1)
        finished[#finished + 1] = x
      end, range(5), {
        progress_callback = function(completed, total)
          calls[#calls + 1] = { completed, total, finished[#finished] }
        end,
      })
    end, VIRTUAL)
    assert.equal(5, #calls)
    for i = 1, 5 do
      assert.equal(i, calls[i][1])
      assert.equal(5, calls[i][2])
      assert.equal(finished[i], calls[i][3])
    end
  end)

  it("pulls an iterator lazily; total is unknown unless given", function()
    local totals, pulled, max_ahead, done = {}, 0, 0, 0
    local results = fdn.run(function()
      local ex = fdn.ConcurrentExecutor.new { max_workers = 3 }
      local first = ex:map(function(x)
        fdn.sleep(0.1)
        done = done + 1
        return x * 10
      end, function()
        if pulled < 20 then
          pulled = pulled + 1
          max_ahead = math.max(max_ahead, pulled - done)
          return pulled
        end
      end, { progress_callback = function(_, total) totals[#totals + 1] = tostring(total) end })
      local i = 0
      ex:map(function() end, function()
        i = i + 1
        return i <= 3 and i or nil
      end, { total = 3, progress_callback = function(_, total) totals[#totals + 1] = total end })
      return first
    end, VIRTUAL)
    assert.equal(20, results.n)
    assert.equal(200, results[20])
    assert.is_true(max_ahead <= 3)
    assert.equal("nil", totals[1])
    assert.equal(3, totals[#totals])
  end)

  it("maps a 1,000,000-item iterator with flat memory", function()
    local pulled, completed, max_ahead = 0, 0, 0
    local growth = {}
    local results = fdn.run(function()
      collectgarbage()
      collectgarbage()
      local base = collectgarbage("count")
      local ex = fdn.ConcurrentExecutor.new { max_workers = 16 }
      return ex:map(function(x)
        if x % 64 == 0 then
          fdn.sleep(0)
        end
        completed = completed + 1
      end, function()
        if pulled < 1000000 then
          pulled = pulled + 1
          if pulled - completed > max_ahead then
            max_ahead = pulled - completed
          end
          return pulled
        end
      end, {
        progress_callback = function(c)
          if c % 100000 == 0 then
            collectgarbage()
            growth[#growth + 1] = collectgarbage("count") - base
          end
        end,
      })
    end)
    assert.equal(1000000, pulled)
    assert.equal(1000000, completed)
    assert.equal(1000000, results.n)
    assert.is_true(max_ahead <= 16, "pulled ahead by " .. max_ahead)
    assert.equal(10, #growth)
    for _, kb in ipairs(growth) do
      -- A materialised stream would be tens of megabytes.
      assert.is_true(kb < 256, "heap grew by " .. kb .. " KB")
    end
    assert.is_true(growth[10] - growth[1] < 64, "heap kept growing")
  end)

  it("cancels the calls in flight on the first error, takes no more items, raises it", function()
    local started, cancelled, seen = {}, 0, {}
    local boom = errors.Error.new("item 10 failed")
    local ok, err = pcall(fdn.run, function()
      events.subscribe("concurrent_executor.*", function(name, data) seen[#seen + 1] = { name, data } end)
      local ex = fdn.ConcurrentExecutor.new { max_workers = 4, name = "thumbnails" }
      ex:map(function(x)
        started[#started + 1] = x
        local slept = pcall(fdn.sleep, x == 10 and 0.05 or 1)
        if not slept then
          cancelled = cancelled + 1
          error(errors.Cancelled.new("stopped"))
        end
        if x == 10 then
          error(boom)
        end
      end, range(100))
    end, VIRTUAL)
    assert.is_false(ok)
    assert.equal(boom, err)
    assert.is_nil(err.suppressed)
    -- Four at a time, a second each: 9-12 were running when 10 failed;
    -- 9, 11 and 12 were cut short and nothing after 12 started.
    assert.equal(12, #started)
    assert.equal(3, cancelled)
    assert.equal("concurrent_executor.map_started", seen[1][1])
    assert.same({ name = "thumbnails", total = 100, max_workers = 4 }, seen[1][2])
    assert.equal("concurrent_executor.item_failed", seen[2][1])
    assert.same({ name = "thumbnails", index = 10, error = boom }, seen[2][2])
    assert.equal("concurrent_executor.map_finished", seen[3][1])
    assert.same({ name = "thumbnails", completed = 8, failed = 1, cancelled = false }, seen[3][2])
  end)

  it("with return_errors puts each error in its slot and goes on", function()
    local results = fdn.run(function()
      local ex = fdn.ConcurrentExecutor.new { max_workers = 2 }
      return ex:map(function(x)
        fdn.sleep(0.1)
        if x % 3 == 0 then
          error("bad " .. x, 0)
        end
        return x
      end, range(7), { return_errors = true })
    end, VIRTUAL)
    assert.same({ 1, 2, "bad 3", 4, 5, "bad 6", 7, n = 7 }, results)
  end)

  it("raises the error of a failing progress_callback or iterator", function()
    fdn.run(function()
      local ex = fdn.ConcurrentExecutor.new { max_workers = 2 }
      local ok, err = pcall(ex.map, ex, function() end, range(5), {
        progress_callback = function(c) if c == 2 then error("progress broke", 0) end end,
      })
      assert.is_false(ok)
      assert.equal("progress broke", err)
      local n = 0
      ok, err = pcall(ex.map, ex, function() end, function()
        n = n + 1
        if n == 4 then error("source broke", 0) end
        return n
      end)
      assert.is_false(ok)
      assert.equal("source broke", err)
    end)
  end)

  it("cancels its calls when the task calling map is cancelled", function()
    local cut_short = 0
    fdn.run(function()
      local ex = fdn.ConcurrentExecutor.new { max_workers = 5 }
      local caller = fdn.spawn(function()
        return ex:map(function()
          local ok = pcall(fdn.sleep, 60)
          if not ok then
            cut_short = cut_short + 1
          end
        end, range(50))
      end)
      fdn.sleep(1)
      caller:cancel()
      local ok, err = caller:wait()
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.Cancelled))
    end, VIRTUAL)
    assert.equal(5, cut_short)
  end)

  it("handles empty input and lists with holes given n", function()
    fdn.run(function()
      local ex = fdn.ConcurrentExecutor.new { max_workers = 3 }
      assert.same({ n = 0 }, ex:map(function() error("never") end, {}))
      assert.same({ n = 0 }, ex:map(function() error("never") end, function() return nil end))
      local seen = {}
      local r = ex:map(function(x, i)
        seen[i] = x == nil
        return x
      end, { 1, nil, 3, n = 3 })
      assert.same({ 1, nil, 3, n = 3 }, r)
      assert.is_true(seen[2])
    end)
  end)

  it("rejects bad arguments with InvalidArgument naming the parameter", function()
    local E = fdn.ConcurrentExecutor
    expect_error(errors.InvalidArgument, E.new)
    expect_error(errors.InvalidArgument, E.new, {})
    for _, bad in ipairs({ 0, -2, 1.5, math.huge, "3" }) do
      local err = expect_error(errors.InvalidArgument, E.new, { max_workers = bad })
      assert.matches("opts.max_workers", err.message)
    end
    expect_error(errors.InvalidArgument, E.new, { max_workers = 1, name = 3 })
    local ex = E.new { max_workers = 2, name = "x" }
    local outside = expect_error(errors.InvalidState, ex.map, ex, print, { 1 })
    assert.matches("ConcurrentExecutor 'x':map: must be called from a task", outside.message)
    fdn.run(function()
      local err = expect_error(errors.InvalidArgument, ex.map, ex, nil, {})
      assert.matches("ConcurrentExecutor 'x':map: bad argument 'fn'", err.message)
      expect_error(errors.InvalidArgument, ex.map, ex, print, "items")
      expect_error(errors.InvalidArgument, ex.map, ex, print, {}, 5)
      expect_error(errors.InvalidArgument, ex.map, ex, print, {}, { progress_callback = 1 })
      expect_error(errors.InvalidArgument, ex.map, ex, print, print, { total = -1 })
    end)
  end)
end)
