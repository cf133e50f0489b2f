--- make shutdown-test: interrupts fdn-lua running spec/load/shutdown_job.lua
-- (1000 tasks in flight, 3 periodic tasks, a half-full batcher) and checks
-- how it ends. Usage: luajit spec/load/shutdown_test.lua FDN_LUA [GRACE]
--   * SIGINT at 0.5 s: exit 130 within the grace period + 1 s, the batch
--     flushed, a shutdown.finished record with drained + cancelled ==
--     in_flight; SIGTERM: the same with 143;
--   * a second SIGINT 0.1 s later: exit within 200 ms of it;
--   * a task spinning in a pure-Lua loop: exit within 200 ms of the end of
--     the grace period (the C watchdog), and at once on a second signal.
-- Prints each figure; exits non-zero when one falls short.
package.path = "spec/load/?.lua;" .. package.path
local lib = require "lib"
local cjson = require "cjson"

local fdn_lua = assert(arg[1], "usage: shutdown_test.lua FDN_LUA [GRACE]")
local grace = tonumber(arg[2] or "3")
local busy_grace = 1
local job = "spec/load/shutdown_job.lua"
local t = lib.checker("shutdown-test")

local function tmp()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- Runs the job; `signals` is a list of {at = seconds after start, sig =}.
local function run(mode, g, signals)
  local out, err, notes = tmp(), tmp(), tmp()
  local pid = assert(lib.spawn({ fdn_lua, "--grace", tostring(g), job, mode, notes }, out, err))
  local t0 = lib.now()
  local sent = {}
  for i, s in ipairs(signals) do
    local wait = t0 + s.at - lib.now()
    if wait > 0 then
      lib.nap(wait)
    end
    lib.kill(pid, s.sig)
    sent[i] = lib.now()
  end
  local res = lib.wait(pid, g + 10)
  local r = {
    res = res, sent = sent,
    stdout = lib.read_file(out), stderr = lib.read_file(err), notes = lib.read_file(notes),
  }
  os.remove(out)
  os.remove(err)
  os.remove(notes)
  return r
end

local function shutdown_record(stderr)
  for line in stderr:gmatch("[^\n]+") do
    if line:find('"shutdown.finished"', 1, true) then
      local ok, rec = pcall(cjson.decode, line)
      if ok then
        return rec
      end
    end
  end
end

local function graceful(signame, sig, code)
  print(string.format("%s at 0.5 s, grace %gs:", signame, grace))
  local r = run("normal", grace, { { at = 0.5, sig = sig } })
  if not t.check(r.res ~= nil, "the process ended") then
    return
  end
  local took = r.res.at - r.sent[1]
  t.check(r.res.code == code and r.res.signal == 0,
    string.format("exit status %d (expected %d)", r.res.code, code))
  t.check(took <= grace + 1, string.format("exited %.3f s after the signal (limit %.1f s)",
    took, grace + 1))
  t.check(r.notes:find("flushed 50", 1, true) ~= nil, "the half-full batch (50 items) was flushed")
  t.check(r.notes:find("all tasks finished", 1, true) == nil,
    "the main task was interrupted, not run to its end")
  local rec = shutdown_record(r.stderr)
  if not t.check(rec ~= nil, "a shutdown.finished record was logged") then
    io.stderr:write(r.stderr, "\n")
    return
  end
  t.check(rec.in_flight >= 1000, string.format("in_flight %d (>= the 1000 tasks)", rec.in_flight))
  t.check(rec.drained + rec.cancelled == rec.in_flight, string.format(
    "drained %d + cancelled %d == in_flight %d", rec.drained, rec.cancelled, rec.in_flight))
  local drained_tasks = tonumber(r.notes:match("drain hook: (%d+) finished")) or -1
  t.check(drained_tasks > 0 and rec.cancelled > 0 and rec.drained >= drained_tasks,
    string.format("%d of the 1000 tasks drained in the drain hook, the rest was cancelled",
      drained_tasks))
  t.check(rec.signal == signame and rec.exit_code == code, "the record names the signal and code")
end

local function stuck_hook()
  print(string.format("a shutdown hook that never returns, SIGINT at 0.5 s, grace %gs:", grace))
  local r = run("stuck_hook", grace, { { at = 0.5, sig = lib.SIGINT } })
  if not t.check(r.res ~= nil, "the process ended") then
    return
  end
  local took = r.res.at - r.sent[1]
  t.check(r.res.code == 130, string.format("exit status %d (expected 130)", r.res.code))
  t.check(took <= grace, string.format("exited %.3f s after the signal, within the grace period",
    took))
  local rec = shutdown_record(r.stderr)
  t.check(rec ~= nil and rec.drained + rec.cancelled == rec.in_flight,
    "the shutdown finished in Lua (record logged, counts add up), not by the watchdog")
  t.check(r.notes:find("flushed 50", 1, true) ~= nil, "the batch was flushed all the same")
end

local function second_signal(mode, g)
  print(string.format("%s job, SIGINT at 0.5 s and again at 0.6 s:", mode))
  local r = run(mode, g, { { at = 0.5, sig = lib.SIGINT }, { at = 0.6, sig = lib.SIGINT } })
  if not t.check(r.res ~= nil, "the process ended") then
    return
  end
  local took = r.res.at - r.sent[2]
  t.check(r.res.code == 130, string.format("exit status %d (expected 130)", r.res.code))
  t.check(took <= 0.2, string.format("exited %.3f s after the second signal (limit 0.2 s)", took))
end

local function busy()
  print(string.format("a task spinning in pure Lua, SIGINT at 0.5 s, grace %gs:", busy_grace))
  local r = run("busy", busy_grace, { { at = 0.5, sig = lib.SIGINT } })
  if not t.check(r.res ~= nil, "the process ended") then
    return
  end
  local took = r.res.at - r.sent[1]
  t.check(r.res.code == 130, string.format("exit status %d (expected 130)", r.res.code))
  t.check(took >= busy_grace - 0.01 and took <= busy_grace + 0.2, string.format(
    "exited %.3f s after the signal, %.0f ms past the grace period (limit 200 ms)",
    took, (took - busy_grace) * 1000))
  t.check(r.stderr:find("grace period expired", 1, true) ~= nil, "the watchdog said why")
end

graceful("SIGINT", lib.SIGINT, 130)
graceful("SIGTERM", lib.SIGTERM, 143)
stuck_hook()
second_signal("normal", grace)
second_signal("busy", busy_grace + 5)
busy()
t.finish()
