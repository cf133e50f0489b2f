-- The benchmark harness at small sizes: every workload of every peer found
-- here runs through the same code as `make bench` and must pass its
-- checks. No timing is asserted. A peer missing here is pending, with why.
local h = require "helpers"

package.path = h.root .. "/bench/?.lua;" .. h.root .. "/bench/?/init.lua;" .. package.path
local harness = require "harness"
local report = require "harness.report"
local workloads = harness.workloads

local ctx = harness.context { root = h.root, build = h.build, timeout = 120 }

local function ok_result(id, n, fields)
  local r = { workload = id, n = n, elapsed = 0.5 }
  for k, v in pairs(fields) do
    r[k] = v
  end
  return r
end

local function tri(n)
  return n * (n + 1) / 2
end

describe("bench harness checks", function()
  local W = workloads.by_id
  local n = 100

  it("accept a right answer for each workload", function()
    assert.is_nil(workloads.check(W.W0, ok_result("W0", n, { count = n }), n))
    assert.is_nil(workloads.check(W.W1, ok_result("W1", n, { count = n, sum = tri(n),
      ordered = true }), n))
    assert.is_nil(workloads.check(W.W2, ok_result("W2", n, { count = n, sum = tri(n),
      ordered = true, limit = 64, max_in_flight = 64 }), n))
    local d, sum = workloads.durations(n), 0
    for i = 1, n do
      sum = sum + d[i]
    end
    assert.is_nil(workloads.check(W.W3, ok_result("W3", n, { count = n, sum = sum, early = 0,
      rss_growth = 1000 }), n))
    assert.is_nil(workloads.check(W["W4.raise"], ok_result("W4.raise", n, { count = n,
      sum = tri(n), attempts = 3 * n }), n))
    assert.is_nil(workloads.check(W.W5, ok_result("W5", n, { count = n, last = n, broken = 0,
      batches = 1 }), n))
    assert.is_nil(workloads.check(W.W6, ok_result("W6", n, { count = n, sum = tri(n),
      ordered = true, parked_at_set = n, woke_unset = 0, rss_growth = 1000 }), n))
    assert.is_nil(workloads.check(W.S0, { stdout = "hello\n" }, 1))
  end)

  it("fail a result for another workload, size, or without a time", function()
    assert.matches("workload W1", workloads.check(W.W0, ok_result("W1", n, { count = n }), n))
    assert.matches("ran n = 99", workloads.check(W.W0, ok_result("W0", 99, { count = n }), n))
    local r = ok_result("W0", n, { count = n })
    r.elapsed = 0
    assert.matches("no elapsed time", workloads.check(W.W0, r, n))
    assert.matches("no result", workloads.check(W.W0, nil, n))
  end)

  it("fail lost, wrong or reordered results", function()
    local good = { count = n, sum = tri(n), ordered = true }
    local function with(change)
      local r = ok_result("W1", n, good)
      for k, v in pairs(change) do
        r[k] = v
      end
      return workloads.check(W.W1, r, n)
    end
    assert.matches("wrong number of results", with { count = n - 1 })
    assert.matches("wrong results", with { sum = tri(n) - 1 })
    assert.matches("out of order", with { ordered = false })
  end)

  it("fail a limit exceeded or never reached", function()
    local function w2(max)
      return workloads.check(W.W2, ok_result("W2", n, { count = n, sum = tri(n),
        ordered = true, limit = 64, max_in_flight = max }), n)
    end
    assert.matches("limit not respected", w2(65))
    assert.matches("never reached", w2(63))
  end)

  it("fail sleepers that did not sleep their durations", function()
    local d, sum = workloads.durations(n), 0
    for i = 1, n do
      sum = sum + d[i]
    end
    local r = ok_result("W3", n, { count = n, sum = sum, early = 0, rss_growth = 0 })
    r.elapsed = 0.002
    assert.matches("before the longest sleep", workloads.check(W.W3, r, n))
    r = ok_result("W3", n, { count = n, sum = sum - 1, early = 0, rss_growth = 0 })
    assert.matches("did not sleep their own durations", workloads.check(W.W3, r, n))
    r = ok_result("W3", n, { count = n, sum = sum, early = 3, rss_growth = 0 })
    assert.matches("woke before their deadline", workloads.check(W.W3, r, n))
  end)

  it("fail a retry that made the wrong number of attempts", function()
    local r = ok_result("W4.nil", n, { count = n, sum = tri(n), attempts = 2 * n })
    assert.matches("wrong number of attempts", workloads.check(W["W4.nil"], r, n))
  end)

  it("fail batches lost, out of order or too few", function()
    local function w5(change)
      local r = ok_result("W5", n, { count = n, last = n, broken = 0, batches = 1 })
      for k, v in pairs(change) do
        r[k] = v
      end
      return workloads.check(W.W5, r, n)
    end
    assert.matches("lost or duplicated", w5 { count = n + 1 })
    assert.matches("out of order", w5 { broken = 1 })
    assert.matches("fewer batches", w5 { batches = 0 })
  end)

  it("fail tasks not parked, or woken before the event was set", function()
    local function w6(change)
      local r = ok_result("W6", n, { count = n, sum = tri(n), ordered = true, parked_at_set = n,
        woke_unset = 0, rss_growth = 0 })
      for k, v in pairs(change) do
        r[k] = v
      end
      return workloads.check(W.W6, r, n)
    end
    assert.matches("not every task was parked", w6 { parked_at_set = n - 1 })
    assert.matches("woke before the event was set", w6 { woke_unset = 1 })
  end)

  it("fail a hello world that printed something else", function()
    assert.matches("instead of", workloads.check(W.S0, { stdout = "hell\n" }, 1))
  end)

  it("selects workloads by id or family, and rejects unknown ones", function()
    local ids = {}
    for _, w in ipairs(workloads.select("W4,W1")) do
      ids[#ids + 1] = w.id
    end
    assert.same({ "W1", "W4.raise", "W4.nil" }, ids)
    assert.has_error(function()
      workloads.select("W9")
    end, "unknown workload 'W9' (known: W0 W1 W2 W3 W4 W5 W6 S0)")
    assert.has_error(function()
      harness.wanted_set("fdn,nope")
    end, "unknown peer 'nope'")
  end)
end)

describe("bench harness runner", function()
  local fake
  before_each(function()
    fake = { name = "fake", workloads = {} }
    harness.peers.by_name.fake = fake
  end)
  after_each(function()
    harness.peers.by_name.fake = nil
  end)

  local function run_fake(program, timeout)
    fake.argv = function()
      return { ctx.luajit, "-e", program }
    end
    local saved = ctx.timeout
    ctx.timeout = timeout or saved
    local outcome = harness.run_once(ctx, { peer = "fake", label = "fake" },
      workloads.by_id.W1, 10)
    ctx.timeout = saved
    return outcome
  end

  it("fails a fast wrong answer", function()
    local o = run_fake([[print('{"workload":"W1","n":10,"elapsed":1e-6,"count":10,'
      .. '"sum":55,"ordered":false}')]])
    assert.equal("fail", o.status)
    assert.equal("results out of order", o.error)
  end)

  it("passes and measures a right answer", function()
    local o = run_fake([[print('{"workload":"W1","n":10,"elapsed":0.5,"count":10,'
      .. '"sum":55,"ordered":true}')]])
    assert.equal("ok", o.status)
    assert.equal(20, o.value)
  end)

  it("fails a program that exits non-zero, with its error", function()
    local o = run_fake([[io.stderr:write("boom\n") os.exit(3)]])
    assert.equal("fail", o.status)
    assert.matches("exit 3: boom", o.error)
  end)

  it("fails a program that prints no result", function()
    local o = run_fake([[print("no json here")]])
    assert.equal("fail", o.status)
    assert.matches("no JSON result line", o.error)
  end)

  it("reports a workload the program cannot run as absent, with why", function()
    local o = run_fake([[print('{"workload":"W1","absent":"no such module"}')]])
    assert.equal("absent", o.status)
    assert.equal("no such module", o.reason)
  end)

  it("kills a program that runs past the timeout", function()
    local o = run_fake([[local t = os.time() while os.time() - t < 30 do end]], 0.3)
    assert.equal("fail", o.status)
    assert.matches("no answer within", o.error)
  end)

  it("alternates peers: each round visits every row, starting one row further on", function()
    if ctx.status.luajit.absent or ctx.status["floor-coro"].absent then
      pending("needs luajit and the floor programs")
      return
    end
    local order = {}
    local out = harness.bench(ctx, { runs = 2, only = "W0", peers = "luajit,floor-coro", n = 1000,
      on_sample = function(_, row, outcome, round)
        order[#order + 1] = round .. ":" .. row.peer
        assert.equal("ok", outcome.status, outcome.error)
      end })
    assert.same({ "1:luajit", "1:floor-coro", "2:floor-coro", "2:luajit" }, order)
    local sums = report.summaries(out)
    assert.equal(2, sums.W0.luajit.runs)
    assert.matches("| W0 ns (n = 1.0k) | luajit |", report.table(out, sums, ctx.status), 1, true)
  end)
end)

describe("bench harness callgrind", function()
  it("counts the marginal instructions per task of a checked run", function()
    if not harness.proc.which("valgrind") then
      pending("valgrind not installed (Debian: valgrind)")
      return
    end
    if ctx.status["floor-coro"].absent then
      pending("floor-coro: " .. ctx.status["floor-coro"].absent)
      return
    end
    if os.getenv("FDN_SANITIZE") == "1" then
      pending("this build is instrumented by AddressSanitizer, which valgrind cannot run")
      return
    end
    local entries = harness.callgrind(ctx, { only = "W1", peers = "floor-coro", n1 = 200, n2 = 400 })
    assert.equal(1, #entries)
    local e = entries[1]
    assert.equal("ok", e.status, e.reason)
    assert.is_true(e.i2 > e.i1)
    assert.equal((e.i2 - e.i1) / 200, e.per_task)
    assert.matches("| W1 | floor-coro |", report.callgrind(entries), 1, true)
  end)
end)

describe("bench report", function()
  it("gives medians, quartiles and spreads", function()
    local s = report.stats { 5, 1, 3, 2, 4 }
    assert.same({ median = 3, min = 1, max = 5, q1 = 2, q3 = 4, count = 5 }, s)
    assert.equal(2.5, report.stats({ 1, 2, 3, 4 }).median)
    assert.is_nil(report.stats {})
  end)

  it("states ratios as speed-ups whichever way the unit points", function()
    assert.equal(2, report.speedup(workloads.by_id.W1, 200, 100))
    assert.equal(2, report.speedup(workloads.by_id.W0, 10, 20)) -- ns: lower is faster
    assert.is_nil(report.speedup(workloads.by_id.W1, 200, nil))
  end)

  it("marks a failing row and judges targets within one run", function()
    local w1 = workloads.by_id.W1
    local bench = {
      workloads = { w1 },
      sizes = { W1 = 100 },
      rows = { W1 = { { peer = "fdn", label = "fdn" }, { peer = "luv", label = "luv" },
        { peer = "node", label = "node" } } },
      samples = { W1 = {
        fdn = { { status = "ok", value = 300 }, { status = "ok", value = 320 } },
        luv = { { status = "ok", value = 100 } },
        node = { { status = "fail", error = "results out of order" } },
      } },
    }
    local sums = report.summaries(bench)
    local text = report.table(bench, sums, {})
    assert.matches("| fdn | 310 | 3.10× |", text, 1, true)
    assert.matches("**FAIL**: results out of order", text, 1, true)
    assert.is_true(report.any_failure(sums))
    assert.matches("| W1 ≥ 2× luv | 3.10× luv | met |", report.targets(bench, sums), 1, true)
  end)
end)

-- Every workload of every peer, at small size, through the real programs.
for _, w in ipairs(workloads.list) do
  describe("bench workload " .. w.id, function()
    for _, row in ipairs(harness.peers.rows(ctx, w.id)) do
      if row.absent then
        pending(row.label .. ": " .. row.absent)
      else
        it(row.label .. " passes its checks", function()
          local outcome = harness.run_once(ctx, row, w, w.small)
          if outcome.status == "absent" then
            pending(outcome.reason)
            return
          end
          assert.equal("ok", outcome.status, outcome.error)
          assert.is_true(outcome.value > 0)
          if w.bytes then
            assert.is_number(outcome.bytes)
          end
        end)
      end
    end
  end)
end
