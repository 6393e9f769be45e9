std = "lua54"
max_line_length = 120
files["spec"] = { std = "+busted" }
files["scripts/luarocks-config.lua"] = { allow_defined_top = true, ignore = { "131" }, read_globals = { "os_getenv" } }
