-- Helpers shared by the Lua workload programs (fdn, luv, bare LuaJIT):
-- the workload size, resident memory, the summary the harness checks, and
-- one JSON line on stdout. Loaded with dofile so that fdn-lua scripts need
-- no LUA_PATH:
--   local common = dofile(arg[0]:gsub("[^/]*$", "") .. "../lib/common.lua")
local M = {}

local floor = math.floor

--- The workload size from the first script argument, or `default`.
function M.size(arg1, default)
  local n = tonumber(arg1) or default
  assert(n and n >= 1 and n % 1 == 0, "bad workload size: " .. tostring(arg1))
  return n
end

--- Resident set size of this process in bytes (Linux).
function M.rss()
  local f = assert(io.open("/proc/self/statm"))
  local _ = f:read("*n") -- total program size; the resident set follows
  local pages = f:read("*n")
  f:close()
  return pages * 4096
end

--- Collects garbage fully, so a memory baseline starts from live data only.
function M.settle()
  collectgarbage()
  collectgarbage()
end

--- The sleep durations of W3 in milliseconds, 1 to 10: a Park-Miller
-- sequence from seed 42, the same in every peer (all arithmetic stays
-- below 2^53, so doubles compute it exactly).
function M.durations(n)
  local d, x = {}, 42
  for i = 1, n do
    x = (x * 16807) % 2147483647
    d[i] = 1 + x % 10
  end
  return d
end

--- count, sum and whether results[i] == i for every i.
function M.summary(results, n)
  local count, sum, ordered = 0, 0, true
  for i = 1, n do
    local v = results[i]
    if v ~= nil then
      count = count + 1
      sum = sum + v
    end
    if v ~= i then
      ordered = false
    end
  end
  return count, sum, ordered
end

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode(v)
  local t = type(v)
  if t == "number" then
    if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
      return string.format("%d", v)
    end
    return string.format("%.17g", v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "string" then
    return encode_string(v)
  elseif v == nil then
    return "null"
  end
  error("cannot encode a " .. t)
end

--- Prints a flat table as one JSON object on its own line.
function M.emit(fields)
  local keys = {}
  for k in pairs(fields) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = encode_string(k) .. ":" .. encode(fields[k])
  end
  io.stdout:write("{", table.concat(parts, ","), "}\n")
  io.stdout:flush()
end

--- Reports that this workload cannot run here, and why.
function M.absent(workload, reason)
  M.emit { workload = workload, absent = reason }
end

return M
