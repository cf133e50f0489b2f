-- Observability in one job: structured logs whose operation id follows the
-- work into child tasks, a logged API client, a timing per download, and a
-- connection closed whatever happens.
--   fdn-lua examples/observability.lua [items]
--   FDN_LOG_FORMAT=json fdn-lua examples/observability.lua     (for machines)
local log = require "fdn.log"
local errors = fdn.errors

local items = tonumber((...)) or 5
local tracker = fdn.EventTracker.new()

-- Lifecycle events from the bus become log records too (resource.closed).
log.log_events { pattern = "resource.*" }

-- A stand-in for a network connection: fetching item 3 times out.
local Connection = {}
Connection.__index = Connection
Connection.__tostring = function(self)
  return "Connection(" .. self.name .. ")"
end

function Connection.open(name)
  log.info("connection.opened", { conn = name })
  return setmetatable({ name = name, requests = 0 }, Connection)
end

function Connection:fetch(i)
  self.requests = self.requests + 1
  fdn.sleep(0.005 * i)
  if i == 3 then
    error(errors.Timeout.new("upstream timed out", { context = { item = i } }))
  end
  return { id = i, size_bytes = 1000 * i }
end

function Connection:close()
  fdn.sleep(0.005) -- a goodbye to the server: closes may suspend
  log.info("connection.closed", { conn = self.name, requests = self.requests })
end

-- Every call logs api_request.started / .completed (or .failed) with its
-- duration; only the item number goes into the record.
local fetch = fdn.async_logger("api_request", {
  log_args = function(_, i) return { item = i } end,
})(function(conn, i)
  return conn:fetch(i)
end)

local function download_all(rm)
  local conn = rm:manage(Connection.open("api")) -- closed when rm closes
  local tasks = {}
  for i = 1, items do
    -- Child tasks inherit the task-local context: their records carry the
    -- operation id without anyone passing it.
    tasks[i] = fdn.spawn(function()
      return tracker:track("data_download", function(ev)
        local item = fetch(conn, i)
        ev:add_metadata { size_bytes = item.size_bytes }
        log.info("item.fetched", { item = i, size_bytes = item.size_bytes })
        return item
      end)
    end)
  end
  local fetched, failed = {}, 0
  for _, result in ipairs(fdn.gather(tasks, { return_errors = true })) do
    if errors.class_of(result) then
      failed = failed + 1
    else
      fetched[#fetched + 1] = result
    end
  end
  return fetched, failed
end

fdn.with(fdn.OperationContext.new("data_processing", { batch = "2024-05-01" }), function(ctx)
  local fetched, failed = fdn.with(fdn.ResourceManager.new(), download_all)
  ctx:add_metadata { failed_items = failed }

  -- A nested operation: its records carry parent_operation_id.
  fdn.with(fdn.OperationContext.new("publish_report"), function(report)
    tracker:track("report_upload", function()
      fdn.sleep(0.002)
    end)
    report:success { bytes = 512 }
  end)
  ctx:success { result_count = #fetched }
end)

local summary = tracker:summary()
local names = {}
for name in pairs(summary) do
  names[#names + 1] = name
end
table.sort(names)
for _, name in ipairs(names) do
  local s = summary[name]
  print(string.format("%s: %d tracked, %d failed, p50 %.3fs, p95 %.3fs",
    name, s.count, s.failures, s.p50, s.p95))
end
