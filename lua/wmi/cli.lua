-- wmiq: a command line for WMI (a replacement for the WMIC tool). bin/wmiq runs
-- cli.main(arg, io.stdout, io.stderr); specs can call it in-process with their
-- own output objects (anything with :write).
local wmi = require "wmi"
local console = require("wmi.core").console

local cli = {}

cli.usage = [[
Usage: wmiq [options] "SELECT ..."            a WQL query
       wmiq [options] get PATH                one object ("Win32_Service.Name='Spooler'")
       wmiq [options] call PATH METHOD [NAME=VALUE ...]
                                              runs a method, prints its out-parameters
       wmiq [options] classes [SUPERCLASS]    class names (all, or below SUPERCLASS)
       wmiq [options] watch "SELECT ..."      events, as they arrive, until Ctrl+C or --timeout

Options:
  -n, --namespace NS   namespace (default root\cimv2)
  -H, --host HOSTS     hosts, comma-separated (h1,h2,...), or @FILE with one host a
                       line (# starts a comment); several hosts are asked at once and
                       every row then starts with its Host (a class's own Host
                       property is then shown as CLASS.Host)
  -u, --user USER      user name (DOMAIN\user) for remote hosts; without a password
                       option the password is asked for at the console, without echo
  -p, --password PW    password; - reads it from the console without echo (or a
                       line of standard input when that is not a console). A
                       password written here is visible to other users (process
                       list, shell history): prefer -p -, --password-env or --credential
      --password-env VAR  the password is the value of environment variable VAR
      --credential NAME   user and password from the generic credential NAME of
                       Windows Credential Manager (cmdkey /generic:NAME /user:U /pass)
  -y, --yes            call on several hosts without asking (see Changes)
      --what-if        print what call would do on each host, and call nothing
      --csv-raw        csv: no ' before cells that start with = + - @ TAB or CR
  -f, --format FMT     table (default), list, csv, json, jsonl or mof
      --rfc3339        datetimes as RFC 3339 text (2024-02-29T23:59:59.000001-02:30)
                       rather than WMI's; intervals stay WMI's text (not in mof)
      --throttle N     hosts in flight at once (default 32)
      --timeout MS     milliseconds per host, connection included, for every
                       command (default 30000 with -H, none without); a host that
                       takes longer fails with WBEM_E_TIMED_OUT; watch: how long
                       to watch (default: until Ctrl+C)
      --locator CLSID  another IWbemLocator to connect with ({...}; default WMI's)
  -h, --help           this help

Formats:
  table   aligned columns under a header, as wide as the console or COLUMNS
          (values cut with ~; no limit into a pipe or file); a watch's rows
          come as the events do, in the first row's widths; no row at all
          says "No instances." on stderr (list too)
  list    NAME=VALUE lines, a blank line after each object
  csv     RFC 4180: a header line with every row's columns (rows of several
          classes; a watch: the first event's), CRLF line ends, values with
          quotes, commas or line breaks in double quotes
  json    one JSON document: an array of objects
  jsonl   one JSON object a line, written as each arrives (for watch and many hosts)
  mof     each object's MOF text
  Arrays print as {a,b} in table, list and csv; json keeps arrays and numbers.
  In every format and on stderr, control characters (C0, DEL, C1) and the bidi
  controls U+202A-U+202E and U+2066-U+2069 are written visibly as \x1b or
  \u202e (json: \u001b), never raw; list, csv and mof keep line breaks and TABs.
  A csv cell that starts with = + - @ TAB or CR gets a ' before it (a spreadsheet
  would run it as a formula) unless --csv-raw.
  Method parameters: VALUE is text, converted to the parameter's type (numbers
  such as 2147483649 or 0x80000001 for integers); true and false are booleans.

Changes:
  call with more than one host asks first, at a terminal, showing the hosts and
  the method with its arguments (no: nothing is called, exit status 1); without
  a terminal it needs --yes.

Exit status: 0 when every host and call succeeded, 1 when one failed (each error
on stderr with its WBEM name and HRESULT), 2 for a usage error, 130 after Ctrl+C
(what arrived until then is printed).
]]

local FORMATS = { table = true, list = true, csv = true, json = true, jsonl = true, mof = true }
local COMMANDS = { get = true, call = true, classes = true, watch = true }

-- A usage error: main prints it and exits 2.
local Usage = {}
local function usage(fmt, ...)
  error(setmetatable({ message = fmt:format(...) }, Usage), 0)
end

---------------------------------------------------------------------------------
-- Arguments
---------------------------------------------------------------------------------

local OPTIONS = {   -- long name -> takes a value
  namespace = true, host = true, user = true, password = true, format = true,
  throttle = true, timeout = true, locator = true, help = false,
  ["password-env"] = true, credential = true, yes = false, ["what-if"] = false, ["csv-raw"] = false,
}
OPTIONS.rfc3339 = false
local SHORT = { n = "namespace", H = "host", u = "user", p = "password", f = "format", h = "help", y = "yes" }

-- Usage errors never repeat an option's value: a misplaced password would be printed.
local function positive(name, s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 then usage("option '--%s' needs a positive integer", name) end
  return n
end

-- Host names of -H: "a,b,c" or "@file"; duplicates are one host.
local function read_hosts(spec)
  local text = spec
  if spec:sub(1, 1) == "@" then
    local f = io.open(spec:sub(2), "r")
    if not f then usage("cannot read the host list of option '--host'") end
    text = f:read("a"):gsub("#[^\n]*", "")
    f:close()
  end
  local hosts, seen = {}, {}
  for h in text:gmatch("[^,%s]+") do
    if not wmi.valid_host(h) then
      usage("host #%d of option '--host' is not a host name (DNS, NetBIOS, IPv4 or IPv6)", #hosts + 1)
    end
    if not seen[h:lower()] then
      seen[h:lower()] = true
      hosts[#hosts + 1] = h
    end
  end
  if #hosts == 0 then usage("no host in option '--host'") end
  return hosts
end

function cli.parse(args)
  local o, rest, i = { format = "table" }, {}, 1
  while i <= #args do
    local a = args[i]
    local name, value
    if a == "--" then
      table.move(args, i + 1, #args, #rest + 1, rest)
      break
    elseif a:sub(1, 2) == "--" then
      name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      if OPTIONS[name] == nil then usage("unknown option '--%s'", name) end
    elseif a:sub(1, 1) == "-" and #a > 1 and a ~= "-" then
      name = SHORT[a:sub(2, 2)]
      if not name then usage("unknown option '%s'", a:sub(1, 2)) end
      if #a > 2 then value = a:sub(3) end
    else
      rest[#rest + 1] = a
    end
    if name then
      if not OPTIONS[name] then
        if value then usage("option '--%s' takes no value", name) end
        o[name] = true
      else
        if not value then
          i = i + 1
          value = args[i]
          if not value then usage("option '%s' needs a value", a) end
        end
        o[name] = value
      end
    end
    i = i + 1
  end
  if o.help then return o end
  if not FORMATS[o.format] then
    usage("unknown format in option '--format' (table, list, csv, json, jsonl or mof)")
  end
  if o.throttle then o.throttle = positive("throttle", o.throttle) end
  if o.timeout then o.timeout = positive("timeout", o.timeout) end
  if o.host then o.hosts = read_hosts(o.host) end
  local clsid = "^{" .. ("%x"):rep(8) .. "%-" .. ("%x%x%x%x%-"):rep(3) .. ("%x"):rep(12) .. "}$"
  if o.locator and not o.locator:find(clsid) then
    usage("option '--locator' needs a CLSID such as {4590F811-1D3A-11D0-891F-00AA004B2E24} (WMI's own), got '%s'",
      o.locator)
  end
  local sources = (o.password and 1 or 0) + (o["password-env"] and 1 or 0) + (o.credential and 1 or 0)
  if sources > 1 then usage("give one of '--password', '--password-env' and '--credential'") end
  if o.credential and o.user then usage("option '--credential' names its own user: no '--user'") end
  if (o.password or o["password-env"]) and not o.user then
    usage("option '--%s' needs '--user'", o.password and "password" or "password-env")
  end

  local cmd = rest[1]
  if not cmd then usage("missing the query or command") end
  if COMMANDS[cmd] then
    o.command = cmd
    if cmd == "get" then
      if #rest ~= 2 then usage("'get' needs one PATH, got %d arguments", #rest - 1) end
      o.path = rest[2]
    elseif cmd == "call" then
      if #rest < 3 then usage("'call' needs PATH and METHOD") end
      o.path, o.method, o.params, o.arguments = rest[2], rest[3], {}, {}
      for j = 4, #rest do
        local k, v = rest[j]:match("^([%w_]+)=(.*)$")
        if not k then usage("bad parameter '%s' (NAME=VALUE expected)", rest[j]) end
        o.arguments[#o.arguments + 1] = rest[j]
        if v == "true" then v = true elseif v == "false" then v = false end
        o.params[k] = v
      end
    elseif cmd == "classes" then
      if #rest > 2 then usage("'classes' takes at most one SUPERCLASS") end
      o.super = rest[2]
    else
      if #rest < 2 then usage("'watch' needs an event query") end
      o.wql = table.concat(rest, " ", 2)
    end
  else
    o.command = "query"
    o.wql = table.concat(rest, " ")
    local word = o.wql:match("^%s*(%a+)")
    word = word and word:lower()
    if word ~= "select" and word ~= "associators" and word ~= "references" then
      usage("unknown command '%s' (a WQL query, get, call, classes or watch expected)", cmd)
    end
  end
  if o["what-if"] and o.command ~= "call" then usage("option '--what-if' applies to call only") end
  return o
end

-- The names of a WQL query's select list ("SELECT a, b FROM ..."), nil for "*".
local function projection(wql)
  local list = wql:match("^%s*[Ss][Ee][Ll][Ee][Cc][Tt]%s+(.-)%s+[Ff][Rr][Oo][Mm]%s")
  if not list or list:find("*", 1, true) then return nil end
  local names = {}
  for name in list:gmatch("[^,%s]+") do names[#names + 1] = name end
  return names
end

-- A projected property that the class lacks: main reports it as a failed query.
local Missing = {}
Missing.__index = Missing
function Missing:new(class, name)
  local name_, text = wmi.hresult(0x80041017)
  return setmetatable({ message = ("%s (0x80041017): %s (%s has no property '%s')"):format(name_, text, class, name) },
    self)
end

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

-- --rfc3339: a datetime VALUE (or array of them) of CIMTYPE as RFC 3339 text;
-- an interval or a wildcard stays WMI's text. Set by main.
local as_rfc3339 = false
local function rfc3339(value, cimtype)
  if not as_rfc3339 or not (cimtype or ""):find("^datetime") then return value end
  if type(value) == "table" then
    for i = 1, #value do value[i] = rfc3339(value[i], cimtype) end
    return value
  end
  return type(value) == "string" and wmi.datetime.to_rfc3339(value) or value
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
cli.visible = visible

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

function formats.table(out, nl, width, _, streaming)
  if streaming then return streaming_table(out, nl, width) end
  local rows, names, seen = {}, {}, {}
  return {
    row = function(row)
      rows[#rows + 1] = row
      for _, name in ipairs(row.names) do
        if not seen[name] then seen[name] = true; names[#names + 1] = name end
      end
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
      rows[#rows + 1] = row
      for _, name in ipairs(row.names) do
        if not seen[name] then seen[name] = true; names[#names + 1] = name end
      end
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
-- Running the command
---------------------------------------------------------------------------------

-- The connection's options; the password leaves O (the Lua string itself stays
-- until collected: Lua strings cannot be wiped).
local function connect_opts(o)
  local opts = { namespace = o.namespace, user = o.user, password = o.password, locator = o.locator }
  o.password = nil
  return opts
end

-- The message of ERR when it is an argument or option error raised by the
-- library, without its "file:line:" prefix and traceback; else nil.
local function misuse(problem)
  if type(problem) ~= "string" then return nil end
  local line = problem:match("^[^\n]*")
  while not line:find("^bad ") do
    local rest = line:match("^.-:%d+: (.*)$")
    if not rest then return nil end
    line = rest
  end
  if line:find("^bad argument #%d+ to '[^']*' %(") or line:find("^bad option '[^']*'") then return line end
  return nil
end

-- A method call's parameters that the library refused (PROBLEM), said in wmiq's
-- words as a usage error: the class and method, and what they take; else PROBLEM.
local function parameter_mistake(svc, o, problem)
  local line = misuse(problem)
  if not line then return problem end
  local class = o.path:match("^[^.=]+")
  local unknown = line:match("%(no parameter '(.-)'%)$")
  if unknown then
    local ok, cls = pcall(svc.get, svc, class)
    local inparams = ok and cls and cls:inparams(o.method)
    local takes = inparams and table.concat(inparams:properties(), ", ") or "none"
    return setmetatable({ message = ("%s.%s has no parameter '%s' (it takes %s)")
      :format(class, o.method, unknown, takes) }, Usage)
  end
  local name, cimtype = line:match("%(bad parameter '(.-)' %((%a+%d*) expected, got string%)%)$")
  if name and cimtype:find("int") then
    return setmetatable({ message = ("'%s' is not an integer (%s.%s's %s is a %s)")
      :format(o.params[name], class, o.method, name, cimtype) }, Usage)
  end
  return problem
end

-- This machine, no --timeout: synchronous connection, the query as a stream.
-- Returns true, or nil, message.
local function run_single(o, emit)
  local svc, msg = wmi.connect(connect_opts(o))
  if not svc then return nil, msg end
  local ok, err = pcall(function()
    if o.command == "query" then
      for obj in svc:stream(o.wql) do emit(obj) end
      return true
    elseif o.command == "watch" then
      -- The handler's second argument is the call, not a host.
      local call <close>, message = svc:subscribe(o.wql, function(obj) emit(obj) end)
      if not call then error({ message = message }) end
      -- In slices: Ctrl+C interrupts Lua code only, between waits.
      while not call:wait(200) do end
      local done, failure = call:result()
      if not done then error({ message = failure }) end
      return true
    end
    local result, message
    if o.command == "get" then
      result, message = svc:get(o.path)
      if result then emit(result) end
    elseif o.command == "call" then
      local ok, r, m = pcall(svc.exec, svc, o.path, o.method, next(o.params) and o.params or nil)
      if not ok then error(parameter_mistake(svc, o, r), 0) end
      result, message = r, m
      if result then emit(result) end
    else
      result, message = svc:classes(o.super)
      for _, class in ipairs(result or {}) do emit(class) end
    end
    if not result then error({ message = message }) end
    return true
  end)
  svc:close()
  if ok then return true end
  if type(err) == "table" and err.message and getmetatable(err) ~= Usage then return nil, err.message end
  error(err, 0)
end

-- Hosts (-H), or this machine with --timeout: wmi.fanout (throttle, a timeout per
-- host, connection included). Rows carry their host when there are several.
-- FAIL(host, message) hears of each failure (host nil for this machine).
local TIMED_OUT = 0x80041069
local REQUESTS = {
  query = function(o, svc, h) return svc:query_async(o.wql, h) end,
  get = function(o, svc, h) return svc:get_async(o.path, h) end,
  call = function(o, svc, h)
    local ok, call, msg, code = pcall(svc.exec_async, svc, o.path, o.method, next(o.params) and o.params or nil, h)
    if not ok then error(parameter_mistake(svc, o, call), 0) end
    return call, msg, code
  end,
  classes = function(o, svc, h) return svc:classes_async(o.super, h) end,
  watch = function(o, svc, h) return svc:subscribe(o.wql, h) end,
}
local function run_hosts(o, emit, fail)
  local hosts = o.hosts or { "." }
  local several = #hosts > 1
  -- Hosts whose request started; quiet: the hosts' ends are no news (Ctrl+C, or
  -- a request that raised, which main reports once as a usage error).
  local started, quiet = {}, false
  local function request(svc, h, host)
    local ok, call, msg, code = pcall(REQUESTS[o.command], o, svc, h)
    if not ok then
      quiet = true
      error(call, 0)
    end
    started[host] = call ~= nil
    return call, msg, code
  end
  local opts = connect_opts(o)
  opts.throttle, opts.timeout = o.throttle, o.timeout
  -- A watch ends with its --timeout (a normal end, once it started), or with Ctrl+C.
  if o.command == "watch" then opts.timeout = o.timeout or (1 << 31) - 1 end
  opts.indicate = function(obj, host) emit(obj, several and host or nil) end
  opts.done = function(host, ok, message, code)
    if ok or quiet or (o.command == "watch" and code == TIMED_OUT and started[host]) then return end
    fail(o.hosts and host, message)
  end
  local run = wmi.fanout(hosts, request, opts)
  -- In slices: Ctrl+C interrupts Lua code only. Whatever ends the wait early (Ctrl+C,
  -- an error in the output) cancels every host still running.
  local ok, err = pcall(function() while not run:wait(200) do end end)
  if not ok then
    quiet = true
    run:cancel()
    error(err, 0)
  end
end


-- Reads a password without echo from the console; else, for "-p -" (PIPE), a
-- line of standard input; else nil (nothing asked).
local function read_password(err, pipe)
  if not pipe and not console.interactive() then return nil end
  err:write("Password: ")
  if err.flush then err:flush() end
  local secret = console.read_secret()
  err:write("\n")
  if secret or not pipe then return secret end
  return io.stdin:read("l") or ""
end

local NO_PASSWORD = "option '--user' needs a password, and there is no console to ask for it:"
  .. " use --password-env VAR, --credential NAME or -p - (a line of standard input)"

-- O's password from where the options say (never from the command line but with
-- -p PASSWORD, which warns). Raises a usage error when there is none.
local function find_password(o, err, env)
  local read = env.read_password or read_password
  if o.credential then
    local user, secret, message = console.credential(o.credential)
    if not user then usage("cannot read the credential of option '--credential': %s", message) end
    if user == "" then usage("the credential of option '--credential' has no user name") end
    o.user, o.password = user, secret
  elseif o["password-env"] then
    o.password = os.getenv(o["password-env"])
    if not o.password then usage("the environment variable of option '--password-env' is not set") end
  elseif o.password == "-" then
    o.password = read(err, true)
  elseif o.password then
    err:write("wmiq: warning: a password on the command line is visible to other users (the process"
      .. " list, shell history, audit logs); use -p -, --password-env or --credential\n")
  elseif o.user then
    o.password = read(err, false)
    if not o.password then usage(NO_PASSWORD) end
  end
end

-- Call on more than one host changes many machines: --what-if shows what would be
-- done; else it is confirmed at a terminal, or by --yes. Returns an exit status
-- when nothing is to be called, else nil.
local function confirm(o, out, err, nl, env)
  if o.command ~= "call" or not (o["what-if"] or (o.hosts and #o.hosts > 1)) then return nil end
  local what = visible(("%s %s(%s)"):format(o.path, o.method, table.concat(o.arguments, ", ")))
  local hosts = o.hosts or { "." }
  if o["what-if"] then
    for _, host in ipairs(hosts) do out:write("What if: call ", what, " on ", visible(host), nl) end
    return 0
  end
  if o.yes then return nil end
  local ask = env.read_line or (console.interactive() and console.read_line)
  if not ask then usage("call on %d hosts needs --yes (or --what-if) without a console to confirm at", #hosts) end
  err:write(("wmiq: call %s on %d hosts: %s\nProceed? [y/N] "):format(what, #hosts, visible(table.concat(hosts, ", "))))
  if err.flush then err:flush() end
  local answer = ask() or ""
  if not answer:lower():find("^%s*y") then
    err:write("wmiq: not confirmed: nothing was called\n")
    return 1
  end
  return nil
end

-- cli.main(args, out, err) --> exit status. ARGS: a sequence of strings (arg).
-- ENV (optional): { width = columns (false: none), newline = "\r\n",
-- read_password = function(err, pipe) --> secret | nil, read_line = function() --> line | nil }.
function cli.main(args, out, err, env)
  env = env or {}
  local nl = env.newline or "\n"
  local o, early
  local parsed, wrong = pcall(function()
    o = cli.parse(args)
    if o.help then return end
    early = confirm(o, out, err, nl, env)
    if not early then find_password(o, err, env) end
  end)
  if not parsed then
    if getmetatable(wrong) == Usage then
      err:write("wmiq: ", visible(wrong.message), "\nTry 'wmiq --help'.\n")
      return 2
    end
    error(wrong, 0)
  end
  if o.help then
    out:write((cli.usage:gsub("\n", nl)))
    return 0
  end
  if early then return early end

  local width = env.width
  if width == nil then width = tonumber(os.getenv("COLUMNS")) or console.width() end
  as_rfc3339 = o.rfc3339 or false
  local fmt = formats[o.format](out, nl, width or nil, o["csv-raw"], o.command == "watch")
  local mof, class_only = o.format == "mof", o.command == "classes"
  local status = 0
  local function fail(host, msg)
    status = 1
    err:write("wmiq: ", visible(host and (host .. ": ") or ""), visible(msg), "\n")
  end

  -- Each row is written (and flushed) as it comes; a table waits for all its rows,
  -- but a watch's. A projected property the class lacks is an invalid query, as
  -- Windows says at once (Wine returns objects without it): checked on the
  -- first object of each class.
  local rows, projected, checked = 0, o.wql and projection(o.wql), {}
  local function emit(obj, host)
    local class = projected and obj:class()
    if class and not checked[class] then
      checked[class] = true
      for _, name in ipairs(projected) do
        if not obj:cimtype(name) then error(Missing:new(class, name), 0) end
      end
    end
    rows = rows + 1
    fmt.row(row_of(obj, host, mof, class_only))
    if out.flush then out:flush() end
  end
  local ran, problem = pcall(function()
    if o.hosts or o.timeout then
      run_hosts(o, emit, fail)
    else
      local done, msg = run_single(o, emit)
      if not done then fail(nil, msg) end
    end
  end)
  if not ran and getmetatable(problem) == Missing then
    ran = true
    fail(nil, problem.message)
  end
  -- As WMIC said "No Instance(s) Available.": an empty table or list is no silence.
  if ran and rows == 0 and status == 0 and o.command ~= "watch" and (o.format == "table" or o.format == "list") then
    err:write("No instances.\n")
  end
  -- The library's argument errors are the user's mistakes (get "", --locator xyz,
  -- call ... Bogus=1): usage errors, said without a source position.
  local mistake = not ran and (getmetatable(problem) == Usage and problem.message or misuse(problem))
  -- Whatever ended the run (Ctrl+C too: "interrupted!"), what arrived is printed.
  if rows > 0 or not mistake then fmt.finish() end
  if mistake then
    err:write("wmiq: ", visible(mistake), "\nTry 'wmiq --help'.\n")
    return 2
  end
  if not ran then error(problem, 0) end
  return status
end

return cli
