-- luawmi: Windows Management Instrumentation for Lua 5.4.
-- The C core (wmi.core) does the work; this layer adds what is plain Lua.
local core = require "wmi.core"

local wmi = {}
-- The core's helpers for the Lua layer stay out of the public table.
local INTERNAL = { methods = true, timer = true, console = true, check_options = true, ticks = true,
                   overflow = true, call = true }
for name, value in pairs(core) do
  if not INTERNAL[name] then wmi[name] = value end
end

-- wmi.datetime(s) parses a CIM datetime; wmi.datetime.from_epoch, .to_epoch, ...
-- convert both ways (lua/wmi/datetime.lua).
wmi.datetime = require "wmi.datetime"
wmi.fanout = require "wmi.fanout"
wmi.Error = require("wmi.stream").Error   -- svc:stream, call:objects (methods added there)

return wmi
