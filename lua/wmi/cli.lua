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
                       every row then starts with its Host
  -u, --user USER      user name (DOMAIN\user) for remote hosts
  -p, --password PW    password; - reads it from the console without echo (or a
                       line of standard input when that is not a console)
  -f, --format FMT     table (default), list, csv, json, jsonl or mof
      --throttle N     hosts in flight at once (default 32)
      --timeout MS     milliseconds per host, connection included, for every
                       command (default 30000 with -H, none without); a host that
                       takes longer fails with WBEM_E_TIMED_OUT; watch: how long
                       to watch (default: until Ctrl+C)
      --locator CLSID  another IWbemLocator to connect with ({...}; default WMI's)
  -h, --help           this help

Formats:
  table   aligned columns under a header, as wide as the console or COLUMNS
          (values cut with ~; no limit into a pipe or file)
  list    NAME=VALUE lines, a blank line after each object
  csv     RFC 4180: a header line, CRLF line ends, values with quotes, commas or
          line breaks in double quotes
  json    one JSON document: an array of objects
  jsonl   one JSON object a line, written as each arrives (for watch and many hosts)
  mof     each object's MOF text
  Arrays print as {a,b} in table, list and csv; json keeps arrays and numbers.
  Method parameters: VALUE is text, converted to the parameter's type (numbers
  such as 2147483649 or 0x80000001 for integers); true and false are booleans.

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
}
local SHORT = { n = "namespace", H = "host", u = "user", p = "password", f = "format", h = "help" }

local function positive(name, s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 then usage("option '--%s' needs a positive integer, got '%s'", name, s) end
  return n
end

-- Host names of -H: "a,b,c" or "@file"; duplicates are one host.
local function read_hosts(spec)
  local text = spec
  if spec:sub(1, 1) == "@" then
    local f, err = io.open(spec:sub(2), "r")
    if not f then usage("cannot read the host list %s", err) end
    text = f:read("a"):gsub("#[^\n]*", "")
    f:close()
  end
  local hosts, seen = {}, {}
  for h in text:gmatch("[^,%s]+") do
    if not seen[h:lower()] then
      seen[h:lower()] = true
      hosts[#hosts + 1] = h
    end
  end
  if #hosts == 0 then usage("no host in '%s'", spec) end
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
      if OPTIONS[name] == nil then usage("unknown option '%s'", a) end
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
    usage("unknown format '%s' (table, list, csv, json, jsonl or mof)", o.format)
  end
  if o.throttle then o.throttle = positive("throttle", o.throttle) end
  if o.timeout then o.timeout = positive("timeout", o.timeout) end
  if o.host then o.hosts = read_hosts(o.host) end
  if o.password and not o.user then usage("option '--password' needs '--user'") end

  local cmd = rest[1]
  if not cmd then usage("missing the query or command") end
  if COMMANDS[cmd] then
    o.command = cmd
    if cmd == "get" then
      if #rest ~= 2 then usage("'get' needs one PATH, got %d arguments", #rest - 1) end
      o.path = rest[2]
    elseif cmd == "call" then
      if #rest < 3 then usage("'call' needs PATH and METHOD") end
      o.path, o.method, o.params = rest[2], rest[3], {}
      for j = 4, #rest do
        local k, v = rest[j]:match("^([%w_]+)=(.*)$")
        if not k then usage("bad parameter '%s' (NAME=VALUE expected)", rest[j]) end
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
  return o
end

---------------------------------------------------------------------------------
-- Rows: an object's properties as plain values, read at once (under Wine the next
-- query of the same class refills an instance's values)
---------------------------------------------------------------------------------

local function is_object(v)
  local mt = type(v) == "userdata" and getmetatable(v)
  return mt and mt.__name == "wmi.Object" or false
end

local function plain(v)
  if is_object(v) then
    local row = { names = {}, values = {} }
    for name, value in pairs(v) do
      row.names[#row.names + 1] = name
      row.values[name] = plain(value)
    end
    row.class = v:class()
    return row
  elseif type(v) == "table" then
    local t = {}
    for i = 1, #v do t[i] = plain(v[i]) end
    t.array = true
    return t
  end
  return v
end

-- A row of OBJ; HOST when rows carry their host. `classes` prints class names.
local function row_of(obj, host, want_mof, class_only)
  local row = class_only and { names = { "Class" }, values = { Class = obj:class() } } or plain(obj)
  if want_mof then row.mof = obj:text() end
  if host then
    table.insert(row.names, 1, "Host")
    row.values.Host = host
  end
  return row
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
    return "instance of " .. tostring(v.class)
  end
  return tostring(v)
end

---------------------------------------------------------------------------------
-- JSON
---------------------------------------------------------------------------------

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or ("\\u%04x"):format(c:byte())
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

local function csv_field(s)
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

-- A value as a table cell: one line.
local function cell(v)
  return (text(v):gsub("\r?\n", "\\n"):gsub("%c", " "))
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
        for i, name in ipairs(names) do widths[i] = math.max(width_of(name), width_of(cells[i])) end
        fit(widths, width)
        table_line(out, nl, widths, names)
      end
      table_line(out, nl, widths, cells)
    end,
    finish = function() end,
  }
end

function formats.table(out, nl, width, streaming)
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
      for i, name in ipairs(names) do widths[i] = width_of(name) end
      for r, row in ipairs(rows) do
        cells[r] = {}
        for i, name in ipairs(names) do
          local s = cell(row.values[name])
          cells[r][i] = s
          widths[i] = math.max(widths[i], width_of(s))
        end
      end
      fit(widths, width)
      table_line(out, nl, widths, names)
      for _, c in ipairs(cells) do table_line(out, nl, widths, c) end
    end,
  }
end

function formats.list(out, nl)
  return {
    row = function(row)
      for _, name in ipairs(row.names) do
        out:write(name, "=", (text(row.values[name]):gsub("\r?\n", nl)), nl)
      end
      out:write(nl)
    end,
    finish = function() end,
  }
end

function formats.csv(out)
  local names
  local function line(fields)
    for i, f in ipairs(fields) do fields[i] = csv_field(f) end
    out:write(table.concat(fields, ","), "\r\n")
  end
  return {
    row = function(row)
      if not names then
        names = row.names
        line(table.move(names, 1, #names, 1, {}))
      end
      local fields = {}
      for i, name in ipairs(names) do fields[i] = text(row.values[name]) end
      line(fields)
    end,
    finish = function() end,
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
      if row.values.Host ~= nil and row.names[1] == "Host" then out:write("// Host: ", row.values.Host, nl) end
      out:write((row.mof:gsub("\r?\n", nl)), nl)
    end,
    finish = function() end,
  }
end

---------------------------------------------------------------------------------
-- Running the command
---------------------------------------------------------------------------------

local function connect_opts(o)
  return { namespace = o.namespace, user = o.user, password = o.password, locator = o.locator }
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
      result, message = svc:exec(o.path, o.method, next(o.params) and o.params or nil)
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
  if type(err) == "table" and err.message then return nil, err.message end
  error(err, 0)
end

-- Hosts (-H), or this machine with --timeout: wmi.fanout (throttle, a timeout per
-- host, connection included). Rows carry their host when there are several.
-- FAIL(host, message) hears of each failure (host nil for this machine).
local TIMED_OUT = 0x80041069
local REQUESTS = {
  query = function(o, svc, h) return svc:query_async(o.wql, h) end,
  get = function(o, svc, h) return svc:get_async(o.path, h) end,
  call = function(o, svc, h) return svc:exec_async(o.path, o.method, next(o.params) and o.params or nil, h) end,
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

-- Reads the password given as "-": without echo from a console, else a line of stdin.
local function read_password(err)
  err:write("Password: ")
  if err.flush then err:flush() end
  local secret = console.read_secret()
  err:write("\n")
  if secret then return secret end
  return io.stdin:read("l") or ""
end

-- cli.main(args, out, err) --> exit status. ARGS: a sequence of strings (arg).
-- ENV (optional): { width = columns (false: none), stdin_password = function }.
function cli.main(args, out, err, env)
  env = env or {}
  local ok, o = pcall(cli.parse, args)
  if not ok then
    if getmetatable(o) == Usage then
      err:write("wmiq: ", o.message, "\nTry 'wmiq --help'.\n")
      return 2
    end
    error(o, 0)
  end
  local nl = env.newline or "\n"
  if o.help then
    out:write((cli.usage:gsub("\n", nl)))
    return 0
  end
  if o.password == "-" then o.password = (env.read_password or read_password)(err) end

  local width = env.width
  if width == nil then width = tonumber(os.getenv("COLUMNS")) or console.width() end
  local fmt = formats[o.format](out, nl, width or nil, o.command == "watch")
  local mof, class_only = o.format == "mof", o.command == "classes"
  local status = 0
  local function fail(host, msg)
    status = 1
    err:write("wmiq: ", host and (host .. ": ") or "", msg, "\n")
  end

  -- Each row is written (and flushed) as it comes; a table waits for all its rows,
  -- but a watch's.
  local rows = 0
  local function emit(obj, host)
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
  -- The library's argument errors are the user's mistakes (get "", --locator xyz,
  -- call ... Bogus=1): usage errors, said without a source position.
  local mistake = not ran and misuse(problem)
  -- Whatever ended the run (Ctrl+C too: "interrupted!"), what arrived is printed.
  if rows > 0 or not mistake then fmt.finish() end
  if mistake then
    err:write("wmiq: ", mistake, "\nTry 'wmiq --help'.\n")
    return 2
  end
  if not ran then error(problem, 0) end
  return status
end

return cli
