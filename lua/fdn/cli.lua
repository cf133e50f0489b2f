--- The fdn-lua interpreter's driver: options, the main task, exit codes.
local fdn = require "fdn"
local core = require "fdn.core"
local errors = fdn.errors

local M = {}

M.usage = [==[
usage: fdn-lua [options] [script [args...]]
Runs a Lua script as the main task of an fdn engine: it can fdn.sleep,
spawn tasks, time out and cancel without any setup. The global `fdn` is
the fdn module.

Options:
  -e code        run `code` (in the main task, before the script)
  -l name        require library `name` (in the main task, before the script)
  --log-level L  log level: trace, debug, info, warn, error or off
                 (default: $FDN_LOG_LEVEL, else info)
  --log-format F log format: console or json (default: $FDN_LOG_FORMAT,
                 else console)
  --log-events[=PATTERN]
                 log fdn's lifecycle events (all, or those matching
                 PATTERN such as "task.*"; default: $FDN_LOG_EVENTS)
  --grace S      shutdown grace period in seconds: after SIGINT/SIGTERM
                 the process exits within S seconds whatever its tasks do
                 (default: $FDN_SHUTDOWN_GRACE, else 30; 'inf': no limit)
  -v, --version  print the version and exit
  -h, --help     print this help and exit
  --             stop handling options
  -              read the script from standard input

Exit status: 0 when the script succeeds, 1 when it fails (the error and its
traceback go to stderr), 130 after SIGINT and 143 after SIGTERM (the script
is cancelled and its cleanups run; a second signal, or the end of the grace
period, exits at once).]==]

--- Seconds from the first SIGINT/SIGTERM to a forced exit, when neither
-- --grace nor FDN_SHUTDOWN_GRACE says otherwise.
M.default_grace = 30

local function fail(message)
  io.stderr:write("fdn-lua: ", message, "\n")
  return 1
end

--- Parses argv (argv[0] is the program). Returns actions, the script
-- index, or nil and an exit code.
local function parse(argv)
  local actions, i = {}, 1
  while argv[i] ~= nil do
    local a = argv[i]
    if a == "--" then
      i = i + 1
      break
    elseif a == "-" or a:sub(1, 1) ~= "-" then
      break
    elseif a == "-v" or a == "--version" then
      actions[#actions + 1] = { kind = "version" }
    elseif a == "-h" or a == "--help" then
      actions[#actions + 1] = { kind = "help" }
    elseif a == "-e" or a == "-l" then
      local value = argv[i + 1]
      if value == nil then
        return nil, fail("'" .. a .. "' needs an argument\n" .. M.usage)
      end
      actions[#actions + 1] = { kind = a == "-e" and "exec" or "require", value = value }
      i = i + 1
    elseif a == "--log-level" or a == "--log-format" then
      local value = argv[i + 1]
      if value == nil then
        return nil, fail("'" .. a .. "' needs an argument\n" .. M.usage)
      end
      actions[#actions + 1] = { kind = a:sub(3), value = value }
      i = i + 1
    elseif a:find("^%-%-log%-level=") or a:find("^%-%-log%-format=") then
      local key, value = a:match("^%-%-(log%-%a+)=(.*)$")
      actions[#actions + 1] = { kind = key, value = value }
    elseif a == "--grace" or a:find("^%-%-grace=") then
      local value = a:match("^%-%-grace=(.*)$")
      if value == nil then
        value = argv[i + 1]
        if value == nil then
          return nil, fail("'--grace' needs an argument\n" .. M.usage)
        end
        i = i + 1
      end
      actions[#actions + 1] = { kind = "grace", value = value }
    elseif a == "--log-events" or a:find("^%-%-log%-events=") then
      actions[#actions + 1] = { kind = "log-events", value = a:match("^%-%-log%-events=(.*)$") or "*" }
    elseif a:sub(1, 2) == "-e" or a:sub(1, 2) == "-l" then
      actions[#actions + 1] = {
        kind = a:sub(1, 2) == "-e" and "exec" or "require", value = a:sub(3),
      }
    else
      return nil, fail("unrecognized option '" .. a .. "'\n" .. M.usage)
    end
    i = i + 1
  end
  return actions, i
end

--- A grace period from --grace or FDN_SHUTDOWN_GRACE: seconds >= 0, or
-- "inf". Returns the number, or nil and a message.
local function parse_grace(text, from)
  local g = text == "inf" and math.huge or tonumber(text)
  if g == nil or g ~= g or g < 0 then
    return nil, "bad value for " .. from .. ": '" .. tostring(text)
      .. "' (expected a number of seconds >= 0, or inf)"
  end
  return g
end

local function describe_failure(task, err)
  local text = errors.format(err)
  local tb = type(err) == "table" and errors.class_of(err) and err.traceback or nil
  tb = tb or task:traceback()
  if tb and tb ~= "" then
    text = text .. "\n" .. tb:gsub("^\n", "")
  end
  return text
end

--- The last word of a shutdown: how the tasks in flight at the signal
-- ended (drained: finished on their own, failures included; cancelled:
-- cancelled or abandoned), as an event and an info record of the "fdn-lua"
-- logger. drained + cancelled == in_flight, unless the C watchdog ended
-- the process first (it says so on stderr).
local function shutdown_record(engine, signame, signal_at, grace, code)
  local c = engine:census()
  local events = require "fdn.events"
  local fields = {
    signal = signame, in_flight = c.in_flight, drained = c.done + c.failed,
    failed = c.failed, cancelled = c.cancelled, grace = grace,
    elapsed = core.wall_time() - signal_at, exit_code = code,
  }
  if events.has("shutdown.finished") then
    pcall(events.emit, "shutdown.finished", fields)
  end
  pcall(function()
    require("fdn.log").get("fdn-lua").info("shutdown.finished", fields)
  end)
end

function M.main(argv, native)
  local actions, script = parse(argv)
  if actions == nil then
    return script
  end
  local interactive_only = true
  local log_opts, log_events = {}, nil
  local grace, grace_err = M.default_grace, nil
  if os.getenv("FDN_SHUTDOWN_GRACE") then
    grace, grace_err = parse_grace(os.getenv("FDN_SHUTDOWN_GRACE"), "FDN_SHUTDOWN_GRACE")
  end
  for _, action in ipairs(actions) do
    if action.kind == "grace" then
      grace, grace_err = parse_grace(action.value, "--grace")
    elseif action.kind == "log-level" then
      log_opts.level = action.value
    elseif action.kind == "log-format" then
      log_opts.format = action.value
    elseif action.kind == "log-events" then
      log_events = action.value
    end
  end
  if next(log_opts) ~= nil or log_events then
    local log = require "fdn.log"
    if log_opts.level and (log.levels[log_opts.level] == nil) then
      return fail("bad value for --log-level: '" .. log_opts.level
        .. "' (expected trace, debug, info, warn, error or off)")
    elseif log_opts.format and log_opts.format ~= "json" and log_opts.format ~= "console" then
      return fail("bad value for --log-format: '" .. log_opts.format .. "' (expected console or json)")
    end
    local ok, err = pcall(log.configure, log_opts)
    if ok and log_events then
      ok, err = pcall(log.log_events, { pattern = log_events ~= "" and log_events or "*" })
    end
    if not ok then
      return fail(type(err) == "table" and err.message or tostring(err))
    end
  end
  if grace == nil then
    return fail(grace_err)
  end
  for _, action in ipairs(actions) do
    if action.kind:find("^log%-") or action.kind == "grace" then -- luacheck: ignore 542
      -- applied above
    elseif action.kind == "version" then
      io.stdout:write("fdn-lua ", fdn.version, " (", jit and jit.version or _VERSION, ")\n")
      return 0
    elseif action.kind == "help" then
      io.stdout:write(M.usage, "\n")
      return 0
    end
    interactive_only = false
  end

  -- The arg table, as stock luajit builds it.
  local arg = {}
  local script_name = argv[script]
  for k = 0, #argv do
    arg[k - script] = argv[k]
  end
  if script_name == nil then
    arg = {}
    for k = 0, #argv do
      arg[k - #argv - 1] = argv[k]
    end
  end
  _G.arg = arg
  _G.fdn = fdn

  local chunks = {}
  for _, action in ipairs(actions) do
    if action.kind == "exec" then
      local chunk, err = loadstring(action.value, "=(command line)")
      if not chunk then
        return fail(err)
      end
      chunks[#chunks + 1] = chunk
    elseif action.kind == "require" then
      local name = action.value
      chunks[#chunks + 1] = function() require(name) end
    end
  end
  local script_args = {}
  if script_name ~= nil then
    local chunk, err
    if script_name == "-" then
      chunk, err = loadstring(io.stdin:read("*a"), "=stdin")
    else
      chunk, err = loadfile(script_name)
    end
    if not chunk then
      return fail(err)
    end
    for k = 1, #arg do
      script_args[k] = arg[k]
    end
    script_args.n = #arg
    chunks[#chunks + 1] = chunk
  elseif interactive_only then
    io.stderr:write(M.usage, "\n")
    return 1
  end

  local engine = core.engine_new()
  local unpack = unpack
  local root = fdn.spawn_with({ name = "main" }, function()
    for k = 1, #chunks - 1 do
      chunks[k]()
    end
    return chunks[#chunks](unpack(script_args, 1, script_args.n or 0))
  end)
  local got_signal, signal_name, signal_at
  native.watch_signals(engine, function(signame, signo)
    got_signal, signal_name, signal_at = signo, signame, core.wall_time()
    local in_flight = engine:census_start()
    local events = require "fdn.events"
    if events.has("shutdown.started") then
      events.emit("shutdown.started", { signal = signame, in_flight = in_flight, grace = grace })
    end
    -- The hooks run in a task of their own, shielded from cancellation, so
    -- they may suspend (flush a batcher, shut a manager down) before the
    -- main task is cancelled; a second signal still exits at once. They
    -- get the grace period less what the cleanups after them may take, so
    -- that the shutdown finishes (and says so) before the C watchdog
    -- ends the process at the grace period.
    local function shutdown()
      local reserve = math.min(fdn.cleanup_timeout, grace / 2)
      local scope = core.scope_enter(grace < math.huge and grace - reserve or nil, true)
      local hooks = { unpack(fdn._shutdown_hooks) }
      for _, hook in ipairs(hooks) do
        local ok, err = pcall(hook, signame)
        if not ok then
          fdn.report("shutdown_hook_failed", { error = err })
        end
      end
      if scope then
        core.scope_exit(scope)
      end
      local left = grace - (core.wall_time() - signal_at)
      if left < fdn.cleanup_timeout then
        fdn.cleanup_timeout = math.max(left - 0.05, 0)
      end
      root:cancel(signame)
    end
    if not pcall(fdn.spawn_with, { name = "shutdown" }, shutdown) then
      shutdown()
    end
  end, grace)
  local ran, stuck = pcall(engine.run, engine, root)
  local outcome = { core.task_outcome(root, false) }
  native.unwatch_signals()
  engine:close()
  if got_signal then
    shutdown_record(engine, signal_name, signal_at, grace, 128 + got_signal)
  end
  if not ran then
    return fail(errors.format(stuck))
  end
  if got_signal then
    return 128 + got_signal
  end
  if stuck then
    for _, t in ipairs(stuck) do
      if t.id == root.id then
        return fail("deadlock: these tasks were waiting with nothing left to "
          .. "wake them:\n" .. fdn._format_stuck(stuck))
      end
    end
    fdn.report("deadlock", {
      message = "tasks left waiting with nothing to wake them were cancelled:\n"
        .. fdn._format_stuck(stuck),
    })
  end
  if not outcome[1] then
    return fail(describe_failure(root, outcome[2]))
  end
  return 0
end

return M
