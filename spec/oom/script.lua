-- luacheck: read globals fdn (a job script: fdn-lua defines it)
-- The representative job of the allocation-failure sweep (make oom-sweep):
-- a little of everything a job script does, run as fdn-lua runs it, with
-- one allocation failing somewhere. Keep it fast: it runs once per
-- allocation it makes.
local log = require "fdn.log"
log.configure { format = "json", sink = "/dev/null" }
local seen = 0
local unsubscribe = fdn.events.subscribe("job.*", function(_, data)
  seen = seen + data.n
end)

local sem = fdn.Semaphore.new(2)
local q = fdn.Queue.new(4)
local delivered = 0
local b = fdn.Batcher.new { batch_size = 3, flush_interval = 0.001, handler = function(items)
  delivered = delivered + #items
end }
local cached = fdn.cache { ttl = 60 }(function(x)
  fdn.sleep(0)
  return x + 1
end)

local failed_once = {}
local flaky = fdn.retry { max_attempts = 3, delay = 0.0005 }(function(x)
  if not failed_once[x] then
    failed_once[x] = true
    error(fdn.errors.Error.new("transient", { context = { x = x } }))
  end
  return x * 2
end)

local consumer = fdn.spawn(function()
  local sum = 0
  for v in q:iter() do
    sum = sum + v
  end
  return sum
end)

local tasks = {}
fdn.context.with({ request_id = "r-1" }, function()
  for i = 1, 6 do
    tasks[i] = fdn.spawn_with({ name = "worker-" .. i }, function()
      return sem:with(function()
        fdn.sleep(0)
        q:put(i)
        b:add({ id = i, tag = "item" .. i })
        assert(cached(i % 2) == i % 2 + 1)
        return flaky(i)
      end)
    end)
  end
end)

local victim = fdn.spawn(function()
  fdn.sleep(10)
end)
fdn.sleep(0)
victim:cancel("not needed")

local results = fdn.gather(tasks)
q:close()
local sum = consumer:join()
local ok, err = pcall(fdn.timeout, 0.0005, function()
  fdn.sleep(1)
end)
if ok or not fdn.errors.is(err, fdn.errors.Timeout) then
  error(err or "the timeout did not expire", 0) -- a memory error, say
end
local tried, terr = fdn.try(function()
  error({ code = 42 })
end)
assert(not tried and terr.code == 42)
assert(select(1, victim:wait()) == false)
fdn.with(fdn.TaskManager.new { max_concurrent = 2 }, function(tm)
  local a = tm:create_task(function() return 1 end)
  local c = tm:create_task(function() fdn.sleep(0) return 2 end)
  assert(a:join() + c:join() == 3)
end)
b:close()
fdn.events.emit("job.finished", { n = 1 })
unsubscribe()
log.info("job.done", { results = results, sum = sum, delivered = delivered,
  text = "caf\195\169", bad = "\255", nested = { list = { 1, 2, 3 }, f = print } })
local line = log.encode_json({ event = "x", level = "info", n = 0 / 0, s = "a\0b" })
if sum ~= 21 or delivered ~= 6 or seen ~= 1 or type(line) ~= "string" then
  error(string.format("unexpected results: sum %s, delivered %s, events %d", sum,
    delivered, seen), 0)
end
