--- Internal: the small pieces of HTTP that server and client share —
-- status texts, percent-decoding, query strings, the Date header, header
-- validation (not part of the API; fdn.http re-exports what users need).
local M = {}

local byte, char, find, format, gsub, lower, sub =
  string.byte, string.char, string.find, string.format, string.gsub, string.lower, string.sub
local tonumber, type, pairs, tostring = tonumber, type, pairs, tostring
local os_date, os_time = os.date, os.time

M.status_text = {
  [100] = "Continue", [101] = "Switching Protocols",
  [200] = "OK", [201] = "Created", [202] = "Accepted", [203] = "Non-Authoritative Information",
  [204] = "No Content", [205] = "Reset Content", [206] = "Partial Content",
  [300] = "Multiple Choices", [301] = "Moved Permanently", [302] = "Found",
  [303] = "See Other", [304] = "Not Modified", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect",
  [400] = "Bad Request", [401] = "Unauthorized", [402] = "Payment Required",
  [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [406] = "Not Acceptable", [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
  [411] = "Length Required", [412] = "Precondition Failed", [413] = "Content Too Large",
  [414] = "URI Too Long", [415] = "Unsupported Media Type", [416] = "Range Not Satisfiable",
  [417] = "Expectation Failed", [418] = "I'm a teapot", [422] = "Unprocessable Content",
  [425] = "Too Early", [426] = "Upgrade Required", [428] = "Precondition Required",
  [429] = "Too Many Requests", [431] = "Request Header Fields Too Large",
  [451] = "Unavailable For Legal Reasons",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
  [505] = "HTTP Version Not Supported",
}

local function hex_byte(h)
  return char(tonumber(h, 16))
end

--- Decodes %XX escapes (and "+" as a space when `plus`).
function M.unescape(s, plus)
  if plus and find(s, "+", 1, true) then
    s = gsub(s, "+", " ")
  end
  if find(s, "%", 1, true) then
    s = gsub(s, "%%(%x%x)", hex_byte)
  end
  return s
end

local function escape_byte(c)
  return format("%%%02X", byte(c))
end

--- Encodes everything but unreserved characters (RFC 3986) as %XX.
function M.escape(s)
  return (gsub(s, "[^%w%-%._~]", escape_byte))
end

--- Parses "a=1&b=x+y&a=2" into {a = {"1", "2"}, b = "x y"}: a key given
-- once maps to its string, a repeated key to the list of its values.
function M.parse_query(qs)
  local out = {}
  if qs == nil or qs == "" then
    return out
  end
  for pair in qs:gmatch("[^&;]+") do
    local eq = find(pair, "=", 1, true)
    local k, v
    if eq then
      k, v = sub(pair, 1, eq - 1), sub(pair, eq + 1)
    else
      k, v = pair, ""
    end
    k, v = M.unescape(k, true), M.unescape(v, true)
    local prev = out[k]
    if prev == nil then
      out[k] = v
    elseif type(prev) == "table" then
      prev[#prev + 1] = v
    else
      out[k] = { prev, v }
    end
  end
  return out
end

--- Builds a query string from a table (values: strings, numbers,
-- booleans, or lists of them), keys in sorted order.
function M.build_query(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = tostring(k)
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" then
      for _, item in ipairs(v) do
        parts[#parts + 1] = M.escape(k) .. "=" .. M.escape(tostring(item))
      end
    else
      parts[#parts + 1] = M.escape(k) .. "=" .. M.escape(tostring(v))
    end
  end
  return table.concat(parts, "&")
end

local date_second, date_value = -1, nil

--- The Date header's value, formatted once per second.
function M.http_date()
  local t = os_time()
  if t ~= date_second then
    date_second, date_value = t, os_date("!%a, %d %b %Y %H:%M:%S GMT", t)
  end
  return date_value
end

-- Header names seen before, lower-cased, or false when not tokens: names
-- repeat from response to response, so each is checked once.
local names = setmetatable({}, { __mode = "k" })
local known = 0

--- The lower-cased name when `s` may be sent as a header name (an RFC 9110
-- token), else false.
function M.header_name(s)
  local v = names[s]
  if v ~= nil then
    return v
  end
  v = type(s) == "string" and s ~= "" and not find(s, "[^%w!#%$%%&'%*%+%-%.%^_`|~]") and lower(s)
  if known > 4096 then
    names, known = setmetatable({}, { __mode = "k" }), 0
  end
  names[s], known = v, known + 1
  return v
end

function M.valid_name(s)
  return M.header_name(s) ~= false
end

--- Whether `s` may be sent as a header value: no CR, LF or NUL, which would
-- let a value end the header (response splitting).
function M.valid_value(s)
  return not (find(s, "\r", 1, true) or find(s, "\n", 1, true) or find(s, "\0", 1, true))
end

M.lower = lower

return M
