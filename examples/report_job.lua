-- A job script: fetch one day's sales report from the reports service,
-- retrying a flaky upstream with exponential backoff, and print a summary.
--   fdn-lua examples/report_job.lua 2024-05-01
-- It is a module too, so a spec can drive it with the service mocked: see
-- spec/report_job_spec.lua and docs/testing.md.
local fdn = require "fdn"
local log = require "fdn.log"
local errors = fdn.errors

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local api = require "report_api"

local M = {}

--- The wait before attempt k + 1 is delay * backoff ^ (k - 1) seconds.
M.retry = { attempts = 4, delay = 1, backoff = 2 }

--- GETs `path`, retrying failures; raises RetryExhausted (with `.errors`,
-- every attempt's error) when all attempts failed.
function M.fetch(path)
  local r, errs = M.retry, {}
  for attempt = 1, r.attempts do
    local ok, res = fdn.try(api.get, path)
    if ok then
      return res
    end
    errs[attempt] = res
    log.warn("report_fetch_failed", { path = path, attempt = attempt, error = res })
    if attempt < r.attempts then
      fdn.sleep(r.delay * r.backoff ^ (attempt - 1))
    end
  end
  error(errors.RetryExhausted.new("GET " .. path .. ": all " .. r.attempts .. " attempts failed",
    { attempts = r.attempts, errors = errs, cause = errs[#errs] }), 0)
end

--- The day's number of sales and their total.
function M.summarise(day)
  local report = M.fetch("/reports/" .. day)
  local total = 0
  for _, sale in ipairs(report.sales) do
    total = total + sale.amount
  end
  return { day = day, sales = #report.sales, total = total }
end

if ... ~= "report_job" then
  local s = M.summarise((...) or os.date("%Y-%m-%d"))
  print(string.format("%s: %d sales, total %.2f", s.day, s.sales, s.total))
end

return M
