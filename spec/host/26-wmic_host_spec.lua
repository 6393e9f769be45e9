-- Issue 18, wmiq for WMIC users, as a user runs it (scripts/wmiq from a shell):
-- aliases and WMIC's verbs, describe, --every, --version, --shard, and a method's
-- ReturnValue as the exit status. Against Wine's real WMI; the test WMI server
-- (--locator) where Wine lacks something: simulated hosts, Win32_Process.Terminate.
local json = require "dkjson"
local q = dofile("spec/host/terminal.lua").quote

local run = dofile("spec/host/run.lua")
local TESTWMI, winlua, slurp = run.TESTWMI, run.winlua, run.slurp

-- Runs scripts/wmiq ARGS (no terminal); returns stdout and stderr (CRLF as LF)
-- and the exit status.
local function wmiq(args)
  local out, err, status = run.wmiq(args)
  return (out:gsub("\r\n", "\n")), err, status
end

-- The rows of a csv output without quoting (the values here have no comma).
local function csv(text)
  local rows = {}
  for line in text:gmatch("[^\n]+") do
    local row = {}
    for field in (line .. ","):gmatch("([^,]*),") do row[#row + 1] = field end
    rows[#rows + 1] = row
  end
  return rows
end

-- FNV-1a, 32 bits: the hash --help documents for --shard.
local function fnv1a(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

-- Starts a process that lasts (Wine's notepad ends at once without a display:
-- ping waits a second between its 120 echoes) through the alias; returns its id.
-- wmiq's output goes to a file: ping ends when the pipe it inherited closes.
local function start_ping()
  local path = os.tmpname()
  assert(os.execute(("LUAWMI_WINESERVER=1 scripts/wmiq -f csv process call create %s </dev/null >%s 2>&1")
    :format(q("CommandLine=ping -n 120 127.0.0.1"), path)))
  local rows = csv(slurp(path):gsub("\r\n", "\n"))
  os.remove(path)
  assert.same({ "ProcessId", "ReturnValue" }, rows[1])
  assert.equal("0", rows[2][2])
  return assert(math.tointeger(tonumber(rows[2][1])))
end

describe("wmiq for WMIC users", function()
  local started_wineserver

  setup(function()
    started_wineserver = os.execute("bash -c '. scripts/wine-env.sh && wineserver -p' </dev/null >/dev/null 2>&1")
  end)

  teardown(function()
    if started_wineserver then
      os.execute("bash -c '. scripts/wine-env.sh && wineserver -k' </dev/null >/dev/null 2>&1")
    end
  end)

  it("process get name,processid gives the synchronous query's processes", function()
    -- Each run has its own lua.exe (and Wine starts explorer.exe anew): the others are the same processes.
    local expected = winlua([[
local wmi = require "wmi"
for _, p in ipairs(assert(assert(wmi.connect()):query("SELECT Name, ProcessID FROM Win32_Process"))) do
  if p.Name ~= "lua.exe" and p.Name ~= "explorer.exe" then print(p.Name .. "," .. p.ProcessID) end
end]])
    local out, err, status = wmiq { "-f", "csv", "process", "get", "name,", "processid" }
    assert.same({ "", 0 }, { err, status })
    local rows, got = csv(out), {}
    assert.same({ "Name", "ProcessID" }, rows[1])   -- Wine's spelling
    for i = 2, #rows do
      if rows[i][1] ~= "lua.exe" and rows[i][1] ~= "explorer.exe" then got[#got + 1] = table.concat(rows[i], ",") end
    end
    assert.is_true(#got >= 5)
    assert.same(expected, table.concat(got, "\n") .. "\n")
  end)

  it("os get caption, in any -f spelling, with -n as WMIC writes it", function()
    local caption = winlua([[
print(assert(require("wmi").connect()):query("SELECT Caption FROM Win32_OperatingSystem")[1].Caption)]])
    assert.matches("^Microsoft Windows", caption)
    assert.same({ "Caption\n" .. caption, "", 0 }, { wmiq { "os", "get", "caption" } })
    local out, err, status = wmiq { "-n", [[\\root\cimv2]], "-f", "JSON", "os", "get", "Caption" }
    assert.same({ "", 0 }, { err, status })
    assert.same({ { Caption = caption:sub(1, -2) } }, (json.decode(out)))
  end)

  it("list brief shows WMIC's brief properties that the class has; list full every property as NAME=VALUE", function()
    local out, err, status = wmiq { "service", "where", "Name='Spooler'", "list", "brief" }
    assert.same({ "", 0 }, { err, status })
    -- Wine's Win32_Service lacks ExitCode and Status.
    assert.matches("^Name%s+ProcessID%s+StartMode%s+State\nSpooler%s+0%s+Manual%s+Stopped\n$", out)
    out, err, status = wmiq { "service", "where", "Name='Spooler'", "list", "full" }
    assert.same({ "", 0 }, { err, status })
    assert.matches("\nName=Spooler\n", out)
    assert.matches("\nDisplayName=[^\n]+\n", out)
  end)

  it("starts a process with call create and ends it with where ... call terminate", function()
    local pid = start_ping()
    local where = ("ProcessId=%d"):format(pid)
    local out, err, status = wmiq { "process", "where", where, "get", "name" }
    assert.same({ "name\nping.exe\n", "", 0 }, { out:lower(), err, status })
    -- Wine's Win32_Process has no Terminate: the test WMI server serves it.
    out, err, status = wmiq { "--locator", TESTWMI, "process", "where", where, "call", "terminate" }
    assert.same({ "ReturnValue\n0\n", "", 0 }, { out, err, status })
    assert.same({ "", "No instances.\n", 0 }, { wmiq { "process", "where", where, "get", "name" } })
    -- Wine's own provider says what it lacks.
    assert.same({ "", "wmiq: WBEM_E_INVALID_METHOD (0x8004102E): Invalid method\n", 1 },
      { wmiq { "process", "where", "Name='services.exe'", "call", "terminate" } })
  end)

  it("exits 3 for a method's ReturnValue other than 0, naming the value", function()
    local out, err, status = wmiq { "service", "where", "Name='Spooler'", "call", "StopService" }
    assert.same({ "ReturnValue\n6\n", 3 }, { out, status })
    assert.matches('^wmiq: \\\\[^\\]+\\ROOT\\CIMV2:Win32_Service.Name="Spooler": StopService returned 6', err)
    -- The generic call too.
    out, err, status = wmiq { "call", [[Win32_Service.Name="Spooler"]], "StopService" }
    assert.same({ "ReturnValue\n6\n", 3 }, { out, status })
    assert.matches('^wmiq: Win32_Service.Name="Spooler": StopService returned 6', err)
    -- Wine's classes have no qualifiers: the test WMI server's TestWmi_Service has
    -- Win32_BaseService's ValueMap/Values (amended: wmiq asks for them).
    assert.same({ "ReturnValue\n6\n",
                  'wmiq: TestWmi_Service.Name="TestStopped": StopService returned 6 = Service Not Active\n', 3 },
      { wmiq { "--locator", TESTWMI, "call", [[TestWmi_Service.Name="TestStopped"]], "StopService" } })
    assert.same({ "ReturnValue\n0\n", "", 0 },
      { wmiq { "--locator", TESTWMI, "call", [[TestWmi_Service.Name="TestRunning"]], "StopService" } })
  end)

  it("set puts the changed properties (the test WMI server; Wine's PutInstance fails)", function()
    assert.same({ 'Updated Win32_Service.Name="Spooler"\n', "", 0 },
      { wmiq { "--locator", TESTWMI, "service", "where", "Name='Spooler'", "set", "DisplayName=Printing" } })
    assert.same({ "", "wmiq: WBEM_E_FAILED (0x80041001): Unspecified WMI failure\n", 1 },
      { wmiq { "service", "where", "Name='Spooler'", "set", "DisplayName=Printing" } })
    local _, err, status = wmiq { "service", "where", "Name='Spooler'", "set", "ProcessId=x" }
    assert.same({ "wmiq: 'x' is not an integer (Win32_Service's ProcessId is a uint32)\nTry 'wmiq --help'.\n", 2 },
      { err, status })
  end)

  it("delete without a terminal needs --yes: exit 2, nothing asked of WMI", function()
    assert.same({ "", "wmiq: delete needs --yes without a console to confirm at\nTry 'wmiq --help'.\n", 2 },
      { wmiq { "process", "where", "Name='services.exe'", "delete" } })
  end)

  it("describes Win32_Process: properties with their CIM types, methods with their parameters", function()
    local out, err, status = wmiq { "describe", "Win32_Process" }
    assert.same({ "", 0 }, { err, status })
    assert.matches("^class Win32_Process", out)
    assert.matches("\nProperty%s+Type%s+Key%s+Access%s+Description\n", out)
    -- Wine gives no qualifiers (no description, no static); the key comes from the path.
    for _, p in ipairs { { "Handle", "string  key  read" }, { "ProcessID", "uint32       read" },
                         { "WorkingSetSize", "uint64       read" }, { "CommandLine", "string       read" } } do
      assert.matches("\n" .. p[1] .. "%s+" .. p[2] .. "%s*\n", out)
    end
    assert.matches("\nMethods:\n"
      .. "  uint32 Create%(in string CommandLine, in string CurrentDirectory, out uint32 ProcessId%)\n"
      .. "  uint32 GetOwner%(out string User, out string Domain%)\n$", out)
    -- The test WMI server's class has what Windows' have: descriptions, access, static methods.
    out, err, status = wmiq { "--locator", TESTWMI, "describe", "TestWmi_Service" }
    assert.same({ "", 0 }, { err, status })
    assert.matches("^class TestWmi_Service : Win32_BaseService\nThe Win32_Service class represents a service", out)
    assert.matches("\nName%s+string%s+key%s+read%s+The Name property uniquely identifies the service%.\n", out)
    assert.matches("\nDisplayName%s+string%s+read/write%s*\n", out)
    assert.matches("\n  uint32 StopService%(%)\n"
      .. "      The StopService method places the service in the stopped state%.\n", out)
    assert.matches("\n  static uint32 Create%(in string Name, in string DisplayName, ", out)
    assert.same({ "", "wmiq: WBEM_E_NOT_FOUND (0x80041002): Object not found\n", 1 },
      { wmiq { "describe", "Win32_NoSuchClass" } })
  end)

  it("--every N --repeat M runs the command M times", function()
    local out, err, status = wmiq { "--every", "1", "--repeat", "3", "os", "get", "caption" }
    assert.same({ "", 0 }, { err, status })
    local _, tables = out:gsub("Caption\nMicrosoft Windows[^\n]*\n", "")
    assert.equal(3, tables)
    assert.same({ "", "wmiq: option '--repeat' needs '--every'\nTry 'wmiq --help'.\n", 2 },
      { wmiq { "--repeat", "3", "os" } })
  end)

  it("--shard I/N: the N shards of a host list are disjoint, cover it, by FNV-1a of the lower-cased name", function()
    local hosts = {}
    for i = 1, 12 do hosts[i] = (i % 2 == 0 and "Node%02d" or "node%02d"):format(i) end
    local seen, total = {}, 0
    for shard = 0, 2 do
      local out, err, status = wmiq { "--locator", TESTWMI, "-H", table.concat(hosts, ","),
        "--shard", shard .. "/3", "-f", "jsonl", "os", "get", "caption" }
      assert.same({ "", 0 }, { err, status })
      for line in out:gmatch("[^\n]+") do
        local row = assert(json.decode(line))
        assert.is_nil(seen[row.Host], row.Host)          -- disjoint
        assert.equal(shard, fnv1a(row.Host:lower()) % 3)
        seen[row.Host] = true
        total = total + 1
      end
    end
    assert.equal(#hosts, total)                        -- covering
    for _, h in ipairs(hosts) do assert.is_true(seen[h], h) end
    assert.same({ "", "wmiq: option '--shard' needs I/N with 0 <= I < N (such as 0/4)\nTry 'wmiq --help'.\n", 2 },
      { wmiq { "-H", "a", "--shard", "3/3", "os" } })
  end)

  it("--version, and --help aliases with WMIC's alias table", function()
    assert.same({ "luawmi 0.1.0\n", "", 0 }, { wmiq { "--version" } })
    local out, err, status = wmiq { "--help", "aliases" }
    assert.same({ "", 0 }, { err, status })
    for _, alias in ipairs { { "process", "Win32_Process" }, { "os", "Win32_OperatingSystem" },
                             { "nicconfig", "Win32_NetworkAdapterConfiguration" },
                             { "qfe", "Win32_QuickFixEngineering" },
                             { "cpu", "Win32_Processor" }, { "useraccount", "Win32_UserAccount" } } do
      assert.matches("\n" .. alias[1] .. "%s+" .. alias[2] .. "%s", out)
    end
    out = wmiq { "--help" }
    for _, needed in ipairs { "ALIAS", "describe CLASS", "--every N", "--repeat N", "--version", "--shard I/N",
                              "FNV-1a", "3 when a method" } do
      assert.truthy(out:find(needed, 1, true), "--help does not mention " .. needed)
    end
  end)
end)
