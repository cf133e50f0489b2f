local fdn = require "fdn"
local errors = fdn.errors
local events = require "fdn.events"
local log = require "fdn.log"

local function vrun(fn, opts)
  opts = opts or {}
  opts.clock = "virtual"
  return fdn.run(fn, opts)
end

-- A function that counts its calls per key and answers "<key>#<call>".
local function counted(delay)
  local calls, total = {}, 0
  local f = function(k)
    total = total + 1
    calls[k] = (calls[k] or 0) + 1
    if delay then
      fdn.sleep(delay)
    end
    return k .. "#" .. calls[k]
  end
  return f, calls, function() return total end
end

describe("fdn.cache", function()
  before_each(function()
    log.configure { level = "info", sink = function() end }
  end)

  after_each(function()
    events.reset()
    log.configure { level = "info", sink = "stderr", format = "console" }
  end)

  describe("expiry", function()
    it("keeps results for ttl seconds of the engine clock", function()
      vrun(function()
        local f, calls = counted()
        local c = fdn.cache { ttl = 10 }(f)
        assert.equal("a#1", c("a"))
        fdn.sleep(9.9)
        assert.equal("a#1", c("a"))
        fdn.sleep(0.1) -- exactly ttl: expired
        assert.equal("a#2", c("a"))
        assert.equal(2, calls.a)
        local s = c:stats()
        assert.equal(1, s.hits)
        assert.equal(2, s.misses)
        assert.equal(1, s.expirations)
      end)
    end)

    it("caches nil and several results", function()
      vrun(function()
        local n = 0
        local c = fdn.cache { ttl = 60 }(function()
          n = n + 1
          return nil, "second", nil
        end)
        for _ = 1, 3 do
          local a, b, d = c("k")
          assert.is_nil(a)
          assert.equal("second", b)
          assert.is_nil(d)
          assert.equal(3, select("#", c("k")))
        end
        assert.equal(1, n)
        local only_nil = 0
        local c2 = fdn.cache { ttl = 60 }(function()
          only_nil = only_nil + 1
        end)
        c2(1)
        c2(1)
        assert.equal(0, select("#", c2(1)))
        assert.equal(1, only_nil)
      end)
    end)

    it("a ttl of 0 keeps nothing but still shares a running computation", function()
      vrun(function()
        local f, _, total = counted(1)
        local c = fdn.cache { ttl = 0 }(f)
        local t1 = fdn.spawn(c, "x")
        local t2 = fdn.spawn(c, "x")
        assert.same({ "x#1", "x#1" }, fdn.gather(t1, t2))
        assert.equal("x#2", c("x"))
        assert.equal(2, total())
      end)
    end)
  end)

  describe("LRU eviction", function()
    it("evicts the least recently used entry past max_entries", function()
      local evicted = {}
      events.subscribe("cache.evicted", function(_, e) evicted[#evicted + 1] = e.key .. ":" .. e.reason end)
      vrun(function()
        local f, calls = counted()
        local c = fdn.cache { ttl = 100, max_entries = 3, name = "lru" }(f)
        c("a")
        c("b")
        c("c")
        c("a") -- a is now the most recent: b is the least
        c("d") -- evicts b
        assert.same({ "b:lru" }, evicted)
        c("a")
        c("c")
        c("d")
        assert.same({ a = 1, b = 1, c = 1, d = 1 }, calls)
        c("b") -- recomputed; evicts a (least recent of a, c, d)
        assert.same({ "b:lru", "a:lru" }, evicted)
        assert.equal(2, calls.b)
        local s = c:stats()
        assert.equal(3, s.size)
        assert.equal(2, s.evictions)
      end)
    end)

    it("max_entries = 1 keeps only the last key", function()
      vrun(function()
        local f, calls = counted()
        local c = fdn.cache { max_entries = 1 }(f)
        c(1)
        c(2)
        c(2)
        c(1)
        assert.same({ [1] = 2, [2] = 1 }, calls)
      end)
    end)
  end)

  describe("single flight", function()
    it("100 concurrent callers of one key share one computation", function()
      vrun(function()
        local f, calls = counted(1)
        local c = fdn.cache { ttl = 60 }(f)
        local tasks = {}
        for i = 1, 100 do
          tasks[i] = fdn.spawn(c, "k")
        end
        local results = fdn.gather(tasks)
        assert.equal(1, calls.k)
        for i = 1, 100 do
          assert.equal("k#1", results[i])
        end
        assert.equal(1, fdn.now())
        local s = c:stats()
        assert.equal(100, s.misses)
        assert.equal(99, s.coalesced)
        assert.equal(0, s.in_flight)
        assert.equal("k#1", c("k"))
      end)
    end)

    it("different keys compute concurrently", function()
      vrun(function()
        local f, calls = counted(1)
        local c = fdn.cache { ttl = 60 }(f)
        local tasks = {}
        for i = 1, 10 do
          tasks[i] = fdn.spawn(c, "k" .. (i % 3))
        end
        fdn.gather(tasks)
        assert.same({ k0 = 1, k1 = 1, k2 = 1 }, calls)
        assert.equal(1, fdn.now())
      end)
    end)

    it("a failure reaches every waiting caller and is not cached", function()
      vrun(function()
        local n = 0
        local c = fdn.cache { ttl = 60 }(function()
          n = n + 1
          fdn.sleep(1)
          if n == 1 then
            error(errors.Error.new("backend down"))
          end
          return "ok"
        end)
        local tasks = {}
        for i = 1, 20 do
          tasks[i] = fdn.spawn(c, "k")
        end
        local results = fdn.gather(tasks, { return_errors = true })
        for i = 1, 20 do
          assert.equal("backend down", results[i].message)
        end
        assert.equal(results[1], results[20]) -- the same error value
        assert.equal(1, n)
        assert.equal("ok", c("k"))
        assert.equal(2, n)
        assert.equal(1, c:stats().failures)
      end)
    end)

    it("when the caller computing a key is cancelled, a waiter takes over", function()
      vrun(function()
        local f, calls = counted(2)
        local c = fdn.cache { ttl = 60 }(f)
        local leader = fdn.spawn(c, "k")
        fdn.sleep(0.5)
        local waiters = {}
        for i = 1, 5 do
          waiters[i] = fdn.spawn(c, "k")
        end
        fdn.sleep(0.5)
        leader:cancel("caller gave up")
        local ok, err = leader:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Cancelled))
        -- Nobody hangs: the first waiter ran it again and shared it.
        local results = fdn.gather(waiters)
        for i = 1, 5 do
          assert.equal("k#2", results[i])
        end
        assert.equal(2, calls.k)
        assert.equal(3, fdn.now())
        assert.equal("k#2", c("k"))
      end)
    end)

    it("takes over even when the caller next in line was cancelled too", function()
      vrun(function()
        local f, calls = counted(2)
        local c = fdn.cache { ttl = 60 }(f)
        local leader = fdn.spawn(c, "k")
        fdn.sleep(0.1)
        local w1 = fdn.spawn(c, "k")
        local w2 = fdn.spawn(c, "k")
        fdn.sleep(0.1)
        w1:cancel()
        leader:cancel()
        assert.equal("k#2", w2:join())
        assert.is_false((w1:wait()))
        assert.equal(2, calls.k)
      end)
    end)

    it("a leader that times out hands over too", function()
      vrun(function()
        local f = counted(5)
        local c = fdn.cache { ttl = 60 }(f)
        local impatient = fdn.spawn(function() return fdn.timeout(1, c, "k") end)
        fdn.sleep(0.5)
        local patient = fdn.spawn(c, "k")
        local ok, err = impatient:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Timeout))
        assert.equal("k#2", patient:join())
        assert.equal(6, fdn.now())
      end)
    end)

    it("a cancelled computation with nobody waiting caches nothing", function()
      vrun(function()
        local f, calls = counted(2)
        local c = fdn.cache { ttl = 60 }(f)
        local t = fdn.spawn(c, "k")
        fdn.sleep(1)
        t:cancel()
        t:wait()
        assert.equal(0, c:stats().in_flight)
        assert.equal("k#2", c("k"))
        assert.equal(2, calls.k)
      end)
    end)

    it("a waiter cancelled while waiting raises Cancelled; the others still get the value", function()
      vrun(function()
        local f = counted(2)
        local c = fdn.cache { ttl = 60 }(f)
        local a = fdn.spawn(c, "k")
        fdn.sleep(0.1)
        local b = fdn.spawn(c, "k")
        local d = fdn.spawn(c, "k")
        fdn.sleep(0.1)
        b:cancel()
        local ok, err = b:wait()
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.Cancelled))
        assert.same({ "k#1", "k#1" }, fdn.gather(a, d))
      end)
    end)
  end)

  describe("negative_ttl and stale_while_revalidate", function()
    it("negative_ttl keeps a failure for that long", function()
      vrun(function()
        local n = 0
        local c = fdn.cache { ttl = 60, negative_ttl = 5 }(function()
          n = n + 1
          if n == 1 then
            error("not found", 0)
          end
          return "found"
        end)
        for _ = 1, 3 do
          local ok, err = pcall(c, "k")
          assert.is_false(ok)
          assert.equal("not found", err) -- the same value, even a string
        end
        assert.equal(1, n)
        assert.equal(2, c:stats().negative_hits)
        fdn.sleep(5)
        assert.equal("found", c("k"))
        assert.equal(2, n)
      end)
    end)

    it("serves a stale entry while one task refreshes it", function()
      local refreshed = {}
      events.subscribe("cache.refreshed", function(_, e) refreshed[#refreshed + 1] = e.ok end)
      vrun(function()
        local f, calls = counted(1)
        local c = fdn.cache { ttl = 10, stale_while_revalidate = 5 }(f)
        assert.equal("k#1", c("k")) -- t = 1
        fdn.sleep(11) -- t = 12: stale (expired at 11), within the window
        assert.equal("k#1", c("k"))
        assert.equal("k#1", c("k"))
        assert.equal(12, fdn.now()) -- no waiting
        fdn.sleep(2)
        assert.equal("k#2", c("k"))
        assert.equal(2, calls.k)
        assert.same({ true }, refreshed)
        local s = c:stats()
        assert.equal(2, s.stale_hits)
        assert.equal(1, s.refreshes)
        -- Past ttl + window: a plain miss that waits.
        fdn.sleep(20)
        assert.equal("k#3", c("k"))
        assert.equal(35, fdn.now())
      end)
    end)

    it("a failed refresh keeps serving the stale value", function()
      log.configure { level = "error", sink = function() end }
      vrun(function()
        local n = 0
        local c = fdn.cache { ttl = 10, stale_while_revalidate = 100, negative_ttl = 50 }(function()
          n = n + 1
          if n == 2 then
            error("refresh failed")
          end
          return n
        end)
        assert.equal(1, c("k"))
        fdn.sleep(15)
        assert.equal(1, c("k")) -- stale; the refresh fails
        fdn.sleep(1)
        assert.equal(1, c("k")) -- still stale; a new refresh starts
        fdn.sleep(1)
        assert.equal(3, c("k"))
      end)
    end)
  end)

  describe("invalidate, clear, keys", function()
    it("invalidate forgets one key (through the key function)", function()
      vrun(function()
        local f, calls = counted()
        local c = fdn.cache { ttl = 60, key = function(user) return user.id end }(function(user)
          return f(user.id)
        end)
        assert.equal("1#1", c({ id = "1" }))
        assert.equal("1#1", c({ id = "1" }))
        c:invalidate({ id = "1" })
        assert.equal("1#2", c({ id = "1" }))
        assert.equal(2, calls["1"])
      end)
    end)

    it("a computation running when its key is invalidated is not kept", function()
      vrun(function()
        local f, calls = counted(1)
        local c = fdn.cache { ttl = 60 }(f)
        local t = fdn.spawn(c, "k")
        fdn.sleep(0.5)
        c:invalidate("k")
        assert.equal("k#1", t:join())
        assert.equal("k#2", c("k"))
        assert.equal(2, calls.k)
      end)
    end)

    it("clear forgets everything", function()
      vrun(function()
        local f, calls = counted()
        local c = fdn.cache { ttl = 60 }(f)
        c("a")
        c("b")
        c:clear()
        assert.equal(0, c:stats().size)
        c("a")
        c("b")
        assert.same({ a = 2, b = 2 }, calls)
      end)
    end)

    it("the default key tells argument lists apart by type, count and nil", function()
      local n = 0
      local c = fdn.cache { ttl = 60 }(function()
        n = n + 1
        return n
      end)
      local lists = { { 1 }, { "1" }, { true }, { "true" }, {}, { nil }, { "a", nil },
        { "a" }, { "a", "b" }, { "a|b" }, { "\0weird" }, { 0 / 0 }, { "x", 1.5 }, { "x", "1.5" } }
      local first = {}
      for i, args in ipairs(lists) do
        first[i] = c(unpack(args, 1, table.maxn(args) + (i == 6 and 1 or 0) + (i == 7 and 1 or 0)))
      end
      for i, args in ipairs(lists) do
        assert.equal(first[i],
          c(unpack(args, 1, table.maxn(args) + (i == 6 and 1 or 0) + (i == 7 and 1 or 0))))
      end
      assert.equal(#lists, n) -- each list its own entry; none recomputed
      local keys = {}
      local dk = require("fdn.cache")._default_key
      assert.equal(dk(1, "a"), "a")
      keys[dk(0)] = true
      keys[dk(1, nil)] = true
      keys[dk(2, "a", nil)] = true
      keys[dk(2, "ab", "c")] = true
      keys[dk(2, "a", "bc")] = true
      local count = 0
      for _ in pairs(keys) do
        count = count + 1
      end
      assert.equal(5, count)
    end)

    it("works outside any task when nothing has to wait", function()
      local f, calls = counted()
      local c = fdn.cache { ttl = 60 }(f)
      assert.equal("a#1", c("a"))
      assert.equal("a#1", c("a"))
      assert.equal(1, calls.a)
    end)
  end)

  describe("events", function()
    it("emits cache.miss, cache.hit, cache.failed", function()
      local got = {}
      events.subscribe("cache.*", function(name, e) got[#got + 1] = name .. ":" .. tostring(e.key) end)
      vrun(function()
        local c = fdn.cache { name = "ev" }(function(k)
          if k == "bad" then
            error("no")
          end
          return k
        end)
        c("a")
        c("a")
        pcall(c, "bad")
      end)
      assert.same({ "cache.miss:a", "cache.hit:a", "cache.miss:bad", "cache.failed:bad" }, got)
    end)
  end)

  describe("bad arguments", function()
    local f = function() end
    local cases = {
      { "opts", 5 },
      { "opts", "x" },
      { "opts.ttl", { ttl = -1 } },
      { "opts.ttl", { ttl = "5" } },
      { "opts.ttl", { ttl = 0 / 0 } },
      { "opts.max_entries", { max_entries = 0 } },
      { "opts.max_entries", { max_entries = 1.5 } },
      { "opts.key", { key = "id" } },
      { "opts.stale_while_revalidate", { stale_while_revalidate = -2 } },
      { "opts.negative_ttl", { negative_ttl = true } },
      { "opts.name", { name = {} } },
    }
    for _, case in ipairs(cases) do
      it("rejects a bad " .. case[1], function()
        local ok, err = pcall(function() return fdn.cache(case[2])(f) end)
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.InvalidArgument), tostring(err))
        assert.equal(case[1], err.context.parameter)
      end)
    end

    it("rejects something that is not a function to cache", function()
      local ok, err = pcall(fdn.cache {}, 42)
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidArgument))
      assert.equal("fn", err.context.parameter)
    end)

    it("rejects table arguments without a key function, naming the argument", function()
      local c = fdn.cache {}(f)
      local ok, err = pcall(c, "a", {})
      assert.is_false(ok)
      assert.is_true(errors.is(err, errors.InvalidArgument))
      assert.equal("argument #2", err.context.parameter)
      assert.matches("key", err.message)
    end)

    it("rejects a key function that returns nil or NaN", function()
      for _, bad in ipairs { function() return nil end, function() return 0 / 0 end } do
        local c = fdn.cache { key = bad }(f)
        local ok, err = pcall(c, 1)
        assert.is_false(ok)
        assert.is_true(errors.is(err, errors.InvalidArgument))
      end
    end)

    it("fdn.cache(f) uses the defaults", function()
      local n = 0
      local c = fdn.cache(function()
        n = n + 1
      end)
      c()
      c()
      assert.equal(1, n)
      assert.equal("fdn.cache(" .. c:stats().name .. ")", tostring(c))
    end)
  end)
end)
