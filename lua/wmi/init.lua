-- luawmi: Windows Management Instrumentation for Lua 5.4.
-- The C core (wmi.core) does the work; this layer adds what is plain Lua.
local core = require "wmi.core"

local wmi = {}
-- The core's helpers for the Lua layer stay out of the public table.
local INTERNAL = { methods = true, timer = true, console = true, check_options = true, ticks = true,
                   overflow = true, call = true, wql_builder = true }
for name, value in pairs(core) do
  if not INTERNAL[name] then wmi[name] = value end
end

-- wmi.datetime("20231129134530.123456+060") --> { year = 2023, month = 11, day = 29,
-- hour = 13, min = 45, sec = 30, usec = 123456, utc_offset = 60 } (minutes east of UTC).
-- Fields WMI leaves unset ('*', as in intervals or wildcards) are nil. An interval
-- ("ddddddddHHMMSS.mmmmmm:000") gives { days, hour, min, sec, usec, interval = true }.
-- Returns nil, message for a string that is no CIM datetime.
local function field(s)
  if s:find("^%*+$") then return nil end
  return tonumber(s)
end

function wmi.datetime(s)
  if type(s) ~= "string" then
    error(("bad argument #1 to 'datetime' (string expected, got %s)"):format(type(s)), 2)
  end
  local days, h, mi, sec, usec = s:match("^(%d%d%d%d%d%d%d%d)(%d%d)(%d%d)(%d%d)%.(%d%d%d%d%d%d):000$")
  if days then
    return { days = tonumber(days), hour = tonumber(h), min = tonumber(mi), sec = tonumber(sec),
             usec = tonumber(usec), interval = true }
  end
  local y, mo, d, hh, mm, ss, us, sign, off =
    s:match("^([%d*]+)([%d*][%d*])([%d*][%d*])([%d*][%d*])([%d*][%d*])([%d*][%d*])%.([%d*]+)([+-])([%d*]+)$")
  if not y or #y ~= 4 or #us ~= 6 or #off ~= 3 then
    return nil, ("not a CIM datetime: %q"):format(s)
  end
  local offset = field(off)
  return {
    year = field(y), month = field(mo), day = field(d),
    hour = field(hh), min = field(mm), sec = field(ss), usec = field(us),
    utc_offset = offset and (sign == "-" and -offset or offset),
  }
end

wmi.fanout = require "wmi.fanout"
local wql = require "wmi.wql"                -- also makes the C core take query tables
wmi.wql, wmi.quote, wmi.NULL = wql.wql, wql.quote, wql.NULL
wmi.Error = require("wmi.stream").Error   -- svc:stream, call:objects (methods added there)

return wmi
