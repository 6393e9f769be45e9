-- Connections and synchronous calls against Wine's real WMI (wbemprox).
--
-- Wine quirk these specs respect: an instance reads its values from its class's
-- table, which the next query of the same class refills. Objects of one query are
-- read (into plain Lua values) before the next query of the same class runs.
local wmi = require "wmi"
local helpers = require "spec.helpers"

local HKCU = 0x80000001  -- a uint32 on Windows; Wine declares hDefKey sint32: same bits

describe("wmi.connect", function()
  it("connects to root\\cimv2 by default, to a namespace, and with options", function()
    for _, how in ipairs { {}, { "root\\cimv2" }, { { namespace = "root\\cimv2", authentication = "integrity",
                                                     impersonation = "impersonate" } } } do
      local svc = assert(wmi.connect(table.unpack(how)))
      assert.equal("wmi.Services (root\\cimv2)", tostring(svc))
      assert.equal(1, #svc:query("SELECT * FROM Win32_OperatingSystem"))
      svc:close()
    end
  end)

  it("fails with the exact HRESULT for an unknown namespace and a remote host", function()
    helpers.assert_fail(0x8004100E, "WBEM_E_INVALID_NAMESPACE", wmi.connect("root\\nope"))
    -- Wine's locator refuses every remote host with WBEM_E_TRANSPORT_FAILURE at once.
    helpers.assert_fail(0x80041015, "WBEM_E_TRANSPORT_FAILURE",
      wmi.connect { host = "srv01", user = "DOM\\u", password = "secret" })
  end)

  it("raises argument errors for bad arguments and options", function()
    assert.has_error(function() wmi.connect(42) end,
      "bad argument #1 to 'connect' (nil, string or table expected, got number)")
    assert.has_error(function() wmi.connect { namespace = 1 } end,
      "bad option 'namespace' to 'connect' (string expected, got number)")
    assert.has_error(function() wmi.connect { authentication = "loud" } end,
      "bad option 'authentication' to 'connect' (invalid value 'loud')")
    assert.has_error(function() wmi.connect { impersonation = true } end,
      "bad option 'impersonation' to 'connect' (string expected, got boolean)")
    assert.error_matches(function() wmi.connect { apartment = {} } end, "wmi.Apartment expected")
    assert.has_error(function() wmi.connect { locator = "nope" } end,
      "bad option 'locator' to 'connect' (not a CLSID: nope)")
    assert.has_error(function() wmi.connect { locator = 7 } end,
      "bad option 'locator' to 'connect' (string expected, got number)")
  end)

  it("connects through the IWbemLocator class that 'locator' names", function()
    -- CLSID_WbemLocator spelled out is the default; an unregistered class is the COM error.
    local svc = assert(wmi.connect { locator = "{4590F811-1D3A-11D0-891F-00AA004B2E24}" })
    assert.equal(1, #svc:query("SELECT * FROM Win32_OperatingSystem"))
    svc:close()
    helpers.assert_fail(0x80040154, "REGDB_E_CLASSNOTREG",
      wmi.connect { locator = "{00000000-0000-0000-0000-00000000CAFE}" })
  end)
end)

describe("wmi.Services", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  it("query and instances agree on Win32_Process", function()
    local by_query = svc:query("SELECT * FROM Win32_Process")
    assert.is_true(#by_query >= 5)
    for _, p in ipairs(by_query) do
      assert.equal("integer", math.type(p.ProcessId))
      assert.equal("string", type(p.Name))
      assert.equal(tostring(p.ProcessId), p.Handle)  -- Handle is the id as a string
    end
    local query_ids = helpers.keys(by_query, "ProcessId")
    assert.same(query_ids, helpers.keys(svc:instances("Win32_Process"), "ProcessId"))
  end)

  it("filters with WQL, by key and by name", function()
    -- Other lua.exe processes may come and go (a child spec, a parallel run):
    -- filter on processes the prefix has exactly one of.
    helpers.settled_processes(svc)   -- rpcss.exe starts on demand: make sure it runs
    local pair = svc:query("SELECT * FROM Win32_Process WHERE Name = 'services.exe' OR Name = 'rpcss.exe'")
    assert.equal(2, #pair)
    local ids = { [pair[1].ProcessId] = pair[1].Name, [pair[2].ProcessId] = pair[2].Name }
    for id, name in pairs(ids) do
      local by_id = svc:query(("SELECT ProcessId, Name FROM Win32_Process WHERE ProcessId = %d"):format(id))
      assert.equal(1, #by_id)
      assert.equal(name, by_id[1].Name)
    end
    local found = svc:query("SELECT Name FROM Win32_Process WHERE Name = 'services.exe'")
    assert.equal(1, #found)
    assert.equal("services.exe", found[1].Name)
  end)

  it("each iterates lazily and closes its enumerator on break", function()
    local ids = {}
    for p in svc:each("SELECT * FROM Win32_Process") do ids[#ids + 1] = p.ProcessId end
    assert.same(helpers.keys(svc:query("SELECT * FROM Win32_Process"), "ProcessId"), helpers.sorted(ids))
    assert.equal(0, wmi.stats().enumerators)
    for _ in svc:each("SELECT * FROM Win32_Service") do  -- luacheck: ignore 512
      assert.equal(1, wmi.stats().enumerators)
      break
    end
    assert.equal(0, wmi.stats().enumerators)
  end)

  it("each raises for a query that cannot start, like io.lines", function()
    assert.error_matches(function() for _ in svc:each("SELEC * FRM x") do end end,
      "WBEM_E_INVALID_QUERY %(0x80041017%)")
    assert.equal(0, wmi.stats().enumerators)
  end)

  it("gets single objects by path", function()
    local first = svc:query("SELECT * FROM Win32_Process")[1]
    local handle, id, name = first.Handle, first.ProcessId, first.Name
    local same = assert(svc:get(("Win32_Process.Handle=%q"):format(handle)))
    assert.equal(id, same.ProcessId)
    assert.equal(name, same.Name)
  end)

  it("reports WMI failures as nil, message, hresult", function()
    helpers.assert_fail(0x80041017, "WBEM_E_INVALID_QUERY", svc:query("SELEC * FRM x"))
    helpers.assert_fail(0x80041002, "WBEM_E_NOT_FOUND", svc:get("Win32_Nope"))
    helpers.assert_fail(0x80041002, "WBEM_E_NOT_FOUND", svc:get('Win32_Process.Handle="99999"'))
    helpers.assert_fail(0x80041017, "WBEM_E_INVALID_QUERY", svc:get("%%%"))
    -- Wine answers a query of an unknown class with no objects (Windows: WBEM_E_INVALID_CLASS).
    assert.equal(0, #svc:query("SELECT * FROM Win32_Nope"))
  end)

  it("reports what Wine's WMI lacks as exactly that", function()
    -- CreateClassEnum, PutInstance and DeleteInstance are stubs in Wine 8.
    helpers.assert_fail(0x80041001, "WBEM_E_FAILED", svc:classes())
    helpers.assert_fail(0x80041001, "WBEM_E_FAILED", svc:put(assert(svc:get("Win32_Process"))))
    helpers.assert_fail(0x80041001, "WBEM_E_FAILED", svc:delete('Win32_Process.Handle="1"'))
  end)

  it("calls a method with out-parameters: Win32_Process.GetOwner", function()
    local me = svc:query("SELECT * FROM Win32_Process WHERE Name = 'services.exe'")[1]
    local out = assert(svc:exec(me:path(), "GetOwner"))
    assert.equal(0, out.ReturnValue)
    assert.equal("string", type(out.User))
    assert.is_true(#out.User > 0)
  end)

  it("round-trips non-ASCII and non-BMP text through the registry (StdRegProv)", function()
    local reg = assert(wmi.connect("root\\default"))
    local key, name, value = "Software\\luawmi-spec", "ünï €", "h€llo 😀 𝄞"
    local function exec(method, params)
      params.hDefKey, params.sSubKeyName = HKCU, key
      return assert(reg:exec("StdRegProv", method, params))
    end
    assert.equal(0, exec("CreateKey", {}).ReturnValue)
    assert.equal(0, exec("SetStringValue", { sValueName = name, sValue = value }).ReturnValue)
    local got = exec("GetStringValue", { sValueName = name })
    assert.equal(0, got.ReturnValue)
    assert.equal(value, got.sValue)
    local values = exec("EnumValues", {})
    assert.same({ name }, values.sNames)
    assert.same({ 1 }, values.Types)  -- REG_SZ
    assert.equal(0, exec("DeleteKey", {}).ReturnValue)
    assert.equal(2, exec("GetStringValue", { sValueName = name }).ReturnValue)  -- ERROR_FILE_NOT_FOUND
    reg:close()
  end)

  it("takes method parameters as an in-parameters object too", function()
    local reg = assert(wmi.connect("root\\default"))
    local params = assert(assert(reg:get("StdRegProv")):inparams("EnumKey"))
    params.hDefKey = HKCU
    params.sSubKeyName = "Software"
    local out = assert(reg:exec("StdRegProv", "EnumKey", params))
    assert.equal(0, out.ReturnValue)
    assert.is_true(helpers.contains(out.sNames, "Wine"))
    reg:close()
  end)

  it("raises argument errors naming the argument", function()
    assert.has_error(function() svc:query() end, "bad argument #1 to 'query' (string expected, got no value)")
    assert.has_error(function() svc:query(1, 2) end, "bad argument #2 to 'query' (table expected, got number)")
    assert.has_error(function() svc:instances({}) end,
      "bad argument #1 to 'instances' (string expected, got table)")
    assert.has_error(function() svc:get(nil) end, "bad argument #1 to 'get' (string expected, got nil)")
    assert.has_error(function() svc:get("") end, "bad argument #1 to 'get' (empty object path)")
    assert.has_error(function() svc:exec("StdRegProv") end,
      "bad argument #2 to 'exec' (string expected, got no value)")
    assert.has_error(function() svc:exec("StdRegProv", "EnumKey", 5) end,
      "bad argument #3 to 'exec' (table or wmi.Object expected, got number)")
    assert.has_error(function() svc:exec("StdRegProv", "EnumKey", { nope = 1 }) end,
      "bad argument #3 to 'exec' (no parameter 'nope')")
    assert.has_error(function() svc:put("x") end, "bad argument #1 to 'put' (wmi.Object expected, got string)")
    assert.has_error(function() svc:delete(false) end,
      "bad argument #1 to 'delete' (string expected, got boolean)")
    assert.has_error(function() svc.query(42, "x") end,
      "bad argument #1 to 'query' (wmi.Services expected, got number)")
  end)

  it("closes once, harmlessly twice, and raises on use after close", function()
    local other = assert(wmi.connect())
    assert.equal(2, wmi.stats().services)
    other:close()
    other:close()
    assert.equal("wmi.Services (closed)", tostring(other))
    assert.equal(1, wmi.stats().services)
    assert.has_error(function() other:query("SELECT * FROM Win32_Process") end,
      "attempt to use a closed wmi.Services")
    do
      local _ <close> = assert(wmi.connect())
      assert.equal(2, wmi.stats().services)
    end
    assert.equal(1, wmi.stats().services)
  end)
end)

describe("wmi.init_security", function()
  it("calls CoInitializeSecurity only when asked, with checked options", function()
    assert.has_error(function() wmi.init_security { authentication = "loud" } end,
      "bad option 'authentication' to 'init_security' (invalid value 'loud')")
    assert.has_error(function() wmi.init_security(1) end,
      "bad argument #1 to 'init_security' (table expected, got number)")
    -- Wine's CoInitializeSecurity is a stub that always succeeds; Windows answers
    -- a second call (or one after COM marshalled anything) with RPC_E_TOO_LATE.
    assert.is_true(wmi.init_security { authentication = "packet", impersonation = "identify", insecure = true })
    assert.is_true(wmi.init_security())
  end)
end)

describe("wmi.hresult", function()
  it("names HRESULTs, signed or unsigned", function()
    assert.same({ "WBEM_E_INVALID_QUERY", "Invalid query" }, { wmi.hresult(0x80041017) })
    assert.same({ "WBEM_E_NOT_FOUND", "Object not found" }, { wmi.hresult(-2147217406) })
    assert.equal("REGDB_E_CLASSNOTREG", (wmi.hresult(0x80040154)))
    assert.equal("0x80001234", (wmi.hresult(0x80001234)))
    assert.has_error(function() wmi.hresult("x") end, "bad argument #1 to 'hresult' (number expected, got string)")
  end)
end)

describe("wmi.datetime", function()
  it("parses CIM datetimes and intervals", function()
    assert.same({ year = 2023, month = 11, day = 29, hour = 13, min = 45, sec = 30, usec = 123456,
                  utc_offset = -300 }, wmi.datetime("20231129134530.123456-300"))
    assert.same({ days = 2, hour = 3, min = 4, sec = 5, usec = 6, interval = true },
      wmi.datetime("00000002030405.000006:000"))
    local partial = wmi.datetime("2023****134530.******+000")
    assert.equal(2023, partial.year)
    assert.is_nil(partial.month)
    assert.is_nil(partial.usec)
    assert.same({ nil, 'not a CIM datetime: "yesterday"' }, { wmi.datetime("yesterday") })
    assert.has_error(function() wmi.datetime(1) end, "bad argument #1 to 'datetime' (string expected, got number)")
  end)

  it("reads a real datetime from WMI", function()
    local svc = assert(wmi.connect())
    local os_info = svc:query("SELECT * FROM Win32_OperatingSystem")[1]
    local boot = assert(wmi.datetime(os_info.LastBootUpTime))
    assert.is_true(boot.year >= 2000)
    assert.is_true(boot.month >= 1 and boot.month <= 12)
    svc:close()
  end)
end)
