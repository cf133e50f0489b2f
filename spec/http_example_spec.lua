-- Runs examples/http_server.lua under fdn-lua on a free port and talks to
-- it with the fdn client and, when the machine has it, curl.
local fdn = require "fdn"
local cjson = require "cjson"
local helpers = require "helpers"
local http = fdn.http

-- curl runs without the ASan runtime that `make check-asan` preloads into
-- every child (curl hangs with it), and never for long.
local CURL = "env -u LD_PRELOAD curl --max-time 10 -s"

local function have_curl()
  return helpers.sh("command -v curl") == 0
end

--- Starts the example; returns its pid, port, the pipe of its stdout and
-- the path of its stderr.
local function start(token)
  local errfile = os.tmpname()
  local script = helpers.root .. "/examples/http_server.lua"
  -- The server is bounded in time (timeout passes SIGTERM on): a spec that
  -- fails before stopping it must not leave closing the pipe waiting for it.
  local command = string.format("sh -c 'timeout -k 5 120 %s %s 0 %s 2>%s & echo $!; wait $!; echo exit=$?'",
    helpers.fdn_lua_path, script, token, errfile)
  local pipe = assert(io.popen(command, "r"))
  local pid = tonumber(pipe:read("*l"))
  local line = pid and pipe:read("*l") or ""
  local port = tonumber(line:match("listening on http://127%.0%.0%.1:(%d+)"))
  if not port then
    if pid then
      os.execute("kill -KILL " .. pid)
    end
    pipe:close()
    error("the example did not say where it listens: " .. line .. " (pid " .. tostring(pid) .. ")")
  end
  return pid, port, pipe, errfile
end

local function stop(pid, pipe)
  os.execute("kill -TERM " .. pid)
  local rest = pipe:read("*a")
  pipe:close()
  return tonumber(rest:match("exit=(%d+)"))
end

local function records_of(path)
  local out = {}
  local f = io.open(path)
  if f then
    for line in f:lines() do
      local ok, rec = pcall(cjson.decode, line)
      if ok and type(rec) == "table" then
        out[#out + 1] = rec
      end
    end
    f:close()
  end
  os.remove(path)
  return out
end

describe("examples/http_server.lua", function()
  it("serves its JSON API with auth and logging, and stops on SIGTERM", function()
    local pid, port, pipe, errfile = start("tok")
    local base = "http://127.0.0.1:" .. port
    local auth = { Authorization = "Bearer tok" }
    local ok, err = pcall(fdn.run, function()
      local r = http.request { url = base .. "/health" }
      assert.equal(200, r.status)
      assert.is_true(cjson.decode(r.body).ok)
      assert.equal(401, http.request { url = base .. "/items" }.status)
      r = http.request { method = "POST", url = base .. "/items", headers = auth, body = '{"name":"pen"}' }
      assert.equal(201, r.status)
      assert.equal("/items/1", r.headers.location)
      assert.same({ id = 1, name = "pen" }, cjson.decode(r.body))
      r = http.request { method = "POST", url = base .. "/items", headers = auth, body = "{}" }
      assert.equal(422, r.status)
      r = http.request { method = "POST", url = base .. "/items", headers = auth, body = "not json" }
      assert.equal(400, r.status)
      r = http.request { url = base .. "/items/1", headers = auth }
      assert.equal("pen", cjson.decode(r.body).name)
      r = http.request { method = "DELETE", url = base .. "/items/1", headers = auth }
      assert.equal(204, r.status)
      assert.equal(404, http.request { url = base .. "/items/1", headers = auth }.status)
    end)
    if ok and have_curl() then
      local code, out = helpers.sh(string.format(
        "%s -i -H 'Authorization: Bearer tok' -d '{\"name\":\"cup\"}' %s/items", CURL, base))
      if code ~= 0 then
        ok, err = false, "curl failed: " .. tostring(code)
      else
        ok = pcall(function()
          assert.matches("^HTTP/1.1 201 Created\r\n", out)
          assert.matches('"name":"cup"', out)
        end)
        code, out = helpers.sh(string.format("%s %s/items/2 -H 'Authorization: Bearer tok' %s/health",
          CURL, base, base))
        ok = ok and code == 0 and out:find('"cup"', 1, true) ~= nil and out:find('"ok":true', 1, true) ~= nil
        if not ok then
          err = "curl keep-alive exchange failed: " .. tostring(out)
        end
      end
    end
    local status = stop(pid, pipe)
    local records = records_of(errfile)
    assert(ok, err)
    assert.equal(143, status)
    local access, api = 0, 0
    for _, rec in ipairs(records) do
      if rec.event == "http.access" then
        access = access + 1
        assert.is_string(rec.request_id)
      elseif rec.event == "api.request" then
        api = api + 1
        assert.is_string(rec.request_id)
      end
    end
    assert.is_true(access >= 8, "access records: " .. access)
    assert.equal(access, api)
  end)
end)
