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
                   call = true, wql_builder = true }
for name, value in pairs(core) do
  if not INTERNAL[name] then wmi[name] = value end
end

-- wmi.datetime(s) parses a CIM datetime; wmi.datetime.from_epoch, .to_epoch, ...
-- convert both ways (lua/wmi/datetime.lua).
wmi.datetime = require "wmi.datetime"
wmi.fanout = require "wmi.fanout"

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
  return ("%s: wmi.%s"):format(m._VERSION, table.concat(names, ", wmi."))
end })

local wql = require "wmi.wql"                -- also makes the C core take query tables
wmi.wql, wmi.quote, wmi.NULL = wql.wql, wql.quote, wql.NULL

return wmi
