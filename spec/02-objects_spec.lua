-- wmi.Object and wmi.List against Wine's real WMI (wbemprox).
--
-- What Wine 8.0 does that these specs assert rather than work around:
-- * an instance reads its values from its class's table, which the next query of
--   the same class refills: values are read before that class is queried again;
-- * __GENUS is always 2 (instance), so GetObject("Win32_Process") returns an
--   object that reads like the class's first instance;
-- * spawned instances and method parameters have no system properties (__CLASS,
--   __RELPATH...): they print as "instance of an unknown class";
-- * Clone is E_NOTIMPL.
-- These specs never query Win32_Directory: releasing its instances in some
-- orders (as a garbage collector may) corrupts wbemprox's heap.
local wmi = require "wmi"
local helpers = require "spec.helpers"

local NOT_FOUND = 0x80041002

local PROCESS_PROPERTIES = { "Caption", "CommandLine", "Description", "Handle", "Name",
  "ParentProcessID", "ProcessID", "ThreadCount", "WorkingSetSize" }
local REGISTRY_METHODS = { "CreateKey", "EnumKey", "EnumValues", "GetStringValue",
  "SetStringValue", "SetDWORDValue", "DeleteKey" }

-- The lua.exe running these specs (scripts/check starts it on busted_main.lua).
local function this_process(svc)
  for _, p in ipairs(assert(svc:query("SELECT * FROM Win32_Process WHERE Name = 'lua.exe'"))) do
    if (p.CommandLine or ""):find("busted_main.lua", 1, true) then return p end
  end
  error("the lua.exe running busted is not in Win32_Process")
end

local function os_object(svc)
  return assert(svc:query("SELECT * FROM Win32_OperatingSystem"))[1]
end

describe("wmi.Object", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  it("reads properties as fields, whatever the spelling of their names", function()
    local p = this_process(svc)
    local pid, name, parent = p.ProcessID, p.Name, p.ParentProcessID
    assert.equal("integer", math.type(pid))
    assert.equal("lua.exe", name)
    assert.equal("integer", math.type(parent))
    -- Wine spells it ProcessID; WMI names are case-insensitive.
    assert.equal(pid, p.ProcessId)
    assert.equal(pid, p.processid)
    assert.equal(pid, p:get("PROCESSID"))
    assert.equal(tostring(pid), p.Handle)
    assert.matches("busted_main.lua", p.CommandLine, 1, true)

    -- The same process by its path (a query of the same class: p is read above).
    local again = assert(svc:get(('Win32_Process.Handle="%d"'):format(pid)))
    assert.equal(pid, again.ProcessID)
    assert.equal(name, again.Name)
    assert.equal(parent, again.ParentProcessID)
  end)

  it("lets its own methods win over properties of the same spelling", function()
    local o = os_object(svc)
    for _, method in ipairs { "get", "properties", "methods", "path", "class", "text", "spawn",
                              "clone", "inparams", "close" } do
      assert.equal("function", type(o[method]))
    end
    -- Only the lower-case spelling is a method: any other is a property name.
    assert.has_error(function() return o.Close end, "no property 'Close' in Win32_OperatingSystem")
    helpers.assert_fail(NOT_FOUND, "WBEM_E_NOT_FOUND", o:get("close"))
  end)

  it("raises for an unknown property, while get() fails with WBEM_E_NOT_FOUND", function()
    local o = os_object(svc)
    assert.has_error(function() return o.Nope end, "no property 'Nope' in Win32_OperatingSystem")
    helpers.assert_fail(NOT_FOUND, "WBEM_E_NOT_FOUND", o:get("Nope"))
    -- Names WMI cannot have: an embedded NUL, bytes that are not UTF-8.
    helpers.assert_fail(NOT_FOUND, "WBEM_E_NOT_FOUND", o:get("Name\0"))
    helpers.assert_fail(NOT_FOUND, "WBEM_E_NOT_FOUND", o:get("\xff"))
    assert.has_error(function() return o["Na\0me"] end, "no property 'Na' in Win32_OperatingSystem")
    -- A key that is not a string names nothing: nil, as a table would answer.
    assert.is_nil(o[1])
    assert.has_error(function() o:get() end, "bad argument #1 to 'get' (string expected, got no value)")
  end)

  it("reads a NULL property as nil, without an error", function()
    local o = os_object(svc)
    assert.is_nil(o.CSDVersion)  -- no service pack
    assert.equal(1, select("#", o:get("CSDVersion")))
  end)

  it("lists its non-system properties in WMI's order, and pairs walks them", function()
    local p = this_process(svc)
    assert.same(PROCESS_PROPERTIES, p:properties())
    local names, values = {}, {}
    for name, value in pairs(p) do
      names[#names + 1] = name
      values[name] = value
    end
    assert.same(PROCESS_PROPERTIES, names)
    for _, name in ipairs(names) do assert.equal(p[name], values[name]) end
    assert.equal(p.ProcessID, values.ProcessID)

    -- A projection has only the properties asked for, in WMI's (the class's) order.
    local q = assert(svc:query("SELECT ProcessID, Name FROM Win32_Process WHERE Name = 'services.exe'"))[1]
    assert.same({ "Name", "ProcessID" }, q:properties())
    local walked = {}
    for name, value in pairs(q) do walked[#walked + 1] = name .. "=" .. tostring(value) end
    assert.equal("Name=services.exe", walked[1])
    assert.matches("^ProcessID=%d+$", walked[2])
    assert.equal(2, #walked)
  end)

  it("lists its methods", function()
    assert.same({ "Create", "GetOwner" }, this_process(svc):methods())
    assert.same(REGISTRY_METHODS, assert(svc:get("StdRegProv")):methods())
    assert.same({}, os_object(svc):methods())
  end)

  it("names its path, its class and its MOF text", function()
    local p = this_process(svc)
    local pid = p.ProcessID
    local path = p:path()
    -- Wine pads __PATH and __RELPATH with NULs: they must not reach Lua.
    assert.is_nil(path:find("\0", 1, true))
    assert.matches('^\\\\[^\\]+\\ROOT\\CIMV2:Win32_Process%.Handle="' .. pid .. '"$', path)
    assert.equal("Win32_Process", p:class())
    local text = p:text()
    assert.matches("instance of Win32_Process\n{", text, 1, true)
    assert.matches("\tProcessID = " .. pid .. ";", text, 1, true)
    assert.matches('\tName = "lua.exe";', text, 1, true)

    -- A singleton has no key: its path ends with its class.
    assert.matches("\\ROOT\\CIMV2:Win32_OperatingSystem$", os_object(svc):path())
    -- A projection has no path at all.
    local q = assert(svc:query("SELECT Name FROM Win32_Process WHERE Name = 'services.exe'"))[1]
    assert.is_nil(q:path())
    assert.equal("Win32_Process", q:class())
  end)

  it("prints short and readable", function()
    local p = this_process(svc)
    assert.equal(('Win32_Process.Handle="%d"'):format(p.ProcessID), tostring(p))
    assert.equal("wmi.Object", getmetatable(p).__name)
    assert.equal("Win32_OperatingSystem", tostring(os_object(svc)))
    assert.equal("StdRegProv", tostring(assert(svc:get("StdRegProv"))))
    local q = assert(svc:query("SELECT Name FROM Win32_Process WHERE Name = 'services.exe'"))[1]
    -- A projected instance has no path: its class and selected values tell it apart.
    assert.equal('Win32_Process {Name = "services.exe"}', tostring(q))
    local projected = assert(svc:query("SELECT Name, ProcessId FROM Win32_Process WHERE Name = 'services.exe'"))
    assert.equal(('1 object:\nName          ProcessID\nservices.exe  %d'):format(projected[1].ProcessId),
      tostring(projected))
    assert.equal("{Name, ProcessID}", tostring(projected[1]:properties()))  -- Wine's spelling
    assert.equal("{Create, GetOwner}", tostring(projected[1]:methods()))
    -- Wine: the "class" is the class's first instance (__GENUS is always 2).
    assert.matches('^Win32_Process%.Handle="%d+"$', tostring(assert(svc:get("Win32_Process"))))
    -- Wine: method parameters have no __CLASS.
    local inp = assert(assert(svc:get("StdRegProv")):inparams("CreateKey"))
    assert.equal('instance of an unknown class {hDefKey = 0, sSubKeyName = ""}', tostring(inp))
    inp.sSubKeyName = "Software\\" .. ("\u{e9}"):rep(40)   -- cut at 40 bytes, on a character boundary
    assert.equal(('instance of an unknown class {hDefKey = 0, sSubKeyName = "Software\\%s..."}')
      :format(("\u{e9}"):rep(15)), tostring(inp))
    inp:close()
    assert.equal("wmi.Object (closed)", tostring(inp))
  end)

  it("spawns method in-parameters to fill", function()
    local reg = assert(svc:get("StdRegProv"))
    local before = wmi.stats().objects
    local inp = assert(reg:inparams("SetStringValue"))
    assert.equal(before + 1, wmi.stats().objects)
    assert.same({ "hDefKey", "sSubKeyName", "sValueName", "sValue" }, inp:properties())
    -- Wine zero-fills the new instance (the declared default HKLM is not applied)
    -- and hands its strings out as NULL BSTRs, which read as "".
    assert.equal(0, inp.hDefKey)
    assert.equal("", inp.sValue)
    assert.is_nil(inp:path())
    assert.is_nil(inp:class())
    assert.same({ "hDefKey", "sSubKeyName" }, assert(reg:inparams("EnumKey")):properties())
    -- Method names are case-insensitive too.
    assert.same({ "hDefKey", "sSubKeyName" }, assert(reg:inparams("enumkey")):properties())
    -- A method without in-parameters has nothing to spawn; an unknown method fails alike.
    local process = this_process(svc)
    assert.same({ n = 3, nil, "method 'GetOwner' takes no parameters: WBEM_E_NOT_FOUND (0x80041002): Object not found",
      NOT_FOUND }, table.pack(process:inparams("GetOwner")))
    helpers.assert_fail(NOT_FOUND, "WBEM_E_NOT_FOUND", reg:inparams("Nope"))
    assert.same({ "CommandLine", "CurrentDirectory" }, assert(process:inparams("Create")):properties())
  end)

  it("spawns instances of a class", function()
    local s = assert(assert(svc:get("Win32_Process")):spawn())
    -- Wine: no __CLASS, and the string fields cannot be read (below): the numbers show.
    assert.equal("instance of an unknown class {ParentProcessID = 0, ProcessID = 0, ThreadCount = 0}", tostring(s))
    assert.same(PROCESS_PROPERTIES, s:properties())
    assert.equal(0, s.ProcessID)
    -- Wine cannot read the string fields of a spawned instance of a built-in class.
    helpers.assert_fail(0x80041008, "WBEM_E_INVALID_PARAMETER", s:get("Caption"))
    assert.same({}, assert(assert(svc:get("StdRegProv")):spawn()):properties())
  end)

  it("cannot be cloned under Wine", function()
    -- IWbemClassObject::Clone is E_NOTIMPL in wbemprox; on Windows it returns a copy.
    helpers.assert_fail(0x80004001, "E_NOTIMPL", os_object(svc):clone())
  end)

  it("writes properties with Put, raising what WMI answers", function()
    local o = os_object(svc)
    -- Wine keeps the values of a built-in class read-only.
    assert.has_error(function() o.OSLanguage = 1 end,
      "property 'OSLanguage': WBEM_E_FAILED (0x80041001): Unspecified WMI failure")
    assert.has_error(function() o.Nope = 1 end, "no property 'Nope' in Win32_OperatingSystem")
    assert.has_error(function() o[1] = 1 end, "bad argument #2 to 'newindex' (string expected, got number)")

    local inp = assert(assert(svc:get("StdRegProv")):inparams("SetStringValue"))
    inp.sValueName = "name"
    inp.SVALUE = "value"
    assert.equal("name", inp.sValueName)
    assert.equal("value", inp.sValue)
    assert.has_error(function() inp.sValue = {} end, "bad value for property 'sValue' (string expected, got table)")
    -- Wine answers an unknown name on method parameters with WBEM_E_INVALID_QUERY.
    assert.has_error(function() inp.Nope = "x" end,
      "property 'Nope': WBEM_E_INVALID_QUERY (0x80041017): Invalid query")
  end)

  it("closes once, by close, by <close> or by the collector", function()
    local base = wmi.stats().objects
    local o = os_object(svc)
    assert.equal(base + 1, wmi.stats().objects)
    do
      local scoped <close> = o  -- luacheck: ignore 211
    end
    assert.equal(base, wmi.stats().objects)
    assert.equal("wmi.Object (closed)", tostring(o))
    o:close()
    o:close()
    assert.equal(base, wmi.stats().objects)
    assert.has_error(function() return o.Name end, "attempt to use a closed wmi.Object")
    assert.has_error(function() o.Name = "x" end, "attempt to use a closed wmi.Object")
    assert.has_error(function() o:get("Name") end, "attempt to use a closed wmi.Object")
    assert.has_error(function() o:path() end, "attempt to use a closed wmi.Object")
    assert.has_error(function() return pairs(o) end, "attempt to use a closed wmi.Object")
    assert.has_error(function() o.close(42) end, "bad argument #1 to 'close' (wmi.Object expected, got number)")

    local list = assert(svc:query("SELECT * FROM Win32_Service"))
    assert.equal(base + #list, wmi.stats().objects)
    list = nil  -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.equal(base, wmi.stats().objects)
  end)

  it("stops a pairs loop that outlives its object with an error", function()
    local o = os_object(svc)
    assert.has_error(function()
      for name in pairs(o) do
        if name then o:close() end
      end
    end, "attempt to use a closed wmi.Object")
  end)
end)

describe("wmi.List", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  it("is a sequence of objects", function()
    local list = assert(svc:query("SELECT * FROM Win32_Service"))
    assert.equal("wmi.List", getmetatable(list).__name)
    assert.is_true(#list > 20)  -- 23 services in a default prefix
    local n = 0
    for i, s in ipairs(list) do
      n = i
      assert.equal("wmi.Object", getmetatable(s).__name)
      assert.equal("Win32_Service", s:class())
    end
    assert.equal(#list, n)
  end)

  it("prints its count and a table of its first 20 objects' first columns", function()
    local list = assert(svc:query("SELECT * FROM Win32_Service"))
    local lines = {}
    for line in tostring(list):gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(#list .. " objects:", lines[1])
    assert.equal(23, #lines)
    -- The columns are the first properties (WMI's order), as many as fit the width.
    local names = list[1]:properties()
    assert.matches("^" .. names[1] .. "%s+" .. names[2] .. "%s", lines[2])
    for i = 1, 20 do
      assert.equal(tostring(list[i][names[1]]), lines[i + 2]:match("^(%S+)"))
    end
    assert.equal("...", lines[23])

    assert.matches("^1 object:\nBootDevice%s+BuildNumber%s+[^\n]+\n%S+%s+%d+%s",
      tostring(assert(svc:query("SELECT * FROM Win32_OperatingSystem"))))
    assert.equal("0 objects", tostring(assert(svc:query("SELECT * FROM Win32_Process WHERE Name = 'none.exe'"))))
    helpers.settled_processes(svc)   -- rpcss.exe starts on demand: make sure it runs
    local pair = assert(svc:query(
      "SELECT Name, ProcessID FROM Win32_Process WHERE Name = 'services.exe' OR Name = 'rpcss.exe'"))
    assert.equal(("2 objects:\nName          ProcessID\n%-12s  %d\n%-12s  %d"):format(pair[1].Name, pair[1].ProcessID,
      pair[2].Name, pair[2].ProcessID), tostring(pair))
  end)
end)
