std = "lua54"
max_line_length = 110
files["spec"] = { std = "+busted" }
files["scripts/luarocks-config.lua"] = { allow_defined_top = true, globals = { "os_getenv" } }
files[".busted"] = { std = "lua54" }
