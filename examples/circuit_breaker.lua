-- A circuit breaker in front of a failing dependency: it opens after a
-- run of failures, rejects calls at once while open, lets a probe through
-- after the recovery timeout, and closes when the probe succeeds. State
-- changes arrive on the event bus (and in the log).
--   fdn-lua examples/circuit_breaker.lua
local errors = fdn.errors
local events = require "fdn.events"
require("fdn.log").configure { level = "error" } -- keep stdout to the story

events.subscribe("breaker.state_changed", function(_, e)
  print(string.format("  [%s] %s -> %s", e.name, e.from, e.to))
end)

local healthy = false
local upstream_calls = 0
local function query(sql)
  upstream_calls = upstream_calls + 1
  if not healthy then
    error(errors.Error.new("connection refused"))
  end
  return "rows for " .. sql
end

local breaker = fdn.CircuitBreaker.new {
  name = "db", failure_threshold = 3, recovery_timeout = 0.2,
}
local guarded_query = breaker:wrap(query)

for i = 1, 5 do
  local ok, err = pcall(guarded_query, "select 1")
  local kind = errors.is(err, errors.CircuitOpen) and "rejected (circuit open)" or err.message
  print(string.format("call %d: %s", i, ok and "ok" or kind))
end
print("upstream was called " .. upstream_calls .. " times; state: " .. breaker:state())

fdn.sleep(0.25)
print("after the recovery timeout: " .. breaker:state())
healthy = true
print("probe: " .. guarded_query("select 1"))
print("state: " .. breaker:state())

local c = breaker:counts()
print(string.format("counts: calls=%d successes=%d failures=%d rejected=%d opened=%d",
  c.calls, c.successes, c.failures, c.rejected, c.opened))
