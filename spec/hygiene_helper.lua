--- Hygiene checks for every spec of the suite (loaded by busted through
-- .busted's `helper`): after each spec and its after_each hooks, a full
-- collection, then
--   * no engine is still open or bound, and every loop an engine owned
--     closed at the first uv_loop_close (nothing left a handle open);
--   * no task is live and no task slot is held beyond the baseline;
--   * no failure is waiting to be reported;
--   * as many registry references (luaL_ref) as before the spec;
--   * the binding's private thread stacks are at their fixed tops, and
--     pooled coroutines are empty.
-- A spec that leaks fails ("not ok ... suite after_each", with the name of
-- the spec and what it left). docs/reliability-hygiene.md explains each.
local busted = require "busted"
local core = require "fdn.core"

local collectgarbage, format, concat = collectgarbage, string.format, table.concat

local baseline, current

-- Counts that must come back to the baseline: [name] = what a rise means.
local GROWTH = {
  live_tasks = "task(s) still live",
  slots_used = "task slot(s) still held (a failed task's handle kept alive, or a slot never freed)",
  unobserved_failures = "task failure(s) never reported",
  registry_refs = "registry reference(s) not released",
  loops_forced = "owned loop(s) closed only by force: a handle was left open on them",
  stack_imbalances = "embedded state(s) closed with unbalanced private stacks",
}

local function open_engines(h)
  return h.engines_created - h.engines_freed
end

local function problems(h)
  local out = {}
  if h.engine_bound then
    out[#out + 1] = "an engine is still bound to the Lua state (not closed)"
  end
  if open_engines(h) > open_engines(baseline) then
    out[#out + 1] = format("%d engine(s) still open", open_engines(h) - open_engines(baseline))
  end
  for key, what in pairs(GROWTH) do
    if h[key] > baseline[key] then
      out[#out + 1] = format("%d %s", h[key] - baseline[key], what)
    end
  end
  if h.s_top ~= h.s_top_expected then
    out[#out + 1] = format("scratch thread stack at %d, expected %d", h.s_top, h.s_top_expected)
  end
  if h.w_top ~= 0 then
    out[#out + 1] = format("worker thread stack at %d, expected 0", h.w_top)
  end
  if h.pool_dirty > 0 then
    out[#out + 1] = format("%d pooled coroutine(s) not empty", h.pool_dirty)
  end
  table.sort(out)
  return out
end

local checked = 0

busted.subscribe({ "test", "start" }, function(element)
  current = element
  return nil, true
end)

-- One TAP comment line at the end, read by the reliability scripts.
busted.subscribe({ "suite", "end" }, function()
  local h = core.hygiene()
  io.stdout:write(format("# hygiene: %d specs checked; gc_stress=%s collections=%d; sched_seed=%d\n",
    checked, tostring(h.gc_stress), h.gc_stress_collections, h.sched_seed))
  return nil, true
end)

busted.before_each(function()
  baseline = core.hygiene()
end)

busted.after_each(function()
  if not baseline then
    return
  end
  collectgarbage("collect")
  local found = problems(core.hygiene())
  if #found > 0 then
    -- Compiled traces keep the objects they specialised on (closures,
    -- upvalues) alive, and a finalizer may release what only the next
    -- cycle frees: drop the traces, collect, look again.
    if jit then
      jit.flush()
    end
    collectgarbage("collect")
    found = problems(core.hygiene())
  end
  baseline = nil
  checked = checked + 1
  if #found > 0 then
    local name = current and current.name or "?"
    error(format("hygiene: spec %q left: %s", name, concat(found, "; ")), 0)
  end
end)
