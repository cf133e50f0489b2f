--- Parameter kinds: which of the sweep's values a parameter accepts, and
-- why. This is the acceptance list of the bad-argument sweep
-- (docs/reliability-matrices.md): a value a kind does not list must be
-- refused with fdn.errors.InvalidArgument naming the function and the
-- parameter; a value it lists is the parameter's documented acceptance.
local V = require "reliability.values"

local M = {}

local function kind(doc, ...)
  local set = {}
  for i = 1, select("#", ...) do
    local label = select(i, ...)
    if label ~= nil then
      set[label] = true
    end
  end
  return { doc = doc, accepts = set }
end

local ALL = V.labels

M.ANY = kind("any value: it is data fdn carries or inspects without using it as anything "
  .. "(a queue item, an error value, a predicate's argument)", unpack(ALL))
M.ANY_BUT_NIL = kind("any value but nil (nil would mean \"no item\")",
  V.TRUE, V.ZERO, V.NEG, V.BIG, V.NAN, V.EMPTY, V.TABLE, V.FUNC, V.CO, V.UDATA, V.FOBJ)
M.FLAG = kind("a flag: any value counts as true or false, as Lua conditions do", unpack(ALL))
M.FN = kind("a function (callable tables too)", V.FUNC)
M.OPT_FN = kind("a function, or nil", V.NIL, V.FUNC)
M.TABLE = kind("a table (its fields are checked one by one, naming opts.<field>)", V.TABLE)
M.OPT_TABLE = kind("a table, or nil for the defaults", V.NIL, V.TABLE)
M.SECONDS = kind("a non-negative number of seconds (0: at once; 2^53: practically forever)",
  V.ZERO, V.BIG)
M.OPT_SECONDS = kind("nil (no limit) or a non-negative number of seconds", V.NIL, V.ZERO, V.BIG)
M.STRING = kind("a string (the empty string included)", V.EMPTY)
M.OPT_STRING = kind("a string, or nil", V.NIL, V.EMPTY)
M.NAME = kind("a non-empty string")
M.OPT_NAME = kind("a non-empty string, or nil", V.NIL)
M.COUNT0 = kind("an integer >= 0 (2^53 included)", V.ZERO, V.BIG)
M.COUNT1 = kind("an integer >= 1 (2^53 included)", V.BIG)
M.OPT_COUNT0 = kind("an integer >= 0, or nil", V.NIL, V.ZERO, V.BIG)
M.OPT_COUNT1 = kind("an integer >= 1, or nil", V.NIL, V.BIG)
M.BOOLEAN = kind("a boolean", V.TRUE)
M.OPT_BOOLEAN = kind("a boolean, or nil", V.NIL, V.TRUE)
M.SELF = kind("the object itself (the method was called with ':'); nothing else")
M.OBJECT = kind("a specific kind of object (a task, an error class, a manager...); none of "
  .. "the sweep's values is one")
M.KEY = kind("a cache key argument: nil, a boolean, a number (NaN included: it is encoded, "
  .. "never used as a table key) or a string", V.NIL, V.TRUE, V.ZERO, V.NEG, V.BIG, V.NAN, V.EMPTY)
M.TASKS = kind("a list of tasks (the empty list gives {}), or nothing at all", V.NIL, V.TABLE)
M.ITEMS = kind("a list, or an iterator function", V.TABLE, V.FUNC)
M.OPTS_OR_FN = kind("an options table, or the function to decorate with the defaults",
  V.TABLE, V.FUNC)
M.FIELDS_OR_ERROR = kind("a table of fields, or an error value (any value: it is recorded as "
  .. "{error = value})", unpack(ALL))
M.LOG_LEVEL = kind("a level name (\"trace\" ... \"error\")")
M.ERROR_LEVEL = kind("nil or an integer >= 1 (a stack level, as for error())", V.NIL, V.BIG)

return M
