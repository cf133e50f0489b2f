-- The workloads for LuaJIT + luv with the hand-rolled scheduler in
-- sched.lua: what a Lua user writes without fdn.
--   luajit bench/luv/workloads.lua <W0|W1|W2|W3|W4.raise|W4.nil|W5|W6> [n]
local here = arg[0]:gsub("[^/]*$", "")
local common = dofile(here .. "../lib/common.lua")
local sched = dofile(here .. "sched.lua")

local workload, n_arg = ...
local spawn, yield, sleep, now = sched.spawn, sched.yield, sched.sleep, sched.now

local W = {}

function W.W0(n)
  local count = 0
  local t0 = now()
  for _ = 1, n do
    count = count + 1
    yield()
  end
  return { elapsed = (now() - t0) / 1e9, count = count }
end

function W.W1(n)
  local tasks = {}
  local t0 = now()
  for i = 1, n do
    tasks[i] = spawn(function()
      yield()
      return i
    end)
  end
  local results = sched.gather(tasks)
  local elapsed = (now() - t0) / 1e9
  local count, sum, ordered = common.summary(results, n)
  return { elapsed = elapsed, count = count, sum = sum, ordered = ordered }
end

function W.W2(n)
  local limit = 64
  local sem = sched.semaphore(limit)
  local in_flight, max_in_flight = 0, 0
  local tasks = {}
  local t0 = now()
  for i = 1, n do
    tasks[i] = spawn(function()
      sem:acquire()
      in_flight = in_flight + 1
      if in_flight > max_in_flight then
        max_in_flight = in_flight
      end
      yield()
      in_flight = in_flight - 1
      sem:release()
      return i
    end)
  end
  local results = sched.gather(tasks)
  local elapsed = (now() - t0) / 1e9
  local count, sum, ordered = common.summary(results, n)
  return {
    elapsed = elapsed, count = count, sum = sum, ordered = ordered, limit = limit,
    max_in_flight = max_in_flight,
  }
end

function W.W3(n)
  local d = common.durations(n)
  local started, early = 0, 0
  local tasks = {}
  common.settle()
  local rss0 = common.rss()
  local t0 = now()
  for i = 1, n do
    tasks[i] = spawn(function()
      started = started + 1
      local t = now()
      sleep(d[i] / 1000)
      if now() - t < (d[i] - 1) * 1e6 then
        early = early + 1
      end
      return d[i]
    end)
  end
  while started < n do
    yield()
  end
  local rss_growth = common.rss() - rss0
  local results = sched.gather(tasks)
  local elapsed = (now() - t0) / 1e9
  local count, sum = common.summary(results, n)
  return { elapsed = elapsed, count = count, sum = sum, early = early, rss_growth = rss_growth }
end

-- W4: the retry loop a Lua user writes by hand, zero delay between attempts.
local function retry_raised(max_attempts, fn)
  return function(...)
    local err
    for _ = 1, max_attempts do
      local ok, res = pcall(fn, ...)
      if ok then
        return res
      end
      err = res
    end
    error(err, 0)
  end
end

local function retry_nil_err(max_attempts, fn)
  return function(...)
    local res, err
    for _ = 1, max_attempts do
      res, err = fn(...)
      if res ~= nil then
        return res
      end
    end
    return nil, err
  end
end

local function w4(n, form)
  local attempts = 0
  local call
  if form == "raise" then
    call = retry_raised(3, function(i)
      attempts = attempts + 1
      if attempts % 3 ~= 0 then
        error("flaky")
      end
      return i
    end)
  else
    call = retry_nil_err(3, function(i)
      attempts = attempts + 1
      if attempts % 3 ~= 0 then
        return nil, "flaky"
      end
      return i
    end)
  end
  local sum, count = 0, 0
  local t0 = now()
  for i = 1, n do
    local v = call(i)
    if v ~= nil then
      count = count + 1
      sum = sum + v
    end
  end
  return { elapsed = (now() - t0) / 1e9, count = count, sum = sum, attempts = attempts }
end
W["W4.raise"] = function(n)
  return w4(n, "raise")
end
W["W4.nil"] = function(n)
  return w4(n, "nil")
end

-- W5: a hand-written batcher. A batch goes to a handler task when it is
-- full, or when a 5 ms timer armed at the batch's first item fires.
local uv = require "luv"
local function new_batcher(size, interval_ms, handler)
  local b = { buf = {}, pending = {}, pending_tail = 0, closed = false }
  local timer = uv.new_timer()
  local worker_waiting = nil
  local function hand_off()
    local buf = b.buf
    if #buf == 0 then
      return
    end
    timer:stop()
    b.buf = {}
    b.pending_tail = b.pending_tail + 1
    b.pending[b.pending_tail] = buf
    if worker_waiting then
      local w = worker_waiting
      worker_waiting = nil
      sched.ready(w)
    end
  end
  local worker = spawn(function()
    local pending_head = 1
    while true do
      local batch = b.pending[pending_head]
      if batch then
        b.pending[pending_head] = nil
        pending_head = pending_head + 1
        handler(batch)
      elseif b.closed then
        return
      else
        worker_waiting = b.self
        coroutine.yield()
      end
    end
  end)
  b.self = worker
  function b.add(x)
    local buf = b.buf
    local k = #buf + 1
    buf[k] = x
    if k == 1 then
      timer:start(interval_ms, 0, hand_off)
    elseif k == size then
      hand_off()
    end
  end
  function b.close()
    hand_off()
    b.closed = true
    if worker_waiting then
      local w = worker_waiting
      worker_waiting = nil
      sched.ready(w)
    end
    sched.join(worker)
    timer:close()
  end
  return b
end

function W.W5(n)
  local items, batches, broken, last = 0, 0, 0, 0
  local t0 = now()
  local b = new_batcher(100, 5, function(batch)
    local size = #batch
    if batch[1] ~= last + 1 or batch[size] ~= last + size then
      broken = broken + 1
    end
    last = batch[size]
    items = items + size
    batches = batches + 1
  end)
  local add = b.add
  for i = 1, n do
    add(i)
    if i % 1000 == 0 then
      yield()
    end
  end
  b.close()
  local elapsed = (now() - t0) / 1e9
  return { elapsed = elapsed, count = items, batches = batches, broken = broken, last = last }
end

function W.W6(n)
  local event = sched.event()
  local parked, woke_unset, is_set = 0, 0, false
  local tasks = {}
  common.settle()
  local rss0 = common.rss()
  local t0 = now()
  for i = 1, n do
    tasks[i] = spawn(function()
      parked = parked + 1
      event:wait()
      if not is_set then
        woke_unset = woke_unset + 1
      end
      return i
    end)
  end
  while parked < n do
    yield()
  end
  local rss_growth = common.rss() - rss0
  local parked_at_set = parked
  is_set = true
  event:set()
  local results = sched.gather(tasks)
  local elapsed = (now() - t0) / 1e9
  local count, sum, ordered = common.summary(results, n)
  return {
    elapsed = elapsed, count = count, sum = sum, ordered = ordered, parked_at_set = parked_at_set,
    woke_unset = woke_unset, rss_growth = rss_growth,
  }
end

local defaults = { W0 = 1000000, W1 = 200000, W2 = 200000, W3 = 100000, ["W4.raise"] = 100000,
  ["W4.nil"] = 100000, W5 = 1000000, W6 = 100000 }
local run = W[workload]
if not run then
  io.stderr:write("unknown workload: ", tostring(workload), "\n")
  os.exit(2)
end
local n = common.size(n_arg, defaults[workload])
local result = sched.run(run, n)
result.workload, result.n = workload, n
common.emit(result)
