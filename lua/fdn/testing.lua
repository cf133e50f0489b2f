--- fdn.testing: async specs for busted, each on a fresh engine.
--
-- `T.run(fn, opts)` runs fn as a task on a new engine, under a wall-clock
-- watchdog: a spec that hangs fails with the tasks still alive and where
-- each waits, instead of hanging the suite. When fn returns, work it left
-- behind (tasks, armed timers, open handles) fails the spec unless
-- `opts.allow_leaks`. `T.async(fn, opts)` is the same as a busted spec
-- body; `T.describe(name, fn, opts)` runs every spec of a block and its
-- before_each/after_each hooks on one engine per spec, so hooks may suspend
-- and fixture tasks live from before_each to after_each.
--
-- Engines default to the virtual clock: sleeps cost no real time and runs
-- repeat exactly. Every engine's seed is attached to a failure so a run
-- can be replayed (`FDN_SEED=n` or `{seed = n}`).
local fdn = require "fdn"
local core = require "fdn.core"
local errors = require "fdn.errors"
local events = require "fdn.events"
local mock = require "fdn.testing_mock"
local assertions = require "fdn.testing_assert"
local shared = require "fdn._shared"
local pack = shared.pack

local M = {}

local error, pairs, pcall, setmetatable, getmetatable, type, tostring =
  error, pairs, pcall, setmetatable, getmetatable, type, tostring
local unpack, getfenv = unpack, getfenv
local format, concat = string.format, table.concat
local argerror, InvalidState = errors.argerror, errors.InvalidState
local is_callable = fdn.is_callable
local c_advance = core.advance

--- Options every run gets unless it says otherwise. `timeout` is in
-- wall-clock seconds (math.huge: no limit).
M.defaults = { timeout = 10, clock = "virtual" }

--- Raised when a spec leaves work behind; `.tasks`, `.timers`, `.handles`
-- say what.
M.Leak = errors.define("Leak", errors.InvalidState)

M.mock_async = mock.mock_async
M.assert_raises = assertions.assert_raises
M.eventually = assertions.eventually
M.fail = assertions.fail

local function merge(a, b)
  local out = {}
  if a then
    for k, v in pairs(a) do out[k] = v end
  end
  if b then
    for k, v in pairs(b) do out[k] = v end
  end
  return out
end

-- Options ------------------------------------------------------------------

-- Options that shape the engine, fixed when a spec's engine is created.
local ENGINE_KEYS = { clock = true, seed = true, autojump = true }

local CHECKS = {
  timeout = function(v)
    return type(v) == "number" and v > 0, "a positive number of seconds (math.huge: no limit)"
  end,
  clock = function(v)
    return v == "real" or v == "virtual", '"real" or "virtual"'
  end,
  seed = function(v)
    return type(v) == "number" and v >= 1 and v % 1 == 0 and v <= 2 ^ 53, "a positive integer"
  end,
  autojump = function(v)
    return type(v) == "boolean", "a boolean"
  end,
  allow_leaks = function(v)
    return type(v) == "boolean", "a boolean"
  end,
  name = function(v)
    return type(v) == "string", "a string"
  end,
}

local function check_opts(fname, opts)
  if opts == nil then
    return {}
  end
  if type(opts) ~= "table" then
    argerror(fname, "opts", "a table", opts, 3)
  end
  for k, v in pairs(opts) do
    local check = CHECKS[k]
    if check == nil then
      argerror(fname, "opts." .. tostring(k),
        "a known option (timeout, clock, seed, autojump, allow_leaks, name)", v, 3)
    end
    local ok, expected = check(v)
    if not ok then
      argerror(fname, "opts." .. k, expected, v, 3)
    end
  end
  return opts
end

-- Failures carry the seed -----------------------------------------------------

local function seed_note(seed)
  return format("fdn.testing: seed %.0f (replay with FDN_SEED=%.0f or {seed = %.0f})", seed, seed, seed)
end

local function is_library(source)
  return source:find("[/@]fdn/[%w_]+%.lua$") ~= nil
end

--- "file:line" of the first Lua frame at least `level` levels above the
-- caller that is not in fdn's own library: the spec line.
local function caller(level)
  level = level + 2
  while true do
    local info = debug.getinfo(level, "Sl")
    if info == nil then
      return "?"
    end
    if info.currentline ~= nil and info.currentline > 0 and not is_library(info.source) then
      return info.short_src .. ":" .. info.currentline
    end
    level = level + 1
  end
end

--- Attaches the seed to a failure without changing its identity: the
-- context of an fdn error, the message of a busted failure; a string gets
-- a new line only when `strings` (it is then a new value).
local function annotate(err, seed, strings)
  if seed == nil then
    return err
  end
  local mt = getmetatable(err)
  if errors.class_of(err) then
    if type(err.context) == "table" then
      err.context.seed = seed
    end
  elseif type(mt) == "table" and rawget(mt, "__type") == "pending" then
    return err -- busted's pending(): not a failure
  elseif type(err) == "table" and type(rawget(err, "message")) == "string" then
    if not err.message:find("fdn.testing: seed", 1, true) then
      err.message = err.message .. "\n" .. seed_note(seed)
    end
  elseif strings and type(err) == "string" then
    err = err .. "\n" .. seed_note(seed)
  end
  return err
end

-- Sessions: one engine for a spec (and its hooks, under T.describe) -------

local Session = {}
Session.__index = Session

local autojump_of = setmetatable({}, { __mode = "k" }) -- engine -> set by clock:autojump

local function new_session(opts)
  return setmetatable({
    opts = opts,
    engines = {},
    allow_leaks = opts.allow_leaks == true,
    failed = false,
  }, Session)
end

function Session:open()
  local engine = self.engine
  if engine ~= nil then
    return engine
  end
  if core.engine_running() then
    error(InvalidState.new("fdn.testing: an engine is already running here; a spec "
      .. "run by T.run, T.async or T.describe gets its own (use fdn.spawn inside it)"), 0)
  end
  local o = self.opts
  local seed = o.seed
  if seed == nil then
    -- A seed small enough to read and retype, unless FDN_SEED fixes one.
    local env = tonumber(os.getenv("FDN_SEED") or "")
    seed = env ~= nil and CHECKS.seed(env) and env or fdn.random(2147483646)
  end
  engine = core.engine_new { clock = o.clock, seed = seed, autojump = o.autojump }
  self.engine = engine
  self.engines[#self.engines + 1] = engine
  self.seed = seed
  return engine
end

--- Closes the engine at once after a timeout: tasks are cancelled, given a
-- few scheduler passes for their cleanups, then abandoned.
function Session:abort()
  local engine = self.engine
  if engine ~= nil then
    self.engine = nil
    engine:close()
  end
end

local function format_task(t)
  local head = format("  task %s (%s)", tostring(t.id), tostring(t.name or ("task-" .. tostring(t.id))))
  local text
  if t.location == nil and t.status == "ready" then
    text = head .. " not started yet"
  elseif t.waiting_in ~= nil and t.status == "waiting" then
    text = format("%s waiting in %s at %s", head, t.waiting_in, tostring(t.location or "?"))
  elseif t.waiting_in ~= nil and t.status == "ready" then
    text = format("%s ready, woken in %s at %s", head, t.waiting_in, tostring(t.location or "?"))
  else
    text = format("%s %s at %s", head, tostring(t.status), tostring(t.location or "?"))
  end
  if t.defined_at ~= nil then
    text = text .. " (function at " .. t.defined_at .. ")"
  end
  if t.daemon then
    text = text .. " [daemon]"
  end
  return text
end

local function by_id(a, b)
  return a.id < b.id
end

--- Task descriptions in spawn order (engine:tasks() lists them by slot).
local function sorted(list)
  table.sort(list, by_id)
  return list
end

local function format_tasks(list)
  local lines = {}
  for i = 1, #list do
    lines[i] = format_task(list[i])
  end
  return concat(lines, "\n")
end

local function clock_hint(self, engine)
  if self.opts.clock ~= "virtual" then
    return ""
  end
  local jumps = autojump_of[engine]
  if jumps == nil then
    jumps = self.opts.autojump ~= false
  end
  return format(" (virtual time %gs%s)", engine:now(),
    jumps and "" or ", autojump off: only clock:advance moves it")
end

--- Runs fn as a task named `label` until it finishes (other tasks stay as
-- they are) with a wall-clock limit of `timeout` seconds; returns its
-- results or raises its error. `where` ("file:line" of the spec) starts
-- the messages of the failures fdn.testing itself raises.
function Session:call(fn, label, timeout, where)
  local engine = self:open()
  if label == "test" or self.where == nil then
    self.where = where
  end
  if events.has("testing.started") then
    events.emit("testing.started", { name = label, clock = self.opts.clock, seed = self.seed })
  end
  local task = core.spawn_with({ name = label }, fn)
  local stuck, status = engine:run(task, {
    detach = true,
    timeout = timeout ~= math.huge and timeout or nil,
  })
  if status == "timeout" then
    local alive = sorted(engine:tasks())
    local hint = clock_hint(self, engine)
    self:abort()
    self.failed = true
    if events.has("testing.timed_out") then
      events.emit("testing.timed_out", { name = label, seconds = timeout, tasks = alive })
    end
    error(errors.Timeout.new(format("%s: fdn.testing: %s timed out after %gs of wall-clock time%s; "
      .. "%d task(s) still alive, cancelled:\n%s", where, label, timeout, hint, #alive,
      format_tasks(alive)), {
      context = { seconds = timeout, seed = self.seed },
      tasks = alive,
    }), 0)
  end
  local outcome = pack(core.task_outcome(task, false))
  if events.has("testing.finished") then
    events.emit("testing.finished", { name = label, ok = outcome[1], status = status })
  end
  if status == "deadlock" then
    self.failed = true
    error(errors.Deadlock.new(format("%s: fdn.testing: deadlock in %s%s: these tasks were waiting "
      .. "with nothing left to wake them, and were cancelled:\n%s", where, label,
      clock_hint(self, engine), format_tasks(sorted(stuck))), {
      cause = not outcome[1] and outcome[2] or nil,
      context = { seed = self.seed },
      tasks = stuck,
    }), 0)
  end
  if outcome[1] then
    return unpack(outcome, 2, outcome.n)
  end
  self.failed = true
  error(annotate(outcome[2], self.seed, false), 0)
end

--- What the spec left behind, as a Leak error, or nil. Daemon tasks are
-- not leaks (they end with the run, as under fdn.run); timers count only
-- when no task is left that could own them.
local function find_leaks(engine, seed, where)
  local tasks, daemons = {}, 0
  for _, t in ipairs(sorted(engine:tasks())) do
    if t.daemon then
      daemons = daemons + 1
    else
      tasks[#tasks + 1] = t
    end
  end
  local timers = (#tasks == 0 and daemons == 0) and engine:stats().timers or 0
  local handles = core.engine_handles(engine)
  if #tasks == 0 and timers == 0 and #handles == 0 then
    return nil
  end
  local parts = { where .. ": fdn.testing: the spec left work behind when it returned "
    .. "(join or cancel it, or pass {allow_leaks = true}):" }
  if #tasks > 0 then
    parts[#parts + 1] = format("%d task(s) still running:\n%s", #tasks, format_tasks(tasks))
  end
  if timers > 0 then
    parts[#parts + 1] = format("  %d timer(s) armed with no task left to own them", timers)
  end
  if #handles > 0 then
    local names = {}
    for i, h in ipairs(handles) do
      names[i] = h.type .. (h.active and " (active)" or "")
    end
    parts[#parts + 1] = format("  %d libuv handle(s) open: %s", #handles, concat(names, ", "))
  end
  if events.has("testing.leaked") then
    events.emit("testing.leaked", { tasks = tasks, timers = timers, handles = handles })
  end
  return M.Leak.new(concat(parts, "\n"), {
    context = { seed = seed },
    tasks = tasks,
    timers = timers,
    handles = handles,
  })
end

--- Ends the session: checks for leaks (when asked, and the spec passed),
-- cancels what is left and lets its cleanups run (under the same wall-clock
-- limit), closes the engine, restores the fakes. Raises the Leak, if any.
function Session:finish(check)
  local engine, leak = self.engine, nil
  if engine ~= nil then
    if check and not self.allow_leaks and not self.failed then
      leak = find_leaks(engine, self.seed, self.where or "?")
    end
    if engine:stats().live > 0 then
      engine:cancel_all()
      local timeout = self.opts.timeout
      engine:run(nil, { timeout = timeout ~= math.huge and timeout or nil })
    end
    self.engine = nil
    engine:close()
  end
  for i = #self.engines, 1, -1 do
    mock.restore_all(self.engines[i])
  end
  if leak then
    error(leak, 0)
  end
end

local function resolve(opts)
  return merge(M.defaults, opts)
end

--- One spec on its own engine: call, then finish.
local function run_alone(fn, opts, strings, where)
  local s = new_session(opts)
  local res = pack(pcall(s.call, s, fn, opts.name or "test", opts.timeout, where))
  local finished, leak = pcall(s.finish, s, res[1])
  if not res[1] then
    error(annotate(res[2], s.seed, strings), 0)
  end
  if not finished then
    error(leak, 0)
  end
  return unpack(res, 2, res.n)
end

--- Runs fn as a task on a fresh engine now and returns its results.
-- opts: timeout (wall-clock seconds, default 10; on expiry raises
-- fdn.errors.Timeout listing the tasks still alive), clock ("virtual" by
-- default, or "real"), seed, autojump, allow_leaks, name (of the task).
---@param fn function
---@param opts? table
function M.run(fn, opts)
  if not is_callable(fn) then
    argerror("fdn.testing.run", "fn", "a function", fn)
  end
  return run_alone(fn, resolve(check_opts("fdn.testing.run", opts)), false, caller(1))
end

-- Specs ---------------------------------------------------------------------

local async_info = setmetatable({}, { __mode = "k" }) -- body -> {fn, opts}
local test_session = nil -- the session of the T.describe spec in progress

--- Within a T.describe spec: runs fn on the spec's session.
local function call_in_test(s, fn, opts, label, where)
  for k in pairs(ENGINE_KEYS) do
    if opts[k] ~= nil and opts[k] ~= s.opts[k] then
      error(errors.InvalidArgument.new("fdn.testing: opts." .. k .. " cannot change inside a "
        .. "T.describe spec; set it on the outermost T.describe"), 0)
    end
  end
  if opts.allow_leaks then
    s.allow_leaks = true
  end
  local res = pack(pcall(s.call, s, fn, opts.name or label, opts.timeout or s.opts.timeout, where))
  if not res[1] then
    error(annotate(res[2], s.seed, true), 0)
  end
  return unpack(res, 2, res.n)
end

--- Wraps a spec body (or a hook) for busted: `it("…", T.async(fn, opts))`.
-- Outside T.describe each call gets its own engine, like T.run; inside a
-- T.describe spec it runs on that spec's engine.
---@param fn function
---@param opts? table
---@return function body
function M.async(fn, opts)
  if not is_callable(fn) then
    argerror("fdn.testing.async", "fn", "a function", fn)
  end
  local o = check_opts("fdn.testing.async", opts)
  local where = caller(1)
  local function body()
    if test_session ~= nil then
      return call_in_test(test_session, fn, o, "test", where)
    end
    return run_alone(fn, resolve(o), true, where)
  end
  async_info[body] = { fn = fn, opts = o }
  return body
end

local BLOCK_KEY = "__fdn_testing_block"

--- A hook or spec body of a T.describe block: runs on the spec's session,
-- opening it on first use.
local function in_test(block, fn, label)
  if not is_callable(fn) then
    argerror("fdn.testing.describe", label, "a function", fn, 3)
  end
  local info = async_info[fn]
  local inner, opts = fn, block.opts
  if info ~= nil then
    inner, opts = info.fn, merge(block.opts, info.opts)
  end
  local where = caller(2)
  return function()
    local s = test_session
    if s == nil then
      s = new_session(resolve(block.root_opts))
      test_session = s
    end
    return call_in_test(s, inner, opts, label, where)
  end
end

local function close_test()
  local s = test_session
  if s == nil then
    return
  end
  test_session = nil
  local ok, err = pcall(s.finish, s, true)
  if not ok then
    error(annotate(err, s.seed, true), 0)
  end
end

--- A busted describe block whose specs, before_each and after_each hooks
-- (its own and those of blocks nested in it) run as tasks on one fresh
-- engine per spec: hooks may suspend, tasks started in before_each keep
-- running through the spec, and leak checks and fake restores happen after
-- the last after_each. opts as T.run; clock, seed and autojump only on the
-- outermost T.describe.
---@param name string
---@param fn function
---@param opts? table
function M.describe(name, fn, opts)
  if type(name) ~= "string" then
    argerror("fdn.testing.describe", "name", "a string", name)
  end
  if type(fn) ~= "function" then
    argerror("fdn.testing.describe", "fn", "a function", fn)
  end
  local o = check_opts("fdn.testing.describe", opts)
  local env = getfenv(fn)
  local describe = env.describe
  if not is_callable(describe) or not is_callable(env.it) then
    error(InvalidState.new("fdn.testing.describe: call it from a busted spec file "
      .. "(no describe/it in the function's environment)"), 2)
  end
  local function block_body()
    local parent = env[BLOCK_KEY]
    if parent ~= nil then
      for k in pairs(ENGINE_KEYS) do
        if o[k] ~= nil then
          error(errors.InvalidArgument.new("fdn.testing.describe: opts." .. k
            .. " can only be set on the outermost T.describe"), 0)
        end
      end
    end
    local block = {
      opts = merge(parent and parent.opts, o),
      root_opts = parent and parent.root_opts or o,
      it = parent and parent.it or env.it,
      before_each = parent and parent.before_each or env.before_each,
      after_each = parent and parent.after_each or env.after_each,
    }
    local it, before_each, after_each = block.it, block.before_each, block.after_each
    -- Assignments through busted's environment land in this block's own
    -- environment, so the wrappers cover this block and nested ones only.
    -- Tail calls keep busted's recorded spec location on the user's line.
    env[BLOCK_KEY] = block
    local function wrapped_it(desc, body)
      if body == nil then
        if type(desc) ~= "string" then
          return it(in_test(block, desc, "test"))
        end
        return function(b) return it(desc, in_test(block, b, "test")) end
      end
      return it(desc, in_test(block, body, "test"))
    end
    env.it, env.spec, env.test = wrapped_it, wrapped_it, wrapped_it
    env.before_each = function(hook)
      return before_each(in_test(block, hook, "before_each"))
    end
    env.after_each = function(hook)
      return after_each(in_test(block, hook, "after_each"))
    end
    fn()
    if parent == nil then
      after_each(close_test)
    end
  end
  return describe(name, block_body)
end

-- Virtual clock control --------------------------------------------------------

local Clock = {}
Clock.__index = Clock

-- A method called on anything but a clock (from fdn.testing.clock()): usually a '.' where ':' was meant.
local function bad_self(self, method)
  errors.argerror("clock:" .. method, "self",
    "a clock (from fdn.testing.clock()) (call it with ':')", self, 3)
end

--- The clock of the running engine: now(), advance(seconds),
-- autojump(on), next_deadline().
function M.clock()
  local engine = core.engine_running()
  if engine == nil then
    error(InvalidState.new("fdn.testing.clock: no engine is running; call it inside a "
      .. "spec run by T.run, T.async or T.describe"), 2)
  end
  return setmetatable({ engine = engine }, Clock)
end

--- Engine time in seconds (virtual under a virtual clock).
function Clock:now()
  if getmetatable(self) ~= Clock then
    bad_self(self, "now")
  end
  return self.engine:now()
end

--- Moves virtual time forward by `seconds`, running everything that falls
-- due in the window in order (a task woken inside it that sleeps again
-- inside it fires too), and returns the new time. From a task it suspends
-- while the scheduler does that.
function Clock:advance(seconds)
  if getmetatable(self) ~= Clock then
    bad_self(self, "advance")
  end
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 or seconds == math.huge then
    argerror("clock:advance", "seconds", "a finite non-negative number", seconds)
  end
  if fdn.current() ~= nil then
    local st, cause = c_advance(seconds)
    if st then
      return fdn._wake_error(st, cause, "clock:advance")
    end
  else
    self.engine:advance(seconds)
  end
  return self.engine:now()
end

--- Virtual clock: with autojump on (the default), time jumps to the next
-- deadline whenever no task is ready; off, only advance() moves it.
function Clock:autojump(on)
  if getmetatable(self) ~= Clock then
    bad_self(self, "autojump")
  end
  if type(on) ~= "boolean" then
    argerror("clock:autojump", "on", "a boolean", on)
  end
  self.engine:set_autojump(on)
  autojump_of[self.engine] = on
  return self
end

--- Engine time of the earliest armed timer, or nil.
function Clock:next_deadline()
  if getmetatable(self) ~= Clock then
    bad_self(self, "next_deadline")
  end
  return core.engine_next_deadline(self.engine)
end

return M
