-- A semaphore caps how many tasks do something at once; the others wait
-- their turn in FIFO order, and can give up after a timeout.
--   fdn-lua examples/semaphore.lua [permits]
local permits = tonumber((...)) or 2
local errors = fdn.errors

local downloads = fdn.Semaphore.new(permits, { name = "downloads" })
local in_flight, peak, order = 0, 0, {}

local function download(i)
  return downloads:with(function()
    in_flight = in_flight + 1
    peak = math.max(peak, in_flight)
    order[#order + 1] = i
    fdn.sleep(0.002)
    in_flight = in_flight - 1
    return "file-" .. i
  end)
end

local tasks = {}
for i = 1, 6 do
  tasks[i] = fdn.spawn(download, i)
end
print("downloaded: " .. table.concat(fdn.gather(tasks), ", "))
print("started in order: " .. table.concat(order, " "))
print(string.format("at most %d at once (of %d permits)", peak, permits))

-- Hold every permit: a caller with a deadline gives up, holding nothing.
for _ = 1, permits do
  downloads:acquire()
end
local ok, err = pcall(downloads.acquire, downloads, 0.01)
print("with all permits taken: " .. (not ok and errors.is(err, errors.Timeout) and "timed out" or "?"))
for _ = 1, permits do
  downloads:release()
end
print("free again: " .. downloads:available())
