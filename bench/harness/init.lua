--- The benchmark harness: runs each workload program of each peer, checks
-- its answer, and collects the figures. bench/run.lua is its command line;
-- spec/bench_spec.lua runs the same code at small sizes.
local cjson = require "cjson"
local proc = require "harness.proc"
local peers = require "harness.peers"
local workloads = require "harness.workloads"

local M = {}
M.proc, M.peers, M.workloads = proc, peers, workloads

local function abspath(path)
  if path:sub(1, 1) == "/" then
    return path
  end
  local pwd = os.getenv("PWD") or "."
  return pwd .. "/" .. path
end

--- What a run needs: the repository root, the build folder (its fdn-lua
-- and floor programs), the interpreters, and the peers found here.
-- opts: root, build, luajit, python, node, timeout (seconds per program).
function M.context(opts)
  opts = opts or {}
  local ctx = {
    root = abspath(opts.root or "."),
    timeout = opts.timeout or 900,
  }
  ctx.build = abspath(opts.build or (ctx.root .. "/build-release"))
  ctx.fdn_lua = ctx.build .. "/fdn-lua"
  ctx.luajit = opts.luajit or proc.which("luajit") or "luajit"
  -- Debian's python3, where python3-uvloop and python3-tenacity live,
  -- before whatever python3 is first on PATH.
  ctx.python = opts.python or proc.which("/usr/bin/python3") or proc.which("python3")
  ctx.node = opts.node or proc.which("node") or proc.which("nodejs")
  -- Node finds Debian's node-p-limit (and its yocto-queue) through
  -- NODE_PATH, and an `npm install p-limit` made by scripts/bench.sh.
  local node_path = { ctx.build .. "/bench-node/node_modules", "/usr/share/nodejs" }
  if os.getenv("NODE_PATH") and os.getenv("NODE_PATH") ~= "" then
    table.insert(node_path, 1, os.getenv("NODE_PATH"))
  end
  ctx.env = proc.environment { NODE_PATH = table.concat(node_path, ":") }
  peers.probe(ctx)
  return ctx
end

local function last_json_line(text)
  local line
  for l in text:gmatch("[^\n]+") do
    if l:match("^%s*{") then
      line = l
    end
  end
  if not line then
    return nil
  end
  local ok, value = pcall(cjson.decode, line)
  if ok and type(value) == "table" then
    return value
  end
  return nil
end

-- The gist of a program's error output: its first line (where Lua and
-- fdn-lua put the message) and its last (where Python and Node put it).
local function brief(text)
  local lines = {}
  for l in (text or ""):gmatch("[^\n]+") do
    if l:match("%S") then
      lines[#lines + 1] = l
    end
  end
  local s = lines[1] or ""
  if #lines > 1 then
    s = s .. " … " .. lines[#lines]
  end
  if #s > 300 then
    s = s:sub(1, 297) .. "..."
  end
  return s
end

local function median(list)
  local s = {}
  for i, v in ipairs(list) do
    s[i] = v
  end
  table.sort(s)
  local k = #s
  if k == 0 then
    return nil
  end
  if k % 2 == 1 then
    return s[(k + 1) / 2]
  end
  return (s[k / 2] + s[k / 2 + 1]) / 2
end
M.median = median

--- Runs one row of one workload once. Returns an outcome:
-- {status = "ok", value =, bytes =, result =} | {status = "fail", error =}
-- | {status = "absent", reason =}.
function M.run_once(ctx, row, w, n)
  if row.absent then
    return { status = "absent", reason = row.absent }
  end
  local argv = peers.argv(ctx, row, w.id, n)
  if w.launches then
    -- Start-up: n launches, each timed from spawn to exit; the median.
    local times = {}
    for i = 1, n do
      local res = proc.run(argv, { env = ctx.env, poll = false })
      if res.code ~= 0 or res.signal ~= 0 then
        return { status = "fail", error = string.format("exit %d%s: %s", res.code,
          res.signal ~= 0 and (" signal " .. res.signal) or "", brief(res.stderr)) }
      end
      local why = workloads.check(w, { stdout = res.stdout }, n)
      if why then
        return { status = "fail", error = why }
      end
      times[i] = res.elapsed
    end
    local r = { elapsed = median(times), launches = n }
    return { status = "ok", value = w.metric(r), result = r }
  end
  local res = proc.run(argv, { env = ctx.env, timeout = ctx.timeout })
  if res.timed_out then
    return { status = "fail", error = string.format("no answer within %d s", ctx.timeout) }
  end
  local r = last_json_line(res.stdout)
  if r and r.absent then
    return { status = "absent", reason = r.absent }
  end
  if res.code ~= 0 or res.signal ~= 0 then
    return { status = "fail", error = string.format("exit %d%s: %s", res.code,
      res.signal ~= 0 and (" signal " .. res.signal) or "", brief(res.stderr)) }
  end
  if not r then
    return { status = "fail", error = "no JSON result line: " .. brief(res.stdout) }
  end
  local why = workloads.check(w, r, n)
  if why then
    return { status = "fail", error = why, result = r }
  end
  local outcome = { status = "ok", value = w.metric(r), result = r }
  if w.bytes then
    outcome.bytes = r.rss_growth / n
  end
  return outcome
end

local function wanted_set(list)
  if list == nil or list == "" then
    return nil
  end
  local s = {}
  for name in list:gmatch("[^,%s]+") do
    if not peers.by_name[name] then
      error("unknown peer '" .. name .. "'", 0)
    end
    s[name] = true
  end
  return s
end
M.wanted_set = wanted_set

--- The size a workload runs at: its default times `scale`, or `n` itself.
function M.size(w, opts)
  if w.launches then
    return opts.launches or w.n
  end
  if opts.n then
    return opts.n
  end
  return math.max(1, math.floor(w.n * (opts.scale or 1) + 0.5))
end

--- Runs every selected workload for every row, `opts.runs` times, going
-- round the rows in turn (and starting each round one row further on), so
-- that no peer has all its runs in a row while the machine's load drifts.
-- opts: runs, only, peers, scale, n, launches, on_sample(w, row, outcome).
-- Returns {workloads = list, rows = {[id] = rows}, samples = {[id] = {[label] = outcomes}}}.
function M.bench(ctx, opts)
  local selected = workloads.select(opts.only)
  local wanted = wanted_set(opts.peers)
  local out = { workloads = selected, rows = {}, samples = {}, sizes = {} }
  for _, w in ipairs(selected) do
    out.rows[w.id] = peers.rows(ctx, w.id, wanted)
    out.samples[w.id] = {}
    out.sizes[w.id] = M.size(w, opts)
    for _, row in ipairs(out.rows[w.id]) do
      out.samples[w.id][row.label] = {}
    end
  end
  for round = 1, opts.runs or 5 do
    for _, w in ipairs(selected) do
      local rows = out.rows[w.id]
      for k = 0, #rows - 1 do
        local row = rows[(k + round - 1) % #rows + 1]
        local samples = out.samples[w.id][row.label]
        local last = samples[#samples]
        -- Once absent, always absent: don't run it again.
        local outcome
        if last and last.status == "absent" then
          outcome = last
        else
          outcome = M.run_once(ctx, row, w, out.sizes[w.id])
        end
        samples[#samples + 1] = outcome
        if opts.on_sample then
          opts.on_sample(w, row, outcome, round)
        end
      end
    end
  end
  return out
end

-- Callgrind --------------------------------------------------------------

M.CALLGRIND_WORKLOADS = { "W1", "W2", "W6" }
M.CALLGRIND_PEERS = { fdn = true, luv = true, ["floor-coro"] = true }

--- Instructions executed by one run under callgrind (its total "Collected"
-- count), after checking the run's answer.
function M.callgrind_count(ctx, row, w, n)
  local argv = peers.argv(ctx, row, w.id, n)
  local cmd = { "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null" }
  local arch = proc.which("setarch") and proc.output({ "uname", "-m" }, { env = ctx.env })
  if arch then
    -- Without address randomisation, pointer-keyed tables hash the same
    -- way every run, so the counts repeat more closely.
    table.insert(cmd, 1, "-R")
    table.insert(cmd, 1, (arch:gsub("%s+$", "")))
    table.insert(cmd, 1, "setarch")
  end
  for _, a in ipairs(argv) do
    cmd[#cmd + 1] = a
  end
  -- A fixed seed for fdn's RNG, so nothing random differs between runs.
  local env = {}
  for k, v in pairs(ctx.env) do
    env[k] = v
  end
  env.FDN_SEED = "1"
  local res = proc.run(cmd, { env = env, timeout = ctx.timeout })
  local r = last_json_line(res.stdout)
  if r and r.absent then
    return nil, "absent", r.absent
  end
  if res.code ~= 0 then
    return nil, "fail", string.format("exit %d: %s", res.code, brief(res.stderr))
  end
  local why = workloads.check(w, r, n)
  if why then
    return nil, "fail", why
  end
  local count = res.stderr:match("Collected%s*:%s*(%d+)")
  if not count then
    return nil, "fail", "no instruction count in valgrind's output"
  end
  return tonumber(count)
end

--- Marginal instructions per task for W1, W2 and W6: the difference of
-- the counts at n2 and n1 divided by n2 - n1, so start-up and fixed costs
-- cancel out. Returns a list of {workload =, label =, per_task =, ...}.
function M.callgrind(ctx, opts)
  local n1, n2 = opts.n1 or 10000, opts.n2 or 50000
  local wanted = wanted_set(opts.peers)
  local selected = {}
  for _, id in ipairs(M.CALLGRIND_WORKLOADS) do
    local ok, list = pcall(workloads.select, opts.only)
    if ok then
      for _, w in ipairs(list) do
        if w.id == id then
          selected[#selected + 1] = w
        end
      end
    end
  end
  local results = {}
  for _, w in ipairs(selected) do
    for _, row in ipairs(peers.rows(ctx, w.id, wanted)) do
      if M.CALLGRIND_PEERS[row.peer] then
        local entry = { workload = w.id, label = row.label, peer = row.peer, n1 = n1, n2 = n2 }
        if row.absent then
          entry.status, entry.reason = "absent", row.absent
        else
          local c1, st1, why1 = M.callgrind_count(ctx, row, w, n1)
          local c2, st2, why2 = nil, st1, why1
          if c1 then
            c2, st2, why2 = M.callgrind_count(ctx, row, w, n2)
          end
          if c1 and c2 then
            entry.status = "ok"
            entry.i1, entry.i2 = c1, c2
            entry.per_task = (c2 - c1) / (n2 - n1)
          else
            entry.status, entry.reason = st2, why2
          end
        end
        results[#results + 1] = entry
        if opts.on_entry then
          opts.on_entry(entry)
        end
      end
    end
  end
  return results
end

return M
