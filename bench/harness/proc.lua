--- Processes and clocks for the harness, through LuaJIT's FFI: programs
-- are started with posix_spawnp (no shell in between, so a start-up time
-- measures the program and nothing else) with stdout and stderr in files.
local ffi = require "ffi"

local M = {}

ffi.cdef [[
typedef int fdn_bench_pid_t;
typedef struct { long tv_sec; long tv_nsec; } fdn_bench_timespec_t;
int clock_gettime(int clk, fdn_bench_timespec_t *ts);
int nanosleep(const fdn_bench_timespec_t *req, fdn_bench_timespec_t *rem);
int posix_spawnp(fdn_bench_pid_t *pid, const char *file, const void *file_actions,
                 const void *attrp, char *const argv[], char *const envp[]);
int posix_spawn_file_actions_init(void *fa);
int posix_spawn_file_actions_destroy(void *fa);
int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int oflag,
                                     unsigned int mode);
fdn_bench_pid_t waitpid(fdn_bench_pid_t pid, int *status, int options);
int kill(fdn_bench_pid_t pid, int sig);
char *strerror(int errnum);
extern char **environ;
]]

local C = ffi.C
local CLOCK_MONOTONIC = 1
local O_RDONLY, O_WRONLY_CREAT_TRUNC = 0, 577 -- O_WRONLY | O_CREAT | O_TRUNC (Linux)
local WNOHANG, SIGKILL = 1, 9

local ts = ffi.new("fdn_bench_timespec_t")

--- Monotonic seconds.
function M.now()
  C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local nap = ffi.new("fdn_bench_timespec_t", { 0, 2000000 })
local function sleep_briefly()
  C.nanosleep(nap, nil)
end

--- This process's environment as a table, without LD_PRELOAD (a sanitizer
-- runtime preloaded into the test runner must not leak into the peers),
-- with `extra` added.
function M.environment(extra)
  local env, i = {}, 0
  while C.environ[i] ~= nil do
    local entry = ffi.string(C.environ[i])
    local k, v = entry:match("^([^=]*)=(.*)$")
    if k and k ~= "LD_PRELOAD" then
      env[k] = v
    end
    i = i + 1
  end
  for k, v in pairs(extra or {}) do
    env[k] = v
  end
  return env
end

local function cstrings(list)
  local arr = ffi.new("char *[?]", #list + 1)
  local keep = {}
  for i, s in ipairs(list) do
    local buf = ffi.new("char[?]", #s + 1, s)
    keep[i] = buf
    arr[i - 1] = buf
  end
  arr[#list] = nil
  return arr, keep
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return ""
  end
  local s = f:read("*a")
  f:close()
  return s
end

--- Runs argv to completion with stdin from /dev/null and stdout/stderr
-- captured. opts: env (table), timeout (seconds; polled), poll (false:
-- block in waitpid, for the tightest start-up timing).
-- Returns {code =, signal =, stdout =, stderr =, elapsed =, timed_out =}.
function M.run(argv, opts)
  opts = opts or {}
  local out_path, err_path = os.tmpname(), os.tmpname()
  local env_list = {}
  for k, v in pairs(opts.env or M.environment()) do
    env_list[#env_list + 1] = k .. "=" .. v
  end
  local c_argv, keep_argv = cstrings(argv)
  local c_envp, keep_envp = cstrings(env_list)
  local fa = ffi.new("int64_t[32]") -- posix_spawn_file_actions_t is 80 bytes on glibc
  C.posix_spawn_file_actions_init(fa)
  C.posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0)
  C.posix_spawn_file_actions_addopen(fa, 1, out_path, O_WRONLY_CREAT_TRUNC, 420)
  C.posix_spawn_file_actions_addopen(fa, 2, err_path, O_WRONLY_CREAT_TRUNC, 420)
  local pid = ffi.new("fdn_bench_pid_t[1]")
  local status = ffi.new("int[1]")
  local t0 = M.now()
  local rc = C.posix_spawnp(pid, argv[1], fa, nil, c_argv, c_envp)
  C.posix_spawn_file_actions_destroy(fa)
  -- The argument strings must live until posix_spawnp has copied them.
  local _ = { keep_argv, keep_envp }
  if rc ~= 0 then
    os.remove(out_path)
    os.remove(err_path)
    return { code = 127, stdout = "", stderr = argv[1] .. ": " .. ffi.string(C.strerror(rc)),
      elapsed = 0 }
  end
  local timed_out = false
  if opts.poll == false then
    C.waitpid(pid[0], status, 0)
  else
    local deadline = opts.timeout and t0 + opts.timeout
    while C.waitpid(pid[0], status, WNOHANG) == 0 do
      if deadline and M.now() > deadline then
        C.kill(pid[0], SIGKILL)
        C.waitpid(pid[0], status, 0)
        timed_out = true
        break
      end
      sleep_briefly()
    end
  end
  local elapsed = M.now() - t0
  local st = status[0]
  local res = {
    code = bit.band(bit.rshift(st, 8), 0xff),
    signal = bit.band(st, 0x7f),
    stdout = M.read_file(out_path),
    stderr = M.read_file(err_path),
    elapsed = elapsed,
    timed_out = timed_out,
  }
  os.remove(out_path)
  os.remove(err_path)
  return res
end

--- Runs argv and returns its stdout when it exits 0, else nil and why.
function M.output(argv, opts)
  local res = M.run(argv, opts)
  if res.code ~= 0 or res.signal ~= 0 then
    local why = res.stderr:match("([^\n]+)\n?$") or ("exit " .. res.code)
    return nil, why
  end
  return res.stdout
end

--- Whether `name` is an executable file, or found on PATH.
function M.which(name)
  if name:find("/") then
    local f = io.open(name, "rb")
    if f then
      f:close()
      return name
    end
    return nil
  end
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    local path = dir .. "/" .. name
    local f = io.open(path, "rb")
    if f then
      f:close()
      return path
    end
  end
  return nil
end

return M
