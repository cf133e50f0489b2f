--- The bad values the reliability matrices feed to fdn, and the ways to
-- tell one from another in a report.
--
-- Each value has a label (how reports and the acceptance list name it)
-- and a maker, called afresh for every case, so no case sees what an
-- earlier one did to a table or a coroutine.
local M = {}

local fdn = require "fdn"

M.NIL, M.TRUE, M.ZERO, M.NEG = "nil", "true", "0", "-1"
M.BIG, M.NAN, M.EMPTY, M.TABLE = "2^53", "0/0", '""', "{}"
M.FUNC, M.CO, M.UDATA, M.FOBJ = "function", "coroutine", "foreign userdata", "fdn object"

--- Every label, in the order cases run.
M.labels = {
  M.NIL, M.TRUE, M.ZERO, M.NEG, M.BIG, M.NAN, M.EMPTY, M.TABLE, M.FUNC, M.CO, M.UDATA, M.FOBJ,
}

local foreign_mt = { __name = "foreign" }

--- A fresh value for `label`. `class` is the fdn class expected where the
-- value goes (the "fdn object" is then one of another class, so passing a
-- Queue where a Semaphore belongs is tried too).
function M.make(label, class)
  if label == M.NIL then
    return nil
  elseif label == M.TRUE then
    return true
  elseif label == M.ZERO then
    return 0
  elseif label == M.NEG then
    return -1
  elseif label == M.BIG then
    return 2 ^ 53
  elseif label == M.NAN then
    return 0 / 0
  elseif label == M.EMPTY then
    return ""
  elseif label == M.TABLE then
    return {}
  elseif label == M.FUNC then
    return function() end
  elseif label == M.CO then
    return coroutine.create(function() end)
  elseif label == M.UDATA then
    local u = newproxy(true)
    getmetatable(u).__name = foreign_mt.__name
    return u
  elseif label == M.FOBJ then
    if class == "Event" then
      return fdn.Queue.new(1)
    end
    return fdn.Event.new()
  end
  error("values.make: unknown label " .. tostring(label))
end

return M
