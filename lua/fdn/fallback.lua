--- fdn.fallback: a chain of alternatives.
--
--   local get_price = fdn.fallback(from_api, from_mirror, from_cache)
--   local price = get_price(item_id)
--
-- The returned function calls each function in turn with its arguments
-- and returns the results of the first that does not raise. If all fail,
-- the last error is raised with the earlier ones attached as its
-- `fallback_errors` list (set afresh on each failure, so an error value
-- raised again and again does not grow). Cancelled is never caught: it
-- stops the chain at once.
local errors = require "fdn.errors"
local events = require "fdn.events"
local results = require "fdn._results"
local shared = require "fdn._shared"
local is_callable = shared.is_callable

local M = {}

local error, pcall, select, type = error, pcall, select, type
local pack_rest, unpack_n = results.pack_rest, results.unpack_n
local is_cancelled = errors.is_cancelled
local events_has, events_emit = events.has, events.emit

local function attach(err, earlier)
  if type(err) == "table" then
    err.fallback_errors = earlier
    return
  end
  -- A string cannot carry them, and it keeps its identity: report the
  -- earlier errors rather than lose them.
  local parts = {}
  for i = 1, #earlier do
    parts[i] = errors.format(earlier[i])
  end
  require("fdn").report("fallback_errors", {
    message = "every function of an fdn.fallback chain failed; the last error is "
      .. "raised, the earlier ones were: " .. table.concat(parts, "; "),
    errors = earlier,
  })
end

--- Makes the chain: a function that tries f1(...), then f2(...), ...
---@param ... function the alternatives, in order
---@return function
function M.new(...)
  local n = select("#", ...)
  if n == 0 then
    errors.argerror("fdn.fallback", "f1", "at least one function", nil)
  end
  local fns = { ... }
  for i = 1, n do
    if not is_callable(fns[i]) then
      errors.argerror("fdn.fallback", "f" .. i, "a function", fns[i])
    end
  end
  return function(...)
    local earlier
    for i = 1, n do
      local ok, k, r1, r2, r3, r4 = pack_rest(pcall(fns[i], ...))
      if ok then
        return unpack_n(k, r1, r2, r3, r4)
      end
      if is_cancelled(r1) then
        error(r1, 0)
      end
      if events_has("fallback.failed") then
        events_emit("fallback.failed", { index = i, error = r1, last = i == n })
      end
      if i == n then
        if earlier then
          attach(r1, earlier)
        end
        error(r1, 0)
      end
      earlier = earlier or {}
      earlier[#earlier + 1] = r1
    end
  end
end

return setmetatable(M, {
  __call = function(_, ...)
    return M.new(...)
  end,
})
