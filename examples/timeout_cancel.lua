-- Deadlines and cancellation: a slow call timed out, a worker cancelled
-- with its cleanup still running.
--   fdn-lua examples/timeout_cancel.lua
local errors = fdn.errors

local function slow_call()
  fdn.sleep(10)
  return "too late"
end

local ok, err = pcall(fdn.timeout, 0.05, slow_call)
print("timeout: " .. tostring(not ok and errors.is(err, errors.Timeout)))

local worker = fdn.spawn(function()
  local resource = {
    __exit = function() print("worker: cleanup ran") end,
  }
  fdn.with(resource, function()
    while true do
      fdn.sleep(0.01)
    end
  end)
end)

fdn.sleep(0.03)
worker:cancel("shutting down")
local _, why = worker:wait()
print("worker: " .. worker:status() .. " (" .. why.message .. ")")
