--- fdn.testing_mock: T.mock_async, a controllable fake for an async function.
--
-- The fake replaces `tbl[name]` and is callable like it. Each call is
-- recorded (arguments, calling task, engine time), then takes the next
-- behaviour from its queue, or the default one: wait `delay` seconds on the
-- engine clock (a real suspension, so cancellation and timeouts reach it),
-- then return values, raise an error, or call a function. A fake made while
-- an fdn.testing run is in progress is restored when that run ends.
--
-- The fake answers luassert's spy assertions (`assert.spy(fake).was
-- .called(2)`, `.called_with(…)`, `.returned_with(…)`), which only need
-- the `called`, `called_with` and `returned_with` methods.
local fdn = require "fdn"
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"

local M = {}

local error, pairs, pcall, select, setmetatable, getmetatable, type, tostring =
  error, pairs, pcall, select, setmetatable, getmetatable, type, tostring
local unpack = unpack
local argerror = errors.argerror

local Mock = {}
Mock.__index = Mock

-- A method called on anything but a fake (from fdn.testing.mock_async): usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("mock:" .. method, "self",
    "a fake (from fdn.testing.mock_async) (call it with ':')", self, 3)
end

local by_engine = setmetatable({}, { __mode = "k" }) -- engine -> fakes made there

local luassert_util = false -- false: not looked up yet

local function arglist(...)
  if luassert_util == false then
    local ok, util = pcall(require, "luassert.util")
    luassert_util = ok and util or nil
  end
  if luassert_util then
    return luassert_util.make_arglist(...)
  end
  return { n = select("#", ...), ... }
end

local function is_mock(value)
  return getmetatable(value) == Mock
end

local function check_delay(fname, param, seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 or seconds == math.huge then
    argerror(fname, param, "a finite non-negative number", seconds, 3)
  end
end

local BEHAVIOUR_KEYS = { returns = true, raises = true, invokes = true, delay = true }

--- Turns a behaviour table {returns = {…}|raises = err|invokes = fn,
-- delay = s} into the internal form, or raises InvalidArgument.
local function behaviour(fname, param, b)
  if type(b) ~= "table" then
    argerror(fname, param, "a behaviour table {returns =, raises =, invokes =, delay =}", b, 3)
  end
  local outcomes = 0
  for k in pairs(b) do
    if not BEHAVIOUR_KEYS[k] then
      argerror(fname, param .. "." .. tostring(k), "one of returns, raises, invokes, delay", b[k], 3)
    end
    if k ~= "delay" then
      outcomes = outcomes + 1
    end
  end
  if outcomes > 1 then
    argerror(fname, param, "at most one of returns, raises, invokes", b, 3)
  end
  if b.delay ~= nil then
    check_delay(fname, param .. ".delay", b.delay)
  end
  if b.returns ~= nil then
    if type(b.returns) ~= "table" then
      argerror(fname, param .. ".returns", "a list of values", b.returns, 3)
    end
    local n = b.returns.n or #b.returns
    return { returns = { n = n, unpack(b.returns, 1, n) }, delay = b.delay }
  end
  if b.invokes ~= nil and not fdn.is_callable(b.invokes) then
    argerror(fname, param .. ".invokes", "a function", b.invokes, 3)
  end
  return { raises = b.raises, invokes = b.invokes, delay = b.delay }
end

--- Replaces `tbl[name]` with a fake and returns it. By default a call
-- returns nothing at once.
---@param tbl table
---@param name string|any the key of the function to replace
---@return table fake
function M.mock_async(tbl, name)
  local fname = "fdn.testing.mock_async"
  if type(tbl) ~= "table" then
    argerror(fname, "tbl", "a table", tbl)
  end
  if name == nil then
    argerror(fname, "name", "a key of tbl", name)
  end
  local original = tbl[name]
  if not fdn.is_callable(original) then
    argerror(fname, "name", "the key of a function in tbl", original)
  end
  local fake = setmetatable({
    name = tostring(name),
    calls = {},
    returnvals = {},
    target = tbl,
    key = name,
    original = original,
    restored = false,
    _queue = {},
    _default = { returns = { n = 0 } },
    _delay = 0,
  }, Mock)
  tbl[name] = fake
  local engine = core.engine_running()
  if engine ~= nil then
    local list = by_engine[engine]
    if list == nil then
      list = {}
      by_engine[engine] = list
    end
    list[#list + 1] = fake
  end
  return fake
end

--- Restores, newest first, every fake made while `engine` was running.
function M.restore_all(engine)
  local list = by_engine[engine]
  if list == nil then
    return
  end
  by_engine[engine] = nil
  for i = #list, 1, -1 do
    list[i]:restore()
  end
end

M.is_mock = is_mock

local function finish(self, ...)
  local values = arglist(...)
  self.returnvals[#self.returnvals + 1] = { vals = values, refs = values }
  return ...
end

function Mock.__call(self, ...)
  if getmetatable(self) ~= Mock then
    bad_self(self, "__call")
  end
  local args = arglist(...)
  local call = { args = args, vals = args, refs = args, task = fdn.current(), time = fdn.now() }
  local calls = self.calls
  calls[#calls + 1] = call
  if events.has("testing.mock_called") then
    events.emit("testing.mock_called", { name = self.name, call = #calls, args = args, task = call.task })
  end
  local b = self._default
  if #self._queue > 0 then
    b = table.remove(self._queue, 1)
  end
  local delay = b.delay or self._delay
  if delay > 0 then
    fdn.sleep(delay)
  end
  if b.raises ~= nil then
    error(b.raises, 0)
  elseif b.invokes ~= nil then
    return finish(self, b.invokes(...))
  end
  return finish(self, unpack(b.returns, 1, b.returns.n))
end

function Mock.__tostring(self)
  return "fdn.testing mock of " .. self.name .. " (" .. #self.calls .. " calls)"
end

--- Every call, after its delay, returns these values.
function Mock:returns(...)
  if getmetatable(self) ~= Mock then
    bad_self(self, "returns")
  end
  self._default = { returns = { n = select("#", ...), ... } }
  return self
end

--- Every call, after its delay, raises `err` (the value itself).
function Mock:raises(err)
  if getmetatable(self) ~= Mock then
    bad_self(self, "raises")
  end
  if err == nil then
    argerror("mock:raises", "err", "an error value", err)
  end
  self._default = { raises = err }
  return self
end

--- Every call, after its delay, returns fn(...) (fn may suspend).
function Mock:invokes(fn)
  if getmetatable(self) ~= Mock then
    bad_self(self, "invokes")
  end
  if not fdn.is_callable(fn) then
    argerror("mock:invokes", "fn", "a function", fn)
  end
  self._default = { invokes = fn }
  return self
end

--- Every call goes to the function the fake replaced (a spy).
function Mock:calls_original()
  if getmetatable(self) ~= Mock then
    bad_self(self, "calls_original")
  end
  self._default = { invokes = self.original }
  return self
end

--- Every call first waits `seconds` on the engine clock.
function Mock:delay(seconds)
  if getmetatable(self) ~= Mock then
    bad_self(self, "delay")
  end
  check_delay("mock:delay", "seconds", seconds)
  self._delay = seconds
  return self
end

--- Queues per-call behaviours, used one per call in order before the
-- default: {returns = {values…}}, {raises = err}, {invokes = fn}, each
-- with an optional delay = seconds.
function Mock:queue(...)
  if getmetatable(self) ~= Mock then
    bad_self(self, "queue")
  end
  local n = select("#", ...)
  if n == 0 then
    argerror("mock:queue", "behaviour", "at least one behaviour table", nil)
  end
  local parsed = {}
  for i = 1, n do
    parsed[i] = behaviour("mock:queue", "behaviour #" .. i, (select(i, ...)))
  end
  for i = 1, n do
    self._queue[#self._queue + 1] = parsed[i]
  end
  return self
end

--- The next call (after those queued before) returns these values.
function Mock:returns_once(...)
  if getmetatable(self) ~= Mock then
    bad_self(self, "returns_once")
  end
  self._queue[#self._queue + 1] = { returns = { n = select("#", ...), ... } }
  return self
end

--- The next call (after those queued before) raises `err`.
function Mock:raises_once(err)
  if getmetatable(self) ~= Mock then
    bad_self(self, "raises_once")
  end
  if err == nil then
    argerror("mock:raises_once", "err", "an error value", err)
  end
  self._queue[#self._queue + 1] = { raises = err }
  return self
end

--- Puts the replaced function back (idempotent). Done automatically when
-- the fdn.testing run (or T.describe spec) that made the fake ends.
function Mock:restore()
  if getmetatable(self) ~= Mock then
    bad_self(self, "restore")
  end
  if self.restored then
    return self
  end
  self.restored = true
  if rawequal(self.target[self.key], self) then
    -- A fake made over a fake restored earlier goes back to the real one.
    local original = self.original
    while is_mock(original) and original.restored do
      original = original.original
    end
    self.target[self.key] = original
  end
  return self
end

--- Forgets the recorded calls and return values.
function Mock:clear()
  if getmetatable(self) ~= Mock then
    bad_self(self, "clear")
  end
  self.calls = {}
  self.returnvals = {}
  return self
end

--- The number of calls so far.
function Mock:call_count()
  if getmetatable(self) ~= Mock then
    bad_self(self, "call_count")
  end
  return #self.calls
end

--- Arguments of call `i` (default: the last), unpacked.
function Mock:args(i)
  if getmetatable(self) ~= Mock then
    bad_self(self, "args")
  end
  if i ~= nil and (type(i) ~= "number" or i < 1 or i % 1 ~= 0) then
    argerror("mock:args", "i", "nil or a call number >= 1", i)
  end
  local call = self.calls[i or #self.calls]
  if call == nil then
    return
  end
  return unpack(call.args, 1, call.args.n)
end

-- luassert spy protocol ---------------------------------------------------

local function same(a, b)
  if a == b then
    return true
  end
  if type(a) ~= "table" or type(b) ~= "table" then
    return false
  end
  for k, v in pairs(a) do
    if not same(v, b[k]) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end

local function match_lists(lists, specs)
  if luassert_util then
    return luassert_util.matchargs(lists, specs)
  end
  for i = #lists, 1, -1 do
    if same(lists[i].vals, specs) then
      return lists[i]
    end
  end
  return nil
end

function Mock:called(times, compare)
  if getmetatable(self) ~= Mock then
    bad_self(self, "called")
  end
  if compare ~= nil and not fdn.is_callable(compare) then
    argerror("mock:called", "compare", "nil or a function", compare)
  end
  local n = #self.calls
  if times or compare then
    compare = compare or function(count, expected) return count == expected end
    return compare(n, times), n
  end
  return n > 0, n
end

function Mock:called_with(args)
  if getmetatable(self) ~= Mock then
    bad_self(self, "called_with")
  end
  local last = self.calls[#self.calls]
  local found = match_lists(self.calls, args)
  if found ~= nil then
    return true, found.vals
  end
  return false, last and last.vals
end

function Mock:returned_with(args)
  if getmetatable(self) ~= Mock then
    bad_self(self, "returned_with")
  end
  local last = self.returnvals[#self.returnvals]
  local found = match_lists(self.returnvals, args)
  if found ~= nil then
    return true, found.vals
  end
  return false, last and last.vals
end

return M
