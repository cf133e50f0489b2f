--- The bad-argument sweep (docs/reliability-matrices.md, item 5).
--
-- Every public fdn function (found by catalog.lua) is called once with a
-- valid argument list, then once per parameter and per bad value
-- (values.lua), that parameter replaced. A value the parameter's kind
-- accepts (kinds.lua: the documented acceptance list) must not end in a
-- plain Lua error; any other must raise fdn.errors.InvalidArgument naming
-- the function and the parameter. Module-internal functions (and fdn.core)
-- are called with every value at every position too, and only have to end
-- without a crash. Each case runs in its own task with a fresh object, on
-- the virtual clock, under a deadline that ends calls that suspend.
--
--   luajit spec/reliability/sweep.lua       (make sweep)
-- Prints one line per failure and the figure line; exits 1 on a failure.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)reliability/") or "spec/")
  .. "?.lua;" .. package.path
local C = require "reliability.common"
local fdn = C.fdn
local errors = require "fdn.errors"
local T = require "fdn.testing"
local V = require "reliability.values"
local catalog = require "reliability.catalog"
local instances = require "reliability.instances"

local pack, say = C.pack, C.say
local unpack = unpack

-- Calls that suspend are ended after this many (virtual) seconds; the
-- odd figure tells the guard's Timeout from one the call raised itself.
local GUARD = 1234567

local failures, checked = {}, 0
local stats = { refused = 0, accepted = 0, internal = 0, functions = 0, baselines = 0 }

-- A failed case (already counted as checked).
local function fail_case(text)
  failures[#failures + 1] = text
  say("FAIL " .. text)
end

-- A failed check outside the cases (coverage, the catalog): counted too.
local function fail(text)
  checked = checked + 1
  fail_case(text)
end

local function is_guard(err)
  return errors.is(err, errors.Timeout) and type(err) == "table" and type(err.context) == "table"
    and err.context.seconds == GUARD
end

--- Builds the argument list of a case: the entry's valid arguments with
-- position `pos` (0: self) replaced by `value`. Returns fn, args (packed).
local function case_args(entry, obj, pos, value)
  local base
  if type(entry.args) == "function" then
    base = pack(entry.args(obj))
  else
    base = pack(unpack(entry.args or {}, 1, #(entry.params or {})))
    base.n = math.max(#(entry.params or {}), table.maxn(entry.args or {}))
  end
  local fn, args
  if entry.call_obj then
    fn, args = obj, base
    if pos ~= nil then
      args[pos] = value
      if pos > args.n then args.n = pos end
    end
  elseif entry.dot then
    fn, args = obj and obj[entry.method], base
    if pos ~= nil then
      args[pos] = value
      if pos > args.n then args.n = pos end
    end
  elseif entry.method then
    fn = obj and obj[entry.method]
    args = { n = base.n + 1, obj, unpack(base, 1, base.n) }
    if pos ~= nil then
      args[pos + 1] = value
      if pos + 1 > args.n then args.n = pos + 1 end
    end
  else
    fn = entry.fn
    local offset = entry.skip_self and 1 or 0
    args = { n = base.n + offset }
    if entry.skip_self then
      args[1] = entry.callee
    end
    for i = 1, base.n do
      args[i + offset] = base[i]
    end
    if pos ~= nil then
      args[pos + offset] = value
      if pos + offset > args.n then args.n = pos + offset end
    end
  end
  return fn, args
end

--- Runs one case in its own task: fresh instance, the call under the
-- guard, then cleanups. Returns {ok =, err =, suspended =, results =}.
local function run_case(entry, pos, label)
  C.trace(entry.name .. " " .. tostring(pos) .. " " .. tostring(label))
  local task = fdn.spawn(function()
    local obj, cleanup
    if entry.on then
      obj, cleanup = instances[entry.on].make()
    end
    local value = label and V.make(label, entry.class) or nil
    local fn, args = case_args(entry, obj, pos, value)
    local res
    if entry.unguarded then
      res = pack(pcall(fn, unpack(args, 1, args.n)))
    else
      res = pack(pcall(fdn.timeout, GUARD, fn, unpack(args, 1, args.n)))
    end
    if res[1] and entry.cleanup then
      pcall(fdn.shielded, entry.cleanup, obj, unpack(res, 2, res.n))
    end
    if cleanup then
      local ok, err = pcall(fdn.shielded, cleanup)
      if not ok then
        fail(entry.name .. ": the instance's cleanup failed: " .. C.show(err))
      end
    end
    return res
  end)
  local ok, res = task:wait()
  if not ok then
    return { ok = false, err = res, harness = true }
  end
  if res[1] then
    return { ok = true, results = pack(unpack(res, 2, res.n)) }
  end
  if is_guard(res[2]) then
    return { ok = true, suspended = true }
  end
  return { ok = false, err = res[2] }
end

--- Runs a main-context case (outside any engine) directly.
local function run_main_case(entry, pos, label)
  C.trace(entry.name .. " " .. tostring(pos) .. " " .. tostring(label))
  local value = label and V.make(label, entry.class) or nil
  local fn, args = case_args(entry, nil, pos, value)
  local res = pack(pcall(fn, unpack(args, 1, args.n)))
  if res[1] then
    return { ok = true, results = pack(unpack(res, 2, res.n)) }
  end
  return { ok = false, err = res[2] }
end

local function norm(name)
  return (name:gsub("^fdn%.", ""))
end

--- Whether `err` is an InvalidArgument naming `fname` and `param`.
local function names(err, fname, param)
  if not errors.is(err, errors.InvalidArgument) or type(err) ~= "table" then
    return false, "raised " .. C.show(err) .. " (not an fdn.errors.InvalidArgument)"
  end
  local message = tostring(err.message)
  local ctx = type(err.context) == "table" and err.context or {}
  local fn_ok = message:find(norm(fname), 1, true) ~= nil
    or (type(ctx["function"]) == "string" and ctx["function"]:find(norm(fname), 1, true) ~= nil)
  local p = ctx.parameter
  local param_ok = p == param or (type(p) == "string" and (p:sub(1, #param + 1) == param .. "."
    or p:sub(1, #param + 1) == param .. "["))
    or message:find("'" .. param, 1, true) ~= nil
  if not fn_ok then
    return false, "InvalidArgument does not name " .. fname .. ": " .. message
  end
  if not param_ok then
    return false, "InvalidArgument does not name the parameter '" .. param .. "': " .. message
  end
  return true
end

local function accepts(param, label)
  if param.accepts_not and param.accepts_not[label] then
    return false
  end
  return param.kind.accepts[label] == true
end

local function judge(entry, param, label, outcome)
  checked = checked + 1
  local where = string.format("%s %s=%s", entry.name, param.name, label)
  if outcome.harness then
    return fail_case(where .. ": the case's task itself failed: " .. C.show(outcome.err))
  end
  if accepts(param, label) then
    if outcome.ok or errors.class_of(outcome.err) or entry.raiser then
      stats.accepted = stats.accepted + 1
      return
    end
    return fail_case(where .. ": a documented acceptance, but the call then raised a plain Lua error: "
      .. C.show(outcome.err))
  end
  if outcome.ok then
    return fail_case(where .. ": accepted silently (" .. (outcome.suspended and "the call suspended"
      or "returned normally") .. "); expected InvalidArgument")
  end
  local fname = entry.fname or entry.name:gsub("%(%)$", "")
  if param.name == "self" and entry.self_fname then
    fname = entry.self_fname
  end
  local good, why = names(outcome.err, fname, param.as or param.name)
  if not good then
    return fail_case(where .. ": " .. why)
  end
  stats.refused = stats.refused + 1
end

--- Checks the entry's declared parameter names against the function's.
local function check_names(entry, fn)
  if entry.virtual or debug.getinfo(fn, "S").what == "C" then
    return
  end
  local offset = ((entry.method and not entry.dot) or entry.skip_self) and 1 or 0
  local info = debug.getinfo(fn, "u")
  local declared = #entry.params
  if info.nparams - offset ~= declared then
    fail(string.format("%s: the signature lists %d parameter(s), the function has %d",
      entry.name, declared, info.nparams - offset))
    return
  end
  for i, param in ipairs(entry.params) do
    local actual = debug.getlocal(fn, i + offset)
    if actual ~= param.name then
      fail(string.format("%s: parameter %d is '%s' in the code, '%s' in the signature",
        entry.name, i, tostring(actual), param.name))
    end
  end
  if info.isvararg and not entry.vararg then
    fail(entry.name .. ": takes ... but the signature does not say vararg = true")
  end
end

local known_mts, known_fns = {}, {}

--- Every object a public function returns must be a kind the catalog
-- knows (an instance kind, an error, a plain table or value).
local function check_results(entry, results)
  for i = 1, results.n do
    local v = results[i]
    local t = type(v)
    if t == "function" then
      if not known_fns[catalog.identity(v)] then
        fail(entry.name .. ": returns a function no instances.lua entry makes (result " .. i
          .. ", " .. tostring(catalog.identity(v)) .. "): add one, so its parameters are swept")
      end
    elseif t == "userdata" or (t == "table" and getmetatable(v) ~= nil) then
      local mt = getmetatable(v)
      if not known_mts[mt] and not errors.class_of(v) and not errors.is_class(v) then
        fail(entry.name .. ": returns an object of a kind instances.lua does not make ("
          .. C.show(v) .. "): add it, so its methods are swept")
      end
    end
  end
end

local function sweep_entry(entry, runner)
  local fn = entry.fn
  stats.functions = stats.functions + 1
  -- The valid call first: it must work, or the entry is wrong.
  local base = runner(entry, nil, nil)
  stats.baselines = stats.baselines + 1
  if base.harness then
    fail(entry.name .. ": the valid call's task failed: " .. C.show(base.err))
  elseif entry.baseline == nil and not base.ok then
    fail(entry.name .. ": the valid call raised " .. C.show(base.err))
  elseif entry.baseline ~= nil and entry.baseline ~= "any" and (base.ok
      or not errors.is(base.err, errors[entry.baseline])) then
    fail(entry.name .. ": the valid call should raise " .. entry.baseline)
  elseif base.results then
    check_results(entry, base.results)
  end
  local offset = (entry.method and not entry.dot) and 0 or 1
  local params = entry.params
  if entry.method and not entry.dot then
    local self_param = { name = "self", as = entry.self_param, kind = require("reliability.kinds").SELF }
    params = { self_param, unpack(entry.params) }
  end
  for i, param in ipairs(params) do
    for _, label in ipairs(V.labels) do
      judge(entry, param, label, runner(entry, i - 1 + offset, label))
    end
  end
  return fn
end

local function internal_tier(list)
  for _, a in ipairs(list) do
    local info = debug.getinfo(a.fn, "u")
    local npos = debug.getinfo(a.fn, "S").what == "C" and 3 or math.max(info.nparams, 1)
    for pos = 1, npos do
      for _, label in ipairs(V.labels) do
        C.trace(a.path .. " " .. pos .. " " .. label)
        local task = fdn.spawn(function()
          local args = { n = pos }
          args[pos] = V.make(label)
          return pcall(fdn.timeout, GUARD, a.fn, unpack(args, 1, args.n))
        end)
        task:wait()
        stats.internal = stats.internal + 1
      end
    end
  end
end

local function main()
  if os.getenv("FDN_SWEEP_PROBE") == "1" then
    -- The spec's check that a function without an entry fails the sweep.
    require("fdn.semaphore").probe = function(x) return x end
    require("fdn.core").limiter_methods.probe = function(self) return self end
  end
  local result = catalog.build()
  for _, problem in ipairs(result.problems) do
    fail("catalog: " .. problem)
  end
  local main_entries, task_entries = {}, {}
  for _, e in ipairs(result.entries) do
    if e.context == "main" then
      main_entries[#main_entries + 1] = e
    else
      task_entries[#task_entries + 1] = e
    end
  end

  C.with_log_capture(function()
    for _, e in ipairs(main_entries) do
      check_names(e, e.fn)
      sweep_entry(e, run_main_case)
    end
    T.run(function()
      -- Make one of each instance: their methods must all have entries.
      for _, name in ipairs((function()
        local keys = {}
        for k in pairs(instances) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)()) do
        local obj, cleanup = instances[name].make()
        catalog.cover_instance(result, name, obj)
        if type(obj) == "function" then
          known_fns[catalog.identity(obj)] = true
        elseif getmetatable(obj) ~= nil then
          known_mts[getmetatable(obj)] = true
        end
        if cleanup then
          cleanup()
        end
      end
      -- A task handle changes metatable when it finishes (the finished one
      -- needs no finalizer): a pending handle is the same kind, whichever
      -- the schedule order (FDN_SCHED_SEED) makes a function return.
      local pending = fdn.spawn(function() end)
      known_mts[getmetatable(pending)] = true
      pending:join()
      catalog.check_api(result)
      for _, missing in ipairs(result.missing) do
        fail("not covered: " .. missing .. " has no entry in signatures.lua")
      end
      for _, e in ipairs(task_entries) do
        local obj
        if e.on then
          local cleanup
          obj, cleanup = instances[e.on].make()
          if cleanup then cleanup() end
        end
        local fn = e.fn or (e.call_obj and obj) or (obj and obj[e.method])
        if type(fn) ~= "function" then
          fail(e.name .. ": the instance has no method " .. tostring(e.method))
        else
          check_names(e, fn)
          sweep_entry(e, run_case)
        end
      end
      local internal = {}
      for _, a in ipairs(result.api) do
        if a.internal and not result.covered[catalog.identity(a.fn)]
            and not catalog.never_called[a.path] then
          internal[#internal + 1] = a
        end
      end
      internal_tier(internal)
    end, { timeout = 600 })
  end)
  C.trace("done")
  C.finish("sweep", checked, #failures, {
    string.format("%d functions", stats.functions),
    string.format("%d refused with InvalidArgument naming function and parameter", stats.refused),
    string.format("%d documented acceptances", stats.accepted),
    string.format("%d internal-tier calls, 0 crashes", stats.internal),
  })
end

main()
