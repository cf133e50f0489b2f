-- W5 (BENCH.md): push N items (1M) into a batcher of size 100 with a 5 ms
-- flush timer armed when a batch starts; each full batch goes to a handler
-- task that counts items; the producer yields every 1000 items; close
-- flushes and waits. fdn.Batcher against the same workload on LuaJIT + luv
-- with a minimal hand-rolled coroutine scheduler (what a Lua user writes
-- without fdn), in the same process, alternating, medians of R runs.
--   fdn-lua bench/batcher.lua [runs] [items] [only]
-- Needs luv (Debian lua-luv) for the peer; without it only fdn runs.
-- `only` = fdn | luv | luv-prealloc runs one of them, for instruction
-- counts on a noisy machine:
--   valgrind --tool=callgrind fdn-lua bench/batcher.lua 1 100000 fdn
local runs = tonumber((...)) or 7
local N = tonumber((select(2, ...))) or 1000000
local only = select(3, ...)
local SIZE, INTERVAL, YIELD_EVERY = tonumber(os.getenv("W5_SIZE")) or 100, 0.005, 1000

local function median(t)
  local s = {}
  for i = 1, #t do
    s[i] = t[i]
  end
  table.sort(s)
  return s[math.ceil(#s / 2)]
end

local function fdn_w5()
  local counted = 0
  local b = fdn.Batcher.new {
    batch_size = SIZE, flush_interval = INTERVAL,
    handler = function(items)
      counted = counted + #items
    end,
  }
  local t0 = fdn.now()
  for i = 1, N do
    b:add(i)
    if i % YIELD_EVERY == 0 then
      fdn.sleep(0)
    end
  end
  b:close()
  local elapsed = fdn.now() - t0
  assert(counted == N, "fdn: counted " .. counted)
  return N / elapsed
end

-- The peer: a run queue drained from a uv idle handle, one uv timer per
-- sleep, a waiter list per batcher.
local function luv_w5(uv, prealloc)
  local tnew = prealloc and require "table.new" or function() return {} end
  local queue, qhead, qtail = {}, 1, 0
  local idle = uv.new_idle()
  local idle_on = false
  local function drain()
    while qhead <= qtail do
      local co = queue[qhead]
      queue[qhead] = nil
      qhead = qhead + 1
      local ok, err = coroutine.resume(co)
      if not ok then
        error(err)
      end
    end
    idle:stop()
    idle_on = false
  end
  local function ready(co)
    qtail = qtail + 1
    queue[qtail] = co
    if not idle_on then
      idle_on = true
      idle:start(drain)
    end
  end
  local function yield()
    ready(coroutine.running())
    coroutine.yield()
  end
  local function spawn(fn)
    ready(coroutine.create(fn))
  end

  local counted = 0
  local batches, bhead, btail = {}, 1, 0
  local buf, n = tnew(SIZE, 0), 0
  local closed, flusher_waiting, closer = false, nil, nil
  local timer = uv.new_timer()
  local function seal()
    timer:stop()
    btail = btail + 1
    batches[btail] = buf
    buf, n = tnew(SIZE, 0), 0
    if flusher_waiting then
      local co = flusher_waiting
      flusher_waiting = nil
      ready(co)
    end
  end
  local function on_timer()
    if n > 0 then
      seal()
    end
  end
  local function add(item)
    n = n + 1
    buf[n] = item
    if n == 1 then
      timer:start(INTERVAL * 1000, 0, on_timer)
    end
    if n == SIZE then
      seal()
    end
  end
  spawn(function() -- the handler task
    while true do
      if bhead <= btail then
        local items = batches[bhead]
        batches[bhead] = nil
        bhead = bhead + 1
        counted = counted + #items
      elseif closed then
        break
      else
        flusher_waiting = coroutine.running()
        coroutine.yield()
      end
    end
    if closer then
      ready(closer)
    end
  end)
  local rate
  spawn(function() -- the producer
    local t0 = uv.hrtime()
    for i = 1, N do
      add(i)
      if i % YIELD_EVERY == 0 then
        yield()
      end
    end
    if n > 0 then
      seal()
    end
    closed = true
    closer = coroutine.running()
    if flusher_waiting then
      ready(flusher_waiting)
      flusher_waiting = nil
    end
    coroutine.yield()
    rate = N / ((uv.hrtime() - t0) / 1e9)
  end)
  uv.run()
  timer:close()
  idle:close()
  uv.run()
  assert(counted == N, "luv: counted " .. counted)
  return rate
end

local ok_uv, uv = pcall(require, "luv")
if only then
  local rate
  if only == "fdn" then
    rate = fdn_w5()
  else
    assert(ok_uv, "luv is not installed")
    rate = luv_w5(uv, only == "luv-prealloc")
  end
  print(string.format("%s: %.1fM items/s", only, rate / 1e6))
  return
end
local fdn_rates, luv_rates, luv_pre_rates = {}, {}, {}
for r = 1, runs do
  collectgarbage()
  fdn_rates[r] = fdn_w5()
  if ok_uv then
    collectgarbage()
    luv_rates[r] = luv_w5(uv, false)
    collectgarbage()
    luv_pre_rates[r] = luv_w5(uv, true)
  end
end
local f = median(fdn_rates)
print(string.format("W5 batcher, %d items, size %d, %g ms timer, yield every %d: "
  .. "fdn median %.1fM items/s over %d runs", N, SIZE, INTERVAL * 1000, YIELD_EVERY, f / 1e6,
  runs))
if ok_uv then
  local l, lp = median(luv_rates), median(luv_pre_rates)
  print(string.format("  luv peer (plain tables): %.1fM items/s; fdn/luv = %.2f", l / 1e6, f / l))
  print(string.format("  luv peer (table.new preallocated): %.1fM items/s; fdn/luv = %.2f",
    lp / 1e6, f / lp))
else
  print("  (luv not installed: no peer figure)")
end
