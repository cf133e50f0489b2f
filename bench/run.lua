-- fdn's benchmarks beside its peers: runs each workload for each peer found
-- here, alternating peers, checks every answer, and prints one table.
--   luajit bench/run.lua [options]
-- `make bench` runs it after installing the peers and building a release.
local here = arg[0]:gsub("[^/]*$", "")
if here == "" then
  here = "./"
end
package.path = here .. "?.lua;" .. here .. "?/init.lua;" .. package.path

local harness = require "harness"
local report = require "harness.report"
local cjson = require "cjson"

local USAGE = [[
usage: luajit bench/run.lua [options]
  --build DIR      build folder with fdn-lua and the floors (default build-release)
  --runs N         runs per workload and peer (default 5)
  --only LIST      workloads, e.g. W1,W3 (W4 = W4.raise and W4.nil; default all)
  --peers LIST     peers, e.g. fdn,luv,floor-coro (default every one found)
  --scale F        multiply every workload's size by F (default 1)
  --n N            run every workload at size N (S0 excepted)
  --launches K     S0 launches per run (default 10)
  --callgrind      only the callgrind section
  --no-callgrind   leave the callgrind section out
  --cg-n N1,N2     callgrind sizes (default 10000,50000)
  --json FILE      also write every sample as JSON
  --timeout S      seconds a program may take (default 900)
]]

local opts = { runs = 5, callgrind = "also" }
local i = 1
local function value()
  i = i + 1
  local v = arg[i]
  if v == nil then
    io.stderr:write(USAGE)
    os.exit(2)
  end
  return v
end
while i <= #arg do
  local a = arg[i]
  if a == "--build" then
    opts.build = value()
  elseif a == "--runs" then
    opts.runs = tonumber(value())
  elseif a == "--only" then
    opts.only = value()
  elseif a == "--peers" then
    opts.peers = value()
  elseif a == "--scale" then
    opts.scale = tonumber(value())
  elseif a == "--n" then
    opts.n = tonumber(value())
  elseif a == "--launches" then
    opts.launches = tonumber(value())
  elseif a == "--callgrind" then
    opts.callgrind = "only"
  elseif a == "--no-callgrind" then
    opts.callgrind = "no"
  elseif a == "--cg-n" then
    local a1, a2 = value():match("^(%d+),(%d+)$")
    opts.n1, opts.n2 = tonumber(a1), tonumber(a2)
  elseif a == "--json" then
    opts.json = value()
  elseif a == "--timeout" then
    opts.timeout = tonumber(value())
  elseif a == "-h" or a == "--help" then
    io.stdout:write(USAGE)
    os.exit(0)
  else
    io.stderr:write("unknown option ", a, "\n", USAGE)
    os.exit(2)
  end
  i = i + 1
end
if not opts.runs or opts.runs < 1 or (opts.scale and opts.scale <= 0)
    or (opts.n and opts.n < 1) or (opts.n1 and opts.n1 >= opts.n2) then
  io.stderr:write(USAGE)
  os.exit(2)
end

local function first_line(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p and p:read("*l") or ""
  if p then
    p:close()
  end
  return s or ""
end

local function machine()
  local cpu = "?"
  for line in io.lines("/proc/cpuinfo") do
    local m = line:match("^model name%s*:%s*(.+)$")
    if m then
      cpu = m
      break
    end
  end
  local os_name = first_line(". /etc/os-release && echo \"$PRETTY_NAME\"")
  return string.format("%s; %s CPUs, %s; %s", os_name, first_line("nproc"), cpu,
    first_line("uname -sr"))
end

local ok, err = pcall(function()
  harness.workloads.select(opts.only)
  harness.wanted_set(opts.peers)
end)
if not ok then
  io.stderr:write("bench: ", tostring(err), "\n")
  os.exit(2)
end

local root = here:gsub("bench/$", "")
if root == "" then
  root = "."
end
local ctx = harness.context { root = root, build = opts.build, timeout = opts.timeout }

local out = io.stdout
out:write(string.format("# fdn benchmarks, %s\n\n", os.date("!%Y-%m-%d %H:%M UTC")))
out:write("machine: ", machine(), "\n")
out:write("load average at start: ", first_line("cut -d' ' -f1-3 /proc/loadavg"), "\n\n")
out:write(report.peers(harness.peers.list, ctx.status), "\n\n")
out:flush()

local failed = false
local dump = { date = os.date("!%Y-%m-%dT%H:%M:%SZ"), machine = machine(), status = ctx.status }

if opts.callgrind ~= "only" then
  local t0 = harness.proc.now()
  local bench = harness.bench(ctx, {
    runs = opts.runs, only = opts.only, peers = opts.peers, scale = opts.scale, n = opts.n,
    launches = opts.launches,
    on_sample = function(w, row, o, round)
      if o.status ~= "absent" or round == 1 then
        local shown = o.status == "ok" and report.format_value(w, o.value) .. " " .. w.unit
          or o.status == "fail" and ("FAIL: " .. tostring(o.error)) or ("absent: " .. o.reason)
        io.stderr:write(string.format("[run %d] %-9s %-40s %s\n", round, w.id, row.label, shown))
      end
    end,
  })
  local summaries = report.summaries(bench)
  out:write(string.format("## Results: medians of %d runs, peers alternating (%.0f s)\n\n",
    opts.runs, harness.proc.now() - t0))
  out:write("Rates: higher is better; ns and ms: lower is better. \"vs\" columns say how many ",
    "times faster than luv / the workload's C floor (above 1: faster). Bytes per task: RSS ",
    "growth with every task alive, divided by n.\n\n")
  out:write(report.table(bench, summaries, ctx.status), "\n\n")
  out:write("## fdn's targets in this run\n\n", report.targets(bench, summaries), "\n\n")
  out:flush()
  failed = report.any_failure(summaries)
  dump.sizes, dump.samples = bench.sizes, bench.samples
end

if opts.callgrind ~= "no" then
  if not harness.proc.which("valgrind") then
    out:write("## Instructions per task (callgrind)\n\nabsent: valgrind not installed ",
      "(Debian: valgrind)\n")
  else
    local entries = harness.callgrind(ctx, {
      only = opts.only, peers = opts.peers, n1 = opts.n1, n2 = opts.n2,
      on_entry = function(e)
        io.stderr:write(string.format("[callgrind] %-4s %-12s %s\n", e.workload, e.label,
          e.status == "ok" and string.format("%.0f instructions per task", e.per_task)
          or (e.status .. ": " .. tostring(e.reason))))
      end,
    })
    if #entries > 0 then
      out:write("## Instructions per task (callgrind; repeatable, the figure to compare ",
        "between commits)\n\n")
      out:write("Marginal cost: (instructions at n2 - instructions at n1) / (n2 - n1), so ",
        "start-up is excluded.\n\n")
      out:write(report.callgrind(entries), "\n")
      for _, e in ipairs(entries) do
        if e.status == "fail" then
          failed = true
        end
      end
    end
    dump.callgrind = entries
  end
end

if opts.json then
  local f = assert(io.open(opts.json, "w"))
  f:write(cjson.encode(dump), "\n")
  f:close()
end

if failed then
  io.stderr:write("bench: some results FAILED their checks (see the table)\n")
  os.exit(1)
end
