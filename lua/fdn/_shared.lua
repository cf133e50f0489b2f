--- Internal: small helpers fdn's modules share (not part of the API; the
-- leading underscore keeps fdn's lazy loader from exposing it).
local M = {}

local getmetatable, pairs, select, setmetatable, tostring, type =
  getmetatable, pairs, select, setmetatable, tostring, type

--- Whether `fn` can be called: a function, or a value whose metatable has
-- __call.
function M.is_callable(fn)
  if type(fn) == "function" then
    return true
  end
  local mt = getmetatable(fn)
  return type(mt) == "table" and mt.__call ~= nil
end

--- The arguments as a table, their count in `n` (nils kept).
function M.pack(...)
  return { n = select("#", ...), ... }
end

--- "Class 'name':method", or "Class:method" for an unnamed object: how
-- errors and events name the object they are about.
function M.where(class, name, method)
  if name then
    return class .. " '" .. name .. "':" .. method
  end
  return class .. ":" .. method
end

--- For classes that keep an object's name outside the object: returns the
-- (weak-keyed) names table and where(self, method).
function M.namer(class)
  local names = setmetatable({}, { __mode = "k" })
  return names, function(self, method)
    return M.where(class, names[self], method)
  end
end

--- A decorator factory, `factory(opts)(fn)`: `parse(opts)` once, then each
-- fn is checked and wrapped by `decorate(parsed, fn)`.
function M.decorator(fname, parse, decorate)
  return function(opts)
    local parsed = parse(opts)
    return function(fn)
      if not M.is_callable(fn) then
        require("fdn.errors").argerror(fname, "fn", "a function", fn)
      end
      return decorate(parsed, fn)
    end
  end
end

--- An option-name checker for `fname`: `known` lists the option names.
-- The checker takes opts (nil means {}; anything else but a table raises,
-- saying `expected`) and raises InvalidArgument naming the first unknown
-- option, so a misspelt option never passes silently. Returns the opts.
function M.option_checker(fname, known, expected)
  local set = {}
  for i = 1, #known do
    set[known[i]] = true
  end
  local listing = "a known option (" .. table.concat(known, ", ") .. ")"
  -- `as` names another function the options are checked for (optional).
  return function(opts, level, as)
    local name = as or fname
    level = (level or 2) + 1
    local argerror = require("fdn.errors").argerror
    if opts == nil and expected == nil then
      return {}
    elseif type(opts) ~= "table" then
      argerror(name, "opts", expected or "a table of options", opts, level)
    end
    for k in pairs(opts) do
      if not set[k] then
        argerror(name, tostring(k), listing, opts[k], level)
      end
    end
    return opts
  end
end

return M
