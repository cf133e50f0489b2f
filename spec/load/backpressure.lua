--- Backpressure (make backpressure): a producer 10x faster than its
-- consumers against a bound of 10,000, through each bounded primitive:
--   queue:   fdn.Queue(10000); the producer puts one item every 0.1 ms,
--            10 consumers take 10 ms per item (1,000 items/s in all);
--   pool:    fdn.TaskPool{pool_size = 10, queue_size = 10000}, the same
--            rates, jobs submitted by the producer;
--   batcher: fdn.Batcher{batch_size = 100, max_pending = 10000}, items
--            added every 0.1 ms, a handler taking 0.1 s per batch.
-- Virtual clock, so the rates are exact and the run is deterministic.
-- Checks: the bound is reached and never exceeded (sampled at every step
-- of the producer and the consumers), nothing is lost, and RSS stays flat
-- once the bound is reached: 100 samples from then on; after the first
-- tenth (the collector's warm-up), the last is within 1 MB of the first
-- and none is more than 2 MB above it (an unbounded buffer would hold the
-- whole backlog instead: ~90% of ITEMS items of ~150 bytes).
-- Usage: luajit spec/load/backpressure.lua [ITEMS] [queue,pool,batcher]
-- (ITEMS defaults to 1,000,000; much shorter runs end inside the warm-up).
package.path = "spec/load/?.lua;" .. package.path
local fdn = require "fdn"
local lib = require "lib"

local ITEMS = tonumber(arg[1]) or 1000000
local which = arg[2] or "queue,pool,batcher"
local BOUND = 10000
local PRODUCE_EVERY = 0.0001 -- 10,000 items/s
local CONSUMERS, CONSUME_TIME = 10, 0.01 -- 1,000 items/s in all
local SAMPLE_EVERY = math.max(1000, math.floor(ITEMS / 100))
local FLAT_END_KB, FLAT_PEAK_KB = 1024, 2048
local t = lib.checker("backpressure")

local function payload(i)
  return { id = i, body = "item-" .. i .. string.rep("x", 64) }
end

-- RSS sampling, from the moment the bound is first reached.
local function rss_tracker()
  local self = { samples = {}, max_seen = 0 }
  function self.sample()
    self.samples[#self.samples + 1] = lib.rss_kb()
  end
  function self.report(name)
    local s = self.samples
    if not t.check(#s >= 3, string.format("%s: %d RSS samples after the bound was reached",
        name, #s)) then
      return
    end
    if os.getenv("BP_VERBOSE") then
      print(table.concat(s, " "))
    end
    -- The first tenth is the warm-up: the collector finds its steady
    -- pace (a step of a few MB once), then the heap holds still.
    local base = math.floor(#s / 10) + 1
    local first, last, peak = s[base], s[#s], 0
    for i = base, #s do
      peak = math.max(peak, s[i])
    end
    t.check(last - first <= FLAT_END_KB and peak - first <= FLAT_PEAK_KB, string.format(
      "%s: RSS flat: %d kB at sample %d, last %d kB (%+d), peak %d kB (%+d), %d samples "
      .. "(warm-up: %d -> %d kB)", name, first, base, last, last - first, peak, peak - first,
      #s, s[1], first))
  end
  return self
end

local function run_queue()
  local q = fdn.Queue.new(BOUND, { name = "backpressure" })
  local max_len, produced, consumed, blocked = 0, 0, 0, 0
  local full_at = nil
  local rss = rss_tracker()
  local function observe()
    local n = #q
    if n > max_len then
      max_len = n
    end
  end
  local consumers = {}
  for c = 1, CONSUMERS do
    consumers[c] = fdn.spawn(function()
      for item in q:iter() do
        observe()
        fdn.sleep(CONSUME_TIME)
        consumed = consumed + 1
        assert(item.id > 0)
        if full_at and consumed % SAMPLE_EVERY == 0 then
          rss.sample()
        end
      end
    end)
  end
  local t0 = fdn.now()
  for i = 1, ITEMS do
    local before = fdn.now()
    q:put(payload(i))
    if fdn.now() > before then
      blocked = blocked + 1
    end
    produced = produced + 1
    observe()
    if not full_at and #q == BOUND then
      full_at = fdn.now() - t0
      rss.sample()
    end
    fdn.sleep(PRODUCE_EVERY)
  end
  q:close()
  fdn.gather(consumers)
  print(string.format("queue: items=%d bound=%d max_len=%d full_at_virtual_s=%.1f "
    .. "blocked_puts=%d consumed=%d virtual_s=%.1f", ITEMS, BOUND, max_len, full_at or -1,
    blocked, consumed, fdn.now() - t0))
  t.check(max_len <= BOUND, string.format("queue: length never above the bound (max %d)", max_len))
  t.check(max_len == BOUND and blocked > 0, string.format(
    "queue: the bound was reached and the producer waited (%d puts)", blocked))
  t.check(consumed == produced and produced == ITEMS, "queue: every item consumed once")
  rss.report("queue")
end

local function run_pool()
  local pool = fdn.TaskPool.new { pool_size = CONSUMERS, queue_size = BOUND, keep_results = false,
    name = "backpressure" }
  local max_pending, done, blocked = 0, 0, 0
  local full_at = nil
  local rss = rss_tracker()
  local function observe()
    local n = pool:pending()
    if n > max_pending then
      max_pending = n
    end
  end
  local function job(item)
    observe()
    fdn.sleep(CONSUME_TIME)
    assert(item.id > 0)
    done = done + 1
    if full_at and done % SAMPLE_EVERY == 0 then
      rss.sample()
    end
  end
  local t0 = fdn.now()
  for i = 1, ITEMS do
    local before = fdn.now()
    pool:submit(job, payload(i))
    if fdn.now() > before then
      blocked = blocked + 1
    end
    observe()
    if not full_at and pool:pending() == BOUND then
      full_at = fdn.now() - t0
      rss.sample()
    end
    fdn.sleep(PRODUCE_EVERY)
  end
  pool:close()
  print(string.format("pool: items=%d bound=%d max_pending=%d full_at_virtual_s=%.1f "
    .. "blocked_submits=%d done=%d virtual_s=%.1f", ITEMS, BOUND, max_pending, full_at or -1,
    blocked, done, fdn.now() - t0))
  t.check(max_pending <= BOUND, string.format("pool: pending jobs never above the bound (max %d)",
    max_pending))
  t.check(max_pending == BOUND and blocked > 0, string.format(
    "pool: the bound was reached and submit waited (%d submits)", blocked))
  t.check(done == ITEMS, "pool: every job ran once")
  rss.report("pool")
end

local function run_batcher()
  local delivered, max_buffered, blocked = 0, 0, 0
  local full_at = nil
  local rss = rss_tracker()
  local b
  local function observe()
    local s = b:stats()
    if s.buffered > max_buffered then
      max_buffered = s.buffered
    end
    return s
  end
  b = fdn.Batcher.new { name = "backpressure", batch_size = 100, max_pending = BOUND,
    flush_interval = 1, handler = function(items)
      observe()
      fdn.sleep(CONSUME_TIME * #items / CONSUMERS)
      delivered = delivered + #items
      if full_at and delivered % SAMPLE_EVERY == 0 then
        rss.sample()
      end
    end }
  local t0 = fdn.now()
  for i = 1, ITEMS do
    local before = fdn.now()
    b:add(payload(i))
    if fdn.now() > before then
      blocked = blocked + 1
    end
    local s = observe()
    if not full_at and s.buffered == BOUND then
      full_at = fdn.now() - t0
      rss.sample()
    end
    fdn.sleep(PRODUCE_EVERY)
  end
  b:close()
  local s = b:stats()
  print(string.format("batcher: items=%d bound=%d max_buffered=%d full_at_virtual_s=%.1f "
    .. "blocked_adds=%d delivered=%d batches=%d virtual_s=%.1f", ITEMS, BOUND, max_buffered,
    full_at or -1, blocked, delivered, s.flushed, fdn.now() - t0))
  t.check(max_buffered <= BOUND, string.format(
    "batcher: items waiting never above max_pending (max %d)", max_buffered))
  t.check(max_buffered == BOUND and blocked > 0, string.format(
    "batcher: max_pending was reached and add waited (%d adds)", blocked))
  t.check(delivered == ITEMS and s.dropped == 0 and s.failed == 0,
    "batcher: every item delivered once")
  rss.report("batcher")
end

local runs = { queue = run_queue, pool = run_pool, batcher = run_batcher }
for name in which:gmatch("[^,]+") do
  local t0 = lib.now()
  fdn.run(assert(runs[name], "unknown phase " .. name), { clock = "virtual" })
  collectgarbage("collect")
  print(string.format("%s: wall_s=%.2f", name, lib.now() - t0))
end
t.finish()
