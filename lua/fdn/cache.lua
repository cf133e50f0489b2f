--- fdn.cache: a TTL + LRU cache decorator with single-flight.
--
--   local get_user = fdn.cache{ttl = 300, max_entries = 1000}(function(id)
--     return db:load_user(id)                -- may suspend
--   end)
--   get_user(42)                             -- computes; later calls hit
--   get_user:invalidate(42); get_user:clear(); get_user:stats()
--
-- Results (all of them, nil included) are kept for `ttl` seconds of the
-- engine clock (fdn.now, so virtual under a virtual clock); past
-- `max_entries` the least recently used entry goes. Concurrent callers of
-- one key share one computation: the first runs it in its own task, the
-- others wait. If it fails, they all get the error and nothing is cached
-- (unless `negative_ttl` asks to keep failures for a while). If the caller
-- running it is cancelled, one of the waiters takes over and runs it again,
-- so nobody waits on work that was abandoned.
--
-- With `stale_while_revalidate = s`, an entry up to `s` seconds past its
-- ttl is still served while one background task refreshes it.
local fdn = require "fdn"
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local log = require "fdn.log"
local shared = require "fdn._shared"
local pack = shared.pack

local M = {}

local type, select, pcall, error, setmetatable = type, select, pcall, error, setmetatable
local tostring, pairs, byte = tostring, pairs, string.byte
local format, concat = string.format, table.concat
local unpack, huge = unpack, math.huge

local now, park, wake, c_current = core.now, core.park, core.wake, core.current
local cancel_pending, check_suspendable = core.cancel_pending, core.check_suspendable
local wake_error, is_callable = fdn._wake_error, fdn.is_callable
local argerror, is_error = errors.argerror, errors.is
local Cancelled, InvalidArgument, InvalidState = errors.Cancelled, errors.InvalidArgument,
  errors.InvalidState

local logger = log.get("fdn.cache")

-- Keys ----------------------------------------------------------------------

-- The key of a call from its arguments: strings, numbers, booleans and
-- nil. A single string (not starting with "\0"), number or boolean is its
-- own key; anything else is encoded into a string starting with "\0" that
-- tags each argument's type and length, so two different argument lists
-- never share a key. Returns nil, position, value for an argument of
-- another type.
local function default_key(n, ...)
  if n == 1 then
    local a = ...
    local t = type(a)
    if (t == "string" and byte(a, 1) ~= 0) or t == "boolean" or (t == "number" and a == a) then
      return a
    end
  end
  local parts = { "\0", n }
  for i = 1, n do
    local v = select(i, ...)
    local t = type(v)
    if t == "string" then
      parts[i + 2] = "s" .. #v .. ":" .. v
    elseif t == "number" then
      parts[i + 2] = "n" .. format("%.17g", v)
    elseif t == "boolean" then
      parts[i + 2] = v and "T" or "F"
    elseif t == "nil" then
      parts[i + 2] = "_"
    else
      return nil, i, v
    end
  end
  return concat(parts, "|")
end
M._default_key = default_key

local function key_of(self, ...)
  local keyfn = self._keyfn
  if keyfn == nil then
    local key, pos, value = default_key(select("#", ...), ...)
    if key == nil then
      argerror(self._name, "argument #" .. pos,
        "a string, number, boolean or nil (give the cache a `key` function for other "
          .. "arguments)", value, 3)
    end
    return key
  end
  local key = keyfn(...)
  if key == nil or key ~= key then
    error(InvalidArgument.new(self._name .. ": the key function returned "
      .. tostring(key) .. "; it must return a value usable as a table key",
      { context = { ["function"] = self._name, parameter = "key" } }), 3)
  end
  return key
end

-- Entries and their LRU list --------------------------------------------------

-- An entry: key, values (packed results) or err (a cached failure),
-- expires (engine seconds), prev/next in the LRU list (head = most recent).

local function unlink(self, e)
  local p, nx = e.prev, e.next
  if p then p.next = nx else self._head = nx end
  if nx then nx.prev = p else self._tail = p end
  e.prev, e.next = nil, nil
end

local function push_front(self, e)
  local h = self._head
  e.prev, e.next = nil, h
  if h then h.prev = e else self._tail = e end
  self._head = e
end

local function remove(self, e, reason)
  unlink(self, e)
  self._entries[e.key] = nil
  self._size = self._size - 1
  local st = self._stats
  if reason == "lru" then
    st.evictions = st.evictions + 1
  elseif reason == "expired" then
    st.expirations = st.expirations + 1
  end
  if events.has("cache.evicted") then
    events.emit("cache.evicted", { cache = self._name, key = e.key, reason = reason })
  end
end

local function store(self, key, ttl, values, err)
  if ttl <= 0 then
    return
  end
  local entries = self._entries
  local e = entries[key]
  if e then
    unlink(self, e)
  else
    e = { key = key }
    entries[key] = e
    self._size = self._size + 1
  end
  e.values, e.err = values, err
  e.expires = now() + ttl
  push_front(self, e)
  while self._size > self._max do
    remove(self, self._tail, "lru")
  end
end

-- Single flight ----------------------------------------------------------------

-- A flight: the computation of one key. leader: the task running it;
-- waiters: tasks waiting for it; done, ok, values/err once finished;
-- discard: invalidated meanwhile, so its result is not stored.

local function finish(self, flight, ok, values, err)
  if self._flights[flight.key] == flight then
    self._flights[flight.key] = nil
    self._stats.in_flight = self._stats.in_flight - 1
  end
  flight.done, flight.ok, flight.values, flight.err = true, ok, values, err
  local waiters = flight.waiters
  flight.waiters = {}
  for i = 1, #waiters do
    wake(waiters[i])
  end
end

-- Hands the flight to the first waiter still parked; false when none is.
local function hand_over(flight)
  local waiters = flight.waiters
  while #waiters > 0 do
    local task = table.remove(waiters, 1)
    if wake(task, "lead") then
      return true
    end
  end
  return false
end

local lead

local function join(self, flight, ...)
  local me = c_current()
  if me == nil then
    error(InvalidState.new(self._name .. ": another call computes this key; waiting "
      .. "for it needs a task"), 3)
  end
  -- Checked before joining the waiters: a caller that cannot wait (inside a
  -- table.sort comparator, a coroutine of its own) must leave no waiter
  -- behind for the flight to wake later.
  check_suspendable(self._name)
  local waiters = flight.waiters
  waiters[#waiters + 1] = me
  local st, signal = park() -- false, value when woken; st, cause when cancelled
  if st then
    for i = #waiters, 1, -1 do
      if waiters[i] == me then
        table.remove(waiters, i)
      end
    end
    return wake_error(st, signal, self._name)
  end
  if signal == "lead" then
    return lead(self, flight, ...)
  end
  if flight.ok then
    local v = flight.values
    return unpack(v, 1, v.n)
  end
  error(flight.err, 0)
end

-- Runs f as the flight's leader and returns its results, or raises.
lead = function(self, flight, ...)
  flight.leader = c_current()
  local res = pack(pcall(self._fn, ...))
  if res[1] then
    local values = pack(unpack(res, 2, res.n))
    if not flight.discard then
      store(self, flight.key, self._ttl, values, nil)
    end
    finish(self, flight, true, values)
    return unpack(values, 1, values.n)
  end
  local err = res[2]
  local cancelled = is_error(err, Cancelled)
  -- Cancelled itself: the others should not inherit that; one takes over.
  if cancelled and cancel_pending() ~= 0 and hand_over(flight) then
    error(err, 0)
  end
  self._stats.failures = self._stats.failures + 1
  if events.has("cache.failed") then
    events.emit("cache.failed", { cache = self._name, key = flight.key, error = err })
  end
  -- A failed refresh keeps serving the stale entry: that is its point.
  if self._negative_ttl and not cancelled and not flight.discard and not flight.refresh then
    store(self, flight.key, self._negative_ttl, nil, err)
  end
  finish(self, flight, false, nil, err)
  error(err, 0)
end

local function new_flight(self, key)
  local flight = { key = key, waiters = {} }
  self._flights[key] = flight
  self._stats.in_flight = self._stats.in_flight + 1
  return flight
end

-- Stale while revalidate: one background task refreshes a stale entry.
local function refresh(self, key, args)
  local flight = new_flight(self, key)
  flight.refresh = true
  self._stats.refreshes = self._stats.refreshes + 1
  local function run()
    local ok, err = pcall(lead, self, flight, unpack(args, 1, args.n))
    if events.has("cache.refreshed") then
      events.emit("cache.refreshed", { cache = self._name, key = key, ok = ok, error = err })
    end
    if not ok then
      logger.warn("cache.refresh_failed", { cache = self._name, key = key, error = err })
    end
  end
  local ok, err = pcall(fdn.spawn_with, { name = self._name .. "-refresh" }, run)
  if not ok then -- no engine to refresh in: the next caller past the window computes
    finish(self, flight, false, nil, err)
  end
end

-- The call ---------------------------------------------------------------------

local Cache = {}
Cache.__index = Cache

-- A method called on anything but a cached function (from fdn.cache): usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("cache:" .. method, "self",
    "a cached function (from fdn.cache) (call it with ':')", self, 3)
end
M.Cache = Cache

local function call(self, ...)
  if getmetatable(self) ~= Cache then
    bad_self(self, "__call")
  end
  local key = key_of(self, ...)
  local st = self._stats
  local e = self._entries[key]
  if e then
    local t = now()
    if t < e.expires then
      if e ~= self._head then
        unlink(self, e)
        push_front(self, e)
      end
      if e.err ~= nil then
        st.negative_hits = st.negative_hits + 1
        error(e.err, 0)
      end
      st.hits = st.hits + 1
      if events.has("cache.hit") then
        events.emit("cache.hit", { cache = self._name, key = key })
      end
      local v = e.values
      return unpack(v, 1, v.n)
    end
    local swr = self._swr
    if swr and e.err == nil and t < e.expires + swr then
      st.hits = st.hits + 1
      st.stale_hits = st.stale_hits + 1
      if self._flights[key] == nil then
        refresh(self, key, pack(...))
      end
      if events.has("cache.hit") then
        events.emit("cache.hit", { cache = self._name, key = key, stale = true })
      end
      local v = e.values
      return unpack(v, 1, v.n)
    end
    remove(self, e, "expired")
  end
  st.misses = st.misses + 1
  if events.has("cache.miss") then
    events.emit("cache.miss", { cache = self._name, key = key })
  end
  local flight = self._flights[key]
  if flight then
    st.coalesced = st.coalesced + 1
    return join(self, flight, ...)
  end
  return lead(self, new_flight(self, key), ...)
end

Cache.__call = call

--- Forgets the entry for these arguments (as given to the cached function:
-- the key function applies). A computation of that key already running
-- still answers its callers, but its result is not kept.
---@param ... any the arguments of the call to forget
function Cache:invalidate(...)
  if getmetatable(self) ~= Cache then
    bad_self(self, "invalidate")
  end
  local key = key_of(self, ...)
  local e = self._entries[key]
  if e then
    remove(self, e, "invalidated")
  end
  local flight = self._flights[key]
  if flight then
    flight.discard = true
  end
end

--- Forgets every entry (running computations are not kept either).
function Cache:clear()
  if getmetatable(self) ~= Cache then
    bad_self(self, "clear")
  end
  for _, e in pairs(self._entries) do
    e.prev, e.next = nil, nil
  end
  self._entries, self._head, self._tail, self._size = {}, nil, nil, 0
  for _, flight in pairs(self._flights) do
    flight.discard = true
  end
end

--- hits (stale ones included), stale_hits, misses, coalesced (misses
-- that joined a computation already running), negative_hits, evictions
-- (LRU), expirations, failures, refreshes, in_flight, size.
function Cache:stats()
  if getmetatable(self) ~= Cache then
    bad_self(self, "stats")
  end
  local s = {}
  for k, v in pairs(self._stats) do
    s[k] = v
  end
  s.size = self._size
  s.name = self._name
  return s
end

function Cache:__tostring()
  return "fdn.cache(" .. self._name .. ")"
end

-- Construction -----------------------------------------------------------------

local next_id = 0

local function check_seconds(fname, param, v, allow_nil)
  if v == nil and allow_nil then
    return
  end
  if type(v) ~= "number" or v ~= v or v < 0 then
    argerror(fname, param, "a non-negative number of seconds", v, 3)
  end
end

local function make(opts)
  local fname = "fdn.cache"
  local ttl = opts.ttl
  if ttl == nil then
    ttl = 300
  end
  check_seconds(fname, "opts.ttl", ttl)
  local max = opts.max_entries or 1000
  if max ~= huge and (type(max) ~= "number" or max < 1 or max % 1 ~= 0) then
    argerror(fname, "opts.max_entries", "a positive integer (or math.huge)", max, 2)
  end
  if opts.key ~= nil and not is_callable(opts.key) then
    argerror(fname, "opts.key", "a function", opts.key, 2)
  end
  check_seconds(fname, "opts.stale_while_revalidate", opts.stale_while_revalidate, true)
  check_seconds(fname, "opts.negative_ttl", opts.negative_ttl, true)
  if opts.name ~= nil and type(opts.name) ~= "string" then
    argerror(fname, "opts.name", "a string", opts.name, 2)
  end
  local swr = opts.stale_while_revalidate
  if swr == 0 then
    swr = nil
  end
  local neg = opts.negative_ttl
  if neg == 0 then
    neg = nil
  end
  return function(f)
    if not is_callable(f) then
      argerror(fname, "fn", "a function", f)
    end
    next_id = next_id + 1
    return setmetatable({
      _fn = f, _keyfn = opts.key, _ttl = ttl, _max = max, _swr = swr, _negative_ttl = neg,
      _name = opts.name or ("cache-" .. next_id),
      _entries = {}, _flights = {}, _size = 0,
      _stats = { hits = 0, stale_hits = 0, misses = 0, coalesced = 0, negative_hits = 0,
        evictions = 0, expirations = 0, failures = 0, refreshes = 0, in_flight = 0 },
    }, Cache)
  end
end

--- fdn.cache{ttl = 300, max_entries = 1000, key = fn, stale_while_revalidate = s,
-- negative_ttl = s, name = "users"}(f) -> a cached f: call it like f;
-- :invalidate(...), :clear(), :stats(). fdn.cache(f) uses the defaults.
---@param opts table|function
setmetatable(M, {
  __call = function(_, opts)
    if is_callable(opts) and type(opts) ~= "table" then
      return make({})(opts)
    end
    if type(opts) ~= "table" then
      argerror("fdn.cache", "opts", "an options table (or the function to cache)", opts)
    end
    return make(opts)
  end,
})

return M
