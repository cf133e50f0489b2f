local h = require "helpers"

local function run_example(name)
  local code, out, err = h.fdn_lua(h.quote(h.root .. "/examples/" .. name))
  assert.equal(0, code, err)
  return out
end

describe("resilience example job scripts", function()
  it("retry.lua retries, honours Retry-After, polls nil, err and exhausts", function()
    assert.equal([[
attempt 1 failed (upstream unavailable, status 503); next try in <= 100 ms
attempt 2 failed (upstream unavailable, status 503); next try in <= 100 ms
got user ada after 3 attempts
sent after waiting the server's 20 ms
poll: ready after 3 polls
broken: ok=false, RetryExhausted, 3 attempts, last error: still down
stats: calls=1 attempts=3 failures=1
]], run_example("retry.lua"))
  end)

  it("error_boundary.lua falls back, logs caught errors and lets others pass", function()
    assert.equal([[
  log warn error_boundary.caught: attempt 1, settings store timed out (request r-1)
  log warn error_boundary.caught: attempt 2, settings store timed out (request r-1)
settings: dark
  log warn error_boundary.caught: attempt 1, settings store timed out (request r-2)
  log warn error_boundary.caught: attempt 2, settings store timed out (request r-2)
  log error error_boundary.caught: attempt 3, settings store timed out (request r-2)
  fallback for bob after: settings store timed out
settings: default
quiet: 0
strict: ok=false, InvalidArgument: bad input
]], run_example("error_boundary.lua"))
  end)

  it("circuit_breaker.lua opens, rejects, probes and closes", function()
    assert.equal([[
call 1: connection refused
call 2: connection refused
  [db] closed -> open
call 3: connection refused
call 4: rejected (circuit open)
call 5: rejected (circuit open)
upstream was called 3 times; state: open
  [db] open -> half_open
after the recovery timeout: half_open
  [db] half_open -> closed
probe: rows for select 1
state: closed
counts: calls=4 successes=1 failures=3 rejected=2 opened=1
]], run_example("circuit_breaker.lua"))
  end)
end)
