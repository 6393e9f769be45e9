-- The seeded fuzzer (issue 23): scripts/lua spec/fuzz/fuzz.lua SEED ITER.
-- Drives the whole API with hostile arguments, interleaved with close, cancel,
-- collectgarbage in every mode, finalizers and handlers that close, re-enter or
-- yield. The functions and methods are found at run time (the module's table and
-- the metatables of every value it hands out), so a new one is fuzzed without edits.
-- Every error must be a Lua error; the last line says how the seed ended:
--   FUZZ-OK      everything closed and every count of wmi.stats() back to zero
--   FUZZ-EXIT    the seed ended with os.exit and nothing closed (on purpose)
--   FUZZ-LEAK    a count stayed above zero (or went below)
-- A crash or a hang prints none of them: spec/fuzz/run.sh tells them apart.
-- Every connection goes through the test WMI server, which serializes its use of
-- Wine's WMI: two queries of one class never reach Wine at once (DESIGN.md).
local seed, iterations = tonumber(arg[1]), tonumber(arg[2] or 2000)
assert(seed and iterations, "usage: fuzz.lua SEED [ITER]")
math.randomseed(seed)
local random = math.random

local wmi = require "wmi"
local testwmi = require "testwmi"
testwmi.configure { event_interval = 20 }

-- FUZZ_TRACE=1: each call's name on stderr, before it runs.
local trace = os.getenv("FUZZ_TRACE") and function(...)
  io.stderr:write(table.concat({ ... }, " "), "\n")
  io.stderr:flush()
end or function() end

local function pick(list) return list[random(#list)] end
local function chance(p) return random() < p end

-- Everything handed out, to pass as arguments, call methods of, and close at the end.
local pool = {}
-- Everything ever handed out, weakly: what the pool forgot and is still alive (a
-- running call is anchored) is closed at the end.
local handed = setmetatable({}, { __mode = "k" })
local function remember(v)
  local t = type(v)
  if t == "userdata" or t == "table" then handed[v] = true end
  if (t == "userdata" or t == "table" or t == "function") and #pool < 400 then pool[#pool + 1] = v end
end

-- The methods of a value, from its metatable (a table __index, a 'methods'
-- table, or the table a function __index closes over), then its metamethods.
local function methods_of(v)
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return {} end
  local names, seen = {}, {}
  local function add(t)
    if type(t) ~= "table" then return end
    for k, f in pairs(t) do
      if type(k) == "string" and type(f) == "function" and not seen[k] then
        seen[k] = true
        names[#names + 1] = k
      end
    end
  end
  add(rawget(mt, "methods"))
  local index = rawget(mt, "__index")
  if type(index) == "table" then add(index)
  elseif type(index) == "function" then
    for i = 1, 3 do
      local name, up = debug.getupvalue(index, i)
      if not name then break end
      add(up)
    end
  end
  for _, meta in ipairs { "__close", "__gc", "__tostring", "__pairs", "__index", "__newindex", "__len" } do
    if rawget(mt, meta) and not seen[meta] then names[#names + 1] = meta end
  end
  table.sort(names)
  return names
end

local FUNCTIONS = {}
for name, f in pairs(wmi) do if type(f) == "function" then FUNCTIONS[#FUNCTIONS + 1] = name end end
table.sort(FUNCTIONS)

local HOSTS = { "lat0", "lat5", "lat20", "down", "denied", "fuzzhost", "lat3.a", "DOWN", "" }
local WQL = {
  "SELECT * FROM Win32_Process", "SELECT Name, ProcessId FROM Win32_Process", "SELECT * FROM Win32_Service",
  "SELECT * FROM Win32_OperatingSystem", "SELECT * FROM Win32_BIOS", "SELECT * FROM NoSuchClass",
  "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'",
  "SELECT", "SELECT * FROM Win32_Process WHERE ProcessId = 'x'",
}
local PATHS = {
  "Win32_OperatingSystem=@", "Win32_Process", "Win32_Process.Handle=\"0\"", "StdRegProv", "Win32_BIOS",
  "root\\cimv2:Win32_Process", ".Name=1", "root:", "", "\0Win32_Process", "Win32_Process\0x",
}
-- Not for exec: Wine's ExecMethod crashes on a class it does not have (measured
-- on Wine 8: a NULL table in get_view_table), where Windows answers WBEM_E_INVALID_CLASS.
local UNKNOWN_PATHS = { "NoSuch.Key=1", "NoSuchClass" }
local NAMES = { "Create", "GetOwner", "EnumKey", "GetStringValue", "Name", "ProcessId", "Handle", "Caption",
                "__CLASS", "__PATH", "CommandLine", "nosuch", "Create\0", "" }

local depth = 0
local action         -- forward: one random step

-- A handler or finalizer body: most do little, some close, re-enter, raise or yield.
local function hostile_body(...)
  if depth > 2 then return end
  depth = depth + 1
  local r = random(10)
  if r == 1 then error("handler error") end
  if r == 2 then coroutine.yield() end
  if r <= 5 then pcall(action) end
  if r == 6 then pcall(wmi.dispatch, 0) end
  if r == 7 then
    local v = pool[random(#pool)]
    if v then pcall(function() v:close() end) end
  end
  if r == 8 then collectgarbage(pick { "collect", "step" }) end
  depth = depth - 1
  return ...
end

local function hostile_function() return function(...) return hostile_body(...) end end

-- A garbage table whose finalizer runs a random step: it runs inside whatever
-- allocation of the module's comes next.
local function plant_finalizer()
  setmetatable({}, { __gc = function() hostile_body() end })
end

local function raising_table()
  return setmetatable({}, {
    __index = function() error("__index raises") end,
    __newindex = function() error("__newindex raises") end,
    __pairs = function() error("__pairs raises") end,
    __len = function() error("__len raises") end,
    __gc = function() hostile_body() end,
  })
end

local big
local function value()
  local r = random(28)
  if r == 1 then return nil
  elseif r == 2 then return chance(0.5)
  elseif r == 3 then return pick { 0, 1, -1, math.maxinteger, math.mininteger, 2^31, 2^32, 2^53, 4294967295 }
  elseif r == 4 then return pick { 0/0, 1/0, -1/0, 0.5, -0.0, 1e308 }
  elseif r == 5 then return pick { "", "\0", "a\0b", "\xff\xfe", "\xc3", "héllo", ("x"):rep(300) }
  elseif r == 6 then
    if chance(0.05) then big = big or ("A"):rep(1 << 20); return big end
    return pick(NAMES)
  elseif r <= 9 then return pick(WQL)
  elseif r <= 11 then return chance(0.9) and pick(PATHS) or pick(UNKNOWN_PATHS)
  elseif r == 12 then return {}
  elseif r == 13 then local t = {}; t.self = t; t[1] = t; return t
  elseif r == 14 then return raising_table()
  elseif r == 15 then return hostile_function()
  elseif r == 16 then
    return { indicate = chance(0.7) and hostile_function() or nil, status = chance(0.7) and hostile_function() or nil,
             progress = chance(0.3) and hostile_function() or nil }
  elseif r == 17 then
    return { shallow = value(), progress = chance(0.5), queue_limit = pick { 1, 2, 10, false, 0, -1, 0.5 },
             subscribe = chance(0.2), ProcessId = random(0, 5000), Name = pick(NAMES) }
  elseif r == 18 then return { CommandLine = pick { "cmd /c exit", 42, "\0" }, hDefKey = 0x80000001,
                               sSubKeyName = "Software" }
  elseif r == 19 then return coroutine.create(function() end)
  else
    local v = pool[random(math.max(#pool, 1))]
    if v ~= nil then return v end
    return pick(WQL)
  end
end

-- Connect options: always through the test server (never Wine's own locator).
local function connect_opts()
  if chance(0.1) then return pick { 42, true, raising_table() } end    -- misuse: raises
  local o = { locator = testwmi.clsid }
  if chance(0.5) then o.host = pick(HOSTS) end
  if chance(0.2) then o.namespace = pick { "root\\cimv2", "root\\default", "root\0x", "\xff", 7 } end
  if chance(0.1) then o.user, o.password = "u", "p" end
  if chance(0.1) then o.authentication = pick { "none", "privacy", "bogus", 3 } end
  if chance(0.2) then o.apartment = value() end
  if chance(0.05) then o.locator = pick { "{not a clsid}", 42, "" } end
  return o
end

-- Arguments that never wait without a limit: a wait gets milliseconds.
local WAITS = { wait = true, dispatch = true, run = true, next = true }
local function arguments(name, n)
  local args = {}
  for i = 1, n do args[i] = value() end
  if WAITS[name] then args[1] = random(-0, 30) end
  return args
end

local function call_function(name)
  trace("wmi." .. name)
  local f = wmi[name]
  local args
  if name == "connect" or name == "connect_async" then
    args = { connect_opts(), hostile_function() }
  elseif name == "fanout" then
    local hosts = {}
    for i = 1, random(0, 4) do hosts[i] = pick(HOSTS) end
    local opts = chance(0.9) and { locator = testwmi.clsid, timeout = random(50, 1000), throttle = random(1, 3),
                                   indicate = chance(0.5) and hostile_function() or nil,
                                   done = chance(0.5) and hostile_function() or nil } or pick { 42, "x" }
    local request = chance(0.6) and pick(WQL) or function(svc, handlers)
      if chance(0.5) then return svc:query_async(pick(WQL), handlers) end
      return hostile_body(value())
    end
    args = { hosts, request, opts }
  else
    args = arguments(name, random(0, 3))
    if WAITS[name] then args[1] = random(0, 30) end
  end
  return table.pack(pcall(f, table.unpack(args, 1, 3)))
end

local function call_method(v)
  local names = methods_of(v)
  if #names == 0 then return end
  local name = pick(names)
  local mt = getmetatable(v)
  local f
  if name:sub(1, 2) == "__" then f = rawget(mt, name)
  else
    local ok, m = pcall(function() return v[name] end)
    if not ok or type(m) ~= "function" then return end
    f = m
  end
  if type(f) ~= "function" then return end
  trace(name, (tostring(v):gsub("\n.*", "")))
  local args = arguments(name, random(0, 4))
  if name == "__index" then args[1] = pick(NAMES) end
  if WAITS[name] then args[1] = random(0, 30) end
  if name == "exec" or name == "exec_async" then
    -- Always parameters: Wine's methods crash on no in-parameters (measured on
    -- Wine 8: reg_enum_key, reg_get_stringvalue, process_create read a NULL object).
    args[1], args[2] = pick(PATHS), pick(NAMES)
    args[3] = pick { { hDefKey = 0x80000001, sSubKeyName = "Software" }, { CommandLine = "cmd /c exit" },
                     { sSubKeyName = "Software\0x", hDefKey = 2^40 }, { Bogus = 1 }, { [1] = 2 } }
  end
  return table.pack(pcall(f, v, table.unpack(args, 1, 4)))
end

local function keep(results)
  if not results then return end
  for i = 2, results.n do remember(results[i]) end
  -- An iterator (each, objects, stream): call it a few times.
  if type(results[2]) == "function" and chance(0.5) then
    for _ = 1, random(1, 3) do
      local ok, v = pcall(results[2], results[3], results[4])
      if not ok or v == nil then break end
      remember(v)
    end
  end
end

local function close_one()
  local v = pool[random(math.max(#pool, 1))]
  if v == nil then return end
  local how = random(4)
  if how == 1 then pcall(function() v:cancel() end)
  elseif how == 2 then
    local mt = getmetatable(v)
    local close = type(mt) == "table" and rawget(mt, "__close")
    if close then pcall(close, v) end
  else pcall(function() v:close() end) end
end

function action()
  local r = random(100)
  if r <= 25 then keep(call_function(pick(FUNCTIONS)))
  elseif r <= 70 then
    local v = pool[random(math.max(#pool, 1))]
    if v ~= nil then keep(call_method(v)) end
  elseif r <= 78 then close_one()
  elseif r <= 83 then collectgarbage(pick { "collect", "step", "incremental", "generational", "count" })
  elseif r <= 90 then plant_finalizer()
  elseif r <= 95 then pcall(wmi.dispatch, random(0, 10))
  elseif r <= 97 then
    -- Steps inside a coroutine: a handler's yield meets a C boundary there.
    local co = coroutine.create(function() action(); coroutine.yield(); action() end)
    pcall(coroutine.resume, co)
    pcall(coroutine.resume, co)
  else
    -- Forget part of the pool: only the collector will close those.
    for _ = 1, random(1, 10) do table.remove(pool, random(math.max(#pool, 1))) end
  end
end

local COUNTS = { "objects", "services", "stubs", "calls", "queued", "enumerators", "connects", "timers", "identities" }

-- The first count below zero (or, FINAL, above it), or nil.
local function bad_count(final)
  local s = wmi.stats()
  for _, what in ipairs(COUNTS) do
    if s[what] < 0 or (final and s[what] ~= 0) then return what, s[what] end
  end
end

local function check_counts(final)
  local what, n = bad_count(final)
  -- A pool thread lets go of a closed connect a little after it returns: wait for it.
  for _ = 1, final and 500 or 0 do
    if not what then break end
    pcall(wmi.dispatch, 10)
    collectgarbage()
    what, n = bad_count(final)
  end
  if what then
    io.write(("FUZZ-LEAK seed %d: wmi.stats().%s is %d\n"):format(seed, what, n))
    io.stdout:flush()
    os.exit(3, false)
  end
end

-- A few connections to start from.
for _ = 1, 3 do
  keep(table.pack(pcall(wmi.connect, { locator = testwmi.clsid, host = pick { "lat0", "fuzzhost" } })))
end
for _ = 1, 2 do keep(table.pack(pcall(wmi.apartment, { mode = "inproc" }))) end

local exit_early = chance(0.1) and random(1, iterations)
trace("exit early:", tostring(exit_early))
for i = 1, iterations do
  depth = 0
  action()
  if i % 50 == 0 then check_counts(false) end
  if exit_early == i then
    io.write(("FUZZ-EXIT seed %d after %d steps\n"):format(seed, i))
    io.stdout:flush()
    os.exit(0, false)
  end
end

-- Close everything, let the server finish, and count.
depth = 3       -- handlers and finalizers do nothing now
for _ = 1, 2 do
  for v in pairs(handed) do pool[#pool + 1] = v end
  for _, v in ipairs(pool) do
    pcall(function() v:cancel() end)
    pcall(function() v:close() end)
  end
  pool = {}
  collectgarbage()
  collectgarbage()
  pcall(wmi.run, 5000)
end
testwmi.idle(10000)
collectgarbage()
collectgarbage()
check_counts(true)
io.write(("FUZZ-OK seed %d: %d steps\n"):format(seed, iterations))
