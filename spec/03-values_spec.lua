-- Values both ways between WMI's VARIANTs and Lua, against Wine's real WMI.
--
-- What Wine 8.0 offers to test with: real instances hand out every scalar CIM
-- type WMI has but char16 and object (uint16 and uint32 as VT_I4, sint64 and
-- uint64 as decimal strings); the only values that take a Put are method
-- parameters, whose types are string, sint32 (StdRegProv's hDefKey, uint32 on
-- Windows), uint32 and uint8[] (__SystemSecurity.SetSD). No Wine class has an
-- embedded object, and Wine never sends the odd VARIANTs a reader must survive.
--
-- So what Wine cannot round-trip goes through valuetest (spec/support/valuetest.c),
-- a test-only DLL holding its own copy of the module's sources: it converts Lua
-- values to VARIANTs and back with src/variant.c directly, crafts VARIANTs as WMI
-- could send them, and fakes an IWbemClassObject with a property of every CIM type
-- (each taking only WMI's documented carrier) read and written through
-- src/object.c. Its objects are the copy's wmi.Object, named "valuetest.Object".
local wmi = require "wmi"
local helpers = require "spec.helpers"
local valuetest = require "valuetest"

local HKCU, HKLM = 0x80000001, 0x80000002
local KEY = "Software\\luawmi-values-spec"
local TEXT = "h\u{1F600}é\u{10348}\u{FFFD}"  -- two characters outside the BMP

local function first(svc, class)
  return assert(assert(svc:query("SELECT * FROM " .. class))[1], class)
end

-- Sets FIELD of OBJ to VALUE and returns what reading it gives back.
local function round_trip(obj, field, value)
  obj[field] = value
  return obj[field]
end

local function bad_value(obj, field, value, why)
  assert.has_error(function() obj[field] = value end, ("bad value for property '%s' (%s)"):format(field, why))
end

-- VARTYPEs: what carries each CIM type.
local VT = { EMPTY = 0, NULL = 1, I2 = 2, I4 = 3, R4 = 4, R8 = 5, BSTR = 8, BOOL = 11, UNKNOWN = 13,
             UI1 = 17, ARRAY = 0x2000 }

-- Every CIM type but object, with the carrier WMI documents for it and values
-- that span it. uint64 -1 is 2^64-1: above math.maxinteger it wraps as
-- string.unpack("J") does.
local CIM_TYPES = {
  { "sint8", VT.I2, { -128, 0, 127 } },
  { "uint8", VT.UI1, { 0, 255 } },
  { "sint16", VT.I2, { -32768, 32767 } },
  { "uint16", VT.I4, { 0, 65535 } },
  { "sint32", VT.I4, { -2147483648, 2147483647 } },
  { "uint32", VT.I4, { 0, 0x80000001, 0xffffffff } },
  { "sint64", VT.BSTR, { math.mininteger, -1, math.maxinteger } },
  { "uint64", VT.BSTR, { 0, math.maxinteger, math.mininteger, -1 } },
  { "real32", VT.R4, { 1.5, -0.25, 0.0, math.huge } },
  { "real64", VT.R8, { 0.1, -1e300, 5e-324, -math.huge } },
  { "boolean", VT.BOOL, { true, false } },
  { "string", VT.BSTR, { TEXT, "" } },
  { "datetime", VT.BSTR, { "20240229123456.000000+060" } },
  { "reference", VT.BSTR, { 'Win32_Process.Handle="4"' } },
  { "char16", VT.I2, { 65, 0x263A, 0xffff } },
}

-- valuetest's copy of the module releases everything too, once garbage is collected.
local function assert_valuetest_released()
  collectgarbage()
  collectgarbage()
  assert.same({ objects = 0, fakes = 0, probes = 0 }, valuetest.stats())
end

-- A real object of Wine's WMI as valuetest's copy holds it.
local function real_object(svc)
  local path = assert(first(svc, "Win32_OperatingSystem"):path())
  return assert(valuetest.object(path)), path
end

describe("values read from WMI", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end, assert_valuetest_released)

  it("makes strings UTF-8 and datetimes strings", function()
    local o = first(svc, "Win32_OperatingSystem")
    assert.equal("C:\\windows\\system32", o.SystemDirectory)
    assert.matches("^%d%d%d%d%d%d%d%d%d%d%d%d%d%d%.%d%d%d%d%d%d[+-]%d%d%d$", o.InstallDate)
  end)

  it("makes integers of sint and uint 8 to 32, uint32 above 2^31 included", function()
    local p = assert(svc:query("SELECT * FROM Win32_Process WHERE Name = 'services.exe'"))[1]
    assert.equal("integer", math.type(p.ProcessID))       -- uint32
    local bios = first(svc, "Win32_BIOS")
    local major8, major16 = bios.SystemBiosMajorVersion, bios.SMBIOSMajorVersion
    assert.equal("integer", math.type(major8))             -- uint8, as VT_UI1
    assert.is_true(major8 >= 0 and major8 <= 255)
    assert.equal("integer", math.type(major16))            -- uint16, as VT_I4
    assert.is_true(major16 >= 0 and major16 <= 65535)

    -- __PARAMETERS describes method parameters: Direction is sint32 (-1 for an
    -- out-parameter), DefaultValue uint32, sent as VT_I4: HKLM reads unsigned.
    local params = assert(svc:query("SELECT * FROM __PARAMETERS WHERE Class = 'StdRegProv' AND " ..
      "Method = 'CreateKey'"))
    local seen = {}
    for _, param in ipairs(params) do seen[param.Parameter] = param end
    assert.equal(1, seen.hDefKey.Direction)
    assert.equal(HKLM, seen.hDefKey.DefaultValue)
    assert.equal(2147483650, seen.hDefKey.DefaultValue)
    assert.equal(-1, seen.ReturnValue.Direction)
    assert.equal(0x13, seen.ReturnValue.Type)  -- CIM_UINT32
  end)

  it("makes integers of sint64 and uint64, which arrive as decimal strings", function()
    local o = first(svc, "Win32_OperatingSystem")
    local free = o.FreeVirtualMemory  -- uint64: 64-bit Wine offers 128 GiB of address space
    assert.equal("integer", math.type(free))
    assert.is_true(free > 0xffffffff)
    local capacity = first(svc, "Win32_PhysicalMemory").Capacity  -- uint64 too
    assert.equal("integer", math.type(capacity))
    assert.is_true(capacity > 0)
  end)

  it("makes floats of real32 and booleans of boolean", function()
    local sat = first(svc, "Win32_WinSAT")
    assert.equal("float", math.type(sat.CPUScore))  -- real32, as VT_R4
    assert.equal(8.0, sat.CPUScore)                 -- Wine's fixed score
    assert.equal("integer", math.type(sat.WinSATAssessmentState))
    assert.is_true(first(svc, "Win32_OperatingSystem").Primary)
    assert.equal("boolean", type(first(svc, "Win32_NetworkAdapter").PhysicalAdapter))
  end)

  it("makes sequences of arrays", function()
    local types = first(svc, "Win32_SystemEnclosure").ChassisTypes  -- uint16[], as VT_I4 elements
    assert.equal("table", type(types))
    assert.is_true(#types >= 1)
    for _, t in ipairs(types) do assert.equal("integer", math.type(t)) end
    local sd = assert(svc:exec("__SystemSecurity", "GetSD")).SD  -- uint8[]
    assert.is_true(#sd > 20)
    for _, byte in ipairs(sd) do assert.is_true(math.type(byte) == "integer" and byte >= 0 and byte <= 255) end
    assert.equal(1, sd[1])  -- SECURITY_DESCRIPTOR revision
  end)

  it("makes nil of NULL, empty arrays included", function()
    assert.is_nil(first(svc, "Win32_OperatingSystem").CSDVersion)
    local out = assert(svc:exec("StdRegProv", "EnumValues", { hDefKey = HKLM, sSubKeyName = "Software\\Nope" }))
    assert.equal(2, out.ReturnValue)  -- ERROR_FILE_NOT_FOUND
    assert.is_nil(out.sNames)         -- Wine sends an empty array as VT_NULL
    assert.is_nil(out.Types)
  end)

  it("reads a NULL BSTR as an empty string", function()
    -- Wine hands the strings of new method parameters out as NULL BSTRs.
    local inp = assert(assert(svc:get("StdRegProv")):inparams("GetStringValue"))
    assert.equal("", inp.sValueName)
  end)

  -- No Wine class has one; Windows has plenty (Win32_Process.Create's
  -- ProcessStartupInformation, __InstanceCreationEvent.TargetInstance). A real
  -- object of Wine's WMI is embedded through valuetest instead.
  it("makes wmi.Object of embedded objects", function()
    local real, path = real_object(svc)
    local embedded, vartype = valuetest.roundtrip(real, "object")
    assert.equal(VT.UNKNOWN, vartype)
    assert.equal("valuetest.Object", getmetatable(embedded).__name)
    assert.equal("Win32_OperatingSystem", embedded:class())
    assert.equal(path, embedded:path())
    assert.equal("C:\\windows\\system32", embedded.SystemDirectory)

    -- As a property of an object, alone and in arrays.
    local fake = valuetest.fake()
    fake.object = real
    assert.equal("C:\\windows\\system32", fake.object.SystemDirectory)
    fake["object[]"] = { real, real }
    local list = fake["object[]"]
    assert.equal(2, #list)
    assert.equal("Win32_OperatingSystem", list[2]:class())
    assert.is_nil(valuetest.push("null_unknown"))  -- a NULL pointer is NULL
    assert.is_nil(valuetest.push("null_dispatch"))
    -- Every one of them holds a reference of its own.
    real:close()
    embedded:close()
    assert.equal("Win32_OperatingSystem", fake.object:class())
    assert.equal("Win32_OperatingSystem", list[1]:class())
  end)
end)

describe("values written to WMI", function()
  local svc, reg
  before_each(function()
    svc = assert(wmi.connect())
    reg = assert(svc:get("StdRegProv"))
  end)
  after_each(function()
    reg:close()
    svc:close()
    assert_valuetest_released()
    helpers.assert_all_released()
  end)

  it("writes uint32 as the bit pattern WMI expects, range-checked", function()
    local inp = assert(reg:inparams("SetDWORDValue"))
    assert.equal(0x80000001, round_trip(inp, "uValue", 0x80000001))
    assert.equal(2147483649, inp.uValue)
    assert.equal(4294967295, round_trip(inp, "uValue", 0xffffffff))
    assert.equal(0, round_trip(inp, "uValue", 0))
    -- What lua_tointegerx accepts: numeric strings and integral floats.
    assert.equal(12, round_trip(inp, "uValue", "12"))
    assert.equal(0x10, round_trip(inp, "uValue", "0x10"))
    assert.equal(3, round_trip(inp, "uValue", 3.0))
    bad_value(inp, "uValue", -1, "out of range for uint32")
    bad_value(inp, "uValue", 0x100000000, "out of range for uint32")
    bad_value(inp, "uValue", 1.5, "number has no integer representation")
    bad_value(inp, "uValue", "1.5", "number has no integer representation")
    bad_value(inp, "uValue", "twelve", "uint32 expected, got string")
    bad_value(inp, "uValue", true, "uint32 expected, got boolean")
    bad_value(inp, "uValue", {}, "uint32 expected, got table")
    bad_value(inp, "uValue", inp, "uint32 expected, got userdata")
    assert.equal(3, inp.uValue)  -- a refused value changes nothing
  end)

  it("writes sint32, accepting a uint32 bit pattern such as HKEY_CURRENT_USER", function()
    local inp = assert(reg:inparams("CreateKey"))
    assert.equal(-1, round_trip(inp, "hDefKey", -1))
    assert.equal(-2147483648, round_trip(inp, "hDefKey", -0x80000000))
    -- Wine declares hDefKey sint32 (Windows: uint32): the same 32 bits read signed.
    assert.equal(HKCU - 0x100000000, round_trip(inp, "hDefKey", HKCU))
    bad_value(inp, "hDefKey", 0x100000000, "out of range for sint32")
    bad_value(inp, "hDefKey", -0x80000001, "out of range for sint32")
  end)

  it("delivers HKEY_CURRENT_USER intact to a method", function()
    local out = assert(svc:exec("StdRegProv", "CreateKey", { hDefKey = HKCU, sSubKeyName = KEY }))
    finally(function() svc:exec("StdRegProv", "DeleteKey", { hDefKey = HKCU, sSubKeyName = KEY }) end)
    assert.equal(0, out.ReturnValue)
    local name = KEY:match("[^\\]+$")
    local function subkeys(root)
      return assert(svc:exec("StdRegProv", "EnumKey", { hDefKey = root, sSubKeyName = "Software" })).sNames
    end
    assert.is_true(helpers.contains(subkeys(HKCU), name))
    assert.is_false(helpers.contains(subkeys(HKLM), name))
  end)

  it("writes strings as UTF-16, characters outside the BMP included", function()
    local inp = assert(reg:inparams("SetStringValue"))
    assert.equal(TEXT, round_trip(inp, "sValue", TEXT))
    assert.equal("", round_trip(inp, "sValue", ""))
    -- Numbers read as tostring shows them.
    assert.equal("42", round_trip(inp, "sValue", 42))
    assert.equal("-4.5", round_trip(inp, "sValue", -4.5))
    assert.equal("3.0", round_trip(inp, "sValue", 3.0))
    assert.equal("1e+100", round_trip(inp, "sValue", 1e100))
    bad_value(inp, "sValue", "caf\xe9", "string is not valid UTF-8")
    bad_value(inp, "sValue", "\xed\xa0\x80", "string is not valid UTF-8")  -- an encoded surrogate
    bad_value(inp, "sValue", false, "string expected, got boolean")
    bad_value(inp, "sValue", print, "string expected, got function")
    assert.equal("1e+100", inp.sValue)  -- a refused value changes nothing
  end)

  it("carries text outside the BMP through the registry and back", function()
    local inp = assert(reg:inparams("SetStringValue"))
    inp.hDefKey, inp.sSubKeyName, inp.sValueName, inp.sValue = HKCU, KEY, "text", TEXT
    assert.equal(0, assert(svc:exec("StdRegProv", "CreateKey", { hDefKey = HKCU, sSubKeyName = KEY })).ReturnValue)
    finally(function() svc:exec("StdRegProv", "DeleteKey", { hDefKey = HKCU, sSubKeyName = KEY }) end)
    assert.equal(0, assert(svc:exec("StdRegProv", "SetStringValue", inp)).ReturnValue)
    local out = assert(svc:exec("StdRegProv", "GetStringValue", { hDefKey = HKCU, sSubKeyName = KEY,
                                                                  sValueName = "text" }))
    assert.equal(0, out.ReturnValue)
    assert.equal(TEXT, out.sValue)
    out = assert(svc:exec("StdRegProv", "EnumValues", { hDefKey = HKCU, sSubKeyName = KEY }))
    assert.same({ "text" }, out.sNames)
    assert.same({ 1 }, out.Types)  -- REG_SZ, from a sint32[]
  end)

  it("writes arrays from sequences, checking every element first", function()
    local inp = assert(assert(svc:get("__SystemSecurity")):inparams("SetSD"))
    assert.same({ 1, 2, 255, 0 }, round_trip(inp, "SD", { 1, 2, 255, 0 }))
    assert.same({}, round_trip(inp, "SD", {}))
    assert.same({ 7, 8 }, round_trip(inp, "SD", { "7", 8.0 }))
    local big = {}
    for i = 1, 1000 do big[i] = i % 256 end
    assert.same(big, round_trip(inp, "SD", big))
    bad_value(inp, "SD", { 1, 256 }, "out of range for uint8")
    bad_value(inp, "SD", { 1, "x" }, "uint8 expected, got string")
    bad_value(inp, "SD", { 1, nil, 3 }, "uint8 expected, got nil")
    bad_value(inp, "SD", "x", "uint8[] expected, got string")
    bad_value(inp, "SD", 1, "uint8[] expected, got number")
    assert.same(big, inp.SD)  -- a refused value changes nothing
  end)

  it("sends values of every type a method parameter can take through svc:exec", function()
    assert.has_error(function()
      svc:exec("StdRegProv", "SetDWORDValue", { hDefKey = HKCU, sSubKeyName = KEY, uValue = -1 })
    end, "bad argument #3 to 'exec' (bad parameter 'uValue' (out of range for uint32))")
    local out = assert(svc:exec("StdRegProv", "CreateKey", { hDefKey = HKCU, sSubKeyName = KEY }))
    finally(function() svc:exec("StdRegProv", "DeleteKey", { hDefKey = HKCU, sSubKeyName = KEY }) end)
    assert.equal(0, out.ReturnValue)
    out = assert(svc:exec("StdRegProv", "SetDWORDValue", { hDefKey = HKCU, sSubKeyName = KEY,
                                                          sValueName = "dword", uValue = 0xfffffffe }))
    assert.equal(0, out.ReturnValue)
    out = assert(svc:exec("StdRegProv", "EnumValues", { hDefKey = HKCU, sSubKeyName = KEY }))
    assert.same({ "dword" }, out.sNames)
    assert.same({ 4 }, out.Types)  -- REG_DWORD
  end)

  -- Wine's method parameters take no other type, and its built-in classes are
  -- read-only: sint8, uint16, sint64, uint64, real32/64, boolean, char16, object
  -- and NULL (Wine compares an uninitialised type for VT_NULL) cannot be written
  -- there. valuetest's fake object takes each in WMI's documented carrier only.
  it("writes every CIM type in WMI's carrier, and reads it back", function()
    local fake = valuetest.fake()
    for _, t in ipairs(CIM_TYPES) do
      local name, carrier, values = t[1], t[2], t[3]
      for _, v in ipairs(values) do
        local back, vartype = valuetest.roundtrip(v, name)
        assert.equal(carrier, vartype, name)
        assert.equal(v, back, name)
        assert.equal(math.type(v), math.type(back), name)
        assert.equal(v, round_trip(fake, name, v), name)
      end
      assert.equal(name, select(2, valuetest.cimtype(name)))
    end
    local real = real_object(svc)
    assert.equal(VT.UNKNOWN, select(2, valuetest.roundtrip(real, "object")))
    assert.equal("Win32_OperatingSystem", round_trip(fake, "object", real):class())
  end)

  it("writes sint64 and uint64 as decimal strings, wrapping uint64 like string.unpack('J')", function()
    local function carried(v, t) return valuetest.roundtrip(v, t, "") end  -- read as no CIM type
    assert.same({ "18446744073709551615", VT.BSTR }, { carried(-1, "uint64") })
    assert.same({ "9223372036854775808", VT.BSTR }, { carried(math.mininteger, "uint64") })
    assert.same({ "-9223372036854775808", VT.BSTR }, { carried(math.mininteger, "sint64") })
    assert.same({ "-1", VT.BSTR }, { carried(-1, "sint64") })
    -- Decimal strings take the whole range, uint64 up to 2^64-1.
    local fake = valuetest.fake()
    assert.equal(string.unpack(">J", ("\xff"):rep(8)), round_trip(fake, "uint64", "18446744073709551615"))
    assert.equal(-1, fake.uint64)
    assert.equal(string.unpack(">J", "\x80" .. ("\0"):rep(7)), round_trip(fake, "uint64", "9223372036854775808"))
    assert.equal(math.mininteger, round_trip(fake, "sint64", "-9223372036854775808"))
    assert.equal(42, round_trip(fake, "sint64", "+42"))
    assert.equal(16, round_trip(fake, "uint64", "0x10"))  -- what lua_tointegerx takes, as for uint32
    assert.same({ -1, 0 }, round_trip(fake, "uint64[]", { "18446744073709551615", 0 }))
    bad_value(fake, "uint64", "18446744073709551616", "out of range for uint64")
    bad_value(fake, "uint64", "-1", "out of range for uint64")  -- a negative decimal is no uint64
    bad_value(fake, "sint64", "9223372036854775808", "out of range for sint64")
    bad_value(fake, "sint64", "-9223372036854775809", "out of range for sint64")
    bad_value(fake, "sint64", 2^63, "number has no integer representation")
    bad_value(fake, "uint64", 0.5, "number has no integer representation")
    bad_value(fake, "uint64", "lots", "uint64 expected, got string")
    bad_value(fake, "sint64", true, "sint64 expected, got boolean")
    assert.equal(42, fake.sint64)  -- a refused value changes nothing
  end)

  it("writes small integers, reals, booleans and char16 range-checked", function()
    local fake = valuetest.fake()
    bad_value(fake, "sint8", 128, "out of range for sint8")
    bad_value(fake, "sint8", -129, "out of range for sint8")
    bad_value(fake, "uint8", -1, "out of range for uint8")
    bad_value(fake, "sint16", 32768, "out of range for sint16")
    bad_value(fake, "uint16", 65536, "out of range for uint16")
    bad_value(fake, "uint16", -1, "out of range for uint16")
    bad_value(fake, "char16", 0x10000, "out of range for char16")
    bad_value(fake, "char16", "A", "char16 expected, got string")
    -- real32 refuses what it cannot hold, but not the infinities; it rounds.
    bad_value(fake, "real32", 1e39, "out of range for real32")
    bad_value(fake, "real32", "x", "real32 expected, got string")
    assert.equal(string.unpack("f", string.pack("f", 0.1)), round_trip(fake, "real32", 0.1))
    assert.not_equal(0.1, fake.real32)
    local nan = round_trip(fake, "real64", 0 / 0)
    assert.is_true(nan ~= nan)
    assert.equal("float", math.type(round_trip(fake, "real64", 3)))  -- an integer given to a real
    assert.equal(2.5, round_trip(fake, "real64", "2.5"))
    bad_value(fake, "boolean", 1, "boolean expected, got number")
    bad_value(fake, "boolean", "true", "boolean expected, got string")
    assert.is_false(round_trip(fake, "boolean", false))
  end)

  it("writes embedded objects as VT_UNKNOWN", function()
    local fake, real = valuetest.fake(), real_object(svc)
    bad_value(fake, "object", "Win32_OperatingSystem=@", "object expected, got string")
    bad_value(fake, "object", {}, "object expected, got table")
    bad_value(fake, "object[]", { real, 1 }, "object expected, got number")
    local closed = real_object(svc)
    closed:close()
    bad_value(fake, "object", closed, "attempt to use a closed wmi.Object")
    assert.same({ nil, "attempt to use a closed wmi.Object" }, { valuetest.roundtrip({ closed }, "object[]") })
    assert.same({ VT.ARRAY | VT.UNKNOWN }, { select(2, valuetest.roundtrip({}, "object[]")) })
  end)

  it("writes NULL for every type, arrays included", function()
    local fake = valuetest.fake()
    for _, t in ipairs(CIM_TYPES) do
      for _, name in ipairs { t[1], t[1] .. "[]" } do
        assert.same({ nil, VT.NULL }, { valuetest.roundtrip(nil, name) })
        fake[name] = t[1] == name and t[3][1] or t[3]
        assert.is_not_nil(fake[name])
        assert.is_nil(round_trip(fake, name, nil))
      end
    end
    assert.same({ nil, VT.NULL }, { valuetest.roundtrip(nil, "object") })
    assert.is_nil(round_trip(fake, "object", nil))
  end)

  it("writes arrays of every CIM type from sequences", function()
    local fake = valuetest.fake()
    for _, t in ipairs(CIM_TYPES) do
      local name, carrier, values = t[1] .. "[]", t[2], t[3]
      local back, vartype = valuetest.roundtrip(values, name)
      assert.equal(VT.ARRAY | carrier, vartype, name)
      assert.same(values, back, name)
      assert.same(values, round_trip(fake, name, values), name)
      assert.same({ {}, VT.ARRAY | carrier }, { valuetest.roundtrip({}, name) }, name)
      assert.same({}, round_trip(fake, name, {}), name)
      assert.equal(name, select(2, valuetest.cimtype(name)))
    end
    bad_value(fake, "boolean[]", { true, 1 }, "boolean expected, got number")
    bad_value(fake, "sint64[]", { 1, "9223372036854775808" }, "out of range for sint64")
    bad_value(fake, "real32[]", 1.5, "real32[] expected, got number")
    assert.same({}, fake["real32[]"])  -- a refused value changes nothing
  end)

  it("infers a CIM type from the Lua value when the property's is unknown", function()
    assert.same({ 42, VT.I4 }, { valuetest.roundtrip(42, "") })
    assert.same({ "1099511627776", VT.BSTR }, { valuetest.roundtrip(1 << 40, "") })  -- beyond sint32: sint64
    assert.same({ 2.5, VT.R8 }, { valuetest.roundtrip(2.5, "") })
    assert.same({ TEXT, VT.BSTR }, { valuetest.roundtrip(TEXT, "") })
    assert.same({ true, VT.BOOL }, { valuetest.roundtrip(true, "") })
    assert.same({ { 1, 2 }, VT.ARRAY | VT.I4 }, { valuetest.roundtrip({ 1, 2 }, "") })
    assert.same({ { 1, 2.5 }, VT.ARRAY | VT.R8 }, { valuetest.roundtrip({ 1, 2.5 }, "") })
    assert.same({ { "1", "1099511627776" }, VT.ARRAY | VT.BSTR }, { valuetest.roundtrip({ 1, 1 << 40 }, "") })
    assert.same({ nil, VT.NULL }, { valuetest.roundtrip({}, "") })  -- no element to go by
    assert.same({ 0, "empty" }, { valuetest.cimtype("") })
    assert.same({ nil, "number, string, boolean, table or wmi.Object expected, got function" },
                { valuetest.roundtrip(print, "") })
    assert.same({ nil, "number, string, boolean or wmi.Object expected, got table" },
                { valuetest.roundtrip({ { 1 } }, "") })  -- arrays do not nest
    assert.same({ nil, "sint32 expected, got string" }, { valuetest.roundtrip({ 1, "x" }, "") })
  end)
end)

-- What WMI hands out is read without trust: NULL BSTRs, empty arrays as VT_NULL,
-- VARIANT types and shapes it should never send give a value or a clear error,
-- never a crash, and whatever the VARIANT held is released either way.
describe("bad input from WMI", function()
  local function push(kind, ...) return valuetest.push(kind, ...) end
  local function unsupported(kind, message)
    assert.has_error(function() push(kind) end, message)
  end

  after_each(function()
    assert_valuetest_released()
    helpers.assert_all_released()
  end)

  it("reads a NULL BSTR as an empty string, in arrays too", function()
    assert.equal("", push("null_bstr"))
    assert.equal("", push("null_bstr", "datetime"))
    assert.equal("", push("null_bstr", "uint64"))  -- no decimal in it: the text, as is
    assert.same({ "", "x" }, push("null_bstr_array"))
  end)

  it("reads VT_NULL, VT_EMPTY and NULL pointers as nil, and empty arrays as nil or {}", function()
    assert.is_nil(push("vt_null"))
    assert.is_nil(push("vt_empty"))
    assert.is_nil(push("empty_array_null"))  -- how Wine sends an empty array
    assert.same({}, push("empty_safearray"))
    assert.is_nil(push("null_safearray"))
    assert.is_nil(push("byref_null"))
    assert.is_nil(push("null_unknown"))
  end)

  it("ends a string at its first NUL and reads a lone surrogate as U+FFFD", function()
    assert.equal("ab", push("nul_in_bstr"))
    assert.equal("a\u{FFFD}b", push("lone_surrogate"))
  end)

  it("reads uint64 above math.maxinteger wrapped like string.unpack('J'), other text as text", function()
    assert.equal(string.unpack(">J", ("\xff"):rep(8)), push("uint64_max"))
    assert.equal(-1, push("uint64_max"))
    assert.same({ -1, math.mininteger, 0 }, push("uint64_array"))
    assert.equal(math.mininteger, push("sint64_min"))
    assert.equal(-1, push("ui8"))              -- VT_UI8 2^64-1
    assert.equal(math.mininteger, push("i8"))  -- VT_I8
    -- No integer holds these: the decimal text stays text rather than becoming a wrong number.
    assert.equal("18446744073709551616", push("uint64_over"))
    assert.equal("18446744073709551615", push("uint64_max", "sint64"))
    assert.equal("18446744073709551615", push("uint64_max", ""))
  end)

  it("reads integer carriers of unsigned CIM types as unsigned", function()
    assert.equal(4294967295, push("uint32_max"))        -- VT_I4 -1
    assert.equal(-1, push("uint32_max", "sint32"))
    assert.equal(-1, push("uint32_max", ""))            -- no CIM type: the carrier's own sign
    assert.same({ 4294967295, 2147483649 }, push("uint32_array"))
    assert.equal(4294967295, push("ui4"))
    assert.equal(65535, push("uint16_i2"))              -- VT_I2 -1
    assert.equal(0xFFFD, push("char16_i2"))
    assert.equal(-1, push("i1"))
    assert.equal(255, push("i1", "uint8"))
    assert.equal(255, push("ui1"))
    assert.is_true(push("bool_one"))                    -- any non-zero VARIANT_BOOL
    assert.equal(string.unpack("f", string.pack("f", 0.1)), push("r4"))
    assert.equal("float", math.type(push("r4")))
  end)

  it("reads VARIANT arrays, nested ones and references", function()
    local t = push("variant_array")
    assert.same({ 1, "x" }, { t[1], t[2] })
    assert.is_nil(t[3])
    assert.is_true(t[4])
    assert.same({ { 1, 2 }, 3 }, push("nested_array"))
    assert.equal(42, push("byref_i4"))
    local deep = push("nested", "", 100)  -- 7 in 100 arrays of one
    for _ = 1, 100 do deep = deep[1] end
    assert.equal(7, deep)
  end)

  it("raises a clear error for VARIANT types WMI does not send", function()
    unsupported("cy", "unsupported VARIANT type 0x6")
    unsupported("date", "unsupported VARIANT type 0x7")
    unsupported("error", "unsupported VARIANT type 0xa")
    unsupported("variant_by_value", "unsupported VARIANT type 0xc")
    unsupported("decimal", "unsupported VARIANT type 0xe")
    unsupported("record", "unsupported VARIANT type 0x24")
    unsupported("unknown_vt", "unsupported VARIANT type 0x24")
    unsupported("cy_array", "unsupported VARIANT type 0x2006")
    unsupported("matrix", "unsupported 2-dimensional array in a VARIANT")
  end)

  it("raises a clear error for malformed VARIANTs instead of crashing", function()
    unsupported("byref_loop", "unsupported VARIANT (VARIANTs nested more than 100 deep)")
    assert.has_error(function() push("nested", "", 101) end,
                     "unsupported VARIANT (VARIANTs nested more than 100 deep)")
    unsupported("elemsize_mismatch", "malformed array in a VARIANT (4-byte elements where 8-byte ones are due)")
    unsupported("no_data", "malformed array in a VARIANT (3 elements, no data)")
  end)

  it("raises a clear error for an interface that is no IWbemClassObject, and releases it", function()
    unsupported("not_wbem", "unsupported object in a VARIANT (not an IWbemClassObject)")
    unsupported("not_wbem_array", "unsupported object in a VARIANT (not an IWbemClassObject)")
    assert.equal(0, valuetest.stats().probes)
  end)

  it("gives the same through a property read, an error as a marker, and releases the VARIANT", function()
    local fake = valuetest.fake()
    for _, kind in ipairs(valuetest.kinds) do
      local ok, value = pcall(push, kind, nil, 3)
      local read = fake[kind]
      if ok then
        assert.same(value, read, kind)
      else
        -- A property read never raises for a value it cannot convert (issue 22):
        -- the marker carries the reason and the VARIANT's type.
        local why = value:match("^[^:]+:%d+: (.*)$")
        assert.same({ true, why }, { read.unconvertible, read.message }, kind)
        assert.equal("integer", math.type(read.vartype), kind)
        assert.equal(("<unconvertible VARIANT 0x%x: %s>"):format(read.vartype, why), tostring(read), kind)
      end
      -- Released at once, not at some collection: an error raised while the
      -- VARIANT is pushed must not leave it behind.
      assert.equal(0, valuetest.stats().probes, kind)
    end
    fake["uint8[]"] = { 1, 2 }
    local seen = {}
    for name, value in pairs(fake) do seen[name] = value end
    assert.same({ 1, 2 }, seen["uint8[]"])
    assert.is_nil(seen.uint64)
  end)
end)
