--- Internal: carrying a call's results through pcall without a table.
--
-- Results travel in up to four locals; more than four are packed into a
-- table (count -1). Used by the resilience decorators, whose success path
-- must not allocate.
local M = {}

local pcall, select, unpack = pcall, select, unpack

--- pack(pcall(fn, ...)) -> ok, n, r1, r2, r3, r4 (n = -1: r1 is a table).
local function pack_rest(ok, ...)
  local n = select("#", ...)
  if n <= 4 then
    return ok, n, ...
  end
  return ok, -1, { n = n, ... }
end

--- pack_n(fn(...)) -> n, r1, r2, r3, r4 (n = -1: r1 is a table).
local function pack_n(...)
  local n = select("#", ...)
  if n <= 4 then
    return n, ...
  end
  return -1, { n = n, ... }
end

M.pack_rest, M.pack_n = pack_rest, pack_n

--- The results again, exactly as many as there were.
function M.unpack_n(n, a, b, c, d)
  if n == 1 then
    return a
  elseif n == 0 then
    return
  elseif n == 2 then
    return a, b
  elseif n == 3 then
    return a, b, c
  elseif n == 4 then
    return a, b, c, d
  end
  return unpack(a, 1, a.n)
end

--- The first two results.
function M.first_two(n, a, b)
  if n == -1 then
    return a[1], a[2]
  end
  return a, b
end

--- The arguments, for calling again later without `...` (LuaJIT does not
-- compile `...` inside a loop): na, a1, a2, a3, a4, or -1 and a table.
function M.args(...)
  local na = select("#", ...)
  if na <= 4 then
    local a1, a2, a3, a4 = ...
    return na, a1, a2, a3, a4
  end
  return -1, { n = na, ... }
end

--- pack_n(fn(args)) for arguments kept by args().
function M.call_n(fn, na, a1, a2, a3, a4)
  if na == 1 then
    return pack_n(fn(a1))
  elseif na == 0 then
    return pack_n(fn())
  elseif na == 2 then
    return pack_n(fn(a1, a2))
  elseif na == 3 then
    return pack_n(fn(a1, a2, a3))
  elseif na == 4 then
    return pack_n(fn(a1, a2, a3, a4))
  end
  return pack_n(fn(unpack(a1, 1, a1.n)))
end

--- pack_rest(pcall(fn, args)) for arguments kept by args().
function M.pcall_n(fn, na, a1, a2, a3, a4)
  if na == 1 then
    return pack_rest(pcall(fn, a1))
  elseif na == 0 then
    return pack_rest(pcall(fn))
  elseif na == 2 then
    return pack_rest(pcall(fn, a1, a2))
  elseif na == 3 then
    return pack_rest(pcall(fn, a1, a2, a3))
  elseif na == 4 then
    return pack_rest(pcall(fn, a1, a2, a3, a4))
  end
  return pack_rest(pcall(fn, unpack(a1, 1, a1.n)))
end

return M
