-- W4, retry overhead: n sequential calls of a function that fails twice
-- and then succeeds, through fdn.retry with zero delay (3n attempts).
-- form "raise": failures raised with error(); form "nil": failures
-- returned as nil, err and retried through retry_if_result = "nil", no
-- error raised.
--   fdn-lua bench/fdn/w4_retry.lua [n] [raise|nil]
local common = dofile(arg[0]:gsub("[^/]*$", "") .. "../lib/common.lua")
local n = common.size(..., 100000)
local form = select(2, ...) or "raise"
local workload = form == "nil" and "W4.nil" or "W4.raise"
assert(form == "raise" or form == "nil", "form must be raise or nil")

if not fdn.retry then
  return common.absent(workload, "fdn.retry not available in this build")
end

local attempts = 0
local flaky
if form == "raise" then
  flaky = function(i)
    attempts = attempts + 1
    if attempts % 3 ~= 0 then
      error("flaky")
    end
    return i
  end
else
  flaky = function(i)
    attempts = attempts + 1
    if attempts % 3 ~= 0 then
      return nil, "flaky"
    end
    return i
  end
end

local policy = { max_attempts = 3, delay = 0 }
if form == "nil" then
  policy.retry_if_result = "nil" -- the shorthand for the nil, err convention
end
local ok, call = pcall(fdn.retry, policy)
if not ok then
  return common.absent(workload, "fdn.retry rejects this policy: " .. tostring(call))
end
call = call(flaky)

local now = fdn.now
local sum, count = 0, 0
local t0 = now()
for i = 1, n do
  local v = call(i)
  if v ~= nil then
    count = count + 1
    sum = sum + v
  end
end
local elapsed = now() - t0
common.emit {
  workload = workload, n = n, elapsed = elapsed, count = count, sum = sum, attempts = attempts,
}
