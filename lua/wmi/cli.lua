-- wmiq: a command line for WMI (a replacement for the WMIC tool). bin/wmiq runs
-- cli.main(arg, io.stdout, io.stderr); specs can call it in-process with their
-- own output objects (anything with :write).
local wmi = require "wmi"
local core = require "wmi.core"
local console, ticks = core.console, core.ticks
local format = require "wmi.format"
local wmic = require "wmi.wmic"
local visible, row_of, formats = format.visible, format.row_of, format.formats

local cli = { visible = visible }

cli.usage = [[
Usage: wmiq [options] "SELECT ..."            a WQL query
       wmiq [options] get PATH                one object ("Win32_Service.Name='Spooler'")
       wmiq [options] call PATH METHOD [NAME=VALUE ...]
                                              runs a method, prints its out-parameters
       wmiq [options] classes [SUPERCLASS]    class names (all, or below SUPERCLASS)
       wmiq [options] watch "SELECT ..."      events, as they arrive, until Ctrl+C or --timeout
       wmiq [options] describe CLASS          a class's properties (CIM type, key, access,
                                              description) and methods with their parameters
       wmiq [options] ALIAS [where "COND"] [get P1,P2,... | list brief|full
                        | call METHOD [NAME=VALUE ...] | set NAME=VALUE ... | create NAME=VALUE ...
                        | delete]             WMIC's grammar: wmiq --help aliases

Options:
  -n, --namespace NS   namespace (default root\cimv2; \\root\cimv2 as WMIC writes it too)
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
  -f, --format FMT     table (default), list, csv, json, jsonl or mof (any case)
      --rfc3339        datetimes as RFC 3339 text (2024-02-29T23:59:59.000001-02:30)
                       rather than WMI's; intervals stay WMI's text (not in mof)
      --every N        runs the command again every N seconds (WMIC's /every:N),
                       until Ctrl+C
      --repeat N       with --every: N runs in all (WMIC's /repeat:N)
      --shard I/N      only the hosts of -H in shard I of N (0 <= I < N): those whose
                       lower-cased name's FNV-1a hash (32 bits) modulo N is I. N
                       collectors given I = 0..N-1 (a scheduler's array index) share
                       a fleet with no coordinator; their jsonl concatenates
      --version        the version of luawmi
      --throttle N     hosts in flight at once (default 32)
      --timeout MS     milliseconds per host, connection included, for every
                       command (default 30000 with -H, none without); a host that
                       takes longer fails with WBEM_E_TIMED_OUT; watch: how long
                       to watch (default: until Ctrl+C)
      --locator CLSID  another IWbemLocator to connect with ({...}; default WMI's)
  -h, --help           this help; --help aliases: WMIC's aliases and verbs

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

  delete asks first at a terminal, showing the instances; without a terminal it
  needs --yes.

Exit status: 0 when every host and call succeeded, 1 when one failed (each error
on stderr with its WBEM name and HRESULT), 2 for a usage error, 130 after Ctrl+C
(what arrived until then is printed), 3 when a method returned a ReturnValue
other than 0 (on stderr with its meaning where the class gives one:
"StopService returned 6 = The service has not been started").
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
  every = true, ["repeat"] = true, version = false, shard = true,
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
  local o, rest, i = {}, {}, 1
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
  if o.help then
    o.topic = rest[1]
    return o
  end
  if o.version then return o end
  local format_given = o.format ~= nil
  o.format = (o.format or "table"):lower()
  if not FORMATS[o.format] then
    usage("unknown format in option '--format' (table, list, csv, json, jsonl or mof)")
  end
  if o.throttle then o.throttle = positive("throttle", o.throttle) end
  if o.timeout then o.timeout = positive("timeout", o.timeout) end
  if o.every then o.every = positive("every", o.every) end
  if o["repeat"] then o["repeat"] = positive("repeat", o["repeat"]) end
  if o["repeat"] and not o.every then usage("option '--repeat' needs '--every'") end
  -- WMIC writes /namespace:\\root\cimv2.
  if o.namespace then o.namespace = o.namespace:gsub("^\\\\", "") end
  if o.shard then
    local index, n = o.shard:match("^(%d+)/(%d+)$")
    index, n = math.tointeger(tonumber(index)), math.tointeger(tonumber(n))
    if not index or n < 1 or index >= n then usage("option '--shard' needs I/N with 0 <= I < N (such as 0/4)") end
    if not o.host then usage("option '--shard' needs '--host'") end
    o.shard = { index, n }
  end
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
  elseif cmd == "describe" then
    if #rest ~= 2 then usage("'describe' needs one CLASS, got %d arguments", #rest - 1) end
    o.command, o.class = "describe", rest[2]
  elseif wmic.applies(rest) then
    wmic.parse(o, rest, usage)
    -- WMIC's "list full" is list format unless -f says otherwise.
    if o.list_format and not format_given then o.format = "list" end
  else
    o.command = "query"
    o.wql = table.concat(rest, " ")
    local word = o.wql:match("^%s*(%a+)")
    word = word and word:lower()
    if word ~= "select" and word ~= "associators" and word ~= "references" then
      usage("unknown command '%s' (a WQL query, get, call, classes or watch expected)", cmd)
    end
  end
  local ALONE = { describe = true, ["wmic-call"] = true, set = true, create = true, delete = true }
  if ALONE[o.command] and (o.hosts or o.timeout) then
    usage("'%s' runs on this machine for now: no '--host' or '--timeout'", (o.command:gsub("^wmic%-", "")))
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

---------------------------------------------------------------------------------
-- WMIC's verbs and describe
---------------------------------------------------------------------------------

-- A result or a raised { message = } (main reports it as a failure).
local function checked(value, message)
  if value == nil then error({ message = message }, 0) end
  return value
end

-- Description and Values (the meanings of a ReturnValue) are amended qualifiers:
-- WMI sends them only when asked.
local AMENDED = { amended = true }

local function find_method(schema, name)
  for _, m in ipairs(schema.methods) do
    if m.name:lower() == name:lower() then return m end
  end
  return nil
end

-- `wmiq describe CLASS`, as Get-CimClass shows a class: its properties as a table
-- (type, key, access, description), then its methods' signatures.
local function describe(svc, o, out, nl, width)
  local schema = checked(checked(svc:get(o.class, AMENDED)):schema())
  local q = schema.qualifiers or {}
  out:write("class ", visible(schema.class), schema.superclass and " : " .. visible(schema.superclass) or "", nl)
  if q.Description then out:write(visible(tostring(q.Description)), nl) end
  out:write(nl)
  local table_ = formats.table(out, nl, width)
  for _, p in ipairs(schema.properties) do
    local access = (p.read and "read" or "") .. (p.read and p.write and "/" or "") .. (p.write and "write" or "")
    table_.row({ names = { "Property", "Type", "Key", "Access", "Description" }, values = {
      Property = p.name, Type = p.type .. (p.array and "[]" or ""), Key = p.key and "key" or "",
      Access = access, Description = p.qualifiers and p.qualifiers.Description } })
  end
  table_.finish()
  out:write(nl, "Methods:", nl)
  local function params(list, dir)
    local parts = {}
    for _, p in ipairs(list or {}) do
      parts[#parts + 1] = ("%s %s%s %s"):format(dir, p.type, p.array and "[]" or "", p.name)
    end
    return parts
  end
  for _, m in ipairs(schema.methods) do
    local parts = params(m.inparams, "in")
    table.move(params(m.outparams, "out"), 1, #(m.outparams or {}), #parts + 1, parts)
    out:write("  ", m.static and "static " or "", m.return_type and m.return_type .. " " or "",
      visible(("%s(%s)"):format(m.name, table.concat(parts, ", "))), nl)
    local d = m.qualifiers and m.qualifiers.Description
    if d then out:write("      ", visible(tostring(d)), nl) end
  end
  if #schema.methods == 0 then out:write("  (none)", nl) end
end

-- A NAME=VALUE word's VALUE for OBJ's property NAME, by its CIM type.
local function property_value(obj, name, value)
  local t = obj:cimtype(name)
  if not t then usage("%s has no property '%s'", obj:class(), name) end
  if type(value) ~= "string" then return value end
  if t:find("int") then
    local n = math.tointeger(tonumber(value))
    if not n then usage("'%s' is not an integer (%s's %s is a %s)", value, obj:class(), name, t) end
    return n
  elseif t:find("^real") then
    return tonumber(value) or usage("'%s' is not a number (%s's %s is a %s)", value, obj:class(), name, t)
  end
  return value
end

-- The description of the method O calls (o.class's, or its PATH's class), with
-- what the class does not say unknown: { qualifiers = {} }. A class without
-- qualifiers (Wine's) does not say whether a method is static: static is nil.
local function method_of(svc, o)
  local class = o.class or o.path:match("([^:]*)$"):match("^[^.=]+")
  local ok, schema = pcall(function() return checked(checked(svc:get(class, AMENDED)):schema()) end)
  local method = ok and find_method(schema, o.method)
  if not method then return { qualifiers = {} } end
  if next(schema.qualifiers) == nil then method.static = nil end
  return method
end

-- call PATH METHOD, and WMIC's verbs: call/set/delete on every instance O's query
-- selects (call with a static method: once on the class), create. CTX: { emit =
-- function(obj), note = function(text) (a line of news), returned =
-- function(path, method, value, meaning) (a ReturnValue other than 0), ask =
-- function(question) --> confirmed }.
local function run_verb(svc, o, ctx)
  if o.command == "create" then
    local inst = checked(checked(svc:get(o.class)):spawn())
    for _, name in ipairs(o.names) do inst[name] = property_value(inst, name, o.params[name]) end
    ctx.note("Created " .. checked(svc:put(inst)))
    return
  end
  local method = o.method and method_of(svc, o)
  -- As the class spells it: Wine's provider finds methods case-sensitively.
  if method and method.name then o.method = method.name end
  local targets = {}
  if o.command == "call" then
    targets[1] = o.path
  elseif method and (method.static or (method.static == nil and not o.where)) then
    targets[1] = o.class
  else
    for _, obj in ipairs(checked(svc:query(o.wql))) do targets[#targets + 1] = obj end
  end
  if o.command == "delete" and #targets > 0 and not o.yes then
    local paths = {}
    for i, obj in ipairs(targets) do paths[i] = obj:path() end
    local n = #paths
    if not ctx.ask(("delete %d instance%s: %s"):format(n, n == 1 and "" or "s", table.concat(paths, ", "))) then
      return
    end
  end
  for _, target in ipairs(targets) do
    local path = type(target) == "string" and target or target:path()
    if method then
      o.path = path
      local ok, result, message = pcall(svc.exec, svc, path, o.method, next(o.params) and o.params or nil)
      if not ok then error(parameter_mistake(svc, o, result), 0) end
      result = checked(result, message)
      if result ~= true then
        ctx.emit(result)
        local got, value = pcall(result.get, result, "ReturnValue")
        if got and value ~= nil and value ~= 0 then ctx.returned(path, o.method, value, wmic.meaning(method, value)) end
      end
    elseif o.command == "set" then
      for _, name in ipairs(o.names) do target[name] = property_value(target, name, o.params[name]) end
      ctx.note("Updated " .. checked(svc:put(target)))
    else
      checked(svc:delete(path))
      ctx.note("Deleted " .. path)
    end
  end
end

-- ROW with only the COLUMNS it has (any case), in COLUMNS' order, its Host first.
local function only(row, columns)
  if not columns then return row end
  local have = {}
  for _, name in ipairs(row.names) do have[name:lower()] = name end
  local names = { row.names[1] == "Host" and row.values.Host ~= nil and "Host" or nil }
  for _, name in ipairs(columns) do names[#names + 1] = have[name:lower()] end
  row.names = names
  return row
end

local VERBS = { call = true, ["wmic-call"] = true, set = true, create = true, delete = true }

-- This machine, no --timeout: synchronous connection, the query as a stream.
-- Returns true, or nil, message.
local function run_single(o, emit, ctx)
  local svc, msg = wmi.connect(connect_opts(o))
  if not svc then return nil, msg end
  local ok, err = pcall(function()
    if o.command == "describe" then
      describe(svc, o, ctx.out, ctx.nl, ctx.width)
      return true
    elseif VERBS[o.command] then
      run_verb(svc, o, ctx)
      return true
    elseif o.command == "query" then
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
  local several = #hosts > 1 or o.shard ~= nil
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
  local ask = env.read_line or (console.interactive() and console.read_line)
  local parsed, wrong = pcall(function()
    o = cli.parse(args)
    if o.help or o.version then return end
    if o.topic and o.topic ~= "aliases" then usage("no help on '%s' (wmiq --help aliases)", o.topic) end
    if o.command == "delete" and not o.yes and not ask then
      usage("delete needs --yes without a console to confirm at")
    end
    if o.shard then o.hosts = wmic.shard(o.hosts, o.shard[1], o.shard[2]) end
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
    out:write(((o.topic and wmic.help() or cli.usage):gsub("\n", nl)))
    return 0
  end
  if o.version then
    out:write(wmi._VERSION, nl)
    return 0
  end
  if early then return early end
  -- A shard without hosts has nothing to do.
  if o.hosts and #o.hosts == 0 then return 0 end

  local width = env.width
  if width == nil then width = tonumber(os.getenv("COLUMNS")) or console.width() end
  format.rfc3339 = o.rfc3339 or false
  local mof, class_only = o.format == "mof", o.command == "classes"
  local status, returned = 0, false
  local function fail(host, msg)
    status = 1
    err:write("wmiq: ", visible(host and (host .. ": ") or ""), visible(msg), "\n")
  end
  local ctx = { out = out, nl = nl, width = width or nil }
  function ctx.note(line) out:write(visible(line), nl) end
  function ctx.returned(path, method, value, meaning)
    returned = true
    local said = ("%s: %s returned %s%s"):format(path, method, value, meaning and " = " .. meaning or "")
    err:write("wmiq: ", visible(said), "\n")
  end
  function ctx.ask(question)
    err:write("wmiq: ", visible(question), "\nProceed? [y/N] ")
    if err.flush then err:flush() end
    if (ask() or ""):lower():find("^%s*y") then return true end
    err:write("wmiq: not confirmed: nothing was deleted\n")
    status = 1
    return false
  end

  -- One run of the command (--every: one every N seconds). Returns an exit
  -- status to end with (a usage error), else nil.
  local function run_once()
    local fmt = formats[o.format](out, nl, width or nil, o["csv-raw"], o.command == "watch")
    -- Each row is written (and flushed) as it comes; a table waits for all its rows,
    -- but a watch's. A projected property the class lacks is an invalid query, as
    -- Windows says at once (Wine returns objects without it): checked on the
    -- first object of each class.
    local rows, projected, checked_class = 0, o.wql and projection(o.wql), {}
    local function emit(obj, host)
      local class = projected and obj:class()
      if class and not checked_class[class] then
        checked_class[class] = true
        for _, name in ipairs(projected) do
          if not obj:cimtype(name) then error(Missing:new(class, name), 0) end
        end
      end
      rows = rows + 1
      fmt.row(only(row_of(obj, host, mof, class_only), o.columns))
      if out.flush then out:flush() end
    end
    ctx.emit = emit
    local note = ctx.note
    function ctx.note(line)
      rows = rows + 1
      note(line)
    end
    local ran, problem = pcall(function()
      if o.hosts or o.timeout then
        run_hosts(o, emit, fail)
      else
        local done, msg = run_single(o, emit, ctx)
        if not done then fail(nil, msg) end
      end
    end)
    ctx.note = note
    if not ran and getmetatable(problem) == Missing then
      ran = true
      fail(nil, problem.message)
    end
    -- As WMIC said "No Instance(s) Available.": an empty table or list is no silence.
    if ran and rows == 0 and status == 0 and o.command ~= "watch" and o.command ~= "describe"
       and (o.format == "table" or o.format == "list") then
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
    return nil
  end

  local runs = 0
  repeat
    local ended = run_once()
    if ended then return ended end
    runs = runs + 1
    if o.every and runs ~= o["repeat"] then
      -- In slices: Ctrl+C interrupts Lua code only, between waits.
      local deadline = ticks() + o.every * 1000
      while ticks() < deadline do wmi.dispatch(math.min(200, deadline - ticks())) end
    end
  until not o.every or runs == o["repeat"]
  if status == 0 and returned then return 3 end
  return status
end

return cli
