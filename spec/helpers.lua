--- Helpers for specs that run fdn's programs as subprocesses.
local M = {}

M.root = os.getenv("FDN_SOURCE_DIR") or "."
M.build = os.getenv("FDN_BUILD_DIR") or (M.root .. "/build")
M.fdn_lua_path = M.build .. "/fdn-lua"

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

--- Runs a shell command; returns exit code, stdout, stderr.
function M.sh(command)
  local out, err = os.tmpname(), os.tmpname()
  local wrapped = string.format("(%s) >%s 2>%s; echo $?", command, out, err)
  local p = io.popen(wrapped)
  local code = tonumber(p:read("*a"):match("(%d+)%s*$"))
  p:close()
  local stdout, stderr = read_all(out), read_all(err)
  os.remove(out)
  os.remove(err)
  return code, stdout, stderr
end

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs fdn-lua with the given argument string.
function M.fdn_lua(args, env)
  return M.sh((env or "") .. " " .. M.quote(M.fdn_lua_path) .. " " .. args)
end

function M.write_temp(content, suffix)
  local path = os.tmpname() .. (suffix or ".lua")
  local f = assert(io.open(path, "w"))
  f:write(content)
  f:close()
  return path
end

return M
