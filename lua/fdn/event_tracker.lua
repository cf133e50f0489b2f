--- fdn.EventTracker: timings and outcomes of named pieces of work.
--
--   local tracker = fdn.EventTracker.new{max_events = 1000}
--   local data = tracker:track("data_download", function(ev)
--     local body = download()
--     ev:add_metadata{size_bytes = #body}
--     return body
--   end)
--   tracker:get_events()  --> {{name = "data_download", status = "ok", duration = 0.2, ...}}
--   tracker:summary()     --> {data_download = {count = 1, failures = 0, p50 = 0.2, p95 = 0.2, ...}}
--
-- A track started inside another (in the same task, or in a task spawned
-- inside it) records that one as its parent: the tracker keeps its current
-- event in the task-local context, under a key of its own that the logger
-- does not print. At most max_events events are kept; older ones are
-- dropped and counted.
local core = require "fdn.core"
local errors = require "fdn.errors"
local context = require "fdn.context"
local events = require "fdn.events"
local shared = require "fdn._shared"
local is_callable, pack = shared.is_callable, shared.pack

local M = {}

local type, pairs, pcall, error, setmetatable, getmetatable =
  type, pairs, pcall, error, setmetatable, getmetatable
local unpack, ceil, sort = unpack, math.ceil, table.sort
local now, wall_time = core.now, core.wall_time
local argerror, is_error, class_of = errors.argerror, errors.is, errors.class_of
local Cancelled = errors.Cancelled

local DEFAULT_MAX = 10000

local EventTracker = {}
EventTracker.__index = EventTracker

--- The handle a tracked body receives.
local Event = {}
Event.__index = Event

--- A new tracker. opts.max_events (default 10000, or math.huge) bounds the
-- events kept.
---@param opts table|nil
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror("fdn.EventTracker.new", "opts", "a table", opts)
  end
  local max = opts and opts.max_events or DEFAULT_MAX
  if type(max) ~= "number" or max < 1 or (max ~= math.huge and max % 1 ~= 0) then
    argerror("fdn.EventTracker.new", "opts.max_events", "an integer >= 1 or math.huge", max)
  end
  local self = setmetatable({ _max = max }, EventTracker)
  self:clear()
  return self
end

local function check_self(self, fname)
  if getmetatable(self) ~= EventTracker then
    argerror(fname, "self", "an EventTracker (call it with ':')", self, 3)
  end
end

--- Forgets every kept event, the counts and the dropped count.
function EventTracker:clear()
  check_self(self, "tracker:clear")
  self._buf, self._head, self._len = {}, 1, 0
  self._dropped = 0
  self._stats = {}
  self._next_id = 0
end

function EventTracker:_keep(record)
  local max, buf = self._max, self._buf
  if self._len < max then
    buf[(self._head + self._len - 1) % max + 1] = record
    self._len = self._len + 1
  else
    buf[self._head] = record
    self._head = self._head % max + 1
    self._dropped = self._dropped + 1
  end
  local stats = self._stats[record.name]
  if stats == nil then
    stats = { count = 0, failures = 0, cancelled = 0 }
    self._stats[record.name] = stats
  end
  stats.count = stats.count + 1
  if record.status == "failed" then
    stats.failures = stats.failures + 1
  elseif record.status == "cancelled" then
    stats.cancelled = stats.cancelled + 1
  end
end

--- Runs fn(ev, ...) and records it under `name`: status "ok", "failed" or
-- "cancelled", duration in seconds, the metadata added through
-- ev:add_metadata{}, the error, and the parent event's id. Returns fn's
-- results; re-raises its error unchanged.
---@param name string
---@param fn function
function EventTracker:track(name, fn, ...)
  check_self(self, "tracker:track")
  if type(name) ~= "string" or name == "" then
    argerror("tracker:track", "name", "a non-empty string", name)
  end
  if not is_callable(fn) then
    argerror("tracker:track", "fn", "a function", fn)
  end
  local id = self._next_id + 1
  self._next_id = id
  local parent = context._get(self)
  local ev = setmetatable({
    id = id, name = name, metadata = {}, start = wall_time(),
    parent = parent and parent.id, parent_name = parent and parent.name,
  }, Event)
  context._set(self, ev)
  local t0 = now()
  local res = pack(pcall(fn, ev, ...))
  local duration = now() - t0
  if context._get(self) == ev then
    context._set(self, parent)
  end
  if duration < 0 then
    duration = 0
  end
  local record = {
    id = id, name = name, start = ev.start, duration = duration,
    metadata = ev.metadata, parent = ev.parent, parent_name = ev.parent_name,
  }
  if res[1] then
    record.status = "ok"
  else
    local err = res[2]
    record.error = err
    record.status = is_error(err, Cancelled) and "cancelled" or "failed"
  end
  ev.status, ev.duration = record.status, duration
  self:_keep(record)
  if events.has("event_tracker.recorded") then
    events.emit("event_tracker.recorded", {
      id = id, name = name, status = record.status, duration = duration,
      parent = record.parent, error = record.error, metadata = record.metadata,
    })
  end
  if not res[1] then
    error(res[2], 0)
  end
  return unpack(res, 2, res.n)
end

--- The kept events, oldest first: {id, name, status, start (Unix
-- seconds), duration (seconds), metadata, error, parent (id),
-- parent_name}.
---@return table
function EventTracker:get_events()
  check_self(self, "tracker:get_events")
  local out, max, buf = {}, self._max, self._buf
  for i = 1, self._len do
    out[i] = buf[(self._head + i - 2) % max + 1]
  end
  return out
end

--- How many events were dropped to keep within max_events.
---@return number
function EventTracker:dropped()
  check_self(self, "tracker:dropped")
  return self._dropped
end

-- Nearest-rank percentile of a sorted list.
local function percentile(sorted, q)
  local n = #sorted
  if n == 0 then
    return nil
  end
  local rank = ceil(q * n)
  if rank < 1 then
    rank = 1
  end
  return sorted[rank]
end

--- Per event name: count, failures and cancelled (every event tracked since
-- the last clear), and over the events still kept: kept, p50, p95, max and
-- mean duration in seconds (nearest-rank percentiles).
---@return table
function EventTracker:summary()
  check_self(self, "tracker:summary")
  local durations = {}
  for _, record in ipairs(self:get_events()) do
    local list = durations[record.name]
    if list == nil then
      list = {}
      durations[record.name] = list
    end
    list[#list + 1] = record.duration
  end
  local out = {}
  for name, stats in pairs(self._stats) do
    local list = durations[name] or {}
    sort(list)
    local total = 0
    for i = 1, #list do
      total = total + list[i]
    end
    out[name] = {
      count = stats.count, failures = stats.failures, cancelled = stats.cancelled,
      kept = #list, p50 = percentile(list, 0.5), p95 = percentile(list, 0.95),
      max = list[#list], mean = #list > 0 and total / #list or nil,
    }
  end
  return out
end

--- Adds fields to the event's metadata.
---@param fields table
function Event:add_metadata(fields)
  if getmetatable(self) ~= Event then
    argerror("ev:add_metadata", "self", "a tracked event (call it with ':')", self)
  end
  if type(fields) ~= "table" or class_of(fields) then
    argerror("ev:add_metadata", "fields", "a table", fields)
  end
  local metadata = self.metadata
  for k, v in pairs(fields) do
    metadata[k] = v
  end
end

return M
