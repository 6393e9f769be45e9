-- The schema of an object (issue 20, item 1): obj:qualifiers, obj:schema, obj:keys,
-- obj:method, and svc:get/query/classes's option 'amended'.
--
-- What Wine 8's wbemprox gives, asserted as it is: every qualifier set is empty (no
-- CIMTYPE, key, Static, ValueMap...), GetNames(WBEM_FLAG_KEYS_ONLY) and
-- GetPropertyOrigin are E_NOTIMPL (keys come from the instance's __RELPATH, origin
-- is absent), GetObject of a class gives its first instance, Win32_LogicalDisk's key
-- is spelt DeviceId, and Win32_Process.Create has no ProcessStartupInformation.
-- What Wine lacks comes from the test server's classes (spec/support/testwmi_schema.c),
-- described from Microsoft's class docs.
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local NOT_FOUND = 0x80041002

local function find(list, name)
  for _, item in ipairs(list) do if item.name == name then return item end end
end

local function names(list)
  local out = {}
  for i, item in ipairs(list) do out[i] = item.name end
  return out
end

describe("the schema of Wine's classes", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  -- One real property of each CIM type Wine's classes carry.
  local TYPES = {
    { "Win32_BIOS", "SystemBiosMajorVersion", "uint8" },
    { "Win32_Processor", "AddressWidth", "uint16" },
    { "Win32_Process", "ThreadCount", "uint32" },
    { "Win32_Process", "WorkingSetSize", "uint64" },
    { "Win32_OperatingSystem", "CurrentTimeZone", "sint16" },
    { "Win32_IP4RouteTable", "InterfaceIndex", "sint32" },
    { "Win32_WinSAT", "CPUScore", "real32" },
    { "Win32_DiskPartition", "Bootable", "boolean" },
    { "Win32_Process", "Name", "string" },
    { "Win32_OperatingSystem", "LastBootUpTime", "datetime" },
    { "Win32_LogicalDiskToPartition", "Antecedent", "ref" },
    { "Win32_NetworkAdapterConfiguration", "IPAddress", "string", true },
    { "Win32_SystemEnclosure", "ChassisTypes", "uint16", true },
  }
  it("gives each property's CIM type and array flag, as obj:cimtype says", function()
    for _, case in ipairs(TYPES) do
      local class, property, cimtype, array = case[1], case[2], case[3], case[4] or false
      local obj = assert(svc:get(class))
      local p = find(assert(obj:schema()).properties, property)
      assert.are.same({ class, property, cimtype, array }, { class, p.name, p.type, p.array })
      local expected = cimtype == "ref" and "reference" or cimtype
      assert.equal(expected .. (array and "[]" or ""), obj:cimtype(property))
      obj:close()
    end
  end)

  it("lists properties in WMI's order, read-only by CIM's defaults, and Wine's empty qualifier sets", function()
    local proc = assert(svc:get("Win32_Process"))
    local s = assert(proc:schema())
    assert.equal("Win32_Process", s.class)
    assert.are.same(proc:properties(), names(s.properties))
    local handle = find(s.properties, "Handle")
    assert.are.same({ name = "Handle", type = "string", array = false, key = true, read = true, write = false,
      qualifiers = {} }, handle)
    assert.is_nil(handle.origin)                -- GetPropertyOrigin: E_NOTIMPL in Wine
    assert.are.same({}, s.qualifiers)
    local values, flavors = proc:qualifiers("Handle")
    assert.are.same({ {}, {} }, { values, flavors })
    assert.are.same({}, (proc:qualifiers()))
  end)

  it("gives Win32_Process.Create's signature as Wine has it", function()
    local proc = assert(svc:get("Win32_Process"))
    local create = assert(proc:method("Create"))
    assert.equal("Create(CommandLine, CurrentDirectory) => (ProcessId, ReturnValue)", tostring(create))
    assert.are.same({ name = "CommandLine", type = "string", array = false, qualifiers = {} }, create.inparams[1])
    assert.are.same({ "CommandLine", "CurrentDirectory" }, names(create.inparams))
    assert.are.same({ "ProcessId" }, names(create.outparams))
    assert.equal("uint32", create.return_type)
    assert.is_false(create.static)              -- Wine has no Static qualifier
    local s = assert(proc:schema())
    assert.are.same(proc:methods(), names(s.methods))
    assert.equal("GetOwner() => (User, Domain, ReturnValue)", tostring(find(s.methods, "GetOwner")))
  end)

  it("gives the keys of Win32_LogicalDisk and of a class with two", function()
    local disk = assert(svc:get("Win32_LogicalDisk"))
    assert.are.same({ "DeviceId" }, disk:keys())
    assert.are.same({ "DeviceId" }, disk:schema().keys)
    assert.is_true(find(disk:schema().properties, "DeviceId").key)
    assert.is_false(find(disk:schema().properties, "Size").key)
    local link = assert(svc:get("Win32_LogicalDiskToPartition"))
    assert.are.same({ "Antecedent", "Dependent" }, link:keys())
    assert.are.same({ "Antecedent", "Dependent" }, link:schema().keys)
    assert.are.same({}, assert(svc:get("Win32_OperatingSystem")):keys())   -- a singleton
  end)

  it("answers nil, message, WBEM_E_NOT_FOUND for what does not exist", function()
    local proc = assert(svc:get("Win32_Process"))
    for _, target in ipairs { "NoSuchProperty", { property = "NoSuchProperty" }, { method = "NoSuchMethod" },
                              { method = "Create", parameter = "NoSuchParameter" }, "\xff" } do
      local ok, msg, hr = proc:qualifiers(target)
      assert.are.same({ nil, NOT_FOUND }, { ok, hr })
      assert.matches("WBEM_E_NOT_FOUND", msg)
    end
    local ok, msg, hr = proc:method("NoSuchMethod")
    assert.are.same({ nil, NOT_FOUND }, { ok, hr })
    assert.matches("WBEM_E_NOT_FOUND", msg)
  end)

  it("raises argument errors naming the argument", function()
    local proc = assert(svc:get("Win32_Process"))
    assert.error_matches(function() proc:qualifiers(5) end,
      "bad argument #1 to 'qualifiers' %(nil, string or table expected")
    assert.error_matches(function() proc:qualifiers("a\0b") end,
      "bad argument #1 to 'qualifiers' %(string contains a NUL")
    assert.error_matches(function() proc:qualifiers { methd = "Create" } end,
      "bad field 'methd' to 'qualifiers' %(unknown field; did you mean 'method'%?%)")
    assert.error_matches(function() proc:qualifiers { parameter = "CommandLine" } end,
      "bad argument #1 to 'qualifiers'")
    assert.error_matches(function() proc:qualifiers { property = "Name", method = "Create" } end, "one of them")
    assert.error_matches(function() proc:qualifiers { method = 1 } end,
      "bad field 'method' to 'qualifiers' %(string expected, got number%)")
    assert.error_matches(function() proc:method() end, "bad argument #1 to 'method' %(string expected, got no value%)")
    assert.error_matches(function() svc:get("Win32_Process", { amend = true }) end,
      "bad option 'amend' to 'get' %(unknown option; did you mean 'amended'%?%)")
    assert.error_matches(function() svc:get("Win32_Process", 1) end, "bad argument #2 to 'get' %(table expected")
    assert.error_matches(function() svc:classes(nil, { amended = true, deep = true }) end,
      "bad option 'deep' to 'classes'")
    assert.error_matches(function() svc:query("SELECT * FROM Win32_BIOS", { ammended = true }) end,
      "bad option 'ammended' to 'query'")
    proc:close()
    for _, f in ipairs { "schema", "keys", "qualifiers" } do
      assert.error_matches(function() proc[f](proc) end, "attempt to use a closed wmi.Object")
    end
    assert.error_matches(function() proc:method("Create") end, "attempt to use a closed wmi.Object")
  end)

  it("passes 'amended' to Wine, which accepts it", function()
    local bios = assert(svc:get("Win32_BIOS", { amended = true }))
    assert.equal("Win32_BIOS", bios:schema().class)
    assert.equal(1, #assert(svc:query("SELECT * FROM Win32_BIOS", { amended = true })))
  end)
end)

describe("the schema of the test server's classes", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("gives Win32_Process.Create's full signature", function()
    local create = assert(assert(svc:get("TestWmi_Process")):method("Create"))
    assert.equal("Create(CommandLine, CurrentDirectory, ProcessStartupInformation) => (ProcessId, ReturnValue)",
      tostring(create))
    assert.is_true(create.static)
    assert.equal("uint32", create.return_type)
    local startup = create.inparams[3]
    assert.are.same({ "ProcessStartupInformation", "object:Win32_ProcessStartup", false },
      { startup.name, startup.type, startup.array })
    assert.are.same({ In = true, ID = 2, CIMTYPE = "object:Win32_ProcessStartup" }, startup.qualifiers)
    assert.are.same({ { name = "ProcessId", type = "uint32", array = false,
      qualifiers = { Out = true, ID = 3, CIMTYPE = "uint32" } } }, create.outparams)
  end)

  it("orders parameters by their ID qualifier, not by GetNames", function()
    local create = assert(assert(svc:get("TestWmi_Service")):method("Create"))
    assert.are.same({ "Name", "DisplayName", "PathName", "ServiceType", "ErrorControl", "StartMode",
      "DesktopInteract", "StartName", "StartPassword", "LoadOrderGroup", "LoadOrderGroupDependencies",
      "ServiceDependencies" }, names(create.inparams))
    assert.are.same({ "uint8", false }, { create.inparams[4].type, create.inparams[4].array })
    assert.are.same({ "string", true }, { create.inparams[12].type, create.inparams[12].array })
    assert.are.same({}, create.outparams)
    assert.equal("Create(Name, DisplayName, PathName, ServiceType, ErrorControl, StartMode, DesktopInteract, "
      .. "StartName, StartPassword, LoadOrderGroup, LoadOrderGroupDependencies, ServiceDependencies) => (ReturnValue)",
      tostring(create))
  end)

  it("describes the class in the agreed shape", function()
    local s = assert(assert(svc:get("TestWmi_Service")):schema())
    assert.are.same({ "TestWmi_Service", "Win32_BaseService" }, { s.class, s.superclass })
    assert.are.same({ "Win32_BaseService", "CIM_Service", "CIM_LogicalElement", "CIM_ManagedSystemElement" },
      s.derivation)
    assert.are.same({ dynamic = true, provider = "CIMWin32", UUID = "{8502C4D9-5FBB-11D2-AAC1-006008C78BC7}" },
      s.qualifiers)
    assert.are.same({ "Name" }, s.keys)
    assert.are.same({ "Name", "DisplayName", "State", "Started", "StartMode", "ProcessId", "InstallDate" },
      names(s.properties))
    assert.are.same({ name = "Name", type = "string", array = false, key = true, read = true, write = false,
      origin = "CIM_ManagedSystemElement", qualifiers = { key = true, read = true, CIMTYPE = "string", MaxLen = 256 } },
      s.properties[1])
    assert.are.same({ true, true, "Win32_BaseService" },
      { s.properties[2].read, s.properties[2].write, s.properties[2].origin })
    assert.equal("datetime", s.properties[7].type)
    assert.are.same({ "StartService", "StopService", "ChangeStartMode", "Create" }, names(s.methods))
    local stop = s.methods[2]
    assert.are.same({ "StopService", false, "uint32", {}, {} },
      { stop.name, stop.static, stop.return_type, stop.inparams, stop.outparams })
    assert.equal("StopService() => (ReturnValue)", tostring(stop))
    assert.equal("0", stop.qualifiers.ValueMap[1])
    assert.equal("..", stop.qualifiers.ValueMap[26])
  end)

  it("gives the keys of a class with two (GetNames of the keys)", function()
    local pair = assert(svc:get("TestWmi_Pair"))
    assert.are.same({ "Antecedent", "Dependent" }, pair:keys())
    local s = pair:schema()
    assert.are.same({ "Antecedent", "Dependent" }, s.keys)
    assert.are.same({ "ref:Win32_DiskPartition", true }, { s.properties[1].type, s.properties[1].key })
    assert.are.same({ "uint64", false }, { s.properties[3].type, s.properties[3].key })
  end)

  it("gives a qualifier's flavor; an instance's are propagated", function()
    local values, flavors = assert(svc:get("TestWmi_Service")):qualifiers("Name")
    assert.are.same({ key = true, read = true, CIMTYPE = "string", MaxLen = 256 }, values)
    assert.are.same({ amended = false, to_instance = true, to_subclass = true, overridable = false,
      propagated = false }, flavors.key)
    assert.are.same({ amended = false, to_instance = true, to_subclass = false, overridable = true,
      propagated = false }, flavors.MaxLen)
    local inst = assert(svc:get('TestWmi_Service.Name="TestStopped"'))
    local _, inst_flavors = inst:qualifiers { property = "Name" }
    assert.are.same({ amended = false, to_instance = true, to_subclass = true, overridable = false,
      propagated = true }, inst_flavors.key)
    -- What does not propagate to instances is not on one.
    assert.are.same({ dynamic = true, provider = "CIMWin32", UUID = "{8502C4D9-5FBB-11D2-AAC1-006008C78BC7}" },
      (inst:qualifiers()))
  end)

  it("gives a method's and a parameter's qualifiers", function()
    local class = assert(svc:get("TestWmi_Service"))
    local mode = class:qualifiers { method = "ChangeStartMode", parameter = "StartMode" }
    assert.are.same({ In = true, ID = 0, CIMTYPE = "string",
      ValueMap = { "Boot", "System", "Automatic", "Manual", "Disabled" } }, mode)
    assert.are.same({ out = true, CIMTYPE = "uint32" },
      (class:qualifiers { method = "StopService", parameter = "ReturnValue" }))
    local stop = class:qualifiers { method = "StopService" }
    assert.are.same({ true, 26 }, { stop.Implemented, #stop.ValueMap })
    local ok, msg, hr = class:qualifiers { method = "StopService", parameter = "NoSuchParameter" }
    assert.are.same({ nil, NOT_FOUND }, { ok, hr })
    assert.matches("WBEM_E_NOT_FOUND", msg)
  end)

  it("gives amended qualifiers only when asked, and a ReturnValue's meaning", function()
    local plain = assert(svc:get("TestWmi_Service")):qualifiers { method = "StopService" }
    assert.is_nil(plain.Values)
    assert.is_nil(plain.Description)
    local class = assert(svc:get("TestWmi_Service", { amended = true }))
    local values, flavors = class:qualifiers { method = "StopService" }
    assert.equal("The StopService method places the service in the stopped state.", values.Description)
    assert.is_true(flavors.Values.amended)
    assert.is_false(flavors.ValueMap.amended)
    assert.equal("The Win32_Service class represents a service on a computer system running Windows.",
      class:schema().qualifiers.Description)
    -- svc:exec's ReturnValue, read through ValueMap/Values as wmiq does.
    local out = assert(svc:exec('TestWmi_Service.Name="TestStopped"', "StopService"))
    assert.equal(6, out.ReturnValue)
    local meaning
    for i, code in ipairs(values.ValueMap) do
      if code == tostring(out.ReturnValue) then meaning = values.Values[i] end
    end
    assert.equal("Service Not Active", meaning)
    -- Instances read with the option carry them too (svc:instances).
    local inst = assert(svc:instances("TestWmi_Service", { amended = true }))[1]
    assert.equal("Service Not Active", inst:qualifiers { method = "StopService" }.Values[7])
    assert.is_nil(assert(svc:instances("TestWmi_Service"))[1]:qualifiers { method = "StopService" }.Values)
  end)
end)

describe("the schema reads hold nothing", function()
  it("releases every object and qualifier set", function()
    testwmi.reset()
    local svc = assert(th.connect())
    for _ = 1, 3 do
      for _, class in ipairs { "TestWmi_Service", "TestWmi_Process", "TestWmi_Pair" } do
        local obj = assert(svc:get(class, { amended = true }))
        assert(obj:schema())
        assert(obj:qualifiers())
        obj:close()
      end
    end
    svc:close()
    th.assert_server_idle()                     -- its objects and qualifier sets (stats().objects)
    helpers.assert_all_released()
    assert.equal(0, wmi.stats().objects)
  end)
end)

-- An allocation that fails anywhere in a schema read (spec/support/allocfail.c, as
-- spec/23 does for other scenarios): an error or nil, message, and every object and
-- qualifier set released, by the module and by the server. In a child process.
local SWEEP = [==[
local allocfail = require "allocfail"
local wmi = require "wmi"
local testwmi = require "testwmi"
local SETUP = [[ wmi = require "wmi"; testwmi = require "testwmi"
  svc = assert(wmi.connect { locator = testwmi.clsid })
  class = assert(svc:get("TestWmi_Service", { amended = true })) ]]
local SCENARIO = [[
  local s = class:schema()
  local q, f = class:qualifiers { method = "ChangeStartMode", parameter = "StartMode" }
  return s.class, #s.methods, q.ID, tostring(f.ID.amended) ]]
local k, errors, returned, bad = 0, 0, 0, 0
repeat
  k = k + 1
  local verdict, allocations, message = allocfail.run(SETUP, SCENARIO, k)
  if verdict == "error" then errors = errors + 1
  elseif verdict == "returned" then returned = returned + 1; last = message
  else bad = bad + 1; io.write("BAD k=", k, " ", verdict, " ", message, "\n")
  end
  testwmi.idle(10000)
  for _ = 1, 300 do
    collectgarbage()
    if wmi.stats().objects == 0 and testwmi.stats().objects == 0 then break end
    wmi.dispatch(10)
  end
  if wmi.stats().objects ~= 0 or testwmi.stats().objects ~= 0 then
    bad = bad + 1
    io.write(("LEAK k=%d: %d objects, %d on the server\n"):format(k, wmi.stats().objects, testwmi.stats().objects))
    break                                     -- one is enough: each waits 3 s
  end
until allocations < k
io.write(("schema: %d allocations, %d errors, %d returned, %d bad, last: %s\n"):format(k - 1, errors, returned, bad,
  last))
]==]

describe("an allocation failure at every step of a schema read", function()
  it("raises or completes, and releases every object and qualifier set", function()
    local out = th.run_child(SWEEP)
    local n, errors, returned, bad, last =
      out:match("schema: (%d+) allocations, (%d+) errors, (%d+) returned, (%d+) bad, last: ([^\n]*)")
    assert(n, out)
    assert.is_true(tonumber(n) >= 100, out)
    assert.are.equal(0, tonumber(bad), out)
    assert.is_true(tonumber(errors) + tonumber(returned) == tonumber(n) + 1, out)
    assert.equal("TestWmi_Service, 4, 0, false", last, out)
  end)
end)
