--- Shared by the reliability matrices: the module path, output, a log
-- capture, and the figure line each matrix ends with.
local M = {}

local fdn = require "fdn"
local errors = require "fdn.errors"

M.verbose = os.getenv("FDN_MATRIX_VERBOSE") == "1"

function M.pack(...)
  return { n = select("#", ...), ... }
end

--- Writes `line` to stdout at once (a crash must not eat the output).
function M.say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

--- Records the case about to run in $FDN_MATRIX_TRACE (if set), so the
-- spec running a matrix can say which case a crash happened in.
local trace_path = os.getenv("FDN_MATRIX_TRACE")
function M.trace(text)
  if trace_path then
    local f = io.open(trace_path, "w")
    if f then
      f:write(text)
      f:close()
    end
  end
end

--- A one-line description of any value, never raising.
function M.show(v)
  if type(v) == "string" then
    return string.format("%q", v)
  end
  return errors.format(v)
end

--- Routes every log record (and fdn.report's) to a list while fn runs,
-- at level trace, and restores the configuration after.
function M.with_log_capture(fn)
  local log = require "fdn.log"
  local saved = log.config()
  local records = {}
  log.configure { level = "trace", sink = function(r) records[#records + 1] = r end }
  local res = M.pack(pcall(fn, records))
  log.configure(saved)
  if not res[1] then
    error(res[2], 0)
  end
  return unpack(res, 2, res.n)
end

--- The figure line: "<name>: <checked> checked, <passed> passed, <failed>
-- failed" and extra "key=value" figures; exits non-zero when anything
-- failed.
function M.finish(name, checked, failed, extra)
  local parts = { string.format("%s: %d checked, %d passed, %d failed", name, checked,
    checked - failed, failed) }
  for _, kv in ipairs(extra or {}) do
    parts[#parts + 1] = kv
  end
  M.say(table.concat(parts, "; "))
  -- Closing the state runs every finalizer, so a leak checker at exit
  -- (check-clang, valgrind) sees only what fdn really lost.
  os.exit(failed == 0 and checked > 0 and 0 or 1, true)
end

M.fdn = fdn
return M
