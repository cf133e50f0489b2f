-- Containing failures: a boundary with a fallback, retries for the
-- errors worth it, every caught error logged, and errors that pass
-- through. Log records go to stdout here so you can see them.
--   fdn-lua examples/error_boundary.lua
local errors = fdn.errors
local log = require "fdn.log"

log.configure {
  sink = function(r)
    print(string.format("  log %s %s: attempt %d, %s (request %s)", r.level, r.event, r.attempt,
      r.error.message, tostring(r.request_id)))
  end,
}

-- Settings from a remote store that times out twice.
local fetches = 0
local function fetch_settings(user)
  fetches = fetches + 1
  if fetches <= 2 then
    error(errors.Timeout.new("settings store timed out", { context = { user = user } }))
  end
  return { theme = "dark" }
end

local load_settings = fdn.error_boundary {
  name = "settings", retry_count = 2, catch = errors.Timeout,
  fallback = function(err, user)
    print("  fallback for " .. user .. " after: " .. err.message)
    return { theme = "default" }
  end,
}(fetch_settings)

fdn.context.with({ request_id = "r-1" }, function()
  print("settings: " .. load_settings("ada").theme)
end)

-- Always failing: the fallback function gets the last error.
fetches = -100
fdn.context.with({ request_id = "r-2" }, function()
  print("settings: " .. load_settings("bob").theme)
end)

-- A plain value works as a fallback too, and log_errors can be turned off.
local quiet = fdn.error_boundary { fallback = 0, log_errors = false } (function()
  error(errors.Timeout.new("slow"))
end)
print("quiet: " .. quiet())

-- Errors outside `catch` are not the boundary's business: they pass.
local strict = fdn.error_boundary { catch = errors.Timeout, fallback = "never" } (function()
  error(errors.InvalidArgument.new("bad input"))
end)
local ok, err = pcall(strict)
print("strict: ok=" .. tostring(ok) .. ", " .. err.class.name .. ": " .. err.message)
