--- Windows Management Instrumentation for Lua 5.4, synchronous and asynchronous.
-- `local wmi = require "wmi"`. The C core (wmi.core) does the work; this layer adds
-- what is plain Lua. Misuse raises an argument error; WMI's failures return
-- `nil, message, hresult`. Every options and handlers table is strict: an unknown key raises.
-- @module wmi
local core = require "wmi.core"

local wmi = {
  --- The release: `"luawmi 0.1.0"`.
  -- @field _VERSION
  _VERSION = "luawmi 0.1.0",
}
-- The core's helpers for the Lua layer stay out of the public table.
local INTERNAL = { methods = true, timer = true, console = true, check_options = true, ticks = true,
                   call = true }
for name, value in pairs(core) do
  if not INTERNAL[name] then wmi[name] = value end
end

-- wmi.datetime(s) parses a CIM datetime; wmi.datetime.from_epoch, .to_epoch, ...
-- convert both ways (lua/wmi/datetime.lua).
wmi.datetime = require "wmi.datetime"
wmi.fanout = require "wmi.fanout"

return wmi
