--- Internal: the routing table of an fdn.http app.
--
-- Paths are literal segments, `:name` segments (one segment, captured in
-- req.params.name, percent-decoded) and an optional final `*name` (the
-- rest of the path, possibly empty). Literal paths are found in one table
-- lookup; patterns are tried in the order they were added. A path that
-- matches under other methods only gives 405 with the Allow list.
local util = require "fdn._http_util"

local M = {}
M.__index = M

local find, sub, gmatch = string.find, string.sub, string.gmatch
local concat, sort = table.concat, table.sort
local unescape = util.unescape

function M.new()
  return setmetatable({ static = {}, patterns = {}, count = 0 }, M)
end

local function split(path)
  local segs = {}
  for seg in gmatch(path, "[^/]+") do
    segs[#segs + 1] = seg
  end
  return segs
end

--- Parses a route path; returns nil and a reason when it is malformed.
function M.compile(path)
  if sub(path, 1, 1) ~= "/" then
    return nil, "must start with /"
  end
  local segs = split(path)
  local compiled, names = {}, {}
  for i, seg in ipairs(segs) do
    local first = sub(seg, 1, 1)
    if first == ":" or first == "*" then
      local name = sub(seg, 2)
      if not find(name, "^[%a_][%w_]*$") then
        return nil, "bad parameter name '" .. seg .. "'"
      end
      if names[name] then
        return nil, "parameter '" .. name .. "' appears twice"
      end
      if first == "*" and i ~= #segs then
        return nil, "a *rest parameter must come last"
      end
      names[name] = true
      compiled[i] = { kind = first, name = name }
    else
      compiled[i] = { kind = "=", text = seg }
    end
  end
  return compiled
end

local function is_literal(compiled)
  for i = 1, #compiled do
    if compiled[i].kind ~= "=" then
      return false
    end
  end
  return true
end

local function normalize(path)
  local segs = split(path)
  return "/" .. concat(segs, "/")
end

--- Adds a route; `compiled` comes from M.compile(path).
function M:add(method, path, compiled, handler)
  self.count = self.count + 1
  if is_literal(compiled) then
    local key = normalize(path)
    local by_method = self.static[key]
    if by_method == nil then
      by_method = {}
      self.static[key] = by_method
    end
    if by_method[method] == nil then
      by_method[method] = handler
    end
    return
  end
  self.patterns[#self.patterns + 1] = { method = method, segs = compiled, handler = handler }
end

local function match(segs, parts)
  local params = {}
  local n = #segs
  for i = 1, n do
    local s = segs[i]
    if s.kind == "*" then
      local rest = {}
      for j = i, #parts do
        rest[#rest + 1] = unescape(parts[j])
      end
      params[s.name] = concat(rest, "/")
      return params
    end
    local part = parts[i]
    if part == nil then
      return nil
    end
    if s.kind == "=" then
      if part ~= s.text then
        return nil
      end
    else
      params[s.name] = unescape(part)
    end
  end
  if #parts ~= n then
    return nil
  end
  return params
end

local EMPTY = setmetatable({}, { __newindex = function(t, k, v) rawset(t, k, v) end })

--- Finds the handler for method and path: handler, params; or nil and the
-- list of methods the path allows (empty when nothing matches it).
function M:find(method, path)
  local by_method = self.static[path]
  if by_method == nil and (find(path, "//", 1, true) or (#path > 1 and sub(path, -1) == "/")) then
    by_method = self.static[normalize(path)]
  end
  if by_method ~= nil then
    local h = by_method[method] or (method == "HEAD" and by_method.GET)
    if h then
      return h, {}
    end
  end
  local allowed = {}
  if by_method ~= nil then
    for m in pairs(by_method) do
      allowed[m] = true
    end
  end
  local patterns = self.patterns
  if #patterns > 0 then
    local parts = split(path)
    local fallback, fallback_params
    for i = 1, #patterns do
      local r = patterns[i]
      local params = match(r.segs, parts)
      if params then
        if r.method == method then
          return r.handler, params
        elseif method == "HEAD" and r.method == "GET" and fallback == nil then
          fallback, fallback_params = r.handler, params
        end
        allowed[r.method] = true
      end
    end
    if fallback then
      return fallback, fallback_params
    end
  end
  local list = {}
  for m in pairs(allowed) do
    list[#list + 1] = m
  end
  if allowed.GET and not allowed.HEAD then
    list[#list + 1] = "HEAD"
  end
  sort(list)
  return nil, list
end

M.EMPTY = EMPTY

return M
