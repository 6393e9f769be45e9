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

-- wmi.datetime("20231129134530.123456+060") --> { year = 2023, month = 11, day = 29,
-- hour = 13, min = 45, sec = 30, usec = 123456, utc_offset = 60 } (minutes east of UTC).
-- Fields WMI leaves unset ('*', as in intervals or wildcards) are nil. An interval
-- ("ddddddddHHMMSS.mmmmmm:000") gives { days, hour, min, sec, usec, interval = true }.
-- Returns nil, message for a string that is no CIM datetime.
local function field(s)
  if s:find("^%*+$") then return nil end
  return tonumber(s)
end

-- "2023-11-29 13:45:30.123456 +01:00"; an interval "3 days 04:05:06.000007"; '*'
-- fields as "*".
local function star(v, digits)
  return v and ("%0" .. digits .. "d"):format(v) or ("*"):rep(digits)
end
local DATETIME = { __name = "wmi.datetime", __tostring = function(t)
  if t.interval then
    return ("%d day%s %s:%s:%s.%s"):format(t.days, t.days == 1 and "" or "s", star(t.hour, 2), star(t.min, 2),
      star(t.sec, 2), star(t.usec, 6))
  end
  local offset = t.utc_offset and ("%s%02d:%02d"):format(t.utc_offset < 0 and "-" or "+",
    math.abs(t.utc_offset) // 60, math.abs(t.utc_offset) % 60) or "*"
  return ("%s-%s-%s %s:%s:%s.%s %s"):format(star(t.year, 4), star(t.month, 2), star(t.day, 2), star(t.hour, 2),
    star(t.min, 2), star(t.sec, 2), star(t.usec, 6), offset)
end }
function wmi.datetime(s)
  if type(s) ~= "string" then
    error(("bad argument #1 to 'datetime' (string expected, got %s)"):format(type(s)), 2)
  end
  local days, h, mi, sec, usec = s:match("^(%d%d%d%d%d%d%d%d)(%d%d)(%d%d)(%d%d)%.(%d%d%d%d%d%d):000$")
  if days then
    return setmetatable({ days = tonumber(days), hour = tonumber(h), min = tonumber(mi), sec = tonumber(sec),
                          usec = tonumber(usec), interval = true }, DATETIME)
  end
  local y, mo, d, hh, mm, ss, us, sign, off =
    s:match("^([%d*]+)([%d*][%d*])([%d*][%d*])([%d*][%d*])([%d*][%d*])([%d*][%d*])%.([%d*]+)([+-])([%d*]+)$")
  if not y or #y ~= 4 or #us ~= 6 or #off ~= 3 then
    return nil, ("not a CIM datetime: %q"):format(s)
  end
  local offset = field(off)
  return setmetatable({
    year = field(y), month = field(mo), day = field(d),
    hour = field(hh), min = field(mm), sec = field(ss), usec = field(us),
    utc_offset = offset and (sign == "-" and -offset or offset),
  }, DATETIME)
end

wmi.fanout = require "wmi.fanout"
wmi.Error = require("wmi.stream").Error   -- svc:stream, call:objects (methods added there)

local format = require "wmi.format"

--- Formats WMI objects as text, as wmiq writes them.
-- The same rules as wmiq's: control characters and bidi controls are written
-- visibly (\x1b, \u202e), a csv cell that a spreadsheet would run as a formula
-- gets a ' before it.
-- @param value a wmi.Object, a list of them (svc:query's), or a table of plain
-- values (one row, its names sorted; not for mof)
-- @tparam string fmt "table", "list", "csv", "json", "jsonl" or "mof"
-- @tparam[opt] table opts `width` (table: the columns fit it), `first` (table:
-- only the first columns that fit `width`, as Format-Table), `newline` (default
-- "\n"), `csv_raw` (csv: no ' before formula-like cells)
-- @treturn string the text
function wmi.format(value, fmt, opts)
  return format.format(value, fmt, opts)
end

-- What the REPL shows (it prints a value's tostring): a list as a table of its
-- objects' first columns (PowerShell's Format-Table), wmi.stats() and
-- wmi.datetime(s) results and the module as one readable line each.
local console = core.console
local registry = debug.getregistry()
local list_meta = registry["wmi.List"] or { __name = "wmi.List" }   -- the C core's, made at its first list
registry["wmi.List"] = list_meta
local LIST_SHOWN = 20   -- rows of a list's table: a big query is no flood
function list_meta.__tostring(list)
  local n = #list
  if n == 0 then return "0 objects" end
  local width = tonumber(os.getenv("COLUMNS")) or console.width() or 80
  local shown = table.move(list, 1, math.min(n, LIST_SHOWN), 1, {})
  return ("%d object%s:\n%s%s"):format(n, n == 1 and "" or "s",
    format.format(shown, "table", { width = width, first = true }):gsub("\n$", ""), n > LIST_SHOWN and "\n..." or "")
end

-- "{calls = 0, objects = 2, ...}", its names sorted.
local function fields(t)
  local names, parts = {}, {}
  for name in pairs(t) do names[#names + 1] = name end
  table.sort(names)
  for i, name in ipairs(names) do parts[i] = ("%s = %s"):format(name, t[name]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local STATS = { __name = "wmi.stats", __tostring = fields }
local stats = core.stats
function wmi.stats()
  return setmetatable(stats(), STATS)
end

setmetatable(wmi, { __name = "wmi", __tostring = function(m)
  local names = {}
  for name, v in pairs(m) do
    if type(v) == "function" then names[#names + 1] = name end
  end
  table.sort(names)
  return ("%s: wmi.%s"):format(m._VERSION or "luawmi 0.1.0", table.concat(names, ", wmi."))
end })

return wmi
