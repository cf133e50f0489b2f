-- The smallest job script: the main chunk is already a task.
--   fdn-lua examples/hello.lua [name]
local name = ... or "world"
fdn.sleep(0.01)
print(string.format("hello, %s (fdn %s)", name, fdn.version))
