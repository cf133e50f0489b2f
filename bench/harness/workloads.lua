--- The workloads: their size, the figure each one reports, the floor it is
-- compared with, and the checks every result must pass. A program that
-- answers fast and wrong fails here, whichever peer it is.
local M = {}

local function durations(n)
  local d, x = {}, 42
  for i = 1, n do
    x = (x * 16807) % 2147483647
    d[i] = 1 + x % 10
  end
  return d
end
M.durations = durations

local function triangle(n)
  return n * (n + 1) / 2
end

local function expect(r, field, want, what)
  local got = r[field]
  if got ~= want then
    return string.format("%s: %s is %s, expected %s", what or field, field, tostring(got),
      tostring(want))
  end
end

local function first(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if v then
      return v
    end
  end
end

local function per_second(r)
  return r.n / r.elapsed
end

local function check_results(r, n)
  return first(expect(r, "count", n, "wrong number of results"),
    expect(r, "sum", triangle(n), "wrong results"),
    r.ordered ~= true and "results out of order" or nil)
end

M.list = {
  {
    id = "W0", title = "switch cost (one coroutine resumed and yielded back)",
    n = 1000000, small = 2000, unit = "ns", lower_is_better = true, floor = "floor-coro",
    metric = function(r)
      return r.elapsed / r.n * 1e9
    end,
    check = function(r, n)
      return expect(r, "count", n, "wrong number of switches")
    end,
  },
  {
    id = "W1", title = "spawn + join (each task yields once)",
    n = 200000, small = 2000, unit = "tasks/s", floor = "floor-coro",
    metric = per_second, check = check_results,
  },
  {
    id = "W2", title = "concurrency limit of 64 (each task yields once holding it)",
    n = 200000, small = 2000, unit = "tasks/s",
    metric = per_second,
    check = function(r, n)
      return first(check_results(r, n), expect(r, "limit", 64),
        expect(r, "max_in_flight", 64, "limit not respected or never reached"))
    end,
  },
  {
    id = "W3", title = "timers (concurrent sleeps of 1-10 ms)",
    n = 100000, small = 1000, unit = "sleepers/s", floor = "floor-uv", bytes = true,
    metric = per_second,
    -- No sleeper may wake before its deadline (1 ms of slack for libuv's
    -- millisecond timers). Every peer meets this: asyncio, uvloop and Node
    -- count from a fresh clock, and sched.lua and the libuv floor refresh
    -- libuv's cached loop time before arming (without that, a timer armed
    -- late in a long loop turn fires early).
    check = function(r, n)
      local d, sum, longest = durations(n), 0, 0
      for i = 1, n do
        sum = sum + d[i]
        longest = math.max(longest, d[i])
      end
      if type(r.rss_growth) ~= "number" or type(r.early) ~= "number" then
        return "missing rss_growth or early"
      end
      return first(expect(r, "count", n, "wrong number of sleepers"),
        expect(r, "sum", sum, "sleepers did not sleep their own durations"),
        expect(r, "early", 0, "sleepers woke before their deadline"),
        r.elapsed < (longest - 1) / 1000 and string.format(
          "finished in %.4f s, before the longest sleep (%d ms) could end", r.elapsed, longest)
          or nil)
    end,
  },
  {
    id = "W4.raise", title = "retry, failures raised (2 failures then success per call)",
    n = 100000, small = 1000, unit = "calls/s",
    metric = per_second,
    check = function(r, n)
      return first(expect(r, "count", n, "wrong number of calls"),
        expect(r, "sum", triangle(n), "wrong results"),
        expect(r, "attempts", 3 * n, "wrong number of attempts"))
    end,
  },
  {
    id = "W4.nil", title = "retry, failures returned as nil, err",
    n = 100000, small = 1000, unit = "calls/s",
    metric = per_second,
    check = function(r, n)
      return first(expect(r, "count", n, "wrong number of calls"),
        expect(r, "sum", triangle(n), "wrong results"),
        expect(r, "attempts", 3 * n, "wrong number of attempts"))
    end,
  },
  {
    id = "W5", title = "batching (batches of 100, 5 ms flush timer)",
    n = 1000000, small = 10000, unit = "items/s",
    metric = per_second,
    check = function(r, n)
      if type(r.batches) ~= "number" or r.batches < math.ceil(n / 100) then
        return "fewer batches than items / 100: " .. tostring(r.batches)
      end
      return first(expect(r, "count", n, "items lost or duplicated"),
        expect(r, "last", n, "the last item delivered"),
        expect(r, "broken", 0, "batches out of order"))
    end,
  },
  {
    id = "W6", title = "parked tasks (all wait on one event, then set and joined)",
    n = 100000, small = 2000, unit = "tasks/s", floor = "floor-coro", bytes = true,
    metric = per_second,
    check = function(r, n)
      if type(r.rss_growth) ~= "number" then
        return "missing rss_growth"
      end
      return first(check_results(r, n),
        expect(r, "parked_at_set", n, "not every task was parked when the event was set"),
        expect(r, "woke_unset", 0, "tasks woke before the event was set"))
    end,
  },
  {
    id = "S0", title = "start-up (hello-world process, wall time)",
    n = 10, small = 1, unit = "ms", lower_is_better = true, floor = "luajit",
    launches = true,
    metric = function(r)
      return r.elapsed * 1000
    end,
    check = function(r)
      if r.stdout ~= "hello\n" then
        return string.format("printed %q instead of \"hello\\n\"", tostring(r.stdout))
      end
    end,
  },
}

M.by_id = {}
for _, w in ipairs(M.list) do
  M.by_id[w.id] = w
end

--- The workloads selected by a comma-separated list ("W1,W4" selects
-- W4.raise and W4.nil too); nil or "" selects all.
function M.select(only)
  if only == nil or only == "" then
    return M.list
  end
  local picked, seen = {}, {}
  for name in only:gmatch("[^,%s]+") do
    local found = false
    for _, w in ipairs(M.list) do
      if (w.id == name or w.id:match("^[^.]+") == name) and not seen[w.id] then
        picked[#picked + 1] = w
        seen[w.id] = true
        found = true
      elseif w.id == name or w.id:match("^[^.]+") == name then
        found = true
      end
    end
    if not found then
      error("unknown workload '" .. name .. "' (known: W0 W1 W2 W3 W4 W5 W6 S0)", 0)
    end
  end
  table.sort(picked, function(a, b)
    return M.position(a) < M.position(b)
  end)
  return picked
end

function M.position(w)
  for i, x in ipairs(M.list) do
    if x == w then
      return i
    end
  end
  return math.huge
end

--- nil when the result passes the common and the workload's checks, else
-- the reason it fails.
function M.check(w, r, n)
  if type(r) ~= "table" then
    return "no result"
  end
  if not w.launches then
    if r.workload ~= w.id then
      return "result is for workload " .. tostring(r.workload)
    end
    if r.n ~= n then
      return string.format("ran n = %s, asked for %d", tostring(r.n), n)
    end
    if type(r.elapsed) ~= "number" or r.elapsed ~= r.elapsed or r.elapsed <= 0 then
      return "no elapsed time"
    end
  end
  return w.check(r, n)
end

return M
