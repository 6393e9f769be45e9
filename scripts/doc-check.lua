-- scripts/doc-check.lua [REFERENCE [README]]: is the API reference complete? Run in
-- the Windows Lua (scripts/lua; make doc-check, make check). It loads the module and
-- lists, at run time, every name `require "wmi"` exports and every method and field
-- of every type: the module's userdata metatables in the registry (their __name is
-- "wmi.Type"; methods in `methods`, a table __index or the upvalue of a function
-- __index), the fan-out run's metatable, and the exported tables. Each must have its
-- entry in the generated reference (build/doc/index.html: LDoc's anchor "name",
-- "Type:method" or "Type.field"). So must every option the README's API table names,
-- as a parameter of the function its row names. Prints each one missing and exits 1.
local wmi = require "wmi"

local reference_file = arg[1] or "build/doc/index.html"
local readme_file = arg[2] or "README.md"

local function read(name)
  local f = assert(io.open(name, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The reference: anchor -> the text of its entry (up to the next anchor).
local reference = read(reference_file)
local entries = {}
do
  local anchors = {}
  for pos, name in reference:gmatch('()<a name%s*=%s*"([^"]+)"') do anchors[#anchors + 1] = { pos, name } end
  for i, a in ipairs(anchors) do
    local stop = anchors[i + 1] and anchors[i + 1][1] - 1 or #reference
    entries[a[2]] = reference:sub(a[1], stop)
  end
end

local expected = {}   -- { name = anchor, what = description }
local function expect(name, what) expected[#expected + 1] = { name = name, what = what } end

-- Exported names.
for name, value in pairs(wmi) do expect(name, ("wmi.%s (%s)"):format(name, type(value))) end

-- Every method table of a type: metatable -> its methods.
local function methods_of(mt)
  if type(mt.methods) == "table" then return mt.methods end
  local index = rawget(mt, "__index")
  if type(index) == "table" and index ~= mt then return index end
  if type(index) == "function" then
    local _, up = debug.getupvalue(index, 1)
    if type(up) == "table" then return up end
  end
  if index == mt then        -- a Lua class: its own functions but metamethods
    local t = {}
    for k, v in pairs(mt) do
      if type(k) == "string" and not k:find("^__") and type(v) == "function" then t[k] = v end
    end
    return t
  end
end

local types = {}   -- type name -> metatable
for _, mt in pairs(debug.getregistry()) do
  local name = type(mt) == "table" and rawget(mt, "__name")
  if type(name) == "string" and name:find("^wmi%.") then types[name:sub(5)] = mt end
end
-- The Lua layer's types: a fan-out run (no hosts: it is done at once).
local run = wmi.fanout({}, "SELECT Name FROM Win32_Process")
types.Run = getmetatable(run)

for tname, mt in pairs(types) do
  local methods = methods_of(mt)
  if methods and next(methods) then
    expect(tname, ("type wmi.%s"):format(tname))
    for mname in pairs(methods) do expect(tname .. ":" .. mname, ("method %s of wmi.%s"):format(mname, tname)) end
  end
end

-- Fields of the objects a user handles, read through their __index.
local svc = assert(wmi.connect())
local apt = assert(wmi.apartment())
local call = assert(svc:query_async("SELECT Name FROM Win32_Process", {}))
for tname, object in pairs { Apartment = apt, Call = call } do
  local methods = methods_of(getmetatable(object))
  for _, field in ipairs { "kind", "access", "done", "count" } do
    local ok, value = pcall(function() return object[field] end)
    if ok and value ~= nil and not methods[field] then
      expect(tname .. "." .. field, ("field %s of wmi.%s"):format(field, tname))
    end
  end
end
for key in pairs(run) do expect("Run." .. key, ("field %s of a fan-out run"):format(key)) end
call:wait()
call:close()
apt:close()
svc:close()

-- Options the README's API table names: `opts: \`a b c\``, `f{a, b}`, `opts.a`,
-- `a = ...` in a row about options; each a parameter of a function of its row.
local VARS = { svc = "Services", obj = "Object", apt = "Apartment", call = "Call", run = "Run",
               c = "Connect", stub = "Stub", wmi = false }
local readme = read(readme_file)
local table_text = readme:match("The API at a glance:%s*\n(.-)\n\n")
assert(table_text, readme_file .. ": no 'The API at a glance:' table")
local options = 0
for row in table_text:gmatch("[^\n]+") do
  local funcs, names = {}, {}
  local prefix
  for code in row:gmatch("`([^`]+)`") do
    local var, sep, name = code:match("^([%a_]+)([.:])([%a_]+)")
    if var and VARS[var] ~= nil then
      prefix = VARS[var]
      funcs[#funcs + 1] = prefix and prefix .. sep:gsub("%.", ":") .. name or name
    elseif prefix and code:find("^[%a_]+$") and code:find("_async$") then
      funcs[#funcs + 1] = prefix .. ":" .. code          -- `instances_async` after `svc:query_async`
    end
    local braces = code:match("^[%w_.:]+(%b{})")
    -- Top-level names only: not a nested table's, nor a word in a string.
    if braces then
      for o in braces:sub(2, -2):gsub("%b{}", ""):gsub('"[^"]*"', ""):gmatch("[%a_]+") do names[#names + 1] = o end
    end
    for o in code:gmatch("opts%.([%a_]+)") do names[#names + 1] = o end
    if row:find("opts") then
      local o = code:match("^([%a_]+) = ")
      if o then names[#names + 1] = o end
    end
  end
  local list = row:match("opts: `([^`]+)`")
  if list then for o in list:gmatch("[%a_]+") do names[#names + 1] = o end end
  for _, o in ipairs(names) do
    options = options + 1
    local pattern = '<span class="parameter">' .. o .. '</span>'
    local found = false
    for _, f in ipairs(funcs) do found = found or (entries[f] or ""):find(pattern, 1, true) ~= nil end
    if #funcs == 0 then found = reference:find(pattern, 1, true) ~= nil end
    if not found then
      expect("\0", ("option '%s' (README: %s) as a parameter of %s"):format(o, row:sub(1, 60),
        #funcs > 0 and table.concat(funcs, " or ") or "any function"))
    end
  end
end

table.sort(expected, function(a, b) return a.what < b.what end)
local missing = 0
for _, e in ipairs(expected) do
  if not (entries[e.name] or entries["Class_" .. e.name]) then   -- LDoc's anchor of a @type
    missing = missing + 1
    print("missing from the reference: " .. e.what)
  end
end
print(("doc-check: %d names, methods and fields, %d README options; %d missing"):format(
  #expected, options, missing))
os.exit(missing == 0 and 0 or 1)
