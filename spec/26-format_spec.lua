-- Issue 18: wmi.format (wmiq's formatter, public), how the REPL shows lists,
-- stats, datetimes and the module, and wmiq's WMIC verbs that change things
-- (set, create, delete) run in-process against the test WMI server, whose
-- overlay keeps what was written (Wine's PutInstance and DeleteInstance fail).
local wmi = require "wmi"
local cli = require "wmi.cli"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"

local sink = helpers.output     -- an output that keeps what is written

-- cli.main(ARGS) through the test server; returns status, stdout, stderr.
local function wmiq(args, env)
  local out, err = sink(), sink()
  local full = { "--locator", testwmi.clsid }
  table.move(args, 1, #args, 3, full)
  local status = cli.main(full, out, err, env or { width = false })
  return status, out:text(), err:text()
end

describe("wmi.format", function()
  local svc

  setup(function() svc = assert(wmi.connect()) end)
  teardown(function() svc:close() end)

  it("formats a list in each of wmiq's formats, with the synchronous query's values", function()
    local list = assert(svc:query("SELECT Name, ProcessID FROM Win32_Process WHERE Name = 'services.exe'"))
    local p = list[1]
    assert.equal(("Name          ProcessID\nservices.exe  %d\n"):format(p.ProcessID), wmi.format(list, "table"))
    assert.equal(("Name=services.exe\nProcessID=%d\n\n"):format(p.ProcessID), wmi.format(p, "list"))
    assert.equal(("Name,ProcessID\r\nservices.exe,%d\r\n"):format(p.ProcessID), wmi.format(list, "csv"))
    assert.equal(('[\n{"Name":"services.exe","ProcessID":%d}\n]\n'):format(p.ProcessID), wmi.format(list, "json"))
    assert.equal(('{"Name":"services.exe","ProcessID":%d}\r\n'):format(p.ProcessID),
      wmi.format(p, "jsonl", { newline = "\r\n" }))
    assert.equal(p:text() .. "\n", wmi.format(p, "mof"))
    -- A table of plain values is one row, its names sorted.
    assert.equal('{"a":1,"b":"x"}\n', wmi.format({ b = "x", a = 1 }, "jsonl"))
  end)

  it("first: a table of only the leading columns that fit the width, as Format-Table", function()
    local list = assert(svc:query("SELECT * FROM Win32_Service"))
    local names = list[1]:properties()
    local function header(text)
      local words = {}
      for word in text:match("^[^\n]+"):gmatch("%S+") do words[#words + 1] = word end
      return words
    end
    -- AcceptPause and AcceptStop fit 40 columns; DisplayName (counted at most 24 wide) would not.
    local text = wmi.format(list, "table", { width = 40, first = true })
    assert.same({ names[1], names[2] }, header(text))
    for line in text:gmatch("[^\n]+") do assert.is_true(#line <= 40, line) end
    -- Without first, every column, each cut to fit.
    assert.equal(#names, #header(wmi.format(list, "table", { width = 40 })))
  end)

  it("keeps issue 22's output rules: escapes visible, formulas neutralised", function()
    assert.equal("Name\r\n'=cmd|' /C calc'!A0\\x1b[31m\r\n", wmi.format({ Name = "=cmd|' /C calc'!A0\27[31m" }, "csv"))
    assert.equal("Name=\\u202egnp.exe\n\n", wmi.format({ Name = "\u{202e}gnp.exe" }, "list"))
    assert.equal("Name\r\n=1+1\r\n", wmi.format({ Name = "=1+1" }, "csv", { csv_raw = true }))
  end)

  it("raises argument errors naming the argument", function()
    assert.error_matches(function() wmi.format({}, "xml") end,
      "bad argument #2 to 'format' %(table, list, csv, json, jsonl or mof expected, got 'xml'%)")
    assert.error_matches(function() wmi.format({}, "csv", 3) end, "bad argument #3 to 'format' %(table expected")
    assert.error_matches(function() wmi.format(42, "csv") end, "bad argument #1 to 'format' %(wmi.Object")
    assert.error_matches(function() wmi.format({ a = 1 }, "mof") end, "bad argument #1 to 'format'")
  end)

  it("shows stats, datetimes and the module readably", function()
    assert.matches("^{calls = %d+, connects = %d+, .*objects = %d+, .*stubs = %d+.*}$", tostring(wmi.stats()))
    assert.equal("2023-11-29 13:45:30.123456 +01:00", tostring(wmi.datetime("20231129134530.123456+060")))
    assert.equal("2023-11-29 13:45:30.123456 -05:30", tostring(wmi.datetime("20231129134530.123456-330")))
    assert.equal("****-11-29 **:**:**.****** *", tostring(wmi.datetime("****1129******.******+***")))
    assert.equal("3 days 04:05:06.000007", tostring(wmi.datetime("00000003040506.000007:000")))
    assert.matches("^luawmi 0%.1%.0: wmi%.apartment, wmi%.connect, .*wmi%.format, .*wmi%.stats", tostring(wmi))
  end)
end)

describe("wmiq's WMIC verbs in-process (the test WMI server)", function()
  local testwmi_helpers = require "spec.support.testwmi_helpers"
  local SPOOLER = 'Win32_Service.Name="Spooler"'
  local svc

  before_each(function()
    testwmi.reset()
    svc = assert(testwmi_helpers.connect())
  end)
  after_each(function() svc:close() end)

  it("set puts the changed properties; delete asks at the console, and removes after a yes", function()
    local wine_name = svc:get(SPOOLER).DisplayName
    assert.same({ 0, 'Updated Win32_Service.Name="Spooler"\n', "" },
      { wmiq { "service", "where", "Name='Spooler'", "set", "DisplayName=Printing", "StartMode=Auto" } })
    local spooler = svc:get(SPOOLER)
    assert.same({ "Printing", "Auto" }, { spooler.DisplayName, spooler.StartMode })
    -- A no keeps it (exit 1), a yes deletes it: the overlay's copy goes, Wine's instance shows again.
    local asked = {}
    local function answer(line)
      return { width = false, read_line = function() asked[#asked + 1] = line return line end }
    end
    local status, out, err = wmiq({ "service", "where", "Name='Spooler'", "delete" }, answer("n"))
    assert.same({ 1, "" }, { status, out })
    assert.matches('^wmiq: delete 1 instance: [^\n]*Win32_Service.Name="Spooler"\nProceed%? %[y/N%] '
      .. "wmiq: not confirmed: nothing was deleted\n$", err)
    assert.equal("Printing", svc:get(SPOOLER).DisplayName)
    status, out = wmiq({ "service", "where", "Name='Spooler'", "delete" }, answer("y"))
    assert.same({ 0, "" }, { status, out:match("^Deleted [^\n]*Win32_Service.Name=\"Spooler\"\n$") and "" or out })
    assert.equal(wine_name, svc:get(SPOOLER).DisplayName)
    assert.same({ "n", "y" }, asked)
    -- A value that is not of the property's type is a usage error, nothing written.
    assert.same({ 2, "", "wmiq: 'x' is not an integer (Win32_Service's ProcessId is a uint32)\nTry 'wmiq --help'.\n" },
      { wmiq { "service", "where", "Name='Spooler'", "set", "ProcessId=x" } })
    assert.equal(wine_name, svc:get(SPOOLER).DisplayName)
  end)

  it("create puts a new instance; its path is written with issue 22's rules", function()
    assert.same({ 0, 'Created Win32_Service.Name="luawmi-\\x1b[31mtest"\n', "" },
      { wmiq { "service", "create", "Name=luawmi-\27[31mtest", "DisplayName=Test" } })
    assert.equal("Test", svc:get('Win32_Service.Name="luawmi-\27[31mtest"').DisplayName)
  end)
end)
