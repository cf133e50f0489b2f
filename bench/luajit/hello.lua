-- S0 floor: bare LuaJIT's hello world.
print("hello")
