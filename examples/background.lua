-- Background work: a sync every 50 ms, a flaky job whose failures are
-- logged (on stderr) while its schedule goes on, then a shutdown that
-- waits for the run in flight. Press Ctrl-C instead and fdn-lua shuts the
-- manager down the same way.
--   fdn-lua examples/background.lua
local m = fdn.BackgroundTaskManager.new { name = "jobs", shutdown_timeout = 1 }
local synced = 0
m:start_task("data_sync", function()
  fdn.sleep(0.01)
  synced = synced + 1
end, { interval = 0.05 })
m:start_task("flaky", function()
  error("upstream unavailable", 0)
end, { interval = 0.1, run_immediately = false })

fdn.sleep(0.23)
local st = m:status()
print(string.format("data_sync: ran %s times", st.data_sync.runs >= 3 and "3 or more"
  or tostring(st.data_sync.runs)))
print(string.format("flaky: failed %d of %d runs, last error: %s", st.flaky.failures,
  st.flaky.runs, st.flaky.last_error))

local result = m:shutdown()
print(string.format("shut down, %d run(s) cancelled; data_sync synced %s", #result.cancelled,
  synced == m:status().data_sync.runs and "every run" or "?"))
