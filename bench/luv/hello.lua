-- S0 for luv: load luv and the hand-rolled scheduler, one loop turn, exit.
local sched = dofile(arg[0]:gsub("[^/]*$", "") .. "sched.lua")
sched.run(function()
  sched.yield()
  print("hello")
end)
