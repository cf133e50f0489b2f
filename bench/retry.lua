-- W4 (BENCH.md): retry overhead. 100k sequential calls of a function that
-- fails twice then succeeds, through fdn.retry with zero delay (300k
-- attempts), in both failure conventions: raised with error("…"), and
-- returned as nil, err. The reference is the hand-written loop a user
-- would write without fdn (pcall until it works), measured in the same
-- run: the error + pcall pair dominates the raised form.
--   fdn-lua bench/retry.lua [runs] [calls]
local argv = { ... }
local runs = tonumber(argv[1]) or 7
local N = tonumber(argv[2]) or 100000
local clock = os.clock

local function median(t)
  table.sort(t)
  return t[math.ceil(#t / 2)]
end

local k = 0
local function flaky_raise(x)
  k = k + 1
  if k % 3 ~= 0 then
    error("transient failure")
  end
  return x
end

local function flaky_nil(x)
  k = k + 1
  if k % 3 ~= 0 then
    return nil, "transient failure"
  end
  return x
end

local function hand_loop()
  for i = 1, N do
    local ok, v
    repeat
      ok, v = pcall(flaky_raise, i)
    until ok
    assert(v == i)
  end
end

local retried_raise = fdn.retry { max_attempts = 3, delay = 0 } (flaky_raise)
local function fdn_raise()
  for i = 1, N do
    assert(retried_raise(i) == i)
  end
end

local retried_nil = fdn.retry { max_attempts = 3, delay = 0, retry_if_result = "nil" } (flaky_nil)
local function fdn_nil()
  for i = 1, N do
    assert(retried_nil(i) == i)
  end
end

-- A sample repeats the 100k calls `reps` times: the nil, err form is so
-- fast that one pass is below the clock's useful resolution.
local function measure(fn, reps)
  reps = reps or 1
  local rates = {}
  for r = 1, runs do
    k = 0
    collectgarbage()
    local t0 = clock()
    for _ = 1, reps do
      fn()
    end
    rates[r] = N * reps / (clock() - t0)
  end
  return median(rates)
end

local only = os.getenv("FDN_BENCH_ONLY")
if only then
  local fns = { hand = hand_loop, raise = fdn_raise, ["nil"] = fdn_nil }
  print(string.format("%s: %.0f calls/s", only, measure(fns[only], tonumber(argv[3]))))
  return
end

local hand = measure(hand_loop)
local raise = measure(fdn_raise)
local nilerr = measure(fdn_nil, 50)
print(string.format("W4 retry, %d calls x 3 attempts, zero delay, median of %d runs (CPU time):",
  N, runs))
print(string.format("  hand-written pcall loop (reference): %9.0f calls/s", hand))
print(string.format("  fdn.retry, raised errors:            %9.0f calls/s  (%.2f x the hand loop)",
  raise, raise / hand))
print(string.format("  fdn.retry, nil, err returns:         %9.0f calls/s  (%.1f x the hand loop)",
  nilerr, nilerr / hand))
local s = fdn.retry.stats(retried_raise)
assert(s.attempts == 3 * s.calls and s.successes == s.calls, "wrong attempt counts")
