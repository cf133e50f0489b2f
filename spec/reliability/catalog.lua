--- Finds every public fdn function by walking the module tables (fdn and
-- every module of lua/fdn that fdn.X loads), the error classes, and the
-- methods of the objects the constructors return, and matches each with
-- its entry in signatures.lua. A public function without an entry is a
-- failure of the sweep: a new function cannot escape it.
local fdn = require "fdn"
local errors = require "fdn.errors"
local K = require "reliability.kinds"
local instances = require "reliability.instances"
local signatures = require "reliability.signatures"

local M = {}

--- Modules that are not fdn's public face, with the reason. Their
-- functions are still called with every bad value (the "internal" tier),
-- which only has to end without a crash.
M.internal_modules = {
  _results = "underscore module: the resilience decorators' result-passing helpers",
  children = "internal helpers of the structured scopes (its header says so)",
  cli = "the fdn-lua driver (cli.main runs a script and owns the process); "
    .. "spec/fdn_lua_spec.lua covers its argument handling",
  testing_assert = "implementation of fdn.testing's assertions, swept through fdn.testing",
  testing_mock = "implementation of fdn.testing.mock_async, swept through fdn.testing",
}

--- Functions never called, even in the internal tier, and why.
M.never_called = {
  ["fdn.cli.main"] = "runs a script: reads stdin and writes usage text",
  ["fdn.core.set_hooks"] = "replaces the binding's error and report hooks for the whole Lua state",
  ["fdn.core.set_task_event_hook"] = "replaces the scheduler's event hook for the whole Lua state",
  ["fdn.core.engine_new"] = "binds a new engine to the Lua state",
  ["fdn.events.reset"] = "swept with its (empty) parameter list only: it drops every subscriber",
}

--- Names that are not part of the API: a leading underscore, and
-- metamethods Lua itself calls on the object they belong to (__enter,
-- __exit and __call are API: fdn.with and callers use them).
local API_METAMETHODS = { __enter = true, __exit = true, __call = true }
function M.is_api_name(key)
  if type(key) ~= "string" then
    return false
  end
  if key:sub(1, 2) == "__" then
    return API_METAMETHODS[key] == true
  end
  return key:sub(1, 1) ~= "_"
end

--- A stable identity for a function: the function itself for C functions,
-- its prototype (source and lines) for Lua closures, so every closure a
-- factory makes (a logger's methods, a decorator) is one function.
function M.identity(fn)
  local info = debug.getinfo(fn, "S")
  if info.what == "C" then
    return fn
  end
  return info.source .. ":" .. info.linedefined .. "-" .. info.lastlinedefined
end

local function source_dir()
  local dir = os.getenv("FDN_SOURCE_DIR")
  if dir and dir ~= "" then
    return dir
  end
  local path = package.searchpath("fdn", package.path)
  return assert(path, "cannot find lua/fdn"):gsub("/lua/fdn/init%.lua$", "")
end
M.source_dir = source_dir

--- The module files of lua/fdn, sorted: {file = "task_manager", path = "..."}.
function M.module_files()
  local dir = source_dir() .. "/lua/fdn"
  local list = {}
  local p = assert(io.popen("ls " .. dir))
  for line in p:lines() do
    local name = line:match("^([%w_]+)%.lua$")
    if name then
      list[#list + 1] = { file = name, path = dir .. "/" .. line }
    end
  end
  p:close()
  table.sort(list, function(a, b) return a.file < b.file end)
  return list
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

--- Walks a table of functions (and the classes and namespaces in it) and
-- calls visit(path, fn) for each API function; `seen` keeps tables
-- reached twice from being walked twice.
local function walk(t, prefix, depth, seen, visit)
  if seen[t] then
    return
  end
  seen[t] = true
  for _, k in ipairs(sorted_keys(t)) do
    local v = rawget(t, k)
    if M.is_api_name(k) then
      local path = prefix .. k
      if type(v) == "function" then
        visit(path, v)
      elseif type(v) == "table" and depth < 3 and k ~= "parent" and k ~= "class" then
        walk(v, path .. ".", depth + 1, seen, visit)
      end
    end
  end
  local mt = getmetatable(t)
  if type(mt) == "table" and type(rawget(mt, "__call")) == "function" and prefix ~= "" then
    visit(prefix:sub(1, -2) .. "()", rawget(mt, "__call"))
  end
end

--- The methods an object answers: its own function fields and those of
-- its metatable's __index chain.
function M.methods(obj)
  local out, seen = {}, {}
  local function add_from(t)
    if type(t) ~= "table" or seen[t] then
      return
    end
    seen[t] = true
    for _, k in ipairs(sorted_keys(t)) do
      local v = rawget(t, k)
      if type(v) == "function" and M.is_api_name(k) and out[k] == nil then
        out[k] = v
      end
    end
    local mt = getmetatable(t)
    if type(mt) == "table" then
      add_from(rawget(mt, "__index"))
    end
  end
  local mt = getmetatable(obj)
  if type(obj) == "table" and mt == nil then
    add_from(obj) -- a plain table of functions (a logger)
  end
  if type(mt) == "table" then
    add_from(rawget(mt, "__index"))
    if type(rawget(mt, "__call")) == "function" then
      out.__call = rawget(mt, "__call")
    end
  end
  return out
end

--- Every module: {key = "fdn.X" path prefix, file, value, internal = why}.
function M.modules()
  local list = {}
  for _, m in ipairs(M.module_files()) do
    local value
    if m.file == "init" then
      value = fdn
    else
      value = require("fdn." .. m.file)
    end
    local prefix = m.file == "init" and "fdn" or "fdn." .. m.file
    list[#list + 1] = {
      file = m.file, prefix = prefix, value = value,
      internal = M.internal_modules[m.file] or (m.file:sub(1, 1) == "_" and "underscore module"),
    }
  end
  return list
end

--- Every error class reachable from the modules (fdn.errors and the ones
-- modules define, such as BatchFailed and Leak), by path.
function M.error_classes(found)
  local classes = {}
  for path, value in pairs(found) do
    if errors.is_class(value) then
      classes[#classes + 1] = { path = path, class = value }
    end
  end
  table.sort(classes, function(a, b) return a.path < b.path end)
  return classes
end

--- Resolves a module path ("fdn.Semaphore.new", "fdn.retry") to its value.
function M.resolve(path)
  local value = nil
  for part in path:gmatch("[^.]+") do
    if value == nil then
      assert(part == "fdn", path)
      value = fdn
    else
      value = value[part]
    end
  end
  return value
end

--- Builds the list of cases to sweep and the coverage report.
-- Returns {entries = {...}, internal = {...}, missing = {...}, problems = {...}}.
--   entries: signature entries with `fn` resolved (module functions) or
--            `method` set (instance methods), plus generated ones;
--   internal: {path, fn} of internal-tier functions;
--   missing: API functions without a signature (failures);
--   problems: signature entries that do not match the code (failures).
function M.build()
  local result = { entries = {}, internal = {}, missing = {}, problems = {} }
  local covered = {} -- identity -> entry name
  local tables = {}  -- path -> table (for error classes)
  local api = {}     -- {path, fn, internal}

  -- 1. Walk the module tables.
  for _, mod in ipairs(M.modules()) do
    if type(mod.value) == "table" then
      local seen = {}
      walk(mod.value, mod.prefix .. ".", 0, seen, function(path, fn)
        api[#api + 1] = { path = path, fn = fn, internal = mod.internal }
      end)
      for t in pairs(seen) do
        if errors.is_class(t) then
          tables[tostring(rawget(t, "name"))] = t
        end
      end
      -- The module itself may be callable (fdn.retry{...}).
      local mt = getmetatable(mod.value)
      if type(mt) == "table" and type(rawget(mt, "__call")) == "function" then
        api[#api + 1] = { path = mod.prefix .. "()", fn = rawget(mt, "__call"),
          internal = mod.internal }
      end
    end
  end
  -- fdn.core: the C module under the library, internal tier.
  local core = require "fdn.core"
  for _, k in ipairs(sorted_keys(core)) do
    local v = core[k]
    if type(v) == "function" then
      api[#api + 1] = { path = "fdn.core." .. k, fn = v, internal = "the C binding under the "
        .. "library (docs/internals.md); users call it through the modules" }
    elseif type(v) == "table" and k:find("_methods$") then
      for _, mk in ipairs(sorted_keys(v)) do
        if type(v[mk]) == "function" then
          api[#api + 1] = { path = "fdn.core." .. k .. "." .. mk, fn = v[mk], internal = true,
            method_of = k }
        end
      end
    end
  end

  -- 2. The signature entries: module functions resolve by path, methods
  -- by the instance they are called on.
  for _, sig in ipairs(signatures) do
    local entry = setmetatable({}, { __index = sig })
    if sig.on then
      local inst = instances[sig.on]
      if inst == nil then
        result.problems[#result.problems + 1] = sig.name .. ": unknown instance " .. sig.on
      else
        entry.method = sig.name:match("[:.]([%w_]+)$")
        entry.call_obj = entry.method == nil -- the instance is the function
        entry.dot = inst.dot_methods
        entry.class = inst.class
        entry.self_param = inst.self_param
      end
    else
      local fn = M.resolve(sig.fn)
      if type(fn) == "table" and sig.call then
        local mt = getmetatable(fn)
        entry.callee = fn
        fn = mt and rawget(mt, "__call")
        entry.skip_self = true -- the __call's first parameter is the module
      end
      if type(fn) ~= "function" then
        result.problems[#result.problems + 1] = sig.name .. ": " .. sig.fn
          .. " is not a function"
      else
        entry.fn = fn
        covered[M.identity(fn)] = sig.name
      end
    end
    result.entries[#result.entries + 1] = entry
  end

  -- 3. Error classes: each class's new, and the class called as a function.
  for _, name in ipairs(sorted_keys(tables)) do
    local class = tables[name]
    local display = "fdn.errors." .. name
    for _, form in ipairs { "new", "()" } do
      local fn = form == "new" and rawget(class, "new") or rawget(getmetatable(class), "__call")
      if type(fn) == "function" then
        covered[M.identity(fn)] = display .. (form == "new" and ".new" or "()")
        result.entries[#result.entries + 1] = {
          name = display .. (form == "new" and ".new" or "()"), fn = fn,
          fname = name .. ".new", skip_self = form == "()", callee = class,
          params = {
            { name = "message", kind = K.ANY },
            { name = "opts", kind = K.OPT_TABLE },
          },
          args = { "sweep" },
        }
      end
    end
  end

  result.api = api
  result.covered = covered
  return result
end

--- Marks the methods of instance `name` (made by instances[name].make)
-- covered by the entries that call them; records the ones no entry
-- calls. Runs in a task (factories need an engine).
function M.cover_instance(result, name, obj)
  local inst = instances[name]
  local by_method = {}
  for _, e in ipairs(result.entries) do
    if e.method and (e.on == name or (e.on and instances[e.on].shares == name)
        or (inst.shares and (e.on == inst.shares))) then
      by_method[e.method] = e
    end
  end
  if inst.passthrough or type(obj) == "function" then
    local fn = obj
    if type(fn) == "function" then
      result.covered[M.identity(fn)] = result.covered[M.identity(fn)] or inst.class
    end
    return
  end
  for method, fn in pairs(M.methods(obj)) do
    local id = M.identity(fn)
    if by_method[method] then
      result.covered[id] = result.covered[id] or by_method[method].name
    elseif not result.covered[id] then
      result.missing[#result.missing + 1] = inst.class .. ":" .. method
        .. " (a method of the object instances." .. name .. " makes)"
    end
  end
end

--- After the instances were covered: API functions of public modules
-- that no entry covers.
function M.check_api(result)
  for _, a in ipairs(result.api) do
    if not a.internal and not result.covered[M.identity(a.fn)]
        and not M.never_called[a.path] then
      result.missing[#result.missing + 1] = a.path
    end
  end
end

return M
