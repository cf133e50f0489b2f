-- A stand-in for an HTTP client of a reports service, so report_job.lua runs
-- anywhere: a GET answers after 50-150 ms, and one call in three times out,
-- like a flaky upstream. A real job would use a real client here.
local fdn = require "fdn"

local M = {}

--- GET `path`: the report {path =, sales = {{id =, amount =}, …}}, or
-- raises fdn.errors.Timeout.
function M.get(path)
  fdn.sleep(0.05 + fdn.random() * 0.1)
  if fdn.random(3) == 1 then
    error(fdn.errors.Timeout.new("GET " .. path .. ": upstream timed out"), 0)
  end
  local sales = {}
  for i = 1, fdn.random(5) do
    sales[i] = { id = i, amount = fdn.random(10000) / 100 }
  end
  return { path = path, sales = sales }
end

return M
