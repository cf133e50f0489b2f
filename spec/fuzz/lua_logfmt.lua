-- Fuzz driver (fuzz_logfmt): the JSON log writer. The input becomes a log
-- record (keys and values of every kind: invalid UTF-8, control bytes,
-- NaN and infinities, nested and cyclic tables, functions, fdn errors,
-- objects whose __tostring raises) that goes through fdn.log.encode_json
-- (the C encoder of bindings/l_logfmt.c plus fdn/log.lua's sanitizer), and
-- through a logger with a JSON sink. Invariants: nothing raises; each
-- line is one line of valid UTF-8 that lua-cjson parses back to an object
-- whose head keys (time, level, event, logger) come first, in that order.
local log = require "fdn.log"
local errors = require "fdn.errors"
local core = require "fdn.core"
local cjson = require "cjson.safe"

local byte, sub, char = string.byte, string.sub, string.char

log.configure { level = "trace", format = "json", sink = "/dev/null" }

local function violated(what, detail)
  error("invariant violated: " .. what .. (detail and (": " .. detail) or ""), 0)
end

local Bad = setmetatable({}, { __tostring = function() error("tostring raises") end })
local Named = setmetatable({}, { __tostring = function() return "named\0\255" end })
local Raising = setmetatable({}, { __index = function() error("index raises") end,
  __pairs = function() error("pairs raises") end })

-- The keys of a JSON object's top level, in the order they are written.
local function top_level_keys(line)
  local keys, depth, i, n = {}, 0, 1, #line
  while i <= n do
    local c = sub(line, i, i)
    if c == '"' then
      local j = i + 1
      while j <= n do
        local d = sub(line, j, j)
        if d == "\\" then
          j = j + 2
        elseif d == '"' then
          break
        else
          j = j + 1
        end
      end
      if depth == 1 and sub(line, j + 1, j + 1) == ":" then
        keys[#keys + 1] = cjson.decode(sub(line, i, j))
      end
      i = j + 1
    else
      if c == "{" or c == "[" then
        depth = depth + 1
      elseif c == "}" or c == "]" then
        depth = depth - 1
      end
      i = i + 1
    end
  end
  return keys
end

return function(data)
  local pos = 1
  local function u8()
    local b = byte(data, pos) or 0
    pos = pos + 1
    return b
  end
  local function bytes(n)
    local s = sub(data, pos, pos + n - 1)
    pos = pos + n
    return s
  end
  local depth = 0
  local value
  local function key()
    local k = u8() % 8
    if k == 0 then
      return ({ "time", "level", "event", "logger" })[u8() % 4 + 1]
    elseif k == 1 then
      return u8() - 128
    elseif k == 2 then
      return (u8() - 128) / 7
    elseif k == 3 then
      return math.huge
    elseif k == 4 then
      return true
    end
    return bytes(u8() % 12)
  end
  function value(parent)
    local k = u8() % 20
    if k == 0 then
      return nil
    elseif k == 1 then
      return u8() % 2 == 0
    elseif k == 2 then
      return 0 / 0
    elseif k == 3 then
      return (u8() % 2 == 0 and 1 or -1) * math.huge
    elseif k == 4 then
      return -0.0
    elseif k == 5 then
      return (u8() - 128) * 10 ^ (u8() % 40 - 20)
    elseif k == 6 then
      return 2 ^ 53 + u8()
    elseif k == 7 then
      return 1e15 + u8() / 3
    elseif k == 8 then
      return print
    elseif k == 9 then
      return io.stdout
    elseif k == 10 then
      return coroutine.create(print)
    elseif k == 11 then
      return errors.Timeout.new(bytes(u8() % 8), { context = { n = u8(), s = bytes(3) } })
    elseif k == 12 then
      return Bad
    elseif k == 13 then
      return Named
    elseif k == 14 then
      return Raising
    elseif k == 15 and parent then
      return parent -- a cycle
    elseif k <= 17 and depth < 12 then
      depth = depth + 1
      local t = {}
      for _ = 1, u8() % 6 do
        local kk = key()
        if kk == kk and kk ~= nil then
          t[kk] = value(t)
        end
      end
      depth = depth - 1
      return t
    end
    return bytes(u8() % 24) .. char(u8())
  end

  local record = {}
  for _ = 1, u8() % 10 do
    local k = key()
    if k == k and k ~= nil then
      record[k] = value(record)
    end
  end
  local ok, line = pcall(log.encode_json, record)
  if not ok then
    violated("encode_json raised", errors.format(line))
  end
  if type(line) ~= "string" then
    violated("encode_json returned a " .. type(line))
  end
  if line:find("\n", 1, true) then
    violated("a JSON record spans lines", line)
  end
  if core.utf8_clean(line) ~= line then
    violated("a JSON record is not valid UTF-8", line)
  end
  local decoded, err = cjson.decode(line)
  if type(decoded) ~= "table" then
    violated("a JSON record does not parse", tostring(err) .. " in " .. line)
  end
  -- Head keys first, in order: the record's top-level keys as written.
  local keys = top_level_keys(line)
  local want = {}
  for _, h in ipairs({ "time", "level", "event", "logger" }) do
    if record[h] ~= nil then
      want[#want + 1] = h
    end
  end
  for i, h in ipairs(want) do
    if keys[i] ~= h then
      violated("head key " .. h .. " not at position " .. i, line)
    end
  end
  -- The same record through a logger writing JSON lines to a file.
  local ok2, err2 = pcall(log.info, "fuzz.event", record)
  if not ok2 then
    violated("log.info raised", errors.format(err2))
  end
end
