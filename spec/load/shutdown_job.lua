-- luacheck: read globals fdn (a job script: fdn-lua defines it)
-- The job that `make shutdown-test` interrupts (spec/load/shutdown_test.lua):
-- 1000 tasks in flight, 3 periodic tasks, a half-full batcher, and a drain
-- hook that gives in-flight work a moment to finish. Usage:
--   fdn-lua [--grace S] spec/load/shutdown_job.lua MODE FLUSH_FILE
-- MODE "normal": everything waits on timers, so the shutdown can run.
-- MODE "busy": at 0.3 s one task spins in a pure-Lua loop that never
-- yields, so the loop never runs again and only the C watchdog can end it.
-- MODE "stuck_hook": a shutdown hook that would wait forever; the grace
-- period's deadline on the hooks must cut it short.
local mode, flush_file = arg[1] or "normal", arg[2]
local log = require "fdn.log"
log.configure { format = "json", level = "info" }

local function note(line)
  if flush_file then
    local f = assert(io.open(flush_file, "a"))
    f:write(line, "\n")
    f:close()
  end
end

-- Half full: 50 of 100, and no timer trigger, so only the shutdown flushes it.
local batcher = fdn.Batcher.new { batch_size = 100, flush_interval = math.huge,
  name = "results", handler = function(items)
    note("flushed " .. #items)
  end }
for i = 1, 50 do
  batcher:add(i)
end

local periodic = fdn.BackgroundTaskManager.new { name = "periodic", shutdown_timeout = 1 }
local runs = 0
for i = 1, 3 do
  periodic:start_task("tick-" .. i, function()
    runs = runs + 1
    fdn.sleep(0.005)
  end, { interval = 0.05 })
end

-- 1000 tasks, each busy for 0.6 .. 2.55 s: all in flight at 0.5 s; those
-- due within the drain window (0.4 s) finish, the others are cancelled.
local in_flight, finished = {}, 0
for i = 1, 1000 do
  in_flight[i] = fdn.spawn(function()
    fdn.sleep(0.6 + (i % 40) * 0.05)
    finished = finished + 1
  end)
end

fdn.on_shutdown(function()
  local deadline = fdn.now() + 0.4
  while finished < #in_flight and fdn.now() < deadline do
    fdn.sleep(0.01)
  end
  note("drain hook: " .. finished .. " finished, periodic runs " .. runs)
end)

if mode == "stuck_hook" then
  fdn.on_shutdown(function()
    fdn.sleep(3600)
  end)
elseif mode == "busy" then
  fdn.spawn(function()
    fdn.sleep(0.3)
    local x = 0
    while true do -- never yields: no hook, no timer, only the watchdog ends it
      x = x + 1
    end
  end)
end

note("started")
fdn.gather(in_flight)
note("all tasks finished") -- never reached when interrupted at 0.5 s
