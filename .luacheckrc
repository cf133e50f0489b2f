std = "luajit"
max_line_length = 120
exclude_files = { "build*/**", "install/**" }
files["spec/"] = { std = "+busted" }
-- Job scripts run under fdn-lua, which defines the global `fdn`.
files["examples/"] = { read_globals = { "fdn" } }
files["bench/"] = { read_globals = { "fdn" } }
