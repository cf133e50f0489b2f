--- fdn.Batcher: groups items into batches for a handler.
--
--   fdn.with(fdn.Batcher.new{batch_size = 100, flush_interval = 5,
--     handler = function(items) db:insert_many(items) end}, function(b)
--     for row in rows() do b:add(row) end
--   end)                                    -- closing flushes the rest
--
-- The C core decides when a batch is sealed (batch_size items, or
-- flush_interval after its first item, or flush/close) and hands batches to
-- flusher tasks in order, at most max_concurrent_flushes at a time. Items
-- live in plain Lua tables: `add` is a table store and a comparison; it
-- calls into C only when the open batch runs out of the room the core last
-- granted (its first item, the item that fills it, a full buffer).
--
-- A failed batch goes to the `retry` wrapper if one is given, then to
-- `on_error(err, items)`; with neither, `close` raises BatchFailed whose
-- `.items` are every undelivered item. `add` returns a handle whose
-- `wait()` gives that item's outcome once its batch is flushed.
local fdn = require "fdn"
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local log = require "fdn.log"

local M = {}

local type, pcall, error, setmetatable, pairs = type, pcall, error, setmetatable, pairs
local huge = math.huge

local ok_tnew, tnew = pcall(require, "table.new")
if not ok_tnew then
  tnew = function() return {} end
end

local c_new = core.batcher_new

-- The FFI fast paths of the two per-batch boundary calls (see
-- bindings/l_batcher.c): compiled into JIT traces, where a classic C call
-- would leave the trace. Without the FFI, the classic calls do it all.
local ffi_ok, ffi = pcall(require, "ffi")
local ffi_add, ffi_next, FFI_CLASSIC = nil, nil, -3
if ffi_ok and core._batcher_ffi_add then
  ffi_add = ffi.cast("double (*)(void *, double, double *)", core._batcher_ffi_add)
  ffi_next = ffi.cast("double (*)(void *, double, double, int, double *)",
    core._batcher_ffi_next)
end
local park, wake, c_current, now = core.park, core.wake, core.current, core.now
local scope_enter, scope_exit, cancel_pending = core.scope_enter, core.scope_exit,
  core.cancel_pending
local check_suspendable = core.check_suspendable
local wake_error, is_callable = fdn._wake_error, fdn.is_callable
local argerror, class_of = errors.argerror, errors.class_of
local Closed, QueueFull, InvalidState = errors.Closed, errors.QueueFull, errors.InvalidState
local Cancelled = errors.Cancelled

local ADD_FULL = -1
local ETIMEDOUT = core.ETIMEDOUT
local SEAL_MANUAL, SEAL_CLOSE = 2, 3
local OVERFLOW = { block = 0, error = 1, drop_oldest = 2 }

--- Raised by close when batches failed and no on_error took them:
-- `.items` lists every undelivered item (in add order), `.errors` each
-- failed batch's error, `.cause` the first of them.
M.BatchFailed = errors.define("BatchFailed")

local logger = log.get("fdn.batcher")

-- Handles ------------------------------------------------------------------

--- What `add` returns: the item's place in its batch.
local Handle = {}
Handle.__index = Handle

-- A method called on anything but a batch item handle (from Batcher:add): usually a '.' where ':' was meant.
local function bad_self_Handle(self, method)
  errors.argerror("handle:" .. method, "self",
    "a batch item handle (from Batcher:add) (call it with ':')", self, 3)
end
M.Handle = Handle

-- A batch record: items (the list the handler gets), n (items added, with
-- the dropped ones), dropped (taken from its head by drop_oldest), seq,
-- reason, state (PENDING, then OK or FAILED), value (the handler's result
-- list when OK, the error when FAILED), waiters (tasks in wait(), or
-- false), gone (dropped whole). Every field exists from the start, so the
-- table never grows.
local PENDING, OK, FAILED = 0, 1, 2
-- Field indices: an array of 9 is a third of the memory of a hash part,
-- and records are made for every batch.
local ITEMS, COUNT, DROPPED, SEQ, REASON, STATE, VALUE, WAITERS, GONE = 1, 2, 3, 4, 5, 6, 7, 8, 9

local function dropped_error(rec)
  return QueueFull.new("Batcher: the item was dropped by the drop_oldest overflow "
    .. "policy", { context = { seq = rec[SEQ] } })
end

local function outcome(rec, i)
  local d = rec[DROPPED]
  if i <= d then
    return false, dropped_error(rec)
  end
  if rec[STATE] == OK then
    local results, value = rec[VALUE], nil
    if results then
      value = results[i - d]
    end
    if value ~= nil and class_of(value) then
      return false, value
    end
    return true, value
  end
  return false, rec[VALUE]
end

--- Waits for the item's batch to be flushed: true, the item's result (the
-- handler's returned list at the item's position, nil when it returned no
-- list) or false, err (the batch failed, the item was dropped, or the
-- handler put an fdn error at the item's position).
function Handle:wait()
  if getmetatable(self) ~= Handle then
    bad_self_Handle(self, "wait")
  end
  local rec = self[1]
  if rec[STATE] == PENDING then
    local me = c_current()
    if me == nil then
      error(InvalidState.new("handle:wait: cannot suspend outside a task"), 2)
    end
    -- Before registering: a caller that cannot wait leaves no waiter behind.
    check_suspendable("handle:wait")
    local waiters = rec[WAITERS]
    if not waiters then
      waiters = {}
      rec[WAITERS] = waiters
    end
    waiters[#waiters + 1] = me
    local st, cause = park()
    if st then
      for i = #waiters, 1, -1 do
        if waiters[i] == me then
          table.remove(waiters, i)
        end
      end
      return wake_error(st, cause, "handle:wait")
    end
  end
  return outcome(rec, self[2])
end

--- The item's result, or raises its error (see wait).
function Handle:join()
  if getmetatable(self) ~= Handle then
    bad_self_Handle(self, "join")
  end
  local ok, value = self:wait()
  if ok then
    return value
  end
  error(value, 2)
end

--- Whether the item's batch has been flushed (or the item dropped).
function Handle:done()
  if getmetatable(self) ~= Handle then
    bad_self_Handle(self, "done")
  end
  local rec = self[1]
  return rec[STATE] ~= PENDING or self[2] <= rec[DROPPED]
end

local function finish_rec(rec)
  local waiters = rec[WAITERS]
  if waiters then
    rec[WAITERS] = false
    for i = 1, #waiters do
      wake(waiters[i])
    end
  end
end

-- The batcher ---------------------------------------------------------------

local Batcher = {}
Batcher.__index = Batcher

-- A method called on anything but a Batcher: usually a '.' where ':' was meant.
local function bad_self_Batcher(self, method)
  errors.argerror("Batcher:" .. method, "self", "a Batcher (call it with ':')", self, 3)
end
M.Batcher = Batcher

local function new_rec(size)
  return { tnew(size < 4096 and size or 4096, 0), 0, 0, 0, false, PENDING, false, false, false }
end

-- Sealed batches not run yet, oldest first, in a deque (q, qh, qt). They
-- run in seal order, so the flusher always takes the head.
local function push_sealed(self, rec)
  local qt = self._qt + 1
  self._qt = qt
  self._q[qt] = rec
end

local function pop_sealed(self, seq)
  local q, h = self._q, self._qh
  local rec = q[h]
  while rec[GONE] do -- dropped whole while waiting: skip
    q[h] = nil
    h = h + 1
    rec = q[h]
  end
  assert(rec[SEQ] == seq, "fdn.Batcher: batches out of order")
  q[h] = nil
  h = h + 1
  if h > self._qt then -- empty: restart, so the keys stay small
    h = 1
    self._qt = 0
  end
  self._qh = h
  return rec
end

local function find_sealed(self, seq)
  local q = self._q
  for i = self._qh, self._qt do
    if q[i][SEQ] == seq then
      return q[i]
    end
  end
end

--- The open batch becomes sealed batch `seq`; a new open batch starts.
local function rotate(self, seq, reason)
  local rec = self._rec
  rec[SEQ] = seq
  rec[COUNT] = self._n
  rec[REASON] = reason
  push_sealed(self, rec)
  local fresh = new_rec(self._bs)
  self._rec = fresh
  self._buf = fresh[ITEMS]
  self._n = 0
  self._fast = 0
end

local function drop_head(self, seq, all)
  local rec = find_sealed(self, seq)
  local d = rec[DROPPED] + 1
  rec[DROPPED] = d
  rec[ITEMS][d] = nil
  if events.has("batch.dropped") then
    events.emit("batch.dropped", { batcher = self._name, seq = seq })
  end
  -- Counted in stats and evented every time; logged at most once a second.
  local t = now()
  if t - self._last_drop_log >= 1 or t < self._last_drop_log then
    self._last_drop_log = t
    logger.warn("batcher.items_dropped", { batcher = self._name,
      dropped_total = self._c.stats(self._n).dropped })
  end
  if all then
    rec[GONE] = true
    rec[STATE] = FAILED
    rec[VALUE] = dropped_error(rec)
    finish_rec(rec)
  end
end

local function add_slow(self, item)
  local c = self._c
  while true do
    if self._closing then
      error(Closed.new("Batcher:add: the batcher is closed"), 3)
    end
    local n = self._n
    local room, sealed, need, dropped, dropped_all = FFI_CLASSIC, nil, false, nil, false
    local p = self._p
    if p ~= nil then
      local out = self._out
      room = ffi_add(p, n, out)
      if room ~= FFI_CLASSIC then
        if out[0] ~= 0 then
          sealed = out[0]
        end
        need = out[1] ~= 0
        if out[2] ~= 0 then
          dropped, dropped_all = out[2], out[3] ~= 0
        end
      end
    end
    if room == FFI_CLASSIC then
      room, sealed, need, dropped, dropped_all = c.add(n)
    end
    if room >= 0 then
      if dropped then
        drop_head(self, dropped, dropped_all)
      end
      local rec = self._rec
      n = n + 1
      rec[ITEMS][n] = item
      self._n = n
      local handle = setmetatable({ rec, n }, Handle)
      if sealed then
        rotate(self, sealed, "size")
      else
        self._fast = room
      end
      if need then
        c.ensure()
      end
      return handle
    elseif room == ADD_FULL then
      self._fast = n -- every add goes through C until there is room
      if self._overflow == "error" then
        error(QueueFull.new("Batcher:add: " .. self._max_pending
          .. " items are already waiting to be flushed",
          { context = { max_pending = self._max_pending } }), 3)
      end
      local st, cause = c.wait_space()
      if st then
        wake_error(st, cause, "Batcher:add")
      end
    else
      error(Closed.new("Batcher:add: the batcher is closed"), 3)
    end
  end
end

--- Adds an item (any value but nil). Returns a handle: handle:wait() gives
-- the item's outcome once its batch is flushed. When max_pending items are
-- waiting, the overflow policy applies: "block" suspends until there is
-- room, "error" raises QueueFull, "drop_oldest" drops the oldest waiting
-- item (counted in stats().dropped). After close: raises Closed.
---@param item any
function Batcher:add(item)
  if getmetatable(self) ~= Batcher then
    bad_self_Batcher(self, "add")
  end
  if item == nil then
    argerror("Batcher:add", "item", "a value other than nil", item)
  end
  local n = self._n + 1
  if n > self._fast then
    return add_slow(self, item)
  end
  self._buf[n] = item
  self._n = n
  return setmetatable({ self._rec, n }, Handle)
end

local function compact(items, n, d)
  for j = 1, n - d do
    items[j] = items[j + d]
  end
  for j = n - d + 1, n do
    items[j] = nil
  end
end

local function handle_failure(self, rec, err)
  rec[STATE] = FAILED
  rec[VALUE] = err
  local handled = self._on_error ~= nil
  if events.has("batch.failed") then
    events.emit("batch.failed", { batcher = self._name, seq = rec[SEQ], size = #rec[ITEMS],
      error = err, handled = handled })
  end
  if handled then
    local ok, err2 = pcall(self._on_error, err, rec[ITEMS])
    if ok then
      logger.warn("batcher.batch_failed", { batcher = self._name, seq = rec[SEQ],
        size = #rec[ITEMS], error = err, handled = true })
      return
    end
    logger.error("batcher.on_error_failed", { batcher = self._name, seq = rec[SEQ],
      size = #rec[ITEMS], error = err2, batch_error = err })
  else
    logger.error("batcher.batch_failed", { batcher = self._name, seq = rec[SEQ],
      size = #rec[ITEMS], error = err, handled = false })
  end
  local undelivered = self._undelivered
  undelivered[#undelivered + 1] = rec
end

-- Runs batch `seq`; returns whether it failed (the flusher reports it done
-- with its next call for work).
local function run_batch(self, seq, skip_err)
  local rec = pop_sealed(self, seq)
  local items = rec[ITEMS]
  if rec[DROPPED] > 0 then
    compact(items, rec[COUNT], rec[DROPPED])
  end
  local timed = events.has("batch.flushed")
  local t0 = timed and now()
  local ok, res = false, skip_err
  if not skip_err then
    ok, res = pcall(self._call, items)
  end
  if ok then
    rec[STATE] = OK
    if type(res) == "table" then
      rec[VALUE] = res
    end
  else
    handle_failure(self, rec, res)
  end
  finish_rec(rec)
  if timed then
    events.emit("batch.flushed", { batcher = self._name, seq = seq, size = #items,
      reason = rec[REASON], ok = ok, duration = now() - t0 })
  end
  return not ok
end

-- Each flusher task runs this: take a batch, run the handler, report it
-- done; seal the open batch when its time trigger fires; end when idle.
local function flush_loop(self, lingered, draining)
  local c, p, out = self._c, self._p, self._out
  local done, failed = nil, false
  while true do
    local fast = nil
    if p ~= nil and not draining then
      local r = ffi_next(p, self._n, done or 0, failed and 1 or 0, out)
      if r >= 0 then -- `done` was reported
        done = nil
        if out[0] ~= 0 then
          rotate(self, out[0], "time")
        end
        if out[1] ~= 0 then
          c.ensure()
        end
        if r > 0 then
          fast = r
        end
      end
    end
    if fast then
      failed = run_batch(self, fast, nil)
      done = fast
    else
      local st, seq, sealed, need = c.next(self._n, done, failed, lingered, draining)
      done = nil
      if st == ETIMEDOUT then
        lingered = true -- nothing came while it lingered: check once more
      elseif st then
        return -- cancelled while parked
      end
      if sealed then
        rotate(self, sealed, "time")
      end
      if need then
        c.ensure()
      end
      if seq == 0 then
        return
      end
      if seq then
        local skip = nil
        if draining and cancel_pending() ~= 0 then
          skip = Cancelled.new("Batcher: a cancelled flusher ran out of time "
            .. "(fdn.cleanup_timeout) before it could flush this batch")
        end
        failed = run_batch(self, seq, skip)
        done = seq
      end
    end
  end
end

local function flusher_main(self)
  flush_loop(self, false)
  -- A cancelled flusher (its engine's main task failed, say) does not
  -- leave items behind: it seals the open batch and flushes everything
  -- the batcher holds, shielded like any cleanup, for up to
  -- fdn.cleanup_timeout seconds.
  if cancel_pending() ~= 0 and (self._n > 0 or self._qt >= self._qh) then
    local scope = scope_enter(fdn.cleanup_timeout, true)
    local sealed, _, need = self._c.seal(self._n, SEAL_MANUAL, true)
    if sealed then
      rotate(self, sealed, "manual")
    end
    if need then
      self._c.ensure()
    end
    flush_loop(self, true, true)
    scope_exit(scope)
  end
end

local function wait_for(self, target, fname)
  local c = self._c
  while true do
    local st, done, need = c.wait(target)
    if st then
      return wake_error(st, done, fname)
    end
    if done then
      return
    end
    if need then
      c.ensure()
    end
  end
end

--- Seals the open batch and returns once its handler call is done (and
-- every earlier batch's). Failures follow the batcher's failure path
-- (retry, on_error, close), they are not raised here.
function Batcher:flush()
  if getmetatable(self) ~= Batcher then
    bad_self_Batcher(self, "flush")
  end
  if self._closing then
    return wait_for(self, -1, "Batcher:flush")
  end
  local c = self._c
  local sealed, last, need = c.seal(self._n, SEAL_MANUAL)
  if sealed then
    rotate(self, sealed, "manual")
  end
  if need then
    c.ensure()
  end
  return wait_for(self, last, "Batcher:flush")
end

local live = setmetatable({}, { __mode = "k" }) -- batchers not closed yet

--- Refuses further adds (they raise Closed, and adders blocked on a full
-- batcher are woken with Closed), flushes what is left and waits for every
-- flush in flight. Raises BatchFailed once when batches failed without an
-- on_error to take them. Idempotent.
function Batcher:close()
  if getmetatable(self) ~= Batcher then
    bad_self_Batcher(self, "close")
  end
  local c = self._c
  if not self._closing then
    if not c.bound() then
      self._closing = true -- never used: nothing to flush
      live[self] = nil
      return
    end
    local sealed, _, need = c.seal(self._n, SEAL_CLOSE)
    self._closing = true
    live[self] = nil
    self._fast = 0
    if sealed then
      rotate(self, sealed, "close")
    end
    if need then
      c.ensure()
    end
  elseif not c.bound() then
    return
  end
  wait_for(self, -1, "Batcher:close")
  if not self._closed_event then
    self._closed_event = true
    if events.has("batch.closed") then
      events.emit("batch.closed", { batcher = self._name, stats = self:stats() })
    end
  end
  local undelivered = self._undelivered
  if #undelivered > 0 and not self._raised then
    self._raised = true
    local items, errs = {}, {}
    for i = 1, #undelivered do
      local rec = undelivered[i]
      errs[i] = rec[VALUE]
      for j = 1, #rec[ITEMS] do
        items[#items + 1] = rec[ITEMS][j]
      end
    end
    error(M.BatchFailed.new(string.format("Batcher:close: %d batch(es), %d item(s) failed "
      .. "and were not delivered; first error: %s", #undelivered, #items,
      errors.format(errs[1])), { items = items, errors = errs, cause = errs[1],
      context = { batcher = self._name, batches = #undelivered, items = #items } }), 2)
  end
end

--- fdn.with support: closing on exit flushes what is left.
function Batcher:__enter()
  if getmetatable(self) ~= Batcher then
    bad_self_Batcher(self, "__enter")
  end
  return self
end

function Batcher:__exit()
  if getmetatable(self) ~= Batcher then
    bad_self_Batcher(self, "__exit")
  end
  return self:close()
end

--- Counters: added, dropped, batches (sealed), flushed, failed,
-- buffered, in_flight, flushers, and reasons = {size, time, manual, close}
-- (batches sealed for each).
function Batcher:stats()
  if getmetatable(self) ~= Batcher then
    bad_self_Batcher(self, "stats")
  end
  local s = self._c.stats(self._n)
  s.name = self._name
  s.closed = self._closing or false
  return s
end

function Batcher:is_closed()
  if getmetatable(self) ~= Batcher then
    bad_self_Batcher(self, "is_closed")
  end
  return self._closing or false
end

function Batcher:__tostring()
  return "fdn.Batcher(" .. self._name .. ")"
end

-- Construction ----------------------------------------------------------------

local function is_count(v)
  return type(v) == "number" and v >= 1 and v % 1 == 0 and v < 2 ^ 53
end

local hooked = false
local function close_all()
  local list = {}
  for b in pairs(live) do
    list[#list + 1] = b
  end
  table.sort(list, function(a, b) return a._id < b._id end)
  for i = 1, #list do
    local ok, err = fdn.try(list[i].close, list[i])
    if not ok then
      logger.error("batcher.shutdown_failed", { batcher = list[i]._name, error = err })
    end
  end
end

local next_id = 0

--- Makes a batcher. opts: handler (required) function(items) -> nil or a
-- list of per-item results; batch_size (100); flush_interval (seconds after
-- a batch's first item, 1; math.huge: none); max_pending (items waiting,
-- 10 x batch_size); max_concurrent_flushes (1); overflow ("block",
-- "error", "drop_oldest"); on_error function(err, items); retry: a function
-- wrapping the handler (as fdn.retry{...} does); name (for logs and events).
---@param opts table
function Batcher.new(opts)
  local fname = "fdn.Batcher.new"
  if type(opts) ~= "table" then
    argerror(fname, "opts", "a table", opts)
  end
  local handler = opts.handler
  if not is_callable(handler) then
    argerror(fname, "opts.handler", "a function", handler)
  end
  local batch_size = opts.batch_size or 100
  if not is_count(batch_size) then
    argerror(fname, "opts.batch_size", "a positive integer", batch_size)
  end
  local interval = opts.flush_interval
  if interval == nil then
    interval = 1
  end
  if type(interval) ~= "number" or interval ~= interval or interval < 0 then
    argerror(fname, "opts.flush_interval", "a non-negative number of seconds", interval)
  end
  local max_pending = opts.max_pending or batch_size * 10
  if max_pending ~= huge and (not is_count(max_pending) or max_pending < batch_size) then
    argerror(fname, "opts.max_pending", "an integer >= batch_size (" .. batch_size .. ")",
      max_pending)
  end
  local max_concurrent = opts.max_concurrent_flushes or 1
  if not is_count(max_concurrent) or max_concurrent > 4096 then
    argerror(fname, "opts.max_concurrent_flushes", "an integer from 1 to 4096", max_concurrent)
  end
  local overflow = opts.overflow or "block"
  if OVERFLOW[overflow] == nil then
    argerror(fname, "opts.overflow", '"block", "error" or "drop_oldest"', overflow)
  end
  local on_error = opts.on_error
  if on_error ~= nil and not is_callable(on_error) then
    argerror(fname, "opts.on_error", "a function", on_error)
  end
  local call = handler
  if opts.retry ~= nil then
    if not is_callable(opts.retry) then
      argerror(fname, "opts.retry", "a function wrapping the handler (such as fdn.retry{...})",
        opts.retry)
    end
    call = opts.retry(handler)
    if not is_callable(call) then
      argerror(fname, "opts.retry", "a function that returns the wrapped handler", call)
    end
  end
  local name = opts.name
  if name ~= nil and type(name) ~= "string" then
    argerror(fname, "opts.name", "a string", name)
  end
  next_id = next_id + 1
  name = name or ("batcher-" .. next_id)

  local rec = new_rec(batch_size)
  local self = setmetatable({
    _id = next_id, _name = name, _bs = batch_size, _max_pending = max_pending,
    _overflow = overflow, _handler = handler, _call = call, _on_error = on_error,
    _rec = rec, _buf = rec[ITEMS], _n = 0, _fast = 0, _q = {}, _qh = 1, _qt = 0, _undelivered = {},
    _closing = false, _last_drop_log = -huge,
  }, Batcher)
  self._c = c_new({
    batch_size = batch_size, flush_interval = interval,
    max_pending = max_pending == huge and 2 ^ 53 or max_pending,
    max_concurrent = max_concurrent, overflow = OVERFLOW[overflow],
  }, flusher_main, self, name .. "-flusher")
  if ffi_add and M.use_ffi then
    self._p = ffi.cast("void *", self._c.pointer)
    self._out = ffi.new("double[4]")
  end
  live[self] = true
  if not hooked then
    hooked = true
    fdn.on_shutdown(close_all)
  end
  return self
end

M.new = Batcher.new

--- Whether batchers made from now on use the FFI fast paths (when LuaJIT
-- has the FFI). Both paths behave the same; the specs run both.
M.use_ffi = true
M._close_all = close_all

setmetatable(M, {
  __call = function(_, opts)
    return Batcher.new(opts)
  end,
})

return M
