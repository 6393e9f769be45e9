-- luawmi: Windows Management Instrumentation for Lua 5.4.
-- The C core (wmi.core) does the work; this layer keeps the public API idiomatic.
local core = require "wmi.core"

local wmi = {}
for name, value in pairs(core) do wmi[name] = value end

return wmi
