--- fdn.OperationContext: one logged unit of work with an id that follows it.
--
--   fdn.with(fdn.OperationContext.new("data_processing", {source = "s3"}), function(ctx)
--     ...                                  -- every record here carries ctx.operation_id
--     ctx:success{result_count = n}
--   end)
--
-- Entering puts `operation_id` (and `parent_operation_id` when an operation
-- is already running in the task) into the task-local context, so every log
-- record inside, in tasks spawned inside too, carries it. The operation logs
-- <name>.started, then one of <name>.completed (duration_ms and the
-- ctx:success fields), <name>.failed (error, duration_ms) or
-- <name>.cancelled (reason, duration_ms). Every one of these records carries
-- the ids and the fields given to new(). When it ends the ids leave the
-- context. An error the body raises is logged and re-raised by fdn.with; a
-- failure the body reported with ctx:error{} and then returned from is
-- logged and not raised.
local core = require "fdn.core"
local errors = require "fdn.errors"
local context = require "fdn.context"
local events = require "fdn.events"

local M = {}

local type, pairs, setmetatable, getmetatable = type, pairs, setmetatable, getmetatable
local format = string.format
local now, random = core.now, core.random
local argerror, class_of, is_error = errors.argerror, errors.class_of, errors.is
local Cancelled = errors.Cancelled

local OperationContext = {}
OperationContext.__index = OperationContext

local function plain_table(v)
  return type(v) == "table" and getmetatable(v) == nil
end

local function merge(into, fields)
  if fields then
    for k, v in pairs(fields) do
      into[k] = v
    end
  end
  return into
end

--- A 64-bit id in hex from the engine's RNG: unique in practice, and the
-- same sequence again under fdn.run{seed = n}.
local function new_id()
  return format("%08x%08x", random(4294967296) - 1, random(4294967296) - 1)
end
M._new_id = new_id

local function check_fields(fname, param, fields)
  if fields ~= nil and not plain_table(fields) then
    argerror(fname, param, "a table", fields, 3)
  end
end

--- A new operation called `name`. `fields` go on each of its records;
-- opts.logger is the logger to write with (default: fdn.log's root),
-- opts.level the level of started/completed (default "info"; failed is
-- logged at "error", cancelled at "warn").
---@param name string
---@param fields table|nil
---@param opts table|nil
function M.new(name, fields, opts)
  if type(name) ~= "string" or name == "" then
    argerror("fdn.OperationContext.new", "name", "a non-empty string", name)
  end
  check_fields("fdn.OperationContext.new", "fields", fields)
  if opts ~= nil and not plain_table(opts) then
    argerror("fdn.OperationContext.new", "opts", "a table", opts)
  end
  opts = opts or {}
  local log = require "fdn.log"
  local logger = opts.logger or log
  if type(logger) ~= "table" or type(logger.log) ~= "function" or type(logger.enabled) ~= "function" then
    argerror("fdn.OperationContext.new", "opts.logger", "a logger from fdn.log", logger)
  end
  local level = opts.level or "info"
  if type(level) ~= "string" or log.levels[level] == nil or level == "off" then
    argerror("fdn.OperationContext.new", "opts.level", '"trace", "debug", "info", "warn" or "error"', level)
  end
  return setmetatable({
    name = name,
    fields = merge({}, fields),
    metadata = {},
    _logger = logger,
    _level = level,
    _state = "new",
  }, OperationContext)
end

function OperationContext:_record(extra)
  local r = merge({}, self.fields)
  merge(r, self.metadata)
  merge(r, extra)
  r.operation_id = self.operation_id
  r.parent_operation_id = self.parent_operation_id
  return r
end

function OperationContext:_emit(what, data)
  local name = "operation." .. what
  if events.has(name) then
    data.name = self.name
    data.operation_id = self.operation_id
    data.parent_operation_id = self.parent_operation_id
    data.fields = self.fields
    events.emit(name, data)
  end
end

--- Starts the operation (fdn.with calls it): takes an id, puts it in the
-- task-local context and logs <name>.started.
function OperationContext:__enter()
  if getmetatable(self) ~= OperationContext then
    argerror("OperationContext:__enter", "self", "an OperationContext", self)
  end
  if self._state ~= "new" then
    error(errors.InvalidState.new("OperationContext:__enter: operation '" .. self.name
      .. "' was already started; make a new one for each run"), 2)
  end
  local parent = context.get("operation_id")
  self._saved_parent = context.get("parent_operation_id")
  self.operation_id = new_id()
  self.parent_operation_id = parent
  self._state = "running"
  self._start = now()
  context.set("operation_id", self.operation_id)
  context.set("parent_operation_id", parent)
  if self._logger.enabled(self._level) then
    self._logger.log(self._level, self.name .. ".started", self:_record(nil))
  end
  self:_emit("started", {})
  return self
end

--- Ends the operation (fdn.with calls it with the body's error, if any):
-- logs how it ended and takes the ids out of the context.
function OperationContext:__exit(err)
  if getmetatable(self) ~= OperationContext then
    argerror("OperationContext:__exit", "self", "an OperationContext", self)
  end
  if self._state ~= "running" then
    error(errors.InvalidState.new("OperationContext:__exit: operation '" .. self.name
      .. "' is not running"), 2)
  end
  self._state = "done"
  local seconds = now() - self._start
  if seconds < 0 then
    seconds = 0
  end
  local duration_ms = seconds * 1000
  local logger, name = self._logger, self.name
  if err ~= nil and is_error(err, Cancelled) then
    self.status = "cancelled"
    local reason = class_of(err) and err.message or tostring(err)
    if logger.enabled("warn") then
      logger.log("warn", name .. ".cancelled", self:_record({ duration_ms = duration_ms, reason = reason }))
    end
    self:_emit("cancelled", { duration = seconds, reason = reason })
  elseif err ~= nil or self._failure ~= nil then
    self.status = "failed"
    local fields = merge({ duration_ms = duration_ms }, self._failure)
    if err ~= nil then
      fields.error = err
    end
    if logger.enabled("error") then
      logger.log("error", name .. ".failed", self:_record(fields))
    end
    self:_emit("failed", { duration = seconds, error = fields.error })
  else
    self.status = "completed"
    local fields = merge({}, self._success)
    fields.duration_ms = duration_ms
    if logger.enabled(self._level) then
      logger.log(self._level, name .. ".completed", self:_record(fields))
    end
    self:_emit("completed", { duration = seconds })
  end
  self.duration = seconds
  -- Put back what the context held before, unless the body already moved on.
  if context.get("operation_id") == self.operation_id then
    context.set("operation_id", self.parent_operation_id)
    context.set("parent_operation_id", self._saved_parent)
  end
end

local function check_running(self, fname)
  if getmetatable(self) ~= OperationContext then
    argerror(fname, "self", "an OperationContext (call it with ':')", self, 3)
  end
  if self._state ~= "running" then
    error(errors.InvalidState.new(fname .. ": operation '" .. self.name .. "' is "
      .. (self._state == "new" and "not started" or "over")), 3)
  end
end

--- Marks the operation successful; `fields` go on <name>.completed.
---@param fields table|nil
function OperationContext:success(fields)
  check_running(self, "ctx:success")
  check_fields("ctx:success", "fields", fields)
  self._success = merge(self._success or {}, fields)
end

--- Reports a failure the body handled: <name>.failed is logged with
-- `fields` and the body may return normally (nothing is raised). An error
-- value (or a string) stands for {error = value}.
---@param fields table|any
function OperationContext:error(fields)
  check_running(self, "ctx:error")
  if fields == nil then
    fields = {}
  elseif not plain_table(fields) then
    fields = { error = fields }
  end
  self._failure = merge(self._failure or {}, fields)
end

--- Adds fields to the operation's completed / failed / cancelled record.
---@param fields table
function OperationContext:add_metadata(fields)
  check_running(self, "ctx:add_metadata")
  if not plain_table(fields) then
    argerror("ctx:add_metadata", "fields", "a table", fields)
  end
  merge(self.metadata, fields)
end

function OperationContext:__tostring()
  return format("fdn.OperationContext(%s, %s)", self.name, tostring(self.operation_id or self._state))
end

return M
