-- The reliability matrices of spec/reliability/ (docs/reliability-matrices.md),
-- each in a process of its own: a crash there fails its spec, naming the
-- case that was running, instead of taking busted down. Under make
-- check-asan they inherit the ASan preload, so they run on the ASan build.
local h = require "helpers"

local function run(name)
  local trace = os.tmpname()
  local code, out, err = h.sh(string.format("FDN_MATRIX_TRACE=%s luajit %s/spec/reliability/%s.lua",
    h.quote(trace), h.quote(h.root), name))
  local f = io.open(trace)
  local last = f and f:read("*a") or "?"
  if f then f:close() end
  os.remove(trace)
  return code, out, err, last
end

local function check(name, figure)
  local code, out, err, last = run(name)
  local line = out:match("\n?([^\n]*: %d+ checked, %d+ passed, %d+ failed[^\n]*)")
  assert(code == 0 and line ~= nil, string.format("%s exited %s (last case: %s)\n%s\n%s",
    name, tostring(code), last, out:sub(-4000), err:sub(-2000)))
  assert.matches(figure, line)
  assert.matches(", 0 failed", line)
  assert.equal("done", last)
end

describe("reliability matrices", function()
  it("bad-argument sweep: every public function refuses bad values by name", function()
    check("sweep", "^sweep: %d+ checked")
  end)

  it("error matrix: each error at each callback position is reported exactly once", function()
    check("error_matrix", "^error%-matrix: %d+ checked")
  end)

  it("cancellation matrix: cancelling at every suspension leaks nothing", function()
    check("cancel_matrix", "^cancel%-matrix: %d+ checked")
  end)

  it("yield boundaries: suspending where no task can suspend is a clear error", function()
    check("yield_matrix", "^yield%-matrix: %d+ checked")
  end)

  it("the sweep catches a public function it has no entry for", function()
    local code, out = h.sh(string.format("FDN_SWEEP_PROBE=1 luajit %s/spec/reliability/sweep.lua",
      h.quote(h.root)))
    assert.equal(1, code)
    assert.matches("not covered: fdn%.semaphore%.probe", out)
    assert.matches("not covered: Semaphore:probe", out)
  end)
end)
