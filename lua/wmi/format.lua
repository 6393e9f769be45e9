-- The text formats of WMI objects: table, list, csv, json, jsonl, mof. wmiq
-- writes with them, and wmi.format (the REPL's lists too) formats with them.
local datetime = require "wmi.datetime"

local format = {}

---------------------------------------------------------------------------------
-- Rows: an object's properties as plain values, read at once (under Wine the next
-- query of the same class refills an instance's values)
---------------------------------------------------------------------------------

local function is_object(v)
  local mt = type(v) == "userdata" and getmetatable(v)
  return mt and mt.__name == "wmi.Object" or false
end

-- Whether V holds a negative integer (a uint64 above math.maxinteger arrives so).
local function negative(v)
  if math.type(v) == "integer" then return v < 0 end
  if type(v) == "table" then
    for i = 1, #v do if negative(v[i]) then return true end end
  end
  return false
end

-- A wrapped uint64 N as its exact decimal digits: { digits = "18446744073709551615" }.
local function unsigned(n)
  local q = (n >> 1) // 5                   -- N // 10, unsigned
  return { digits = ("%d%d"):format(q, n - q * 10) }
end

-- wmiq --rfc3339 (format.rfc3339 = true): a datetime VALUE (or array of them) of
-- CIMTYPE as RFC 3339 text; an interval or a wildcard stays WMI's text.
format.rfc3339 = false
local function rfc3339(value, cimtype)
  if not format.rfc3339 or not (cimtype or ""):find("^datetime") then return value end
  if type(value) == "table" then
    for i = 1, #value do value[i] = rfc3339(value[i], cimtype) end
    return value
  end
  return type(value) == "string" and datetime.to_rfc3339(value) or value
end

-- UINT64: the value is of a uint64 property (its negative integers are wrapped).
-- A value the module could not convert ({ unconvertible = true, vartype = }) is
-- shown as its text: "<unconvertible VARIANT 0x7: ...>".
local function plain(v, uint64)
  if type(v) == "table" and v.unconvertible then return tostring(v) end
  if is_object(v) then
    local row = { names = {}, values = {} }
    for name, value in pairs(v) do
      row.names[#row.names + 1] = name
      row.values[name] = plain(value, negative(value) and (v:cimtype(name) or ""):find("^uint64"))
      row.values[name] = rfc3339(row.values[name], v:cimtype(name))
    end
    row.class = v:class()
    return row
  elseif type(v) == "table" then
    local t = {}
    for i = 1, #v do t[i] = plain(v[i], uint64) end
    t.array = true
    return t
  elseif uint64 and math.type(v) == "integer" and v < 0 then
    return unsigned(v)
  end
  return v
end

-- A row of OBJ; HOST when rows carry their host. `classes` prints class names.
-- A property of the object's own named Host (in any case) becomes Class.Host: a
-- property name has no dot, so it never meets the host column nor another.
local function row_of(obj, host, want_mof, class_only)
  local row = class_only and { names = { "Class" }, values = { Class = obj:class() } } or plain(obj)
  if want_mof then row.mof = obj:text() end
  if host then
    for i, name in ipairs(row.names) do
      if name:lower() == "host" then
        row.names[i] = row.class .. "." .. name
        row.values[row.names[i]], row.values[name] = row.values[name], nil
      end
    end
    table.insert(row.names, 1, "Host")
    row.values.Host = host
  end
  return row
end

---------------------------------------------------------------------------------
-- What reaches a terminal or a file: WMI data (a registry value, a command line,
-- a server's status text) must not drive the terminal. One rule for every format
-- and stderr: C0 controls, DEL, C1 controls (U+0080-U+009F: CSI, OSC...) and the
-- bidi controls (U+202A-U+202E, U+2066-U+2069) are written visibly: \x1b, \u202e.
-- LAYOUT keeps line breaks (LF, CRLF) and TAB where the format carries them
-- (list, csv, mof).
-- Bytes that are no UTF-8 are written as \xHH too.
---------------------------------------------------------------------------------

local function shown(c)
  local cp = utf8.codepoint(c)
  if cp < 0x20 or cp == 0x7f then return ("\\x%02x"):format(cp) end
  if (cp >= 0x80 and cp <= 0x9f) or (cp >= 0x202a and cp <= 0x202e) or (cp >= 0x2066 and cp <= 0x2069) then
    return ("\\u%04x"):format(cp)
  end
  return c
end

local function shown_in_layout(c)
  if c == "\t" then return c end
  return shown(c)
end

local function visible(s, layout)
  if not utf8.len(s) then
    s = s:gsub("[\x80-\xff]", function(b) return ("\\x%02x"):format(b:byte()) end)
  end
  if not layout then return (s:gsub(utf8.charpattern, shown)) end
  local parts = {}
  for line, brk in (s .. "\n"):gmatch("(.-)(\r?\n)") do
    parts[#parts + 1] = line:gsub(utf8.charpattern, shown_in_layout) .. brk
  end
  return table.concat(parts):sub(1, -2)
end

-- Text of a value for table, list and csv.
local function text(v)
  if v == nil then return "" end
  if type(v) == "table" then
    if v.array then
      local parts = {}
      for i = 1, #v do parts[i] = text(v[i]) end
      return "{" .. table.concat(parts, ",") .. "}"
    end
    if v.digits then return v.digits end
    return "instance of " .. tostring(v.class)
  end
  return tostring(v)
end

---------------------------------------------------------------------------------
-- JSON
---------------------------------------------------------------------------------

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
-- Controls as \u escapes; C1 and bidi controls too (the rule above, in JSON's words).
local function json_string(s)
  if not utf8.len(s) then s = visible(s) end
  return '"' .. s:gsub(utf8.charpattern, function(c)
    if ESCAPES[c] then return ESCAPES[c] end
    local v = shown(c)
    if v == c then return c end
    return ("\\u%04x"):format(utf8.codepoint(c))
  end) .. '"'
end

local function json(v)
  local t = type(v)
  if v == nil then return "null"
  elseif t == "boolean" then return tostring(v)
  elseif math.type(v) == "integer" then return tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return ("%.17g"):format(v)
  elseif t == "string" then return json_string(v)
  elseif v.digits then return v.digits
  elseif v.array then
    local parts = {}
    for i = 1, #v do parts[i] = json(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  else
    local parts = {}
    for i, name in ipairs(v.names) do
      parts[i] = json_string(name) .. ":" .. json(v.values[name])
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
end

---------------------------------------------------------------------------------
-- Output formats: each is { row = function(row), finish = function() }
---------------------------------------------------------------------------------

-- A cell a spreadsheet would run as a formula (=cmd|' /C calc'!A0) starts with '
-- (OWASP's "CSV injection"), unless RAW; numbers are left as they are.
local function csv_field(s, raw, number)
  s = visible(s, true)
  if not raw and not number and s:find("^[=+%-@\t\r]") then s = "'" .. s end
  if s:find('[",\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

local function width_of(s)
  return utf8.len(s) or #s
end

-- S cut to N characters (UTF-8 aware), its last one then a "~".
local function cut(s, n)
  if width_of(s) <= n then return s end
  if n <= 1 then return ("~"):sub(1, n) end
  return s:sub(1, (utf8.offset(s, n) or n) - 1) .. "~"
end

-- Column widths shrunk, widest first, until the line fits WIDTH (never below 4).
local function fit(widths, width)
  if not width then return widths end
  local total = -2
  for _, w in ipairs(widths) do total = total + w + 2 end
  while total > width do
    local widest = 1
    for i, w in ipairs(widths) do if w > widths[widest] then widest = i end end
    if widths[widest] <= 4 then break end
    widths[widest] = widths[widest] - 1
    total = total - 1
  end
  return widths
end

-- A value as a table cell: one line, its control characters made visible.
local function cell(v)
  return visible((text(v):gsub("\r?\n", "\\n")))
end

-- One line of a table: VALUES cut to WIDTHS, two spaces apart.
local function table_line(out, nl, widths, values)
  local parts = {}
  for i, v in ipairs(values) do
    v = cut(v, widths[i])
    parts[i] = i < #values and v .. (" "):rep(widths[i] - width_of(v)) or v
  end
  out:write(table.concat(parts, "  "), nl)
end

local formats = {}

-- A table written as its rows come (watch): the header and the column widths are
-- the first row's, fitted to WIDTH; later values are cut to them.
local function streaming_table(out, nl, width)
  local widths, names
  return {
    row = function(row)
      local cells = {}
      for i, name in ipairs(names or row.names) do cells[i] = cell(row.values[name]) end
      if not names then
        names, widths = row.names, {}
        local heads = {}
        for i, name in ipairs(names) do
          heads[i] = visible(name)
          widths[i] = math.max(width_of(heads[i]), width_of(cells[i]))
        end
        fit(widths, width)
        table_line(out, nl, widths, heads)
      end
      table_line(out, nl, widths, cells)
    end,
    finish = function() end,
  }
end

-- FIRST: only the leading columns that fit WIDTH, each counted at most FIRST_CAP
-- wide (as Format-Table shows an object's first properties), at least one.
local FIRST_CAP = 24
local function first_columns(widths, width)
  local total, n = -2, 0
  for i, w in ipairs(widths) do
    total = total + math.min(w, FIRST_CAP) + 2
    if total > width and i > 1 then break end
    n = i
  end
  return n
end

-- Keeps ROW in ROWS and adds its columns NAMES lacks (SEEN: those NAMES holds), in
-- the order they first come: a table or csv of rows of several classes.
local function keep_row(rows, names, seen, row)
  rows[#rows + 1] = row
  for _, name in ipairs(row.names) do
    if not seen[name] then seen[name] = true; names[#names + 1] = name end
  end
end

function formats.table(out, nl, width, _, streaming, first)
  if streaming then return streaming_table(out, nl, width) end
  local rows, names, seen = {}, {}, {}
  return {
    row = function(row)
      keep_row(rows, names, seen, row)
    end,
    finish = function()
      if #rows == 0 then return end
      local cells, widths = {}, {}
      local heads = {}
      for i, name in ipairs(names) do
        heads[i] = visible(name)
        widths[i] = width_of(heads[i])
      end
      for r, row in ipairs(rows) do
        cells[r] = {}
        for i, name in ipairs(names) do
          local s = cell(row.values[name])
          cells[r][i] = s
          widths[i] = math.max(widths[i], width_of(s))
        end
      end
      if first and width then
        local n = first_columns(widths, width)
        for _, t in ipairs { heads, widths, table.unpack(cells) } do
          for k = #t, n + 1, -1 do t[k] = nil end
        end
      end
      fit(widths, width)
      table_line(out, nl, widths, heads)
      for _, c in ipairs(cells) do table_line(out, nl, widths, c) end
    end,
  }
end

function formats.list(out, nl)
  return {
    row = function(row)
      for _, name in ipairs(row.names) do
        out:write(visible(name), "=", (visible(text(row.values[name]), true):gsub("\r?\n", nl)), nl)
      end
      out:write(nl)
    end,
    finish = function() end,
  }
end

-- The header names every column of every row (rows of several classes), so the
-- rows wait for the end; a watch's stream has the first row's columns.
function formats.csv(out, _, _, raw, streaming)
  local names, rows, seen = {}, {}, {}
  local function line(fields, numbers)
    for i, f in ipairs(fields) do fields[i] = csv_field(f, raw, numbers and numbers[i]) end
    out:write(table.concat(fields, ","), "\r\n")
  end
  local function write(row)
    local fields, numbers = {}, {}
    for i, name in ipairs(names) do
      local v = row.values[name]
      fields[i], numbers[i] = text(v), type(v) == "number"
    end
    line(fields, numbers)
  end
  return {
    row = function(row)
      if streaming then
        if #names == 0 then
          names = row.names
          line(table.move(names, 1, #names, 1, {}))
        end
        return write(row)
      end
      keep_row(rows, names, seen, row)
    end,
    finish = function()
      if #rows == 0 then return end
      line(table.move(names, 1, #names, 1, {}))
      for _, row in ipairs(rows) do write(row) end
    end,
  }
end

function formats.json(out, nl)
  local n = 0
  return {
    row = function(row)
      out:write(n == 0 and "[" or ",", nl, json(row))
      n = n + 1
    end,
    finish = function() out:write(n == 0 and "[]" or nl .. "]", nl) end,
  }
end

function formats.jsonl(out, nl)
  return {
    row = function(row) out:write(json(row), nl) end,
    finish = function() end,
  }
end

function formats.mof(out, nl)
  return {
    row = function(row)
      if row.values.Host ~= nil and row.names[1] == "Host" then out:write("// Host: ", visible(row.values.Host), nl) end
      out:write((visible(row.mof, true):gsub("\r?\n", nl)), nl)
    end,
    finish = function() end,
  }
end


---------------------------------------------------------------------------------
-- wmi.format
---------------------------------------------------------------------------------

format.visible, format.row_of, format.formats = visible, row_of, formats

local NAMES = "table, list, csv, json, jsonl or mof"

-- The rows of VALUE: an object, a sequence of objects, or a table of plain values
-- (wmi.stats(), wmi.datetime's result: one row, its names in order).
-- MOF: the rows carry the objects' MOF text (a table of values has none: nil).
local function rows_of(value, mof)
  if is_object(value) then return { row_of(value, nil, mof) } end
  if type(value) ~= "table" then return nil end
  local rows = {}
  for i = 1, #value do
    if not is_object(value[i]) then return nil end
    rows[i] = row_of(value[i], nil, mof)
  end
  if #rows > 0 or next(value) == nil then return rows end
  if mof then return nil end
  local row = { names = {}, values = {} }
  for name, v in pairs(value) do
    if type(name) ~= "string" then return nil end
    row.names[#row.names + 1] = name
    row.values[name] = plain(v)
  end
  table.sort(row.names)
  return { row }
end

function format.format(value, fmt, opts)
  if not formats[fmt] then
    error(("bad argument #2 to 'format' (%s expected, got %s)"):format(NAMES,
      type(fmt) == "string" and ("'%s'"):format(visible(fmt)) or type(fmt)), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #3 to 'format' (table expected, got %s)"):format(type(opts)), 3)
  end
  opts = opts or {}
  local rows = rows_of(value, fmt == "mof")
  if not rows then
    error(("bad argument #1 to 'format' (wmi.Object, a list of them%s expected, got %s)")
      :format(fmt == "mof" and "" or " or a table of values", type(value)), 3)
  end
  local buffer = {}
  local out = { write = function(self, ...)
    for i = 1, select("#", ...) do buffer[#buffer + 1] = select(i, ...) end
    return self
  end }
  local f = formats[fmt](out, opts.newline or "\n", opts.width, opts.csv_raw, false, opts.first)
  for _, row in ipairs(rows) do f.row(row) end
  f.finish()
  return table.concat(buffer)
end

return format
