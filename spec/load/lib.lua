--- Shared helpers of the load and shutdown checks (spec/load/*): clocks,
-- resident memory, child processes and a verdict line. Needs LuaJIT's FFI.
local ffi = require "ffi"

local M = {}

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } fdn_load_timespec_t;
int clock_gettime(int clk, fdn_load_timespec_t *ts);
int nanosleep(const fdn_load_timespec_t *req, fdn_load_timespec_t *rem);
int posix_spawnp(int *pid, const char *file, const void *file_actions,
                 const void *attrp, char *const argv[], char *const envp[]);
int posix_spawn_file_actions_init(void *fa);
int posix_spawn_file_actions_destroy(void *fa);
int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int oflag,
                                     unsigned int mode);
int waitpid(int pid, int *status, int options);
int kill(int pid, int sig);
char *strerror(int errnum);
extern char **environ;
]]

local C = ffi.C
local CLOCK_MONOTONIC = 1
local O_RDONLY, O_WRONLY_CREAT_TRUNC = 0, 577
local WNOHANG = 1
M.SIGINT, M.SIGKILL, M.SIGTERM = 2, 9, 15

local ts = ffi.new("fdn_load_timespec_t")

--- Monotonic seconds.
function M.now()
  C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

--- Blocks the whole process (not a task) for `s` seconds.
function M.nap(s)
  local req = ffi.new("fdn_load_timespec_t", { math.floor(s), (s % 1) * 1e9 })
  C.nanosleep(req, nil)
end

local page_kb = 4
--- This process's resident set size in kB (/proc/self/statm).
function M.rss_kb()
  local f = io.open("/proc/self/statm", "r")
  if not f then
    return 0
  end
  local _, resident = f:read("*n", "*n")
  f:close()
  return (resident or 0) * page_kb
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

--- Starts argv with stdin from /dev/null and stdout/stderr into the given
-- files; the environment is this process's without LD_PRELOAD, plus
-- `extra_env`. Returns the pid, or nil and why.
function M.spawn(argv, out_path, err_path, extra_env)
  local env, i = {}, 0
  while C.environ[i] ~= nil do
    local entry = ffi.string(C.environ[i])
    if not entry:find("^LD_PRELOAD=") then
      env[#env + 1] = entry
    end
    i = i + 1
  end
  for k, v in pairs(extra_env or {}) do
    env[#env + 1] = k .. "=" .. v
  end
  local c_argv, keep_argv = cstrings(argv)
  local c_envp, keep_envp = cstrings(env)
  local fa = ffi.new("int64_t[32]")
  C.posix_spawn_file_actions_init(fa)
  C.posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0)
  C.posix_spawn_file_actions_addopen(fa, 1, out_path, O_WRONLY_CREAT_TRUNC, 420)
  C.posix_spawn_file_actions_addopen(fa, 2, err_path, O_WRONLY_CREAT_TRUNC, 420)
  local pid = ffi.new("int[1]")
  local rc = C.posix_spawnp(pid, argv[1], fa, nil, c_argv, c_envp)
  C.posix_spawn_file_actions_destroy(fa)
  local _ = { keep_argv, keep_envp }
  if rc ~= 0 then
    return nil, argv[1] .. ": " .. ffi.string(C.strerror(rc))
  end
  return pid[0]
end

function M.kill(pid, sig)
  return C.kill(pid, sig) == 0
end

--- Waits up to `timeout` seconds (polling every millisecond) for `pid`.
-- Returns {code, signal, at (monotonic time it was seen gone)}, or nil
-- once the timeout passed (the child is then killed and reaped).
function M.wait(pid, timeout)
  local status = ffi.new("int[1]")
  local deadline = M.now() + timeout
  while true do
    local r = C.waitpid(pid, status, WNOHANG)
    if r == pid then
      local st = status[0]
      return { code = bit.band(bit.rshift(st, 8), 0xff), signal = bit.band(st, 0x7f),
        at = M.now() }
    end
    if M.now() > deadline then
      C.kill(pid, M.SIGKILL)
      C.waitpid(pid, status, 0)
      return nil
    end
    M.nap(0.001)
  end
end

--- Records checks and prints them: check(ok, "what", figure...) then
-- finish() exits non-zero if any failed.
function M.checker(title)
  local failed, n = 0, 0
  local self = {}
  function self.check(ok, what)
    n = n + 1
    if not ok then
      failed = failed + 1
    end
    io.stdout:write(string.format("  [%s] %s\n", ok and "ok" or "FAIL", what))
    io.stdout:flush()
    return ok
  end
  function self.finish()
    io.stdout:write(string.format("%s: %d checks, %d failed\n", title, n, failed))
    os.exit(failed == 0 and 0 or 1)
  end
  return self
end

return M
