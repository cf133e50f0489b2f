-- GC stress mode (FDN_GC_STRESS, docs/reliability-hygiene.md): a full
-- collection at every scheduler tick must not lose a task whose handle
-- nobody holds. Each mode runs spec/fixtures/gc_stress_dropped.lua in a
-- process of its own, with the mode set from its start.
local h = require "helpers"

local function run(mode)
  local code, out, err = h.sh(string.format("FDN_GC_STRESS=%s luajit %s", mode,
    h.quote(h.root .. "/spec/fixtures/gc_stress_dropped.lua")))
  assert.equal(0, code, err)
  local done, total, left, shown, collections, live = out:match(
    "done=(%d+) of (%d+); handles left=(%d+); gc_stress=(%a+); collections=(%d+); live_tasks=(%d+)")
  assert.is_truthy(done, out .. err)
  return {
    done = tonumber(done), total = tonumber(total), left = tonumber(left), mode = shown,
    collections = tonumber(collections), live = tonumber(live),
  }
end

describe("GC stress", function()
  it("finishes tasks whose handles were dropped, collecting before every pass", function()
    local r = run("1")
    assert.equal("pass", r.mode)
    assert.equal(r.total, r.done)
    assert.equal(0, r.left)
    assert.equal(0, r.live)
    assert.is_true(r.collections >= 3, "collections: " .. r.collections)
  end)

  it("finishes tasks whose handles were dropped, collecting before every resume", function()
    local r = run("task")
    assert.equal("task", r.mode)
    assert.equal(r.total, r.done)
    assert.equal(0, r.left)
    assert.equal(0, r.live)
    -- At least one collection per task resumed: every task ran.
    assert.is_true(r.collections >= r.total, "collections: " .. r.collections)
  end)

  it("is off unless asked for", function()
    local r = run("0")
    assert.equal("off", r.mode)
    assert.equal(0, r.collections)
    assert.equal(r.total, r.done)
  end)
end)
