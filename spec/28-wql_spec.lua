-- Queries built from tables (wmi.wql, wmi.quote, every query entry point) and
-- associations (svc:associators, svc:references and their _async forms). The
-- exact WQL is read back from what the test WMI server recorded; matches come
-- from the server's TestWmi_Item (Windows' string literals, which Wine's lexer
-- lacks) or from Wine's own classes.
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local INVALID_QUERY = 0x80041017
local DISK = [[Win32_LogicalDisk.DeviceId="C:"]]
local PARTITION = [[Win32_DiskPartition.DeviceId="Disk #0, Partition #0"]]

-- What the server was asked, as { method, wql } pairs.
local function recorded()
  local out = {}
  for i, r in ipairs(testwmi.queries()) do out[i] = { r.method, r.wql } end
  return out
end

local function relpaths(list)
  local out = {}
  for i, obj in ipairs(list) do out[i] = obj:get("__RELPATH") end
  return helpers.sorted(out)
end

-- Runs an async call with handlers: the objects' relpaths and its status.
local function collect(start)
  local got, status = {}, nil
  local call = assert(start {
    indicate = function(obj) got[#got + 1] = obj:get("__RELPATH") end,
    status = function(ok, _, hr) status = { ok, hr } end,
  })
  assert.is_true(call:wait(20000))
  call:close()
  return helpers.sorted(got), status
end

describe("wmi.wql", function()
  it("writes a select with properties, sorted name = value entries and operator entries", function()
    assert.equal([[SELECT Name, ProcessId FROM Win32_Process WHERE Name = "lua.exe"]],
      wmi.wql { from = "Win32_Process", properties = { "Name", "ProcessId" }, where = { Name = "lua.exe" } })
    assert.equal("SELECT * FROM Win32_Process", wmi.wql { from = "Win32_Process" })
    assert.equal([[SELECT * FROM T WHERE Size >= 10 AND Name LIKE "%lua%" AND A = TRUE AND B = FALSE]]
      .. [[ AND C = -3 AND D = 0.5 AND E IS NULL]],
      wmi.wql { from = "T", where = { { "Size", ">=", 10 }, { "Name", "like", "%lua%" },
        E = wmi.NULL, D = 0.5, C = -3, B = false, A = true } })
  end)

  it("renders each operator, and NULL as IS NULL / IS NOT NULL", function()
    local ops = { { "=", "=" }, { "<>", "<>" }, { "!=", "<>" }, { "<", "<" }, { ">", ">" }, { "<=", "<=" },
                  { ">=", ">=" } }
    for _, op in ipairs(ops) do
      assert.equal("SELECT * FROM T WHERE N " .. op[2] .. " 1", wmi.wql { from = "T", where = { { "N", op[1], 1 } } })
    end
    assert.equal([[SELECT * FROM T WHERE O ISA "CIM_Process"]],
      wmi.wql { from = "T", where = { { "O", "ISA", "CIM_Process" } } })
    assert.equal("SELECT * FROM T WHERE N IS NULL AND M IS NOT NULL AND K IS NULL AND J IS NOT NULL",
      wmi.wql { from = "T", where = { { "N", "IS", wmi.NULL }, { "M", "IS NOT", wmi.NULL },
        { "K", "=", wmi.NULL }, { "J", "<>", wmi.NULL } } })
  end)

  it("quotes values in double quotes, escaping only backslash and double quote", function()
    assert.equal([["' OR Name LIKE '%"]], wmi.quote("' OR Name LIKE '%"))
    assert.equal([["\\"]], wmi.quote("\\"))
    assert.equal([["\"both\" 'quotes'"]], wmi.quote([["both" 'quotes']]))
    assert.equal('"line\nbreak"', wmi.quote("line\nbreak"))
    assert.equal('"naïve ☕"', wmi.quote("naïve ☕"))
    assert.same({ "42", "1.5", "1e+300", "2.0", "TRUE", "FALSE", "NULL" },
      { wmi.quote(42), wmi.quote(1.5), wmi.quote(1e300), wmi.quote(2.0), wmi.quote(true), wmi.quote(false),
        wmi.quote(wmi.NULL) })
  end)

  it("writes event queries: WITHIN, ISA and where on TargetInstance", function()
    assert.equal([[SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA "Win32_Process"]]
      .. [[ AND TargetInstance.Name = "notepad.exe"]],
      wmi.wql { event = "__InstanceCreationEvent", within = 1, isa = "Win32_Process",
        where = { Name = "notepad.exe" } })
    assert.equal([[SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName = "lua.exe"]],
      wmi.wql { event = "Win32_ProcessStartTrace", where = { ProcessName = "lua.exe" } })
  end)

  it("writes ASSOCIATORS OF and REFERENCES OF with WQL's keywords, no AND", function()
    assert.equal("ASSOCIATORS OF {" .. DISK .. "} WHERE AssocClass = Win32_LogicalDiskToPartition"
      .. " ResultClass = Win32_DiskPartition Role = Dependent ResultRole = Antecedent RequiredQualifier = Dynamic"
      .. " RequiredAssocQualifier = Association ClassDefsOnly",
      wmi.wql { associators_of = DISK, assoc_class = "Win32_LogicalDiskToPartition",
        result_class = "Win32_DiskPartition", role = "Dependent", result_role = "Antecedent",
        required_qualifier = "Dynamic", required_assoc_qualifier = "Association", classes_only = true })
    assert.equal("REFERENCES OF {" .. DISK .. "} WHERE ResultClass = Win32_LogicalDiskToPartition Role = Dependent"
      .. " RequiredQualifier = Dynamic ClassDefsOnly",
      wmi.wql { references_of = DISK, result_class = "Win32_LogicalDiskToPartition", role = "Dependent",
        required_qualifier = "Dynamic", classes_only = true })
    assert.equal("ASSOCIATORS OF {" .. DISK .. "}", wmi.wql { associators_of = DISK, classes_only = false })
  end)

  it("raises argument errors naming the field; names can never carry WQL", function()
    local function err(t, msg)
      assert.has_error(function() wmi.wql(t) end, "bad argument #1 to 'wql' (" .. msg .. ")")
    end
    err({ from = "T", where = { Name = print } }, "where.Name: function cannot be a WQL value")
    err({ from = "T", where = { Name = {} } }, "where.Name: table cannot be a WQL value")
    err({ from = "T", where = { N = 0 / 0 } }, "where.N: number is not finite")
    err({ from = "T", where = { N = "a\0b" } }, "where.N: string contains a NUL")
    err({ from = "T", where = { N = "\xff" } }, "where.N: string is not valid UTF-8")
    err({ from = "T WHERE 1 = 1" }, [[from: "T WHERE 1 = 1" is not a WMI name]])
    err({ from = "T", where = { ["Name = 1 OR Name"] = 1 } },
      [[where.Name = 1 OR Name (property): "Name = 1 OR Name" is not a WMI name]])
    err({ from = "T", properties = { "Name FROM X --" } }, [[properties[1]: "Name FROM X --" is not a WMI name]])
    err({ from = "T", where = { { "N", "OR", 1 } } }, [[where[1]: unknown operator "OR"]])
    err({ from = "T", where = { { "N", ">", wmi.NULL } } }, "where[1]: > cannot compare with wmi.NULL")
    err({ from = "T", where = { { "N", "IS", 1 } } }, "where[1]: IS takes wmi.NULL only")
    err({ from = "T", where = { { "N", "ISA", "X\" OR 1" } } }, [[where[1] (class): "X\" OR 1" is not a WMI name]])
    err({ associators_of = "X.K=\"}\"" }, [[associators_of: "X.K=\"}\"" is no object path WQL can carry]])
    err({ associators_of = DISK, role = "Dependent ResultClass = X" },
      [[role: "Dependent ResultClass = X" is not a WMI name]])
    err({ from = "T", wehre = {} }, [[unknown field "wehre" in a select query]])
    err({ event = "E", within = 0 }, "within: positive number of seconds expected, got 0")
    err({}, "a query table needs from, event, associators_of or references_of")
    assert.has_error(function() wmi.quote(print) end, "bad argument #1 to 'quote' (function cannot be a WQL value)")
  end)
end)

describe("a query table at every entry point", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  -- Each value finds exactly its own TestWmi_Item, and the server got exactly this text.
  local CASES = {
    { "' OR Name LIKE '%", [[SELECT * FROM TestWmi_Item WHERE Name = "' OR Name LIKE '%"]] },
    { "\\", [[SELECT * FROM TestWmi_Item WHERE Name = "\\"]] },
    { "\\\\", [[SELECT * FROM TestWmi_Item WHERE Name = "\\\\"]] },
    { [["both" 'quotes']], [[SELECT * FROM TestWmi_Item WHERE Name = "\"both\" 'quotes'"]] },
    { "line\nbreak", 'SELECT * FROM TestWmi_Item WHERE Name = "line\nbreak"' },
    { "naïve café ☕ 日本", [[SELECT * FROM TestWmi_Item WHERE Name = "naïve café ☕ 日本"]] },
  }

  it("a value never changes the query's shape: exactly the one intended object matches (sync)", function()
    assert.equal(8, #assert(svc:query { from = "TestWmi_Item" }))    -- the decoys are there
    for _, case in ipairs(CASES) do
      testwmi.reset()
      local list = assert(svc:query { from = "TestWmi_Item", where = { Name = case[1] } })
      assert.same({ { "ExecQuery", case[2] } }, recorded())
      assert.equal(1, #list)
      assert.equal(case[1], list[1].Name)
    end
  end)

  it("each, stream, query_async and fanout take the table too", function()
    local t = { from = "TestWmi_Item", properties = { "Id", "Name" }, where = { Name = [["both" 'quotes']] } }
    local text = [[SELECT Id, Name FROM TestWmi_Item WHERE Name = "\"both\" 'quotes'"]]
    local names = {}
    for obj in svc:each(t) do names[#names + 1] = obj.Name end
    for obj in svc:stream(t) do names[#names + 1] = obj.Name end
    local got = {}
    local call = assert(svc:query_async(t, { indicate = function(obj) got[#got + 1] = obj.Name end }))
    assert.is_true(call:wait(10000))
    assert.is_true(call:result())
    call:close()
    names[#names + 1] = got[1]
    local run = wmi.fanout({ "localhost" }, t, { locator = testwmi.clsid, indicate = function(obj)
      names[#names + 1] = obj.Name
    end })
    assert.is_true(run:wait(20000))
    assert.same({ [["both" 'quotes']], [["both" 'quotes']], [["both" 'quotes']], [["both" 'quotes']] }, names)
    assert.same({ { "ExecQuery", text }, { "ExecQueryAsync", text }, { "ExecQueryAsync", text },
      { "ExecQueryAsync", text } }, recorded())
  end)

  it("raises argument errors naming the entry point and the argument", function()
    local bad = { from = "TestWmi_Item", where = { Name = print } }
    local msg = "(where.Name: function cannot be a WQL value)"
    assert.has_error(function() svc:query(bad) end, "bad argument #1 to 'query' " .. msg)
    assert.has_error(function() svc:each(bad) end, "bad argument #1 to 'each' " .. msg)
    assert.has_error(function() svc:stream(bad) end, "bad argument #1 to 'stream' " .. msg)
    assert.has_error(function() svc:query_async(bad, {}) end, "bad argument #1 to 'query_async' " .. msg)
    assert.has_error(function() svc:subscribe(bad, {}) end, "bad argument #1 to 'subscribe' " .. msg)
    assert.has_error(function() wmi.fanout({ "a" }, bad) end, "bad argument #2 to 'fanout' " .. msg)
    assert.same({}, recorded())
  end)

  it("subscribes to an event query built from a table (handlers and stream)", function()
    testwmi.configure { event_interval = 10 }
    local t = { event = "__InstanceCreationEvent", within = 1, isa = "Win32_Process",
                where = { Name = "notepad.exe" } }
    local text = [[SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA "Win32_Process"]]
      .. [[ AND TargetInstance.Name = "notepad.exe"]]
    local seqs = {}
    local call = assert(svc:subscribe(t, { indicate = function(ev) seqs[#seqs + 1] = { ev.Sequence, ev:class() } end }))
    assert.is_true(th.until_true(function() return #seqs >= 2 end, 10000))
    call:close()
    assert.same({ 1, "__InstanceCreationEvent" }, seqs[1])
    assert.same({ 2, "__InstanceCreationEvent" }, seqs[2])
    local n = {}
    for ev in svc:stream(t, { subscribe = true }) do
      n[#n + 1] = ev.Sequence
      if #n == 2 then break end
    end
    assert.same({ 1, 2 }, n)
    assert.same({ { "ExecNotificationQueryAsync", text }, { "ExecNotificationQueryAsync", text } }, recorded())
  end)

  it("where with each operator, on Wine's Win32_DiskPartition, matches what Lua's filter finds", function()
    local all = assert(svc:query("SELECT * FROM Win32_DiskPartition"))
    assert.equal(2, #all)
    local function wine(entry, pred, text)
      testwmi.reset()
      local got = relpaths(assert(svc:query { from = "Win32_DiskPartition", where = { entry } }))
      local want = {}
      for _, p in ipairs(all) do if pred(p) then want[#want + 1] = p:get("__RELPATH") end end
      assert.same(helpers.sorted(want), got)
      assert.same({ { "ExecQuery", "SELECT * FROM Win32_DiskPartition WHERE " .. text } }, recorded())
      return #got
    end
    local counts = {
      wine({ "DiskIndex", "=", 1 }, function(p) return p.DiskIndex == 1 end, "DiskIndex = 1"),
      wine({ "DiskIndex", "<>", 1 }, function(p) return p.DiskIndex ~= 1 end, "DiskIndex <> 1"),
      wine({ "DiskIndex", "<", 1 }, function(p) return p.DiskIndex < 1 end, "DiskIndex < 1"),
      wine({ "DiskIndex", ">", 0 }, function(p) return p.DiskIndex > 0 end, "DiskIndex > 0"),
      wine({ "DiskIndex", "<=", 0 }, function(p) return p.DiskIndex <= 0 end, "DiskIndex <= 0"),
      wine({ "DiskIndex", ">=", 0 }, function(p) return p.DiskIndex >= 0 end, "DiskIndex >= 0"),
      -- (Wine's LIKE takes a trailing % only)
      wine({ "DeviceId", "LIKE", "disk #1%" }, function(p) return p.DeviceId:find("^Disk #1") end,
        [[DeviceId LIKE "disk #1%"]]),
      wine({ "Bootable", "=", true }, function(p) return p.Bootable end, "Bootable = TRUE"),
      wine({ "Type", "IS NOT", wmi.NULL }, function(p) return p.Type ~= nil end, "Type IS NOT NULL"),
      wine({ "Type", "IS", wmi.NULL }, function(p) return p.Type == nil end, "Type IS NULL"),
    }
    assert.same({ 1, 1, 1, 1, 1, 2, 1, 1, 2, 0 }, counts)
    -- Wine's WQL has no ISA in data queries: the text is right, Wine refuses it.
    testwmi.reset()
    helpers.assert_fail(INVALID_QUERY, "WBEM_E_INVALID_QUERY",
      svc:query { from = "Win32_DiskPartition", where = { { "DeviceId", "ISA", "CIM_DiskPartition" } } })
    assert.same({ { "ExecQuery", [[SELECT * FROM Win32_DiskPartition WHERE DeviceId ISA "CIM_DiskPartition"]] } },
      recorded())
  end)
end)

describe("Wine's own WQL lexer", function()
  local svc
  before_each(function() svc = assert(wmi.connect()) end)
  after_each(function() svc:close() helpers.assert_all_released() end)

  it("finds the one process a value names and never more; refuses an escaped quote (it has no escapes)", function()
    local all = assert(svc:query("SELECT Name, ProcessId FROM Win32_Process"))
    local lua = 0
    for _, p in ipairs(all) do if p.Name == "lua.exe" then lua = lua + 1 end end
    assert.is_true(#all > 1 and lua >= 1)
    assert.equal(lua, #assert(svc:query { from = "Win32_Process", where = { Name = "lua.exe" } }))
    assert.equal(0, #assert(svc:query { from = "Win32_Process", where = { Name = "lua.exe' OR Name LIKE '%" } }))
    helpers.assert_fail(INVALID_QUERY, "WBEM_E_INVALID_QUERY",
      svc:query { from = "Win32_Process", where = { Name = [[lua".exe]] } })
  end)
end)

describe("associations", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("associators of a Win32_LogicalDisk: its partition, sync and async, object or path", function()
    local disk = assert(svc:get(DISK))
    -- The partition is the Antecedent of the disk's Win32_LogicalDiskToPartition.
    local want
    for _, link in ipairs(assert(svc:query("SELECT * FROM Win32_LogicalDiskToPartition"))) do
      if link.Dependent:find(DISK, 1, true) then want = link.Antecedent:match(":(.*)$") end
    end
    assert.equal(PARTITION, want)
    testwmi.reset()
    assert.same({ PARTITION }, relpaths(assert(svc:associators(disk))))
    assert.same({ PARTITION }, relpaths(assert(svc:associators(DISK, { result_class = "Win32_DiskPartition" }))))
    local got, status = collect(function(h)
      return svc:associators_async(disk, { assoc_class = "Win32_LogicalDiskToPartition" }, h)
    end)
    assert.same({ PARTITION }, got)
    assert.same({ true, 0 }, status)
    assert.same({
      { "ExecQuery", "ASSOCIATORS OF {" .. DISK .. "}" },
      { "ExecQuery", "ASSOCIATORS OF {" .. DISK .. "} WHERE ResultClass = Win32_DiskPartition" },
      { "ExecQueryAsync", "ASSOCIATORS OF {" .. DISK .. "} WHERE AssocClass = Win32_LogicalDiskToPartition" },
    }, recorded())
  end)

  it("every filter keyword reaches the server; Wine ignores them all", function()
    local filters = { assoc_class = "Win32_LogicalDiskToPartition", result_class = "Win32_DiskDrive",
      role = "Antecedent", result_role = "Dependent", required_qualifier = "Key",
      required_assoc_qualifier = "Association", classes_only = true }
    -- Windows would return the class definitions of nothing (no Win32_DiskDrive is
    -- associated through this class); Wine filters by none of the keywords.
    assert.same({ PARTITION }, relpaths(assert(svc:associators(DISK, filters))))
    local got = collect(function(h) return svc:associators_async(DISK, filters, h) end)
    assert.same({ PARTITION }, got)
    local text = "ASSOCIATORS OF {" .. DISK .. "} WHERE AssocClass = Win32_LogicalDiskToPartition"
      .. " ResultClass = Win32_DiskDrive Role = Antecedent ResultRole = Dependent RequiredQualifier = Key"
      .. " RequiredAssocQualifier = Association ClassDefsOnly"
    assert.same({ { "ExecQuery", text }, { "ExecQueryAsync", text } }, recorded())
  end)

  it("from a disk partition Wine follows only Antecedent ends: the drive, never the logical disk", function()
    local drive = assert(svc:query("SELECT * FROM Win32_DiskDriveToDiskPartition"))
    local want
    for _, link in ipairs(drive) do
      if link.Dependent:find(PARTITION, 1, true) then want = link.Antecedent:match(":(.*)$") end
    end
    assert.same({ want }, relpaths(assert(svc:associators(PARTITION))))
    -- Windows answers the logical disk C: here; Wine still answers the drive.
    assert.same({ want }, relpaths(assert(svc:associators(PARTITION, { result_class = "Win32_LogicalDisk" }))))
    -- ... and nothing from the drive back to its partitions.
    assert.same({}, relpaths(assert(svc:associators(want))))
  end)

  it("references: the text is right, Wine's WQL has no REFERENCES OF (sync and async)", function()
    local filters = { result_class = "Win32_LogicalDiskToPartition", role = "Dependent", required_qualifier = "Dynamic",
                      classes_only = true }
    helpers.assert_fail(INVALID_QUERY, "WBEM_E_INVALID_QUERY", svc:references(DISK, filters))
    local got, status = collect(function(h) return svc:references_async(PARTITION, nil, h) end)
    assert.same({}, got)
    assert.same({ false, INVALID_QUERY }, status)
    assert.same({
      { "ExecQuery", "REFERENCES OF {" .. DISK .. "} WHERE ResultClass = Win32_LogicalDiskToPartition"
        .. " Role = Dependent RequiredQualifier = Dynamic ClassDefsOnly" },
      { "ExecQueryAsync", "REFERENCES OF {" .. PARTITION .. "}" },
    }, recorded())
  end)

  it("a fan-out follows associations with a query table", function()
    local run = wmi.fanout({ "localhost" }, { associators_of = DISK, result_class = "Win32_DiskPartition" },
      { locator = testwmi.clsid })
    local got = {}
    for host, obj in run:each() do got[#got + 1] = host .. " " .. obj:get("__RELPATH") end
    assert.same({ "localhost " .. PARTITION }, got)
  end)

  it("raises argument errors naming the method and the argument", function()
    assert.has_error(function() svc:associators(42) end,
      "bad argument #1 to 'associators' (wmi.Object or object path expected, got number)")
    assert.has_error(function() svc:references(DISK, "x") end,
      "bad argument #2 to 'references' (table expected, got string)")
    assert.has_error(function() svc:associators("X.K=\"}\"") end,
      [[bad argument #1 to 'associators' ("X.K=\"}\"" is no object path WQL can carry)]])
    assert.has_error(function() svc:associators(DISK, { result_class = "A B" }) end,
      [[bad argument #2 to 'associators' (result_class: "A B" is not a WMI name)]])
    assert.has_error(function() svc:references(DISK, { assoc_class = "A" }) end,
      [[bad argument #2 to 'references' (unknown field "assoc_class" in a references query)]])
    assert.has_error(function() svc:associators_async(DISK, nil, 42) end,
      "bad argument #3 to 'associators_async' (wmi.Stub, function or table of handlers expected, got number)")
    assert.has_error(function() svc:associators(DISK, nil, { shalow = true }) end,
      "bad option 'shalow' to 'associators' (unknown option; did you mean 'shallow'?)")
    assert.same({}, recorded())
  end)
end)
