local h = require "helpers"
local cjson = require "cjson"

describe("examples/observability.lua", function()
  local script = h.root .. "/examples/observability.lua"

  it("prints readable console logs whose operation id follows the work", function()
    local rc, out, err = h.fdn_lua(h.quote(script) .. " 5", "FDN_LOG_LEVEL= FDN_LOG_FORMAT=")
    assert.equal(0, rc, err)
    local op = err:match("INFO  data_processing%.started batch=2024%-05%-01 operation_id=(%x+)")
    assert.is_not_nil(op, err)
    local fetched = 0
    for line in err:gmatch("[^\n]+") do
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ [A-Z]+ +", line)
      if line:find("item.fetched", 1, true) then
        fetched = fetched + 1
        assert.matches("operation_id=" .. op, line, 1, true) -- logged in a child task
      end
    end
    assert.equal(4, fetched)
    assert.matches('ERROR api_request.failed duration_ms=[%d.]+ error="Timeout: upstream timed out {item=3}" '
      .. "operation_id=" .. op, err)
    assert.matches("connection.closed conn=api operation_id=" .. op .. " requests=5", err, 1, true)
    assert.matches("[fdn.events] resource.closed", err, 1, true)
    assert.matches("publish_report.started operation_id=%x+ parent_operation_id=" .. op, err)
    assert.matches("data_processing.completed batch=2024%-05%-01 duration_ms=[%d.]+ failed_items=1 "
      .. "operation_id=" .. op .. " result_count=4", err)
    assert.matches("data_download: 5 tracked, 1 failed, p50 [%d.]+s, p95 [%d.]+s\n", out)
    assert.matches("report_upload: 1 tracked, 0 failed", out)
    -- the connection closes before the operation completes
    assert.is_true(err:find("connection.closed", 1, true) < err:find("data_processing.completed", 1, true))
  end)

  it("writes JSON lines that parse back with FDN_LOG_FORMAT=json", function()
    local rc, _, err = h.fdn_lua(h.quote(script) .. " 2", "FDN_LOG_FORMAT=json")
    assert.equal(0, rc, err)
    local n, op = 0, nil
    for line in err:gmatch("[^\n]+") do
      local r = cjson.decode(line)
      n = n + 1
      op = op or r.operation_id
      assert.is_true(r.operation_id == op or r.parent_operation_id == op, line)
      assert.equal("number", type(r.time))
    end
    assert.is_true(n >= 8)
  end)
end)
