-- S0, start-up: the hello-world job. fdn-lua starts, loads the library,
-- runs this as the main task for one loop turn, and exits.
fdn.sleep(0)
print("hello")
