--- fdn.log: one structured logger for fdn and the scripts built on it.
--
--   log.info("user_loaded", {user_id = 42})
--   local db = log.bind{component = "db"};  db.warn("slow_query", {ms = 812})
--   local mylog = log.get("payments")        -- a named logger
--   log.configure{level = "debug", format = "json", sink = "stderr"}
--
-- A record is a flat table: event, level, time (Unix seconds), logger (the
-- name, if any), then the task-local context, the bound fields and the
-- call's fields (later ones win; the four head keys always hold the
-- logger's values). A call below its logger's level returns at once.
--
-- Sinks get whole lines: JSON (one object per line, head keys first) or a
-- console key=value form for people. Values JSON cannot hold are rendered
-- as strings and invalid UTF-8 is repaired, so writing a record never
-- raises; a failing sink is reported on stderr, never to the caller.
local core = require "fdn.core"
local context = require "fdn.context"
local errors = require "fdn.errors"

local M = {}

local type, pairs, tostring, pcall, next = type, pairs, tostring, pcall, next
local getmetatable, setmetatable, rawget = getmetatable, setmetatable, rawget
local format, concat, sort = string.format, table.concat, table.sort
local find, gsub, lower, byte = string.find, string.gsub, string.lower, string.byte
local floor, huge = math.floor, math.huge
local wall_time, utf8_clean = core.wall_time, core.utf8_clean
local context_current = context.current
local argerror, class_of = errors.argerror, errors.class_of
local co_running = coroutine.running
local io_stderr, io_stdout = io.stderr, io.stdout

M.levels = { trace = 10, debug = 20, info = 30, warn = 40, error = 50, off = 100 }
local LEVELS = M.levels
local LEVEL_NAMES = '"trace", "debug", "info", "warn", "error" or "off"'

-- Safe values --------------------------------------------------------------

local cjson_ok, cjson = pcall(require, "cjson.safe")
local cjson_encode
if cjson_ok then
  cjson = cjson.new()
  cjson.encode_sparse_array(true)
  cjson.encode_invalid_numbers(false)
  cjson_encode = cjson.encode
end

local MAX_DEPTH = 8

local function clean_string(s)
  if find(s, "[\128-\255]") then
    return utf8_clean(s)
  end
  return s
end

local function safe_tostring(value)
  local ok, s = pcall(tostring, value)
  if ok and type(s) == "string" then
    return clean_string(s)
  end
  return "<" .. type(value) .. ">"
end

local function safe_key(k)
  local kt = type(k)
  if kt == "string" then
    return clean_string(k)
  elseif kt == "number" then
    if k == huge or k == -huge then
      return tostring(k)
    end
    return k
  end
  return "<" .. kt .. ">"
end

--- A copy of `value` that JSON can hold: functions, userdata, threads and
-- objects with __tostring become strings; NaN and infinities become
-- "nan"/"inf"/"-inf"; cycles "<cycle>"; nesting past 8 levels "<table: too
-- deep>"; keys other than strings and numbers "<type>"; fdn errors their
-- to_table(); invalid UTF-8 is repaired. Never raises.
local function sanitize(value, depth, seen)
  local t = type(value)
  if t == "string" then
    return clean_string(value)
  elseif t == "number" then
    if value ~= value then
      return "nan"
    elseif value == huge then
      return "inf"
    elseif value == -huge then
      return "-inf"
    end
    return value
  elseif t == "boolean" or t == "nil" then
    return value
  elseif t == "table" then
    seen = seen or {}
    if seen[value] then
      return "<cycle>"
    end
    if depth >= MAX_DEPTH then
      return "<table: too deep>"
    end
    local mt = getmetatable(value)
    if mt ~= nil then
      if class_of(value) then
        local ok, flat = pcall(value.to_table, value)
        if ok and type(flat) == "table" then
          seen[value] = true
          local out = sanitize(flat, depth, seen)
          seen[value] = nil
          return out
        end
        return safe_tostring(value)
      elseif type(mt) == "table" and rawget(mt, "__tostring") ~= nil then
        return safe_tostring(value)
      end
    end
    seen[value] = true
    local out = {}
    for k, v in pairs(value) do
      out[safe_key(k)] = sanitize(v, depth + 1, seen)
    end
    seen[value] = nil
    return out
  end
  return safe_tostring(value)
end
M.sanitize = function(value)
  return sanitize(value, 0, nil)
end

-- Used when lua-cjson is missing or refuses a value: enough JSON for the
-- sanitized values above.
local function fallback_encode(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = '"' .. gsub(v, '[%c"\\]', function(c)
      return format("\\u%04x", byte(c))
    end) .. '"'
  elseif t == "number" or t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    out[#out + 1] = "{"
    local first = true
    for k, x in pairs(v) do
      if not first then
        out[#out + 1] = ","
      end
      first = false
      fallback_encode(tostring(k), out)
      out[#out + 1] = ":"
      fallback_encode(x, out)
    end
    out[#out + 1] = "}"
  else
    out[#out + 1] = "null"
  end
  return out
end

local function encode_value(v)
  if cjson_ok then
    local s = cjson_encode(v)
    if s then
      return s
    end
  end
  return concat(fallback_encode(v, {}))
end

-- JSON text for a value the C encoder leaves to Lua: a table, a function,
-- userdata...
local function render_value(v)
  return encode_value(sanitize(v, 1, nil))
end

local log_json = core.log_json
local HEAD = { time = true, level = true, event = true, logger = true }

--- One JSON object, on one line: time, level, event and logger first, then
-- the other fields (in no particular order), every value made safe.
---@param record table
---@return string
local function encode_json(record)
  return log_json(record, render_value)
end
M.encode_json = function(record)
  if type(record) ~= "table" then
    argerror("fdn.log.encode_json", "record", "a table", record)
  end
  return encode_json(record)
end

-- Console format ------------------------------------------------------------

local COLORS = {
  trace = "\27[90m", debug = "\27[36m", info = "\27[32m",
  warn = "\27[33m", error = "\27[31m",
}
local RESET, DIM, BOLD = "\27[0m", "\27[2m", "\27[1m"
-- Multi-line values read best below the line, indented.
local TRAILING = { traceback = true }

local console_string = core.console_str

-- Numbers for people: integers whole, others to the microsecond of a
-- millisecond-scale value (duration_ms=12.839), small ones to 6 digits.
local function console_number(v)
  if v ~= v or v == huge or v == -huge or v % 1 == 0 then
    return tostring(v)
  end
  local a = v < 0 and -v or v
  if a >= 1 and a < 1e15 then
    return format("%.3f", v)
  end
  return format("%.6g", v)
end

local function console_value(v)
  local t = type(v)
  if t == "string" then
    return console_string(v)
  elseif t == "number" then
    return console_number(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    if class_of(v) then
      return console_string(errors.format(v))
    end
    local mt = getmetatable(v)
    if type(mt) == "table" and rawget(mt, "__tostring") ~= nil then
      return console_string(safe_tostring(v))
    end
    return encode_value(sanitize(v, 1, nil))
  end
  return console_string(safe_tostring(v))
end

local last_second, last_stamp = nil, nil

local function timestamp(secs)
  if type(secs) ~= "number" or secs ~= secs or secs == huge or secs == -huge then
    secs = 0
  end
  local whole = floor(secs)
  if whole ~= last_second then
    last_second, last_stamp = whole, os.date("!%Y-%m-%dT%H:%M:%S", whole)
  end
  return format("%s.%03dZ", last_stamp, floor((secs - whole) * 1000))
end

local function field_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    return ta < tb
  end
  if ta == "string" or ta == "number" then
    return a < b
  end
  return tostring(a) < tostring(b)
end

--- One readable line: time, LEVEL, [logger], event, then key=value pairs
-- sorted by key; a traceback follows on indented lines. `color` adds ANSI
-- colours.
---@param record table
---@param color boolean|nil
---@return string
local function format_console(record, color)
  local level = record.level
  level = type(level) == "string" and level or "info"
  local head = format("%-5s", level:upper())
  local stamp = timestamp(record.time)
  if color then
    head = (COLORS[level] or "") .. head .. RESET
    stamp = DIM .. stamp .. RESET
  end
  local parts = { stamp, head }
  if record.logger ~= nil then
    parts[#parts + 1] = "[" .. console_value(record.logger) .. "]"
  end
  local event = record.event
  event = type(event) == "string" and console_string(event) or console_value(event)
  parts[#parts + 1] = color and (BOLD .. event .. RESET) or event
  local keys, n, trailing, mixed = {}, 0, nil, false
  for k, v in pairs(record) do
    if not HEAD[k] then
      if TRAILING[k] and type(v) == "string" then
        trailing = trailing or {}
        trailing[#trailing + 1] = k
      else
        n = n + 1
        keys[n] = k
        mixed = mixed or type(k) ~= "string"
      end
    end
  end
  if mixed then
    sort(keys, field_less)
  else
    sort(keys)
  end
  for i = 1, #keys do
    local k = keys[i]
    local key = type(k) == "string" and console_string(k) or console_value(k)
    parts[#parts + 1] = key .. "=" .. console_value(record[k])
  end
  local line = concat(parts, " ")
  if trailing then
    sort(trailing)
    for i = 1, #trailing do
      local text = gsub(clean_string(record[trailing[i]]), "^\n+", "")
      text = gsub(gsub(text, "\r", ""), "\n", "\n    ")
      line = line .. "\n    " .. gsub(text, "[%z\1-\8\11-\31\127]", function(c)
        return format("\\x%02x", byte(c))
      end)
    end
  end
  return line
end
M.format_console = function(record, color)
  if type(record) ~= "table" then
    argerror("fdn.log.format_console", "record", "a table", record)
  end
  return format_console(record, color)
end

-- Sinks ---------------------------------------------------------------------

local config = { level = "info", format = "console", sink = "stderr", color = "auto", levels = {} }
local emit_record -- function(record) -> true when written
local owned_file, owned_path = nil, nil -- a file the logger opened itself

local last_failure_report = -1
local suppressed_failures = 0

--- Reports a sink failure on stderr (never through the logger itself), at
-- most once a second so a full disk does not flood the terminal.
local function report_sink_failure(err)
  local now = os.time()
  if now == last_failure_report then
    suppressed_failures = suppressed_failures + 1
    return
  end
  local extra = ""
  if suppressed_failures > 0 then
    extra = format(" (%d more failures suppressed)", suppressed_failures)
  end
  last_failure_report, suppressed_failures = now, 0
  io_stderr:write("fdn.log: the log sink failed: ", errors.format(err), extra, "\n")
end

-- Forgets the last sink failure report, so the next failure is reported
-- at once (for the reliability matrices, which fail a sink again and again).
function M._reset_sink_failure_reports()
  last_failure_report, suppressed_failures = -1, 0
end

local function json_line(record)
  return log_json(record, render_value, true)
end

local function file_writer(file, fmt, color)
  local render = fmt == "json" and json_line or function(record)
    return format_console(record, color) .. "\n"
  end
  return function(record)
    local ok, line = pcall(render, record)
    if not ok then
      report_sink_failure(line)
      return false
    end
    -- One write per record, so concurrent writers never interleave lines.
    local written, err = file:write(line)
    if not written then
      report_sink_failure(err)
      return false
    end
    return true
  end
end

local MAIN = {} -- coroutine.running() is nil on the main thread
local in_sink = setmetatable({}, { __mode = "k" })
local stderr_console = file_writer(io_stderr, "console", false)

local function function_writer(sink)
  return function(record)
    local co = co_running() or MAIN
    if in_sink[co] then
      -- The sink itself logged: writing that back into the sink would
      -- recurse, so the record goes to stderr instead.
      return stderr_console(record)
    end
    in_sink[co] = true
    local ok, err = pcall(sink, record)
    in_sink[co] = nil
    if not ok then
      report_sink_failure(err)
      return false
    end
    return true
  end
end

local function wants_color(option, fd)
  if option == true or option == false then
    return option
  end
  if fd == nil or os.getenv("NO_COLOR") or os.getenv("TERM") == "dumb" then
    return false
  end
  return core.isatty(fd)
end

local function is_callable(v)
  if type(v) == "function" then
    return true
  end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- Levels --------------------------------------------------------------------

local default_threshold = LEVELS.info
local overrides = {}   -- logger name -> level value (from opts.levels)
local states = {}      -- logger name -> {threshold = n}
local root_state = { threshold = default_threshold }

-- "fdn.retry.worker" takes the level set for itself, else for "fdn.retry",
-- else for "fdn", else the default.
local function threshold_for(name)
  while name do
    local value = overrides[name]
    if value then
      return value
    end
    name = name:match("^(.*)%.[^.]*$")
  end
  return default_threshold
end

local function refresh_thresholds()
  root_state.threshold = default_threshold
  for name, state in pairs(states) do
    state.threshold = threshold_for(name)
  end
end

local function level_value(fname, param, level)
  local value = type(level) == "string" and LEVELS[lower(level)] or nil
  if value == nil then
    argerror(fname, param, LEVEL_NAMES, level, 3)
  end
  return value, lower(level)
end

-- Configuration ---------------------------------------------------------------

local OPTIONS = { level = true, format = true, sink = true, color = true, levels = true }

--- Sets level, format ("json" | "console"), sink ("stderr" | "stdout" | a
-- file path, appended to | an open file | function(record)), color ("auto"
-- | true | false) and levels (per logger name: {["fdn.retry"] = "debug"},
-- inherited by dotted children). Unset options keep their value.
---@param opts table
function M.configure(opts)
  if type(opts) ~= "table" then
    argerror("fdn.log.configure", "opts", "a table", opts)
  end
  for k in pairs(opts) do
    if not OPTIONS[k] then
      argerror("fdn.log.configure", "opts." .. tostring(k),
        "one of level, format, sink, color, levels (unknown option)", opts[k])
    end
  end
  local level = config.level
  local threshold = default_threshold
  if opts.level ~= nil then
    threshold, level = level_value("fdn.log.configure", "opts.level", opts.level)
  end
  local fmt = opts.format or config.format
  if fmt ~= "json" and fmt ~= "console" then
    argerror("fdn.log.configure", "opts.format", '"json" or "console"', fmt)
  end
  local color = config.color
  if opts.color ~= nil then
    color = opts.color
    if color ~= "auto" and color ~= true and color ~= false then
      argerror("fdn.log.configure", "opts.color", '"auto", true or false', color)
    end
  end
  local levels, new_overrides = config.levels, overrides
  if opts.levels ~= nil then
    if type(opts.levels) ~= "table" then
      argerror("fdn.log.configure", "opts.levels", "a table of logger name = level", opts.levels)
    end
    levels, new_overrides = {}, {}
    for name, l in pairs(opts.levels) do
      if type(name) ~= "string" then
        argerror("fdn.log.configure", "opts.levels", "logger names as keys", name)
      end
      new_overrides[name], levels[name] = level_value("fdn.log.configure",
        "opts.levels[" .. format("%q", name) .. "]", l)
    end
  end
  local sink = opts.sink
  if sink == nil then
    sink = config.sink
  end
  local writer, file, path
  if sink == "stderr" or sink == io_stderr then
    writer = file_writer(io_stderr, fmt, fmt == "console" and wants_color(color, 2))
  elseif sink == "stdout" or sink == io_stdout then
    writer = file_writer(io_stdout, fmt, fmt == "console" and wants_color(color, 1))
  elseif io.type(sink) == "file" then
    writer = file_writer(sink, fmt, fmt == "console" and color == true)
  elseif type(sink) == "string" and sink ~= "" then
    if sink == owned_path then
      file = owned_file
    else
      local err
      file, err = io.open(sink, "a")
      if not file then
        error(errors.InvalidArgument.new("fdn.log.configure: bad argument 'opts.sink' "
          .. "(cannot open " .. format("%q", sink) .. " for appending: " .. tostring(err) .. ")",
          { context = { ["function"] = "fdn.log.configure", parameter = "opts.sink" } }), 2)
      end
      file:setvbuf("line")
    end
    path = sink
    writer = file_writer(file, fmt, fmt == "console" and color == true)
  elseif is_callable(sink) then
    writer = function_writer(sink)
  else
    argerror("fdn.log.configure", "opts.sink",
      '"stderr", "stdout", a file path, an open file or a function', sink)
  end
  if owned_file and owned_file ~= file then
    owned_file:close()
  end
  owned_file, owned_path = file, path
  config = { level = level, format = fmt, sink = sink, color = color, levels = levels }
  default_threshold, overrides = threshold, new_overrides
  emit_record = writer
  refresh_thresholds()
end

--- The current configuration (a copy).
---@return table
function M.config()
  local levels = {}
  for k, v in pairs(config.levels) do
    levels[k] = v
  end
  return {
    level = config.level, format = config.format, sink = config.sink,
    color = config.color, levels = levels,
  }
end

-- Loggers -----------------------------------------------------------------------

-- Records start with room for the head and a dozen fields, so filling one
-- does not rehash it again and again.
local ok_new, new_table = pcall(require, "table.new")
if not ok_new then
  new_table = function()
    return {}
  end
end

local function build(level, name, bound, event, fields, with_context)
  local record = new_table(0, 16)
  if with_context then
    local ctx = context_current()
    if next(ctx) ~= nil then
      for k, v in pairs(ctx) do
        if type(k) == "string" then
          record[k] = v
        end
      end
    end
  end
  if bound then
    for k, v in pairs(bound) do
      record[k] = v
    end
  end
  if fields then
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

local loggers = setmetatable({}, { __mode = "k" }) -- every logger object

local function bad_call(fname, event, fields)
  if type(event) ~= "string" then
    local hint = ""
    if loggers[event] then
      hint = "; call loggers with a dot, not a colon"
    end
    argerror(fname, "event", "a string" .. hint, event, 3)
  end
  argerror(fname, "fields", "a table or nil", fields, 3)
end

local function make_logger(name, bound, state)
  local logger = { name = name }
  local prefix = name and ("log.get(" .. format("%q", name) .. ").") or "fdn.log."
  for level, value in pairs(LEVELS) do
    if level ~= "off" then
      local fname = prefix .. level
      -- The level comes first: a call below it does nothing else, not even
      -- check its arguments (they are checked whenever it writes).
      logger[level] = function(event, fields)
        if value < state.threshold then
          return
        end
        if type(event) ~= "string" or (fields ~= nil and type(fields) ~= "table") then
          return bad_call(fname, event, fields)
        end
        emit_record(build(level, name, bound, event, fields, true))
      end
    end
  end

  --- Logs at a level given by name.
  logger.log = function(level, event, fields)
    local value = type(level) == "string" and LEVELS[level] or nil
    if value == nil or level == "off" then
      argerror(prefix .. "log", "level", '"trace", "debug", "info", "warn" or "error"', level)
    end
    if value < state.threshold then
      return
    end
    if type(event) ~= "string" or (fields ~= nil and type(fields) ~= "table") then
      return bad_call(prefix .. "log", event, fields)
    end
    emit_record(build(level, name, bound, event, fields, true))
  end

  --- A logger that adds `fields` to every record.
  logger.bind = function(fields)
    if type(fields) ~= "table" then
      argerror(prefix .. "bind", "fields", "a table", fields)
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
    return make_logger(name, merged, state)
  end

  --- Whether a record at `level` would be written by this logger.
  logger.enabled = function(level)
    local value = type(level) == "string" and LEVELS[level] or nil
    if value == nil then
      argerror(prefix .. "enabled", "level", LEVEL_NAMES, level)
    end
    return value < LEVELS.off and value >= state.threshold
  end

  loggers[logger] = true
  return logger
end

local named = {}

--- The logger called `name` (records carry logger = name). Its level is
-- the one configured for the name or its nearest dotted parent.
---@param name string
function M.get(name)
  if type(name) ~= "string" or name == "" then
    argerror("fdn.log.get", "name", "a non-empty string", name)
  end
  local logger = named[name]
  if logger == nil then
    local state = { threshold = threshold_for(name) }
    states[name] = state
    logger = make_logger(name, nil, state)
    named[name] = logger
  end
  return logger
end

local root = make_logger(nil, nil, root_state)
for k, v in pairs(root) do
  if k ~= "name" and k ~= "enabled" then
    M[k] = v
  end
end
loggers[M] = true

--- Whether a record at `level` would be written by the root logger, or by
-- the logger called `name`.
---@param level string
---@param name string|nil
function M.enabled(level, name)
  if name ~= nil then
    if type(name) ~= "string" or name == "" then
      argerror("fdn.log.enabled", "name", "a non-empty string or nil", name)
    end
    return M.get(name).enabled(level)
  end
  local value = type(level) == "string" and LEVELS[level] or nil
  if value == nil then
    argerror("fdn.log.enabled", "level", LEVEL_NAMES, level)
  end
  return value < LEVELS.off and value >= root_state.threshold
end

-- fdn's own reports ------------------------------------------------------------

-- Reports made inside the task they concern carry its context; the others
-- (from a collected handle, a closing engine) would only pick up whichever
-- task happened to be running.
local IN_TASK = { event_subscriber_failed = true, exit_failed = true, shutdown_hook_failed = true }

local function report_fields(kind, info)
  local fields = {}
  if type(info) == "table" then
    for k, v in pairs(info) do
      if HEAD[k] then
        -- The record's own keys hold the report's; an `event` in the info
        -- (the event a failing subscriber was given) becomes event_name.
        k = k .. "_name"
      end
      fields[k] = v
    end
  else
    fields.info = info
  end
  if kind == "unjoined_task_failed" then
    local err = fields.error
    if class_of(err) and type(rawget(err, "traceback")) == "string" then
      fields.traceback = err.traceback
    end
    fields.message = format("task %s failed and nobody joined it: %s",
      tostring(fields.task_id), errors.format(err))
  elseif kind == "event_subscriber_failed" then
    fields.message = format("a subscriber to %s failed: %s", tostring(fields.event_name),
      errors.format(fields.error))
  elseif fields.message == nil and fields.error ~= nil then
    fields.message = errors.format(fields.error)
  end
  return fields
end

--- Writes one of fdn's reports (fdn.report's kinds) as an error record of
-- the "fdn" logger. Returns true when it was written or filtered out by
-- the level, false when the sink failed (the caller then falls back to
-- plain stderr, so the report is not lost).
function M._report(kind, info)
  local logger = M.get("fdn")
  if not logger.enabled("error") then
    return true
  end
  local record = build("error", "fdn", nil, tostring(kind), report_fields(kind, info), IN_TASK[kind])
  return emit_record(record) == true
end

-- The logger as an event subscriber ---------------------------------------------

--- Logs lifecycle events from fdn.events: each event becomes a record whose
-- event is the event name and whose fields are its data. opts.pattern
-- (default "*") selects events, opts.level (default "info") is their level,
-- except names ending in "failed", logged at "warn" or above; opts.levels
-- sets a level per event name ("off" mutes one); opts.logger names the
-- logger (default "fdn.events"). Returns a function that stops it.
---@param opts table|nil
---@return function
function M.log_events(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror("fdn.log.log_events", "opts", "a table or nil", opts)
  end
  opts = opts or {}
  local pattern = opts.pattern or "*"
  if type(pattern) ~= "string" or pattern == "" then
    argerror("fdn.log.log_events", "opts.pattern", "a non-empty string", pattern)
  end
  local base_value, base = level_value("fdn.log.log_events", "opts.level", opts.level or "info")
  local per_event = {}
  if opts.levels ~= nil then
    if type(opts.levels) ~= "table" then
      argerror("fdn.log.log_events", "opts.levels", "a table of event name = level", opts.levels)
    end
    for name, l in pairs(opts.levels) do
      local _, lname = level_value("fdn.log.log_events", "opts.levels[" .. tostring(name) .. "]", l)
      per_event[name] = lname
    end
  end
  local logger_name = opts.logger or "fdn.events"
  if type(logger_name) ~= "string" or logger_name == "" then
    argerror("fdn.log.log_events", "opts.logger", "a non-empty string", logger_name)
  end
  local logger = M.get(logger_name)
  local warn_level = base_value > LEVELS.warn and base or "warn"
  local levels_of = setmetatable({}, { __index = function(t, name)
    local l = per_event[name]
    if l == nil then
      l = (find(name, "failed$") and warn_level) or base
    end
    t[name] = l
    return l
  end })
  return require("fdn.events").subscribe(pattern, function(name, data)
    local l = levels_of[name]
    if l == "off" or not logger.enabled(l) then
      return
    end
    local fields = data
    if type(data) ~= "table" or getmetatable(data) ~= nil then
      fields = { data = data }
    end
    logger.log(l, name, fields)
  end)
end

-- Defaults from the environment ---------------------------------------------------

local function warn_env(var, value, expected)
  io_stderr:write(format("fdn.log: ignoring %s=%q (expected %s)\n", var, value, expected))
end

do
  local opts = { level = "info", format = "console", sink = "stderr" }
  local level = os.getenv("FDN_LOG_LEVEL")
  if level and level ~= "" then
    if LEVELS[lower(level)] then
      opts.level = lower(level)
    else
      warn_env("FDN_LOG_LEVEL", level, LEVEL_NAMES)
    end
  end
  local fmt = os.getenv("FDN_LOG_FORMAT")
  if fmt and fmt ~= "" then
    if lower(fmt) == "json" or lower(fmt) == "console" then
      opts.format = lower(fmt)
    else
      warn_env("FDN_LOG_FORMAT", fmt, '"json" or "console"')
    end
  end
  M.configure(opts)
  local events = os.getenv("FDN_LOG_EVENTS")
  if events and events ~= "" and events ~= "0" then
    local all = events == "1" or lower(events) == "all" or lower(events) == "true"
    M.log_events { pattern = all and "*" or events }
  end
end

return M
