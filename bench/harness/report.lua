--- Turns collected samples into the one table `make bench` prints
-- (Markdown, so a run pastes into docs/performance.md as it is), the
-- targets of BENCH.md with their verdicts, and the callgrind section.
local M = {}

local function sorted(list)
  local s = {}
  for i, v in ipairs(list) do
    s[i] = v
  end
  table.sort(s)
  return s
end

local function quantile(s, q)
  if #s == 0 then
    return nil
  end
  local pos = 1 + (#s - 1) * q
  local lo = math.floor(pos)
  local hi = math.min(lo + 1, #s)
  return s[lo] + (s[hi] - s[lo]) * (pos - lo)
end

--- median, min, max, q1, q3 of a list of numbers.
function M.stats(list)
  local s = sorted(list)
  if #s == 0 then
    return nil
  end
  return { median = quantile(s, 0.5), min = s[1], max = s[#s], q1 = quantile(s, 0.25),
    q3 = quantile(s, 0.75), count = #s }
end

local function si(v)
  local a = math.abs(v)
  if a >= 1e9 then
    return string.format("%.2fG", v / 1e9)
  elseif a >= 1e6 then
    return string.format("%.2fM", v / 1e6)
  elseif a >= 1e4 then
    return string.format("%.0fk", v / 1e3)
  elseif a >= 1e3 then
    return string.format("%.1fk", v / 1e3)
  end
  return string.format("%.0f", v)
end

--- A figure in its workload's unit, short.
function M.format_value(w, v)
  if v == nil then
    return "–"
  end
  if w.unit == "ns" then
    return string.format("%.1f", v)
  elseif w.unit == "ms" then
    return string.format("%.2f", v)
  end
  return si(v)
end

--- How much faster `v` is than `ref` (above 1: faster), whatever the unit.
function M.speedup(w, v, ref)
  if v == nil or ref == nil or v == 0 or ref == 0 then
    return nil
  end
  if w.lower_is_better then
    return ref / v
  end
  return v / ref
end

local function ratio_text(r)
  if r == nil then
    return "–"
  end
  return string.format("%.2f×", r)
end

--- Summarises the samples of one row: {state = "ok"|"fail"|"absent",
-- stats =, bytes =, runs =, failed =, error =, reason =}.
function M.summarise(samples)
  local values, bytes, failed, err, reason = {}, {}, 0, nil, nil
  for _, o in ipairs(samples) do
    if o.status == "ok" then
      values[#values + 1] = o.value
      if o.bytes then
        bytes[#bytes + 1] = o.bytes
      end
    elseif o.status == "fail" then
      failed = failed + 1
      err = err or o.error
    elseif o.status == "absent" then
      reason = o.reason
    end
  end
  local state = "ok"
  if failed > 0 then
    state = "fail"
  elseif #values == 0 then
    state = "absent"
  end
  return { state = state, stats = M.stats(values), bytes = M.stats(bytes), runs = #values,
    failed = failed, error = err, reason = reason or "no result" }
end

--- The figure of one peer's first row in a workload (its reference row),
-- from summaries keyed by label.
local function reference(rows, summaries, peer)
  for _, row in ipairs(rows) do
    if row.peer == peer then
      local s = summaries[row.label]
      if s and s.state == "ok" then
        return s.stats.median
      end
      return nil
    end
  end
end

local function escape(text)
  return (tostring(text):gsub("|", "\\|"):gsub("\n", " "))
end

--- Summaries for every workload: {[id] = {[label] = summary}}.
function M.summaries(bench)
  local out = {}
  for _, w in ipairs(bench.workloads) do
    out[w.id] = {}
    for _, row in ipairs(bench.rows[w.id]) do
      out[w.id][row.label] = M.summarise(bench.samples[w.id][row.label])
    end
  end
  return out
end

--- The results table. Rows of peers absent from this machine are left out
-- (the peers list says why); a workload the peer cannot run is "absent".
function M.table(bench, summaries, status)
  local lines = {
    "| workload | peer | median | vs luv | vs floor | bytes/task | spread (min–max) | runs |",
    "|---|---|---|---|---|---|---|---|",
  }
  for _, w in ipairs(bench.workloads) do
    local rows, sums = bench.rows[w.id], summaries[w.id]
    local luv = reference(rows, sums, "luv")
    local floor = w.floor and reference(rows, sums, w.floor)
    local name = string.format("%s %s (n = %s)", w.id, w.unit, si(bench.sizes[w.id]))
    if w.launches then
      name = string.format("%s %s (median of %d launches)", w.id, w.unit, bench.sizes[w.id])
    end
    for _, row in ipairs(rows) do
      if not (status[row.peer] and status[row.peer].absent) then
        local s = sums[row.label]
        local cells
        if s.state == "ok" then
          local st = s.stats
          local spread = string.format("%s–%s (%.0f%%)", M.format_value(w, st.min),
            M.format_value(w, st.max), (st.max - st.min) / st.median * 100)
          cells = {
            M.format_value(w, st.median),
            row.peer == "luv" and "1" or ratio_text(M.speedup(w, st.median, luv)),
            row.peer == w.floor and "1" or ratio_text(M.speedup(w, st.median, floor)),
            s.bytes and string.format("%.0f", s.bytes.median) or "",
            spread,
            tostring(s.runs),
          }
        elseif s.state == "fail" then
          cells = { "**FAIL**: " .. escape(s.error), "", "", "", "",
            string.format("%d failed", s.failed) }
        else
          cells = { "absent: " .. escape(s.reason), "", "", "", "", "0" }
        end
        lines[#lines + 1] = string.format("| %s | %s | %s |", name, escape(row.label),
          table.concat(cells, " | "))
        name = ""
      end
    end
  end
  return table.concat(lines, "\n")
end

--- The peers found, with versions, and the absent ones with the reason.
function M.peers(peer_list, status)
  local lines = { "| peer | what runs | here |", "|---|---|---|" }
  for _, p in ipairs(peer_list) do
    local st = status[p.name]
    lines[#lines + 1] = string.format("| %s | %s | %s |", p.name, escape(p.what),
      st.version and escape(st.version) or ("absent: " .. escape(st.absent)))
  end
  return table.concat(lines, "\n")
end

-- fdn's targets from the issue and BENCH.md, as ratios within one run.
M.TARGETS = {
  { workload = "W0", against = "floor-coro", min = 1 / 1.2, text = "within 1.2× of the C floor" },
  { workload = "W1", against = "luv", min = 2, text = "≥ 2× luv" },
  { workload = "W2", against = "luv", min = 2, text = "≥ 2× luv" },
  { workload = "W3", against = "luv", min = 3.5, text = "≥ 3.5× luv" },
  { workload = "W3", against = "floor-uv", min = 0.6, text = "≥ 0.6× the libuv floor" },
  { workload = "W4.raise", against = "luv", min = 1.2, text = "≥ 1.2× luv" },
  { workload = "W4.nil", against = "asyncio", min = 2, text = "≥ 2× asyncio (its hand loop)" },
  { workload = "W5", against = "luv", min = 1, text = "≥ 1× luv" },
  { workload = "W6", against = "luv", min = 2, text = "≥ 2× luv" },
  { workload = "W6", bytes_max = 600, text = "≤ 600 bytes per parked task" },
  { workload = "S0", absolute_max = 2, text = "≤ 2 ms" },
}

--- Each target with the measured figure and whether this run meets it.
function M.targets(bench, summaries)
  local lines = { "| target | measured | verdict |", "|---|---|---|" }
  for _, t in ipairs(M.TARGETS) do
    local w
    for _, x in ipairs(bench.workloads) do
      if x.id == t.workload then
        w = x
      end
    end
    if w then
      local rows, sums = bench.rows[w.id], summaries[w.id]
      local fdn = reference(rows, sums, "fdn")
      local measured, verdict
      if fdn == nil then
        local s
        for _, row in ipairs(rows) do
          if row.peer == "fdn" then
            s = sums[row.label]
          end
        end
        measured = "–"
        verdict = s and s.state == "fail" and "fdn FAILS its check"
          or ("not measured: " .. (s and s.reason or "fdn not run"))
      elseif t.bytes_max then
        local b
        for _, row in ipairs(rows) do
          if row.peer == "fdn" and sums[row.label].bytes then
            b = sums[row.label].bytes.median
          end
        end
        measured = b and string.format("%.0f bytes", b) or "–"
        verdict = b and (b <= t.bytes_max and "met" or "missed") or "–"
      elseif t.absolute_max then
        measured = string.format("%.2f %s", fdn, w.unit)
        verdict = fdn <= t.absolute_max and "met" or "missed"
      else
        local ref = reference(rows, sums, t.against)
        local r = M.speedup(w, fdn, ref)
        if r then
          measured = string.format("%.2f× %s", r, t.against)
          verdict = r >= t.min and "met" or "missed"
        else
          measured = "–"
          verdict = "no " .. t.against .. " figure in this run"
        end
      end
      lines[#lines + 1] = string.format("| %s %s | %s | %s |", t.workload, t.text, measured,
        escape(verdict))
    end
  end
  return table.concat(lines, "\n")
end

--- The callgrind section: marginal instructions per task.
function M.callgrind(entries)
  local lines = {
    "| workload | peer | instructions per task | vs luv | counts (n1 → n2) |",
    "|---|---|---|---|---|",
  }
  local luv = {}
  for _, e in ipairs(entries) do
    if e.peer == "luv" and e.status == "ok" then
      luv[e.workload] = e.per_task
    end
  end
  local last
  for _, e in ipairs(entries) do
    local name = e.workload ~= last and e.workload or ""
    last = e.workload
    if e.status == "ok" then
      local vs = luv[e.workload] and string.format("%.2f×", luv[e.workload] / e.per_task) or "–"
      if e.peer == "luv" then
        vs = "1"
      end
      lines[#lines + 1] = string.format("| %s | %s | %.0f | %s | %s → %s (n = %d → %d) |", name,
        e.label, e.per_task, vs, si(e.i1), si(e.i2), e.n1, e.n2)
    else
      lines[#lines + 1] = string.format("| %s | %s | %s: %s | | |", name, e.label,
        e.status == "fail" and "**FAIL**" or e.status, escape(e.reason))
    end
  end
  return table.concat(lines, "\n")
end

--- Whether any row failed its checks.
function M.any_failure(summaries)
  for _, rows in pairs(summaries) do
    for _, s in pairs(rows) do
      if s.state == "fail" then
        return true
      end
    end
  end
  return false
end

return M
