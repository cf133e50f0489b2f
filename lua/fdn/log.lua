--- fdn.log: one structured logger for fdn and the scripts built on it.
--
--   log.info("user_loaded", {user_id = 42})
--   local db = log.bind{component = "db"};  db.warn("slow_query", {ms = 812})
--   local mylog = log.get("payments")        -- a named logger
--   log.configure{level = "debug", format = "json", sink = "stderr"}
--
-- A record is a flat table: event, level, time (Unix seconds), logger (the
-- name, if any), then the task-local context, the bound fields and the
-- call's fields (later ones win). A call below the level returns at once.
local core = require "fdn.core"
local context = require "fdn.context"

local M = {}

local type, pairs, tostring, pcall, next = type, pairs, tostring, pcall, next
local format, concat, sort = string.format, table.concat, table.sort
local wall_time, context_current = core.wall_time, context.current

M.levels = { trace = 10, debug = 20, info = 30, warn = 40, error = 50, off = 100 }
local LEVELS = M.levels

local threshold = LEVELS.info
local emit_record -- function(record), chosen by configure
local config = { level = "info", format = "console", sink = "stderr" }

-- Safe rendering ----------------------------------------------------------

local cjson_ok, cjson = pcall(require, "cjson.safe")
if cjson_ok then
  cjson = cjson.new()
  cjson.encode_sparse_array(true)
  cjson.encode_invalid_numbers(false)
end

local MAX_DEPTH = 8

--- A copy of `value` that JSON can hold: functions, userdata, threads,
-- NaN/infinities, cycles and non-string keys become strings; fdn errors
-- become their to_table(). Never raises.
local function sanitize(value, depth, seen)
  local t = type(value)
  if t == "string" or t == "boolean" or t == "nil" then
    return value
  elseif t == "number" then
    if value ~= value then
      return "nan"
    elseif value == math.huge then
      return "inf"
    elseif value == -math.huge then
      return "-inf"
    end
    return value
  elseif t == "table" then
    if seen[value] then
      return "<cycle>"
    end
    if depth >= MAX_DEPTH then
      return "<table: too deep>"
    end
    local mt = getmetatable(value)
    if type(mt) == "table" and type(mt.to_table) == "function" and mt.name then
      local ok, flat = pcall(value.to_table, value)
      if ok and type(flat) == "table" then
        value = flat
      end
    end
    seen[value] = true
    local out = {}
    for k, v in pairs(value) do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" then
        k = "<" .. kt .. ">"
      elseif kt == "number" and (k ~= k or k == math.huge or k == -math.huge) then
        k = tostring(k)
      end
      out[k] = sanitize(v, depth + 1, seen)
    end
    seen[value] = nil
    return out
  end
  local ok, s = pcall(tostring, value)
  return ok and s or ("<" .. t .. ">")
end
M.sanitize = function(value)
  return sanitize(value, 0, {})
end

local function encode_json(record)
  if cjson_ok then
    local s = cjson.encode(sanitize(record, 0, {}))
    if s then
      return s
    end
  end
  -- Without cjson (or if it still refused), fall back to a minimal encoder.
  local parts = {}
  for k, v in pairs(sanitize(record, 0, {})) do
    parts[#parts + 1] = format("%q:%q", tostring(k), tostring(v))
  end
  return "{" .. concat(parts, ",") .. "}"
end
M.encode_json = encode_json

local COLORS = {
  trace = "\27[90m", debug = "\27[36m", info = "\27[32m",
  warn = "\27[33m", error = "\27[31m",
}
local RESET = "\27[0m"
local FIRST = { event = true, level = true, time = true, logger = true }

local function console_value(v)
  local t = type(v)
  if t == "string" then
    if v:find("[%s\"=]") or v == "" then
      return format("%q", v)
    end
    return v
  elseif t == "table" then
    local s = encode_json(v)
    return s
  end
  local ok, s = pcall(tostring, v)
  return ok and s or ("<" .. t .. ">")
end

local function format_console(record, color)
  local secs = record.time or 0
  local stamp = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(secs))
    .. format(".%03dZ", math.floor((secs % 1) * 1000))
  local level = record.level or "info"
  local head = format("%-5s", level:upper())
  if color and COLORS[level] then
    head = COLORS[level] .. head .. RESET
  end
  local parts = { stamp, head }
  if record.logger then
    parts[#parts + 1] = "[" .. tostring(record.logger) .. "]"
  end
  parts[#parts + 1] = tostring(record.event)
  local keys = {}
  for k in pairs(record) do
    if not FIRST[k] then
      keys[#keys + 1] = tostring(k)
    end
  end
  sort(keys)
  for i = 1, #keys do
    local k = keys[i]
    parts[#parts + 1] = k .. "=" .. console_value(record[k])
  end
  return concat(parts, " ")
end
M.format_console = format_console

-- Sinks and configuration -------------------------------------------------

local function file_writer(file, fmt, color)
  if fmt == "json" then
    return function(record)
      file:write(encode_json(record), "\n")
      file:flush()
    end
  end
  return function(record)
    file:write(format_console(record, color), "\n")
    file:flush()
  end
end

local function report_sink_failure(err)
  io.stderr:write("fdn.log: the log sink failed: ", tostring(err), "\n")
end

local function check_level(fname, level)
  if LEVELS[level] == nil then
    require("fdn.errors").argerror(fname, "level",
      '"trace", "debug", "info", "warn", "error" or "off"', level, 2)
  end
end

--- Sets level, format ("json" | "console") and sink ("stderr" | a file path
-- | function(record)). Unset options keep their value.
function M.configure(opts)
  local errors = require "fdn.errors"
  if type(opts) ~= "table" then
    errors.argerror("fdn.log.configure", "opts", "a table", opts)
  end
  local level = opts.level or config.level
  check_level("fdn.log.configure", level)
  local fmt = opts.format or config.format
  if fmt ~= "json" and fmt ~= "console" then
    errors.argerror("fdn.log.configure", "opts.format", '"json" or "console"', fmt)
  end
  local sink = opts.sink or config.sink
  local writer
  if type(sink) == "function" then
    writer = function(record)
      local ok, err = pcall(sink, record)
      if not ok then
        report_sink_failure(err)
      end
    end
  elseif sink == "stderr" then
    writer = file_writer(io.stderr, fmt, core.isatty(2))
  elseif type(sink) == "string" then
    local file, err = io.open(sink, "a")
    if not file then
      errors.argerror("fdn.log.configure", "opts.sink", "a writable path", sink .. " (" .. err .. ")")
    end
    writer = file_writer(file, fmt, false)
  else
    errors.argerror("fdn.log.configure", "opts.sink", '"stderr", a path or a function', sink)
  end
  config = { level = level, format = fmt, sink = sink }
  threshold = LEVELS[level]
  emit_record = writer
end

--- The current configuration (a copy).
function M.config()
  return { level = config.level, format = config.format, sink = config.sink }
end

--- Whether a record at `level` would be written.
function M.enabled(level)
  return (LEVELS[level] or 0) >= threshold
end

-- Loggers -----------------------------------------------------------------

local function build(level, name, bound, event, fields)
  local record = {}
  local ctx = context_current()
  if next(ctx) ~= nil then
    for k, v in pairs(ctx) do
      record[k] = v
    end
  end
  if bound then
    for k, v in pairs(bound) do
      record[k] = v
    end
  end
  if type(fields) == "table" then
    for k, v in pairs(fields) do
      record[k] = v
    end
  end
  record.event = event
  record.level = level
  record.time = wall_time()
  record.logger = name
  return record
end

local function make_logger(name, bound)
  local logger = { name = name }
  for level, value in pairs(LEVELS) do
    if level ~= "off" then
      logger[level] = function(event, fields)
        if value < threshold then
          return
        end
        emit_record(build(level, name, bound, tostring(event), fields))
      end
    end
  end
  --- A logger that adds `fields` to every record.
  logger.bind = function(fields)
    if type(fields) ~= "table" then
      require("fdn.errors").argerror("log.bind", "fields", "a table", fields)
    end
    local merged = {}
    if bound then
      for k, v in pairs(bound) do
        merged[k] = v
      end
    end
    for k, v in pairs(fields) do
      merged[k] = v
    end
    return make_logger(name, merged)
  end
  --- Logs at a level given by name.
  logger.log = function(level, event, fields)
    local value = LEVELS[level]
    if value == nil then
      check_level("log.log", level)
    end
    if value < threshold then
      return
    end
    emit_record(build(level, name, bound, tostring(event), fields))
  end
  return logger
end

local named = {}

--- The logger called `name` (records carry logger = name).
function M.get(name)
  if type(name) ~= "string" then
    require("fdn.errors").argerror("fdn.log.get", "name", "a string", name)
  end
  local logger = named[name]
  if logger == nil then
    logger = make_logger(name, nil)
    named[name] = logger
  end
  return logger
end

local root = make_logger(nil, nil)
for k, v in pairs(root) do
  if k ~= "name" then
    M[k] = v
  end
end

-- Defaults from the environment, then stderr.
do
  local level = os.getenv("FDN_LOG_LEVEL")
  local fmt = os.getenv("FDN_LOG_FORMAT")
  local opts = { level = "info", format = "console", sink = "stderr" }
  if level and LEVELS[level] then
    opts.level = level
  end
  if fmt == "json" or fmt == "console" then
    opts.format = fmt
  end
  M.configure(opts)
end

return M
