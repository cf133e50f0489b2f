-- HTTP hello world: requests per second with keep-alive.
--
--   fdn-lua bench/http.lua inproc [clients=50] [requests=50000]
--       server and clients in this one process (one core for both)
--   fdn-lua bench/http.lua serve [port=0]
--       only the server; prints "port N"; stops on SIGINT/SIGTERM
--   fdn-lua bench/http.lua client PORT [clients=50] [requests=50000]
--       only the clients, against a server elsewhere
--
-- Each client is a task with its own kept-alive connection (an
-- fdn.http.Client) sending GET / one request at a time; every response is
-- checked. Prints one JSON line: {mode, clients, requests, elapsed, rps}.
-- bench/http.sh runs the modes (and wrk, when installed) and takes medians.
local http = fdn.http
local now = fdn.now
local mode = arg[1] or "inproc"

local function hello_app()
  local app = http.app { name = "bench", max_requests = 1e9 }
  app:get("/", function()
    return "Hello, World!"
  end)
  return app
end

local function clients(port, n, total)
  local url = "http://127.0.0.1:" .. port .. "/"
  local per, extra = math.floor(total / n), total % n
  local tasks = {}
  local t0 = now()
  for i = 1, n do
    local count = per + (i <= extra and 1 or 0)
    tasks[i] = fdn.spawn(function()
      local client = http.Client.new { max_idle = 1 }
      for _ = 1, count do
        local r = client:request { url = url }
        if r.status ~= 200 or r.body ~= "Hello, World!" then
          error("bad response: " .. r.status .. " " .. r.body)
        end
      end
      client:close()
      return count
    end)
  end
  local done = 0
  for _, c in ipairs(fdn.gather(tasks)) do
    done = done + c
  end
  local elapsed = now() - t0
  assert(done == total)
  return elapsed
end

local function report(n, total, elapsed)
  io.stdout:write(string.format('{"mode":"%s","clients":%d,"requests":%d,"elapsed":%.4f,"rps":%.0f}\n',
    mode, n, total, elapsed, total / elapsed))
end

if mode == "inproc" then
  local n, total = tonumber(arg[2]) or 50, tonumber(arg[3]) or 50000
  local server = hello_app():listen { port = 0 }
  clients(server.port, math.min(n, total), math.max(1, math.floor(total / 10))) -- warm up
  report(n, total, clients(server.port, n, total))
  server:close()
elseif mode == "serve" then
  local server = hello_app():listen { port = tonumber(arg[2]) or 0, backlog = 1024 }
  io.stdout:write("port ", server.port, "\n")
  io.stdout:flush()
elseif mode == "client" then
  local port = assert(tonumber(arg[2]), "client mode needs the server's port")
  local n, total = tonumber(arg[3]) or 50, tonumber(arg[4]) or 50000
  clients(port, math.min(n, total), math.max(1, math.floor(total / 10)))
  report(n, total, clients(port, n, total))
else
  error("unknown mode " .. tostring(mode) .. " (inproc, serve or client)")
end
