-- What a log call costs: a call below the level (with and without a fields
-- table), a JSON record written to /dev/null, a JSON encode alone, a
-- console record, a record handed to a function sink. Medians of several
-- runs, in ns per call, measured inside a task (so the task-local context
-- lookup is included).
--   fdn-lua bench/log_cost.lua [runs] [nojit]
-- "nojit" runs everything in the interpreter: the cost of a log call in
-- code the JIT has not compiled (cold paths, code with NYI functions).
-- One case at a time, for instruction counts under callgrind (run it with
-- two values of n and divide the difference by the difference of n):
--   valgrind --tool=callgrind fdn-lua bench/log_cost.lua case <name> <n>
local log = require "fdn.log"
local clock = os.clock

local function median(t)
  table.sort(t)
  return t[math.ceil(#t / 2)]
end

local sink_count = 0
local function count_sink()
  sink_count = sink_count + 1
end

local cases = {
  { name = "disabled, no fields", n = 2e7, setup = { level = "info", sink = count_sink },
    body = function(n)
      for _ = 1, n do
        log.debug("cache_lookup")
      end
    end },
  { name = "disabled, with a fields table", n = 2e7, setup = { level = "info", sink = count_sink },
    body = function(n)
      for i = 1, n do
        log.debug("cache_lookup", { key = "user:42", attempt = i })
      end
    end },
  { name = "disabled, named logger", n = 2e7, setup = { level = "info", sink = count_sink },
    body = function(n)
      local l = log.get("bench.cache")
      for i = 1, n do
        l.debug("cache_lookup", { key = "user:42", attempt = i })
      end
    end },
  { name = "enabled, function sink (record built)", n = 5e5,
    setup = { level = "info", sink = count_sink },
    body = function(n)
      for i = 1, n do
        log.info("request_done", { path = "/api/users", status = 200, ms = 12.5, attempt = i })
      end
    end },
  { name = "JSON encode only", n = 5e5, setup = { level = "info", sink = count_sink },
    body = function(n)
      local record = { event = "request_done", level = "info", time = 1712345678.123456,
        path = "/api/users", status = 200, ms = 12.5, attempt = 1 }
      local encode = log.encode_json
      for i = 1, n do
        record.attempt = i
        encode(record)
      end
    end },
  { name = "JSON record to /dev/null", n = 3e5,
    setup = { level = "info", format = "json", sink = "/dev/null" },
    body = function(n)
      for i = 1, n do
        log.info("request_done", { path = "/api/users", status = 200, ms = 12.5, attempt = i })
      end
    end },
  { name = "console record to /dev/null", n = 3e5,
    setup = { level = "info", format = "console", sink = "/dev/null" },
    body = function(n)
      for i = 1, n do
        log.info("request_done", { path = "/api/users", status = 200, ms = 12.5, attempt = i })
      end
    end },
}

local function run_case(case, n)
  log.configure(case.setup)
  local t0 = clock()
  case.body(n)
  return (clock() - t0) / n * 1e9
end

local function main(...)
  local mode = ...
  if mode == "case" then
    local _, wanted, n = ...
    for _, case in ipairs(cases) do
      if case.name:find(wanted, 1, true) then
        run_case(case, tonumber(n))
        log.configure { sink = "stderr", format = "console" }
        return
      end
    end
    error("no case matches " .. tostring(wanted))
  end
  local runs = tonumber(mode) or 7
  if select(2, ...) == "nojit" then
    jit.off()
  end
  fdn.context.set("request_id", "r-123") -- records carry a context field
  for _, case in ipairs(cases) do
    run_case(case, math.floor(case.n / 10)) -- warm up the JIT
    local samples = {}
    for r = 1, runs do
      samples[r] = run_case(case, case.n)
    end
    log.configure { sink = "stderr", format = "console" }
    print(string.format("%-40s median %8.1f ns/call  (min %.1f, max %.1f, %d runs)",
      case.name, median(samples), samples[1], samples[#samples], runs))
  end
end

if fdn then
  main(...)
else
  local fdn_ = require "fdn"
  local args = { ... }
  fdn_.run(function()
    _G.fdn = fdn_
    main(unpack(args))
  end)
end
