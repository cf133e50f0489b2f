-- Caching a slow lookup: concurrent callers of one key share one upstream
-- call, hits cost nothing, entries expire after their ttl.
--   fdn-lua examples/cache.lua
local calls = 0
local get_rate = fdn.cache { ttl = 0.2, max_entries = 100, name = "rates" }(function(currency)
  calls = calls + 1
  fdn.sleep(0.02) -- a slow upstream
  return currency == "EUR" and 1.08 or 1.27
end)

local tasks = {}
for i = 1, 50 do
  tasks[i] = fdn.spawn(get_rate, "EUR")
end
local rates = fdn.gather(tasks)
print(string.format("50 concurrent lookups got %.2f with %d upstream call", rates[50], calls))

get_rate("EUR")
get_rate("GBP")
print("after a hit and a new key: " .. calls .. " upstream calls")

fdn.sleep(0.25)
get_rate("EUR")
print("after the ttl: " .. calls .. " upstream calls")

get_rate:invalidate("GBP")
get_rate("GBP")
local s = get_rate:stats()
print(string.format("hits %d, misses %d (%d joined a running call), %d upstream calls",
  s.hits, s.misses, s.coalesced, calls))
