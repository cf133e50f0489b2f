-- Retrying flaky calls: backoff with jitter, only the errors worth
-- retrying, a server's Retry-After, the nil, err convention, and what
-- exhaustion looks like.
--   fdn-lua examples/retry.lua
local errors = fdn.errors
local HttpError = errors.define("HttpError")

-- A service that answers 503 twice, then works.
local calls = 0
local function get_user(id)
  calls = calls + 1
  if calls <= 2 then
    error(HttpError.new("upstream unavailable", { context = { status = 503 } }))
  end
  return { id = id, name = "ada" }
end

local get_user_retried = fdn.retry {
  max_attempts = 5, delay = 0.01, backoff = 2, max_delay = 0.1, jitter = "equal",
  retry_on = HttpError,
  on_retry = function(attempt, err, delay)
    print(string.format("attempt %d failed (%s, status %d); next try in %s",
      attempt, err.message, err.context.status, delay <= 0.1 and "<= 100 ms" or "?"))
  end,
}(get_user)
print("got user " .. get_user_retried(7).name .. " after " .. calls .. " attempts")

-- The server says how long to wait: an error with retry_after.
local throttled = true
local send = fdn.retry { delay = 5, max_delay = 1 } (function()
  if throttled then
    throttled = false
    error(errors.Error.new("429 too many requests", { retry_after = 0.02 }))
  end
  return "sent"
end)
local t0 = fdn.now()
print(send() .. " after waiting the server's " .. (fdn.now() - t0 >= 0.02 and "20 ms" or "?"))

-- Lua's own convention: nil, err is a failure; nothing is raised.
local polls = 0
local poll = fdn.retry { delay = 0.01, backoff = "fixed", retry_if_result = "nil" } (function()
  polls = polls + 1
  if polls < 3 then
    return nil, "not ready"
  end
  return "ready"
end)
print("poll: " .. poll() .. " after " .. polls .. " polls")

-- Exhaustion: RetryExhausted carries every attempt's error.
local broken = fdn.retry { max_attempts = 3, delay = 0.005 } (function()
  error(HttpError.new("still down"))
end)
local ok, err = pcall(broken)
print(string.format("broken: ok=%s, %s, %d attempts, last error: %s", tostring(ok),
  err.class.name, err.attempts, err.cause.message))
local stats = fdn.retry.stats(broken)
print(string.format("stats: calls=%d attempts=%d failures=%d", stats.calls, stats.attempts,
  stats.failures))
