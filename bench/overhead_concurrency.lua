-- Overhead per task of the structured concurrency helpers against plain
-- fdn.spawn + fdn.gather, measured in one run. Every variant runs the same
-- N units of work (each yields to the scheduler once and returns its
-- index) and checks the results; the variants run interleaved, round after
-- round, and each figure is the median over the rounds.
--   fdn-lua bench/overhead_concurrency.lua [rounds] [n]
-- With a third argument k (0 for nothing), runs variant k once and prints
-- nothing: for instruction counts that do not depend on a noisy machine,
--   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
--     fdn-lua bench/overhead_concurrency.lua 1 20000 k
local rounds = tonumber((...)) or 7
local N = tonumber(arg[2]) or 100000
local only = tonumber(arg[3])

local function work(i)
  fdn.sleep(0)
  return i
end

local function check(results)
  assert(results[1] == 1 and results[N] == N, "wrong results")
end

local variants = {
  {
    name = "spawn + gather (baseline)",
    run = function()
      local tasks = {}
      for i = 1, N do
        tasks[i] = fdn.spawn(work, i)
      end
      check(fdn.gather(tasks))
    end,
  },
  {
    name = "TaskManager, no limit",
    run = function()
      fdn.with(fdn.TaskManager.new(), function(tm)
        local tasks = {}
        for i = 1, N do
          tasks[i] = tm:create_task(work, i)
        end
        check(tm:gather(tasks))
      end)
    end,
  },
  {
    name = "TaskManager, max_concurrent = 64",
    run = function()
      fdn.with(fdn.TaskManager.new { max_concurrent = 64 }, function(tm)
        local tasks = {}
        for i = 1, N do
          tasks[i] = tm:create_task(work, i)
        end
        check(tm:gather(tasks))
      end)
    end,
  },
  {
    name = "ConcurrentExecutor, max_workers = 64",
    run = function()
      local items = {}
      for i = 1, N do
        items[i] = i
      end
      check(fdn.ConcurrentExecutor.new({ max_workers = 64 }):map(work, items))
    end,
  },
  {
    name = "TaskPool, pool_size = 64, queue_size = 1024",
    run = function()
      local pool = fdn.TaskPool.new { pool_size = 64, queue_size = 1024 }
      for i = 1, N do
        pool:submit(work, i)
      end
      check(pool:gather_results())
      pool:close()
    end,
  },
}

if only then
  if variants[only] then
    variants[only].run()
  end
  return
end

local function median(t)
  local s = {}
  for i = 1, #t do
    s[i] = t[i]
  end
  table.sort(s)
  return s[math.ceil(#s / 2)]
end

local times = {}
for v = 1, #variants do
  times[v] = {}
end
for r = 1, rounds do
  for v = 1, #variants do
    collectgarbage()
    collectgarbage()
    local t0 = fdn.now()
    variants[v].run()
    times[v][r] = fdn.now() - t0
  end
end

local base = median(times[1])
print(string.format("%d units of work (each yields once), median of %d interleaved rounds", N, rounds))
print(string.format("%-44s %12s %14s %10s", "variant", "units/s", "ns/unit", "overhead"))
for v = 1, #variants do
  local t = median(times[v])
  local extra = v == 1 and "" or string.format("%+.0f ns", (t - base) / N * 1e9)
  print(string.format("%-44s %12.0f %14.0f %10s", variants[v].name, N / t, t / N * 1e9, extra))
end
