-- Fuzz driver (fuzz_ops): random programs of engine operations through the
-- Lua bindings, on a virtual clock. The input sets up two semaphores, two
-- queues, an event and a batcher, then is read as a program: the main task
-- spawns, cancels, waits and collects garbage; every task it spawns reads
-- its own next steps from the same input (sleep, acquire and release,
-- put and get with and without timeouts, wait and set, add and flush,
-- join or cancel another task, spawn a child, fdn.timeout, a retried call
-- that fails, a raised error, a yield, a collection step).
-- Invariants, checked when the program ends and everything was cancelled
-- and joined: every permit is back; every item put in a queue was taken
-- once or is still there; every item added to the batcher was delivered,
-- failed or dropped, once; retry counters add up; fdn.run returns (no
-- deadlock it cannot explain, no raw Lua error from inside fdn).
local fdn = require "fdn"
local errors = require "fdn.errors"
local log = require "fdn.log"

local byte = string.byte

log.configure { level = "error", format = "console", sink = "/dev/null" }

local function violated(what, detail)
  error("invariant violated: " .. what .. (detail and (": " .. detail) or ""), 0)
end

local USER = setmetatable({}, { __tostring = function() return "user error" end })

-- A raw Lua error from inside fdn (a bug), not one fdn raised on purpose.
local function is_raw(err)
  local msg = type(err) == "table" and err.message or err
  if type(msg) ~= "string" then
    return false
  end
  return msg:find("attempt to ", 1, true) ~= nil or msg:find("bad argument #", 1, true) ~= nil
    or msg:find("table index is", 1, true) ~= nil
    or msg:find("C-call boundary", 1, true) ~= nil
end

local function expected(err)
  if err == USER or errors.is(err, errors.Cancelled) or errors.is(err, errors.Timeout)
      or errors.is(err, errors.Closed) or errors.is(err, errors.QueueFull)
      or errors.is(err, errors.RetryExhausted) then
    return true
  end
  return false
end

return function(data)
  local pos = 1
  local function u8()
    local b = byte(data, pos) or 0
    pos = pos + 1
    return b
  end
  local function more()
    return pos <= #data
  end

  local S = {}
  local run_ok, run_err = pcall(fdn.run, function()
    local limits = { u8() % 3, 1 + u8() % 2 }
    S.sems = { fdn.Semaphore.new(limits[1]), fdn.Semaphore.new(limits[2]) }
    S.queues = { fdn.Queue.new(1 + u8() % 3), fdn.Queue.new(math.huge) }
    S.event = fdn.Event.new()
    S.put, S.got = { 0, 0 }, { 0, 0 }
    S.added, S.delivered, S.failed_items = 0, 0, 0
    local flaky_calls = 0
    local bopts = u8()
    S.batcher = fdn.Batcher.new {
      batch_size = 1 + bopts % 4,
      flush_interval = math.floor(bopts / 4) % 3 * 0.001,
      max_pending = (1 + bopts % 4) * (1 + math.floor(bopts / 16) % 3),
      overflow = ({ "block", "error", "drop_oldest" })[math.floor(bopts / 64) % 3 + 1],
      handler = function(items)
        if u8() % 5 == 0 then
          fdn.sleep(0.001)
        end
        if u8() % 7 == 0 then
          error(USER, 0)
        end
        S.delivered = S.delivered + #items
      end,
      on_error = function(_, items)
        S.failed_items = S.failed_items + #items
      end,
    }
    local flaky = fdn.retry { max_attempts = 1 + u8() % 3, delay = 0.001,
      jitter = "full" }(function()
      flaky_calls = flaky_calls + 1
      if u8() % 2 == 0 then
        fdn.sleep(0)
        error(USER, 0)
      end
      return 1
    end)

    local tasks = {}
    local spawn_task
    -- One task's program: steps read from the input until it says stop.
    local function body(depth)
      local held = { 0, 0 }
      local ok, err = pcall(function()
        for _ = 1, 24 do
          if not more() then
            return
          end
          local op, arg = u8() % 18, u8()
          local i = arg % 2 + 1
          if op == 0 then
            fdn.sleep((arg % 4) * 0.001)
          elseif op == 1 then
            S.sems[i]:acquire(arg % 3 == 0 and 0.002 or nil)
            held[i] = held[i] + 1
          elseif op == 2 then
            if held[i] > 0 then
              S.sems[i]:release()
              held[i] = held[i] - 1
            end
          elseif op == 3 then
            S.queues[i]:put(arg, arg % 3 == 0 and 0.002 or nil)
            S.put[i] = S.put[i] + 1
          elseif op == 4 then
            S.queues[i]:get(arg % 3 == 0 and 0.002 or nil)
            S.got[i] = S.got[i] + 1
          elseif op == 5 then
            local ok2, v = S.queues[i]:try_get()
            if ok2 then
              S.got[i] = S.got[i] + 1
              local _ = v
            end
          elseif op == 6 then
            S.event:wait()
          elseif op == 7 then
            if arg % 2 == 0 then
              S.event:set()
            else
              S.event:clear()
            end
          elseif op == 8 then
            S.batcher:add(arg + 1)
            S.added = S.added + 1
          elseif op == 9 then
            S.batcher:flush()
          elseif op == 10 then
            local t = tasks[arg % math.max(#tasks, 1) + 1]
            if t and t ~= fdn.current() then
              t:wait()
            end
          elseif op == 11 then
            local t = tasks[arg % math.max(#tasks, 1) + 1]
            if t then
              t:cancel("fuzz")
            end
          elseif op == 12 and depth < 3 and #tasks < 40 then
            spawn_task(depth + 1)
          elseif op == 13 then
            pcall(fdn.timeout, (arg % 3) * 0.001, function()
              S.sems[i]:acquire()
              S.sems[i]:release()
              fdn.sleep(0.002)
            end)
          elseif op == 14 then
            flaky()
          elseif op == 15 then
            error(USER, 0)
          elseif op == 16 then
            coroutine.yield()
          else
            collectgarbage("step", arg)
          end
        end
      end)
      -- Whatever happened, permits go back (release never suspends).
      for k = 1, 2 do
        for _ = 1, held[k] do
          S.sems[k]:release()
        end
      end
      if not ok then
        if is_raw(err) then
          violated("a raw Lua error inside fdn", errors.format(err))
        end
        if not expected(err) then
          violated("an error of an unexpected kind", errors.format(err))
        end
        error(err, 0)
      end
    end
    spawn_task = function(depth)
      local t = fdn.spawn(body, depth)
      tasks[#tasks + 1] = t
      return t
    end

    -- The main program.
    for _ = 1, 1 + u8() % 6 do
      spawn_task(0)
    end
    while more() do
      local op, arg = u8() % 6, u8()
      if op == 0 and #tasks < 40 then
        spawn_task(0)
      elseif op == 1 and #tasks > 0 then
        tasks[arg % #tasks + 1]:cancel("main")
      elseif op == 2 then
        fdn.sleep((arg % 8) * 0.001)
      elseif op == 3 then
        collectgarbage(arg % 2 == 0 and "collect" or "step")
      elseif op == 4 then
        S.event:set()
      else
        fdn.sleep(0)
      end
    end
    -- The end: wake what waits, cancel the rest, wait for every task.
    S.event:set()
    for _, t in ipairs(tasks) do
      t:cancel("the end")
    end
    local results = fdn.gather(tasks, { return_errors = true })
    for k, r in ipairs(results) do
      if is_raw(r) then
        violated("task " .. k .. " failed with a raw Lua error", errors.format(r))
      end
    end
    for k = 1, 2 do
      local q = S.queues[k]
      local left = #q
      if S.put[k] ~= S.got[k] + left then
        violated("queue " .. k .. " lost or duplicated items", string.format(
          "put %d, got %d, left %d", S.put[k], S.got[k], left))
      end
      q:close()
      local sem = S.sems[k]
      if sem:available() ~= limits[k] or sem:waiting() ~= 0 then
        violated("semaphore " .. k .. " permits not all back", string.format(
          "available %d of %d, %d waiting", sem:available(), limits[k], sem:waiting()))
      end
    end
    local closed, cerr = pcall(S.batcher.close, S.batcher)
    if not closed and is_raw(cerr) then
      violated("Batcher:close raised a raw Lua error", errors.format(cerr))
    end
    local st = S.batcher:stats()
    if st.added ~= S.added then
      violated("batcher added count", st.added .. " vs " .. S.added)
    end
    if S.delivered + S.failed_items + st.dropped ~= S.added then
      violated("batcher items do not add up", string.format(
        "added %d, delivered %d, failed %d, dropped %d", S.added, S.delivered,
        S.failed_items, st.dropped))
    end
    local rs = fdn.retry.stats(flaky)
    if rs.attempts ~= flaky_calls then
      violated("retry counted " .. rs.attempts .. " attempts of " .. flaky_calls)
    end
  end, { clock = "virtual" })
  if not run_ok then
    if type(run_err) == "string" and run_err:find("invariant violated", 1, true) then
      error(run_err, 0)
    end
    if is_raw(run_err) then
      violated("fdn.run failed with a raw Lua error", errors.format(run_err))
    end
    if not errors.is(run_err, errors.Deadlock) then
      violated("fdn.run failed", errors.format(run_err))
    end
  end
  if require("fdn.core").engine_running() then
    violated("an engine is still bound after fdn.run")
  end
end
