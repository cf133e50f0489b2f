--- The peers: how to find each one here, which workloads it runs, and the
-- command line of each run. A peer that cannot run here says why.
local proc = require "harness.proc"

local M = {}

local function first_line(s)
  return (s or ""):match("^%s*([^\n]-)%s*\n") or (s or ""):match("^%s*(.-)%s*$")
end

local function output(ctx, argv)
  local out, why = proc.output(argv, { env = ctx.env, timeout = 30 })
  if not out then
    return nil, why
  end
  return first_line(out)
end

local FDN_SCRIPTS = {
  W0 = "w0_switch.lua", W1 = "w1_spawn.lua", W2 = "w2_limit.lua", W3 = "w3_timers.lua",
  ["W4.raise"] = "w4_retry.lua", ["W4.nil"] = "w4_retry.lua", W5 = "w5_batch.lua",
  W6 = "w6_parked.lua", S0 = "s0_hello.lua",
}

local TASK_WORKLOADS = { "W0", "W1", "W2", "W3", "W4.raise", "W4.nil", "W5", "W6", "S0" }
local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do
    s[v] = true
  end
  return s
end

M.list = {
  {
    name = "fdn",
    what = "fdn-lua job scripts (bench/fdn/)",
    workloads = set_of(TASK_WORKLOADS),
    probe = function(ctx)
      if not proc.which(ctx.fdn_lua) then
        return nil, "no fdn-lua in " .. ctx.build .. " (build it first)"
      end
      return output(ctx, { ctx.fdn_lua, "-v" })
    end,
    argv = function(ctx, w, n)
      local script = ctx.root .. "/bench/fdn/" .. FDN_SCRIPTS[w]
      if w == "S0" then
        return { ctx.fdn_lua, script }
      elseif w == "W4.raise" or w == "W4.nil" then
        return { ctx.fdn_lua, script, tostring(n), w == "W4.nil" and "nil" or "raise" }
      end
      return { ctx.fdn_lua, script, tostring(n) }
    end,
  },
  {
    name = "luv",
    what = "LuaJIT + luv, hand-rolled scheduler (bench/luv/sched.lua)",
    workloads = set_of(TASK_WORKLOADS),
    probe = function(ctx)
      local v, why = output(ctx, { ctx.luajit, "-e",
        "local uv = require 'luv' print('luv, libuv ' .. uv.version_string())" })
      if not v then
        return nil, "luv not loadable by " .. ctx.luajit .. " (Debian: lua-luv): " .. tostring(why)
      end
      return v
    end,
    variants = function(_, w)
      if w == "W4.raise" or w == "W4.nil" then
        return { { label = "hand loop" } }
      end
    end,
    argv = function(ctx, w, n)
      if w == "S0" then
        return { ctx.luajit, ctx.root .. "/bench/luv/hello.lua" }
      end
      return { ctx.luajit, ctx.root .. "/bench/luv/workloads.lua", w, tostring(n) }
    end,
  },
  {
    name = "luajit",
    what = "bare LuaJIT: coroutine.resume from a Lua loop (W0), hello world (S0)",
    workloads = set_of { "W0", "S0" },
    probe = function(ctx)
      local v, why = output(ctx, { ctx.luajit, "-v" })
      return v and v:match("^(.-)%s+%-%-") or v, why
    end,
    argv = function(ctx, w, n)
      if w == "S0" then
        return { ctx.luajit, ctx.root .. "/bench/luajit/hello.lua" }
      end
      return { ctx.luajit, ctx.root .. "/bench/luajit/w0_resume.lua", tostring(n) }
    end,
  },
  {
    name = "asyncio",
    what = "CPython asyncio, default loop (bench/asyncio/workloads.py)",
    workloads = set_of(TASK_WORKLOADS),
    probe = function(ctx)
      if not ctx.python then
        return nil, "no python3 (Debian: python3)"
      end
      local v, why = output(ctx, { ctx.python, "-c",
        "import asyncio, sys; print('CPython ' + sys.version.split()[0])" })
      return v, why
    end,
  },
  {
    name = "uvloop",
    what = "CPython asyncio on uvloop (bench/asyncio/workloads.py --loop uvloop)",
    workloads = set_of(TASK_WORKLOADS),
    probe = function(ctx)
      if not ctx.python then
        return nil, "no python3 (Debian: python3)"
      end
      local v = output(ctx, { ctx.python, "-c", "import uvloop; print('uvloop ' + uvloop.__version__)" })
      if not v then
        return nil, "uvloop not importable by " .. ctx.python .. " (Debian: python3-uvloop)"
      end
      return v
    end,
  },
  {
    name = "node",
    what = "Node promises and async functions (bench/node/workloads.js)",
    workloads = set_of(TASK_WORKLOADS),
    probe = function(ctx)
      if not ctx.node then
        return nil, "no node on PATH (Debian: nodejs)"
      end
      local v, why = output(ctx, { ctx.node, "--version" })
      if not v then
        return nil, why
      end
      return "Node " .. v
    end,
    variants = function(ctx, w)
      if w == "W2" then
        if ctx.p_limit then
          return { { key = "p-limit", label = "p-limit " .. ctx.p_limit } }
        end
        return { { key = "hand", label = "hand-written limiter: " .. ctx.p_limit_why } }
      elseif w == "W4.raise" or w == "W4.nil" then
        return { { label = "hand loop" } }
      end
    end,
    argv = function(ctx, w, n, variant)
      if w == "S0" then
        return { ctx.node, ctx.root .. "/bench/node/hello.js" }
      end
      local argv = { ctx.node, ctx.root .. "/bench/node/workloads.js", w, tostring(n) }
      if variant and variant.key then
        argv[#argv + 1] = "--variant"
        argv[#argv + 1] = variant.key
      end
      return argv
    end,
  },
  {
    name = "copas",
    what = "copas 4.x under LuaJIT",
    workloads = {},
    probe = function(ctx)
      local v = output(ctx, { ctx.luajit, "-e", "print(require('copas')._VERSION)" })
      if not v then
        return nil, "not installed: Debian packages only copas 1.x (lua-copas, a socket "
          .. "dispatcher without sleep, semaphores or a task API); copas 4.x is not packaged"
      end
      return nil, v .. " found, but its workloads are not written: only copas 4.x has the "
        .. "task API they need"
    end,
  },
  {
    name = "floor-coro",
    what = "C floor: raw LuaJIT coroutines resumed from C (bench/floor/floor_coro.c)",
    workloads = set_of { "W0", "W1", "W6" },
    probe = function(ctx)
      local exe = ctx.build .. "/bench/fdn-bench-floor-coro"
      if not proc.which(exe) then
        return nil, "not built: " .. exe .. " (CMake option FDN_BUILD_BENCH)"
      end
      return "C, LuaJIT C API"
    end,
    argv = function(ctx, w, n)
      return { ctx.build .. "/bench/fdn-bench-floor-coro", w, tostring(n) }
    end,
  },
  {
    name = "floor-uv",
    what = "C floor: plain libuv, one uv_timer_t per task (bench/floor/floor_uv.c)",
    workloads = set_of { "W3" },
    probe = function(ctx)
      local exe = ctx.build .. "/bench/fdn-bench-floor-uv"
      if not proc.which(exe) then
        return nil, "not built: " .. exe .. " (CMake option FDN_BUILD_BENCH)"
      end
      return "C, libuv"
    end,
    argv = function(ctx, w, n)
      return { ctx.build .. "/bench/fdn-bench-floor-uv", w, tostring(n) }
    end,
  },
}

-- asyncio and uvloop share one program; uvloop adds --loop uvloop.
local function python_variants(ctx, w)
  if w == "W4.raise" then
    local tenacity = ctx.tenacity and { key = "tenacity", label = "tenacity " .. ctx.tenacity }
      or { key = "tenacity", label = "tenacity", absent = "tenacity not importable by "
        .. tostring(ctx.python) .. " (Debian: python3-tenacity)" }
    return { tenacity, { key = "loop", label = "hand loop" } }
  elseif w == "W4.nil" then
    return { { key = "loop", label = "hand loop, (value, err) tuples" } }
  end
end
for _, p in ipairs(M.list) do
  if p.name == "asyncio" or p.name == "uvloop" then
    local loop = p.name == "uvloop"
    p.variants = python_variants
    p.argv = function(ctx, w, n, variant)
      if w == "S0" then
        local argv = { ctx.python, ctx.root .. "/bench/asyncio/hello.py" }
        if loop then
          argv[#argv + 1] = "uvloop"
        end
        return argv
      end
      local argv = { ctx.python, ctx.root .. "/bench/asyncio/workloads.py", w, tostring(n) }
      if loop then
        argv[#argv + 1] = "--loop"
        argv[#argv + 1] = "uvloop"
      end
      if variant and variant.key then
        argv[#argv + 1] = "--variant"
        argv[#argv + 1] = variant.key
      end
      return argv
    end
  end
end

M.by_name = {}
for _, p in ipairs(M.list) do
  M.by_name[p.name] = p
end

--- Probes what this machine has: interpreters, modules, versions. Sets
-- ctx.status[name] = {version =} or {absent = reason}.
function M.probe(ctx)
  ctx.status = {}
  if ctx.python then
    ctx.tenacity = output(ctx, { ctx.python, "-c",
      "import importlib.metadata as m, tenacity; print(m.version('tenacity'))" })
  end
  if ctx.node then
    local v, why = output(ctx, { ctx.node, "-e",
      "const p = require('path'); const f = require.resolve('p-limit'); "
      .. "console.log(JSON.parse(require('fs').readFileSync(p.join(p.dirname(f), "
      .. "'package.json'))).version)" })
    ctx.p_limit = v
    ctx.p_limit_why = v == nil and ("p-limit not found (" .. tostring(why):sub(1, 60) .. ")") or nil
  end
  for _, p in ipairs(M.list) do
    local ok, v, why = pcall(p.probe, ctx)
    if not ok then
      ctx.status[p.name] = { absent = "probe failed: " .. tostring(v) }
    elseif v then
      ctx.status[p.name] = { version = v }
    else
      ctx.status[p.name] = { absent = why or "not available" }
    end
  end
  return ctx.status
end

--- The rows of one workload: every peer that runs it, each variant its own
-- row. A row is {peer =, label =, variant =, absent = reason or nil}.
function M.rows(ctx, w, wanted)
  local rows = {}
  for _, p in ipairs(M.list) do
    if p.workloads[w] and (wanted == nil or wanted[p.name]) then
      local status = ctx.status[p.name]
      local variants = p.variants and p.variants(ctx, w) or { {} }
      for _, v in ipairs(variants) do
        rows[#rows + 1] = {
          peer = p.name,
          label = v.label and (p.name .. " (" .. v.label .. ")") or p.name,
          variant = v,
          absent = status.absent or v.absent,
        }
      end
    end
  end
  return rows
end

function M.argv(ctx, row, w, n)
  return M.by_name[row.peer].argv(ctx, w, n, row.variant)
end

return M
