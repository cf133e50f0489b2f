-- Foundation figures: tasks spawned and joined per second (each yields
-- once), and memory per sleeping task with 100k tasks asleep. Memory is
-- measured first, in a fresh process, before anything else has grown the
-- heap; run the script several times for a median of that figure.
--   fdn-lua bench/foundation.lua [runs]
local runs = tonumber((...)) or 5

local function rss_bytes()
  local f = assert(io.open("/proc/self/statm"))
  local _ = f:read("*n") -- total program size; resident set follows
  local pages = f:read("*n")
  f:close()
  return pages * 4096
end

local function median(t)
  table.sort(t)
  return t[math.ceil(#t / 2)]
end

local function spawn_join(n)
  local tasks = {}
  local t0 = fdn.now()
  for i = 1, n do
    tasks[i] = fdn.spawn(function()
      fdn.sleep(0)
      return i
    end)
  end
  local results = fdn.gather(tasks)
  local elapsed = fdn.now() - t0
  assert(#results == n and results[n] == n, "wrong results")
  return n / elapsed
end

local function sleepers(n)
  collectgarbage()
  collectgarbage()
  local rss0, lua0 = rss_bytes(), collectgarbage("count") * 1024
  local tasks = {}
  for i = 1, n do
    tasks[i] = fdn.spawn(fdn.sleep, 0.2)
  end
  fdn.sleep(0.05) -- all parked in their sleep now
  local rss1, lua1 = rss_bytes(), collectgarbage("count") * 1024
  fdn.gather(tasks)
  return (rss1 - rss0) / n, (lua1 - lua0) / n
end

local rss, heap = sleepers(100000)
local rates = {}
for r = 1, runs do
  rates[r] = spawn_join(200000)
  collectgarbage()
end
print(string.format("spawn+join (200k tasks, each yields once): median %.0f tasks/s over %d runs",
  median(rates), runs))
print(string.format(
  "sleeping tasks (100k, fresh process): %.0f bytes/task RSS, %.0f bytes/task Lua heap", rss, heap))
