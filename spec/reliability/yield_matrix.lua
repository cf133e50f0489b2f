--- Yield boundaries (docs/reliability-matrices.md, item 8).
--
-- Every suspending primitive, set up so that the call must suspend, is
-- called where no task can suspend:
--   main         the main thread, no engine at all
--   main_engine  the main thread, an engine bound but not running
--   coroutine    a coroutine of the caller's own, inside a task
--   sort         a table.sort comparator, inside a task
--   gsub         a string.gsub callback, inside a task
-- Each must raise an fdn.errors.InvalidState naming the primitive (never
-- "attempt to yield across C-call boundary", never yield the caller's own
-- coroutine), leave the object as it was (its check), and leave the task
-- able to go on (it sleeps afterwards).
--
-- The list is checked against the code: every `where` string the bindings
-- suspend in (lfdn_suspendable / lfdn_yield call sites) must be covered by
-- an entry, and every suspension site of the Lua library (calls of the
-- suspending core functions) must be counted in LUA_SITES, so a new
-- suspending primitive fails this matrix until it is listed.
--
--   luajit spec/reliability/yield_matrix.lua       (make yield-matrix)
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)reliability/") or "spec/")
  .. "?.lua;" .. package.path
local C = require "reliability.common"
local fdn = C.fdn
local core = require "fdn.core"
local errors = require "fdn.errors"
local T = require "fdn.testing"
local catalog = require "reliability.catalog"

local say = C.say
local failures, checked = {}, 0

local function fail(text)
  failures[#failures + 1] = text
  say("FAIL " .. text)
end

local function noop() end

local CONTEXTS = { "main", "main_engine", "coroutine", "sort", "gsub" }

-- Entries ----------------------------------------------------------------------
-- name: the primitive; names: what its error may name (the primitive, or
-- the public step it suspends in); where: the binding `where` strings it
-- covers; setup() runs in a task and returns call[, check[, cleanup]]:
-- check() returns nil, or what the failed call disturbed; setup_main() is
-- the same without an engine (absent: the "main" context needs a task to
-- set up, and main_engine covers the main thread); main_ok: why the call
-- may succeed from the main thread.

local E = {}
local function add(e)
  E[#E + 1] = e
end

local function sleeper(seconds)
  return fdn.spawn(function() fdn.sleep(seconds or 1000) end)
end

local function stop(task)
  task:cancel()
  task:wait()
end

add { name = "fdn.sleep", names = { "fdn.sleep" }, where = { "fdn.sleep" },
  setup = function() return function() fdn.sleep(1) end end,
  setup_main = function() return function() fdn.sleep(1) end end }

add { name = "fdn.sleep(0)", names = { "fdn.sleep" },
  setup = function() return function() fdn.sleep(0) end end,
  setup_main = function() return function() fdn.sleep(0) end end }

add { name = "task:join", names = { "task:join" }, where = { "task:join" },
  setup = function()
    local t = sleeper()
    return function() t:join() end, nil, function() stop(t) end
  end }

add { name = "task:wait", names = { "task:wait" },
  setup = function()
    local t = sleeper()
    return function() t:wait() end, nil, function() stop(t) end
  end }

add { name = "fdn.gather", names = { "fdn.gather" }, where = { "fdn.gather" },
  setup = function()
    local t = sleeper()
    fdn.sleep(0) -- the sleeper is waiting in any schedule order (FDN_SCHED_SEED)
    return function() fdn.gather { t } end, function()
      if t:status() ~= "waiting" then return "the gathered task was disturbed: " .. t:status() end
    end, function() stop(t) end
  end }

add { name = "fdn.timeout", names = { "fdn.timeout", "fdn.sleep" },
  setup = function() return function() fdn.timeout(5, fdn.sleep, 1) end end,
  setup_main = function() return function() fdn.timeout(5, fdn.sleep, 1) end end }

local function sem_check(s, available)
  return function()
    if s:waiting() ~= 0 or s:available() ~= available then
      return string.format("waiting %d, available %d (expected 0, %d)", s:waiting(),
        s:available(), available)
    end
  end
end

local function sem_setup(call)
  return function()
    local s = fdn.Semaphore.new(0)
    return function() call(s) end, sem_check(s, 0)
  end
end

add { name = "Semaphore:acquire", names = { "Semaphore:acquire" }, where = { "Semaphore:acquire" },
  setup = sem_setup(function(s) s:acquire() end),
  setup_main = sem_setup(function(s) s:acquire() end) }
-- with and __enter wait in an acquire and say so (with is hot: no name is
-- passed down for it).
add { name = "Semaphore:with", names = { "Semaphore:with", "Semaphore:acquire" },
  setup = sem_setup(function(s) s:with(noop) end),
  setup_main = sem_setup(function(s) s:with(noop) end) }
add { name = "fdn.with(semaphore)", names = { "Semaphore:__enter", "Semaphore:acquire" },
  setup = sem_setup(function(s) fdn.with(s, noop) end),
  setup_main = sem_setup(function(s) fdn.with(s, noop) end) }

local function queue_check(q, len)
  return function()
    local getters, putters = q:waiting()
    if getters ~= 0 or putters ~= 0 or q:len() ~= len then
      return string.format("getters %d, putters %d, len %d (expected 0, 0, %d)", getters,
        putters, q:len(), len)
    end
  end
end

local function empty_queue(call)
  return function()
    local q = fdn.Queue.new(1)
    return function() call(q) end, queue_check(q, 0)
  end
end
local function full_queue()
  local q = fdn.Queue.new(1)
  q:put("first")
  return function() q:put("second") end, queue_check(q, 1)
end

add { name = "Queue:get", names = { "Queue:get" }, where = { "Queue:get" },
  setup = empty_queue(function(q) q:get() end),
  setup_main = empty_queue(function(q) q:get() end) }
add { name = "Queue:put", names = { "Queue:put" }, where = { "Queue:put" },
  setup = full_queue, setup_main = full_queue }
add { name = "Queue:iter", names = { "Queue:get" },
  setup = empty_queue(function(q) q:iter()() end),
  setup_main = empty_queue(function(q) q:iter()() end) }

local function event_setup()
  local e = fdn.Event.new()
  return function() e:wait() end, function()
    if e:waiting() ~= 0 then return e:waiting() .. " waiter(s) left" end
  end
end
add { name = "Event:wait", names = { "Event:wait" }, where = { "Event:wait" },
  setup = event_setup, setup_main = event_setup }

add { name = "fdn.with(TaskManager)", names = { "TaskManager:__enter" },
  setup = function()
    local tm = fdn.TaskManager.new()
    return function()
      fdn.with(tm, function(m) m:create_task(fdn.sleep, 1) end)
    end, function()
      if tm._state ~= "new" then return "the manager was left " .. tostring(tm._state) end
    end
  end,
  setup_main = function()
    return function() fdn.with(fdn.TaskManager.new(), noop) end
  end }

add { name = "TaskManager:__exit", names = { "TaskManager:__exit" },
  where = { "TaskManager:__exit" },
  setup = function()
    local tm = fdn.TaskManager.new()
    tm:__enter()
    local child = tm:create_task(fdn.sleep, 1000)
    fdn.sleep(0) -- the child is waiting in any schedule order (FDN_SCHED_SEED)
    return function() tm:__exit(nil) end, function()
      if tm._state ~= "open" or child:status() ~= "waiting" then
        return "manager " .. tostring(tm._state) .. ", child " .. child:status()
      end
    end, function()
      child:cancel()
      pcall(tm.__exit, tm)
    end
  end,
  main = "the manager must be entered from a task (its __enter is the main-thread case)" }

add { name = "ConcurrentExecutor:map", names = { "ConcurrentExecutor:map" },
  setup = function()
    local ex = fdn.ConcurrentExecutor.new { max_workers = 2 }
    local engine = core.engine_running()
    local live = engine:stats().live
    return function() ex:map(fdn.sleep, { 1, 1 }) end, function()
      if engine:stats().live ~= live then
        return (engine:stats().live - live) .. " worker task(s) were started"
      end
    end
  end,
  setup_main = function()
    return function() fdn.ConcurrentExecutor.new({ max_workers = 1 }):map(noop, { 1 }) end
  end }

-- A pool whose one worker is busy and whose one queue place is taken.
local function full_pool()
  local gate = fdn.Event.new()
  local pool = fdn.TaskPool.new { pool_size = 1, queue_size = 1 }
  pool:submit(function() gate:wait() end)
  fdn.sleep(0) -- the worker takes the first job
  pool:submit(noop)
  return pool, function()
    gate:set()
    pool:cancel()
  end
end

add { name = "TaskPool:submit", names = { "TaskPool:submit" },
  setup = function()
    local pool, cleanup = full_pool()
    return function() pool:submit(noop) end, function()
      if pool:pending() ~= 1 or pool._submitted ~= 2 then
        return "pending " .. pool:pending() .. ", submitted " .. pool._submitted
      end
    end, cleanup
  end,
  setup_main = function()
    return function() fdn.TaskPool.new({ pool_size = 1 }):submit(noop) end
  end }

add { name = "TaskPool:gather_results", names = { "TaskPool:gather_results" },
  setup = function()
    local pool, cleanup = full_pool()
    return function() pool:gather_results() end, function()
      if pool._waiters ~= 0 then return pool._waiters .. " gatherer(s) left" end
    end, cleanup
  end }

local function pool_still_open(pool)
  return function()
    if pool._closed then return "the pool was closed" end
    if pool:pending() ~= 1 then return "pending " .. pool:pending() end
  end
end

add { name = "TaskPool:close", names = { "TaskPool:close" },
  main_ok = "from outside any task close() does not wait: the workers finish the queue",
  setup = function()
    local pool, cleanup = full_pool()
    return function() pool:close() end, pool_still_open(pool), cleanup
  end }

add { name = "TaskPool:cancel", names = { "TaskPool:cancel" },
  main_ok = "from outside any task cancel() cancels the workers without waiting for them",
  setup = function()
    local pool, cleanup = full_pool()
    return function() pool:cancel() end, pool_still_open(pool), cleanup
  end }

-- A batcher whose handler waits for `gate`.
local function gated_batcher(opts)
  local gate = fdn.Event.new()
  opts.handler = function() gate:wait() end
  local b = fdn.Batcher.new(opts)
  return b, function()
    gate:set()
    pcall(b.close, b)
  end
end

add { name = "Batcher:add", names = { "Batcher:add" }, where = { "Batcher:add" },
  setup = function()
    local b, cleanup = gated_batcher { batch_size = 1, max_pending = 1 }
    b:add(1)
    fdn.sleep(0) -- the flusher takes batch 1 and waits in the handler
    b:add(2)     -- batch 2 waits: max_pending reached
    local added = b:stats().added
    return function() b:add(3) end, function()
      if b:stats().added ~= added then return "added " .. b:stats().added end
    end, cleanup
  end }

add { name = "Batcher:flush", names = { "Batcher:flush" }, where = { "Batcher:flush" },
  setup = function()
    local b, cleanup = gated_batcher { batch_size = 10 }
    b:add(1)
    return function() b:flush() end, nil, cleanup
  end }

add { name = "Batcher:close", names = { "Batcher:close" }, where = { "Batcher:close" },
  setup = function()
    local b, cleanup = gated_batcher { batch_size = 10 }
    b:add(1)
    return function() b:close() end, nil, cleanup
  end }

add { name = "handle:wait", names = { "handle:wait" }, where = { "fdn.park" },
  setup = function()
    local b, cleanup = gated_batcher { batch_size = 10 }
    local h = b:add(1)
    return function() h:wait() end, function()
      local waiters = h[1][8]
      if waiters and #waiters > 0 then return #waiters .. " waiter(s) left on the batch" end
    end, cleanup
  end }

add { name = "handle:join", names = { "handle:wait" },
  setup = function()
    local b, cleanup = gated_batcher { batch_size = 10 }
    local h = b:add(1)
    return function() h:join() end, nil, cleanup
  end }

add { name = "cache (joining a computation)", names = { "yield-cache" },
  setup = function()
    local gate = fdn.Event.new()
    local cached = fdn.cache { name = "yield-cache" } (function(k)
      gate:wait()
      return k
    end)
    local leader = fdn.spawn(cached, "k")
    fdn.sleep(0) -- the leader computes "k" and waits
    return function() cached("k") end, function()
      local flight = cached._flights.k
      if flight and #flight.waiters > 0 then
        return #flight.waiters .. " waiter(s) left on the computation"
      end
    end, function()
      gate:set()
      leader:wait()
    end
  end }

local function limiter_setup()
  local rl = fdn.RateLimiter.new { rate = 1, burst = 1 }
  rl:try_acquire()
  local tokens = rl:tokens()
  return function() rl:acquire() end, function()
    if rl:tokens() < tokens - 1e-9 then
      return "tokens " .. rl:tokens() .. " (were " .. tokens .. "): the failed call kept some"
    end
  end
end
add { name = "RateLimiter:acquire", names = { "RateLimiter:acquire" },
  setup = limiter_setup, setup_main = limiter_setup }

local function bulkhead_setup()
  local bh = fdn.Bulkhead.new { max_concurrent = 1, max_queue = 1 }
  bh:acquire()
  return function() bh:acquire() end, function()
    local s = bh:stats()
    if s.active ~= 1 or s.waiting ~= 0 then
      return "active " .. s.active .. ", waiting " .. s.waiting
    end
  end
end
add { name = "Bulkhead:acquire", names = { "Bulkhead:acquire" }, where = { "Bulkhead:acquire" },
  setup = bulkhead_setup, setup_main = bulkhead_setup }

local function retry_setup()
  local calls = 0
  local f = fdn.retry { delay = 1, max_attempts = 2 } (function()
    calls = calls + 1
    error("fails", 0)
  end)
  return function() f() end, function()
    if calls ~= 1 then return calls .. " attempts (expected 1)" end
  end
end
add { name = "fdn.retry (backoff)", names = { "fdn.retry" },
  setup = retry_setup, setup_main = retry_setup }

add { name = "BackgroundTaskManager:stop_task", names = { "BackgroundTaskManager:stop_task" },
  setup = function()
    local m = fdn.BackgroundTaskManager.new()
    m:start_task("t", noop, { interval = 1000, run_immediately = false })
    return function() m:stop_task("t") end, function()
      if m:status("t").state ~= "scheduled" then return "task " .. m:status("t").state end
    end, function() m:shutdown { timeout = 0 } end
  end }

add { name = "BackgroundTaskManager:shutdown", names = { "BackgroundTaskManager:shutdown" },
  setup = function()
    local m = fdn.BackgroundTaskManager.new()
    m:start_task("t", noop, { interval = 1000, run_immediately = false })
    return function() m:shutdown() end, function()
      if m:is_shut_down() then return "the manager was shut down" end
    end, function() m:shutdown { timeout = 0 } end
  end,
  setup_main = function()
    local m = fdn.BackgroundTaskManager.new()
    return function() m:shutdown() end, function()
      if m:is_shut_down() then return "the manager was shut down" end
    end
  end }

add { name = "clock:advance", names = { "clock:advance" }, where = { "clock:advance" },
  main_ok = "from outside any task clock:advance runs the engine itself (documented)",
  setup = function()
    local c = T.clock()
    return function() c:advance(1) end
  end }

add { name = "fdn.testing.eventually", names = { "fdn.testing.eventually" },
  setup = function() return function() T.eventually(function() return false end) end end,
  setup_main = function() return function() T.eventually(function() return false end) end end }

add { name = "mock with a delay", names = { "fdn.sleep" },
  setup = function()
    local tbl = { f = noop }
    local m = T.mock_async(tbl, "f"):delay(1)
    return function() tbl.f() end, nil, function() m:restore() end
  end }

-- fdn.core's park pair, which the Lua primitives build on.
add { name = "core.park", names = { "fdn.park" },
  setup = function() return function() core.park() end end,
  setup_main = function() return function() core.park() end end }
add { name = "core.park_for", names = { "fdn.park_for" }, where = { "fdn.park_for" },
  setup = function() return function() core.park_for(1) end end,
  setup_main = function() return function() core.park_for(1) end end }

-- fdn.tcp and fdn.http: sockets need real I/O, which virtual time's jumps
-- would cut short, so their setups run with autojump off.
local function real_io(fn)
  local engine = core.engine_running()
  engine:set_autojump(false)
  local ok, a, b, c = pcall(fn)
  engine:set_autojump(true)
  if not ok then
    error(a, 0)
  end
  return a, b, c
end

local function open_handles()
  return #core.engine_handles(core.engine_running())
end

local function no_new_handles(before)
  return function()
    local now_open = open_handles()
    if now_open ~= before then
      return string.format("%d handle(s) open, %d before the call", now_open, before)
    end
  end
end

local function tcp_pair()
  return real_io(function()
    local l = fdn.tcp.listen { port = 0 }
    local c = fdn.tcp.connect { host = "127.0.0.1", port = l:port(), timeout = 5 }
    local p = l:accept(5)
    l:close()
    return c, p
  end)
end

local function pair_setup(call, check)
  return function()
    local c, p = tcp_pair()
    return function() call(c, p) end, check and function() return check(c, p) end,
      function()
        c:close()
        p:close()
      end
  end
end

local function unread(c)
  local buffered = c:buffered()
  if buffered ~= 0 then
    return buffered .. " byte(s) read ahead"
  end
end

local function nothing_queued(c)
  local _, queued = c:buffered()
  if queued ~= 0 then
    return queued .. " byte(s) queued for writing"
  end
end

add { name = "listener:accept", names = { "listener:accept" }, where = { "listener:accept" },
  setup = function()
    local l = fdn.tcp.listen { port = 0 }
    return function() l:accept() end, function()
      if l:is_closed() then return "the listener was closed" end
    end, function() l:close() end
  end }

add { name = "fdn.tcp.connect", names = { "fdn.tcp.connect" }, where = { "fdn.tcp.connect" },
  setup = function()
    local l = fdn.tcp.listen { port = 0 }
    local before = open_handles()
    return function() fdn.tcp.connect { host = "127.0.0.1", port = l:port() } end,
      no_new_handles(before), function() l:close() end
  end }

add { name = "conn:read", names = { "conn:read" }, where = { "conn:read" },
  setup = pair_setup(function(c) c:read() end, unread) }
add { name = "conn:read_exactly", names = { "conn:read_exactly", "conn:read" },
  setup = pair_setup(function(c) c:read_exactly(4) end, unread) }
add { name = "conn:read_until", names = { "conn:read_until" }, where = { "conn:read_until" },
  setup = pair_setup(function(c) c:read_until("\n") end, unread) }
-- A write over the write limit must wait: refused before anything is sent.
add { name = "conn:write", names = { "conn:write" }, where = { "conn:write" },
  setup = pair_setup(function(c)
    c:set_limits(nil, 1)
    c:write("xy")
  end, nothing_queued) }
-- drain waits while the kernel holds back what the peer does not read.
add { name = "conn:drain", names = { "conn:drain", "conn:write" },
  setup = function()
    local c, p = tcp_pair()
    c:set_limits(nil, 64 * 1024 * 1024)
    c:write(string.rep("x", 16 * 1024 * 1024))
    local _, queued = c:buffered()
    return function() c:drain() end, function()
      local _, q = c:buffered()
      if q ~= queued then return "queued " .. q .. ", was " .. queued end
    end, function()
      c:close()
      p:close()
    end
  end }
add { name = "conn:shutdown", names = { "conn:shutdown" }, where = { "conn:shutdown" },
  setup = pair_setup(function(c) c:shutdown() end, function(c)
    if not pcall(c.write, c, "still open") then return "the stream was shut down" end
  end) }

local function http_server(app)
  return (app or fdn.http.app {}):listen { port = 0 }
end

add { name = "fdn.http.request", names = { "fdn.http.request" },
  setup = function()
    local srv = http_server()
    local before = open_handles()
    return function() fdn.http.request { url = "http://127.0.0.1:" .. srv.port .. "/" } end,
      no_new_handles(before), function() srv:close { timeout = 0 } end
  end }
add { name = "client:request", names = { "client:request" },
  setup = function()
    local srv = http_server()
    local client = fdn.http.Client.new {}
    local before = open_handles()
    return function() client:request { url = "http://127.0.0.1:" .. srv.port .. "/" } end,
      no_new_handles(before), function()
        client:close()
        srv:close { timeout = 0 }
      end
  end }
add { name = "server:wait", names = { "server:wait" },
  setup = function()
    local srv = http_server()
    return function() srv:wait() end, function()
      if srv.closing then return "the server was closed" end
    end, function() srv:close { timeout = 0 } end
  end }
-- From the main thread server:close closes everything at once (documented).
add { name = "server:close", names = { "server:close" },
  main_ok = "outside any task server:close closes every socket at once, waiting for nothing",
  setup = function()
    local srv = http_server()
    return function() srv:close() end, function()
      if srv.closing then return "the server was closed" end
    end, function() srv:close { timeout = 0 } end
  end }
-- A request whose body its handler has not read yet.
add { name = "req:body", names = { "req:body" }, where = { "http_read_body" },
  setup = function()
    return real_io(function()
      local got, release = fdn.Event.new(), fdn.Event.new()
      local req
      local app = fdn.http.app {}
      app:post("/", function(r)
        req = r
        got:set()
        release:wait()
        return "ok"
      end)
      local srv = http_server(app)
      local client = fdn.spawn(function()
        local conn = fdn.tcp.connect { host = "127.0.0.1", port = srv.port, timeout = 5 }
        -- The head only: the body never comes, so reading it must wait.
        conn:write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        release:wait()
        conn:close()
      end)
      got:wait()
      return function() req:body() end, function()
        if req._body ~= nil or not req._pending then return "the body was consumed" end
      end, function()
        release:set()
        real_io(function()
          client:wait()
          srv:close { timeout = 1 }
        end)
      end
    end)
  end }

-- `where` strings of the bindings no user call can reach, and why.
local UNREACHABLE_WHERE = {
  ["Batcher (flusher)"] = "only a batcher's own flusher tasks call it",
  ["TaskManager (waiting for a slot)"] = "marks a child a TaskManager has not started yet: "
    .. "it has not run, so it called nothing",
  http_read_head = "only fdn.http's own connection tasks and its client (which checks first, "
    .. "naming fdn.http.request or client:request) read heads",
}

-- Suspension sites of the Lua library, per file: calls of the suspending
-- core functions and of fdn's own suspending functions. A new site changes
-- the count: list the primitive it belongs to above, then the count here.
local LUA_SITES = {
  background_task_manager = { 4, "worker sleeps (park_for), a run's fdn.timeout, stop and "
    .. "shutdown waiting for workers: BackgroundTaskManager:stop_task / :shutdown" },
  batcher = { 5, "handle:wait/join (park), Batcher:add (wait_space), the flusher (next), "
    .. "Batcher:flush / :close (wait)" },
  bulkhead = { 1, "Bulkhead:acquire" },
  cache = { 1, "cache (joining a computation)" },
  children = { 3, "scopes waiting for children: ConcurrentExecutor:map, TaskPool:close / :cancel" },
  concurrent_executor = { 1, "the workers' iterator lock (inside map's own tasks)" },
  event = { 1, "Event:wait" },
  init = { 5, "task:join, task:wait, fdn.sleep, fdn.gather (twice)" },
  queue = { 3, "Queue:put, Queue:get, Queue:iter" },
  rate_limiter = { 1, "RateLimiter:acquire" },
  retry = { 1, "fdn.retry (backoff)" },
  semaphore = { 3, "Semaphore:acquire, Semaphore:with, fdn.with(semaphore)" },
  task_manager = { 2, "TaskManager:gather (fdn.gather), TaskManager:__exit" },
  task_pool = { 4, "the workers' queue (own tasks), TaskPool:submit (acquire and put), "
    .. "TaskPool:gather_results" },
  testing = { 1, "clock:advance" },
  testing_assert = { 1, "fdn.testing.eventually" },
  testing_mock = { 1, "mock with a delay" },
  tcp = { 9, "fdn.tcp.connect, listener:accept, conn:read, conn:read_exactly, conn:read_until, "
    .. "conn:write (write, then wait), conn:drain, conn:shutdown (their waits in C)" },
  _http_client = { 5, "fdn.http.request / client:request (connect, send, head, body)" },
  _http_server = { 10, "a connection task's own sends, head reads, body skipping and "
    .. "handler_timeout; req:body; server:wait; server:close (drained, the accept task, done)" },
}

local SUSPENDING_CORE = {
  park = true, park_for = true, sleep = true, limiter_acquire = true, queue_get = true,
  queue_put = true, event_wait = true, join_wait = true, group_wait = true, nursery_wait = true,
  bulkhead_enter = true, advance = true,
  tcp_accept = true, tcp_connect_wait = true, tcp_read = true, tcp_read_until = true,
  tcp_write = true, tcp_wait_writable = true, tcp_shutdown = true, http_read_head = true,
  http_read_body = true,
}

--- The suspension sites of a Lua source: lines calling a local bound to a
-- suspending core function, the batcher's waiting closures, or fdn's own
-- suspending functions.
local function lua_sites(src)
  local aliases = {}
  for lhs, rhs in src:gmatch("local ([%w_, ]+) = ([^\n]+)") do
    local names, vals = {}, {}
    for n in lhs:gmatch("[%w_]+") do names[#names + 1] = n end
    for v in rhs:gmatch("[^,]+") do vals[#vals + 1] = v:match("^%s*(.-)%s*$") end
    for i, n in ipairs(names) do
      local c = vals[i] and vals[i]:match("^core%.([%w_]+)$")
      if c and SUSPENDING_CORE[c] then
        aliases[n] = true
      end
    end
  end
  local sites, lineno = {}, 0
  for line in (src .. "\n"):gmatch("(.-)\n") do
    lineno = lineno + 1
    local code = line:gsub("%-%-.*$", "")
    if not code:match("^%s*local [%w_, ]+ = core%.") and not code:match("^function ") then
      local hit = false
      for a in pairs(aliases) do
        if code:find("%f[%w_]" .. a .. "%(") then hit = true end
      end
      for c in pairs(SUSPENDING_CORE) do
        if code:find("core%." .. c .. "%(") then hit = true end
      end
      for _, pat in ipairs { "c%.wait%(", "c%.wait_space%(", "c%.next%(", "fdn%.sleep%(",
          "fdn%.gather%(", "fdn%.timeout[(,]", ":wait%(%)", ":join%(%)", "ev%.wait", "M%.wait," } do
        if code:find(pat) then hit = true end
      end
      if hit then
        sites[#sites + 1] = lineno .. ": " .. line:match("^%s*(.-)%s*$")
      end
    end
  end
  return sites
end

local function cross_check()
  local root = catalog.source_dir()
  -- 1. The bindings' where strings.
  local covered = {}
  for _, e in ipairs(E) do
    for _, w in ipairs(e.where or {}) do covered[w] = true end
  end
  local p = assert(io.popen("cat " .. root .. "/bindings/*.c"))
  local src = p:read("*a")
  p:close()
  local wheres = {}
  for w in src:gmatch('lfdn_suspendable%(L, "([^"]+)"%)') do wheres[w] = true end
  for w in src:gmatch('lfdn_yield%(L, [%w_]+, "([^"]+)"%)') do wheres[w] = true end
  for w in src:gmatch('task%->where = "([^"]+)"') do wheres[w] = true end
  -- The TCP streams' own parking helpers (bindings/l_tcp.c).
  for w in src:gmatch('stream_task%(L, [%w_]+, "([^"]+)"%)') do wheres[w] = true end
  for w in src:gmatch('lfdn_tcp_wait_readable%(L, [%w_]+, [%w_]+, "([^"]+)"%)') do wheres[w] = true end
  -- Functions that suspend under a variable name: every literal assigned to it.
  for body in (src .. "\nstatic "):gmatch("\n(static [^\n]*%b()%s*%b{})") do
    if (body:find("lfdn_suspendable%(L, fname%)") or body:find("lfdn_yield%(L, [%w_]+, fname%)"))
        and (body:find("lfdn_yield%(") or body:find("lua_yield%(")) then
      for rhs in body:gmatch("fname%s*=%s*([^;]+);") do
        for w in rhs:gmatch('"([^"]+)"') do wheres[w] = true end
      end
    end
  end
  local n = 0
  for w in pairs(wheres) do
    n = n + 1
    checked = checked + 1
    if not covered[w] and not UNREACHABLE_WHERE[w] then
      fail("the bindings suspend in '" .. w .. "' but no yield-matrix entry covers it")
    end
  end
  -- 2. The Lua library's suspension sites.
  for _, m in ipairs(catalog.module_files()) do
    local f = assert(io.open(m.path))
    local sites = lua_sites(f:read("*a"))
    f:close()
    local declared = LUA_SITES[m.file]
    checked = checked + 1
    if #sites > 0 and declared == nil then
      fail("lua/fdn/" .. m.file .. ".lua suspends (" .. table.concat(sites, "; ")
        .. ") but LUA_SITES does not list it")
    elseif declared and declared[1] ~= #sites then
      fail(string.format("lua/fdn/%s.lua has %d suspension site(s), LUA_SITES says %d: %s",
        m.file, #sites, declared[1], table.concat(sites, "; ")))
    end
  end
  return n
end

-- Running the cases -------------------------------------------------------------

local function judge(e, context, ok, err, how)
  checked = checked + 1
  local where = e.name .. " [" .. context .. "]"
  if how then
    return fail(where .. ": " .. how)
  end
  if ok then
    if (context == "main" or context == "main_engine") and e.main_ok then
      return
    end
    return fail(where .. ": returned normally; it should have needed to suspend")
  end
  local text = errors.format(err)
  if text:find("attempt to yield", 1, true) then
    return fail(where .. ": " .. text)
  end
  if not errors.class_of(err) then
    return fail(where .. ": raised a plain Lua error: " .. text)
  end
  if not errors.is(err, errors.InvalidState) then
    return fail(where .. ": raised " .. text .. " (expected InvalidState)")
  end
  local message = tostring(err.message)
  for _, name in ipairs(e.names) do
    if message:find(name, 1, true) then
      return
    end
  end
  fail(where .. ": the error does not name " .. table.concat(e.names, " or ") .. ": " .. message)
end

local function run_in(context, call)
  if context == "coroutine" then
    local co = coroutine.create(call)
    local ok, err = coroutine.resume(co)
    if coroutine.status(co) == "suspended" then
      return false, nil, "yielded the caller's own coroutine instead of raising"
    end
    return ok, err
  elseif context == "sort" then
    local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b)
      call()
      return a < b
    end)
    return ok, err
  elseif context == "gsub" then
    local ok, err = pcall(string.gsub, "ab", ".", function() call() end)
    return ok, not ok and err or nil
  end
  error("unknown context " .. context)
end

local function task_case(e, context)
  C.trace(e.name .. " " .. context)
  local task = fdn.spawn(function()
    local call, check, cleanup = e.setup()
    local ok, err, how = run_in(context, call)
    judge(e, context, ok, err, how)
    -- The task goes on as if nothing happened.
    local went_on, serr = pcall(fdn.sleep, 0)
    if not went_on then
      fail(e.name .. " [" .. context .. "]: the task cannot sleep afterwards: " .. C.show(serr))
    end
    local disturbed = check and check()
    if disturbed then
      fail(e.name .. " [" .. context .. "]: the failed call disturbed the object: " .. disturbed)
    end
    if cleanup then
      fdn.shielded(cleanup)
    end
  end)
  local ok, err = task:wait()
  if not ok then
    fail(e.name .. " [" .. context .. "]: the case's task failed: " .. C.show(err))
  end
end

local function main_case(e)
  C.trace(e.name .. " main")
  if not e.setup_main then
    return false
  end
  local call, check = e.setup_main()
  local ok, err = pcall(call)
  judge(e, "main", ok, err)
  local disturbed = check and check()
  if disturbed then
    fail(e.name .. " [main]: the failed call disturbed the object: " .. disturbed)
  end
  return true
end

local function main_engine_case(e)
  C.trace(e.name .. " main_engine")
  local engine = core.engine_new { clock = "virtual" }
  local held = {}
  local setup = fdn.spawn(function()
    held.call, held.check, held.cleanup = e.setup()
  end)
  engine:run(setup, { detach = true, timeout = 30 })
  local _, serr = core.task_outcome(setup, false)
  if held.call == nil then
    fail(e.name .. " [main_engine]: setup failed: " .. C.show(serr))
  else
    local ok, err = pcall(held.call)
    judge(e, "main_engine", ok, err)
    local after = fdn.spawn(function()
      local disturbed = held.check and held.check()
      if disturbed and not (ok and e.main_ok) then
        fail(e.name .. " [main_engine]: the failed call disturbed the object: " .. disturbed)
      end
      if held.cleanup then
        fdn.shielded(held.cleanup)
      end
    end)
    engine:run(after, { detach = true, timeout = 30 })
  end
  engine:close()
end

local function main()
  local where_count = cross_check()
  local skipped_main = {}
  C.with_log_capture(function()
    for _, e in ipairs(E) do
      if not main_case(e) then
        skipped_main[#skipped_main + 1] = e.name
      end
      main_engine_case(e)
    end
    T.run(function()
      for _, e in ipairs(E) do
        for _, context in ipairs { "coroutine", "sort", "gsub" } do
          task_case(e, context)
        end
      end
    end, { timeout = 120 })
  end)
  C.trace("done")
  C.finish("yield-matrix", checked, #failures, {
    string.format("%d primitives x %d contexts", #E, #CONTEXTS),
    string.format("%d binding suspension points cross-checked", where_count),
    string.format("%d set up only with an engine (main thread covered by main_engine)",
      #skipped_main),
  })
end

main()
