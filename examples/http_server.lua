-- A small JSON API: items in memory, a bearer token, one log line per
-- request (with its request id), graceful shutdown on Ctrl-C.
--
--   fdn-lua examples/http_server.lua [port] [token]
--   curl -H 'Authorization: Bearer secret' localhost:8080/items
--   curl -H 'Authorization: Bearer secret' -d '{"name":"pen"}' localhost:8080/items
--
-- Port 0 picks a free port; the first line printed says which.
local fdn = require "fdn"
local http = fdn.http
local log = fdn.log

local port = tonumber(arg and arg[1] or os.getenv("PORT") or "8080")
local token = arg and arg[2] or os.getenv("API_TOKEN") or "secret"

log.configure { level = os.getenv("LOG_LEVEL") or "info", format = "json" }

local app = http.app { name = "items-api", max_body = 64 * 1024, access_log = true }

-- Logging: one record per request, with the request id the server put in
-- the task's context. Errors pass through (the server answers them), but
-- are logged with the status they will get.
app:use(function(req, next)
  local started = fdn.now()
  local ok, res = fdn.try(next)
  local status = ok and res.status
    or (fdn.errors.is(res, http.HttpError) and res.status) or 500
  log.info("api.request", {
    method = req.method, path = req.path, status = status,
    ms = math.floor((fdn.now() - started) * 1e6) / 1e3,
  })
  if not ok then
    error(res, 0)
  end
  return res
end)

-- Auth: everything but /health needs the bearer token.
app:use(function(req, next)
  if req.path == "/health" then
    return next()
  end
  if req.headers.authorization ~= "Bearer " .. token then
    log.warn("api.unauthorized", { path = req.path })
    return http.json({ error = "unauthorized" }, 401, { ["WWW-Authenticate"] = "Bearer" })
  end
  return next()
end)

local items, next_id = {}, 1

app:get("/health", function()
  return http.json { ok = true, items = next_id - 1 }
end)

app:get("/items", function()
  local list = {}
  for id = 1, next_id - 1 do
    if items[id] then
      list[#list + 1] = items[id]
    end
  end
  return http.json(list)
end)

app:post("/items", function(req)
  local value = req:json()
  if type(value) ~= "table" or type(value.name) ~= "string" or value.name == "" then
    error(http.error(422, "an item needs a non-empty name"))
  end
  local item = { id = next_id, name = value.name }
  items[next_id], next_id = item, next_id + 1
  return http.json(item, 201, { Location = "/items/" .. item.id })
end)

app:get("/items/:id", function(req)
  local item = items[tonumber(req.params.id)]
  if not item then
    error(http.error(404, "no item " .. req.params.id))
  end
  return http.json(item)
end)

app:delete("/items/:id", function(req)
  local id = tonumber(req.params.id)
  if not items[id] then
    error(http.error(404, "no item " .. req.params.id))
  end
  items[id] = nil
  return { status = 204 }
end)

local server = app:listen { host = "127.0.0.1", port = port }
io.stdout:write("listening on http://127.0.0.1:", server.port, "\n")
io.stdout:flush()
-- The script ends here; the server keeps fdn-lua running until SIGINT or
-- SIGTERM, when it closes gracefully (requests in flight finish).
