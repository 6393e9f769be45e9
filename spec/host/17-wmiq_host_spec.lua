-- wmiq as a user runs it: `scripts/wmiq ARGS` from a shell, its output read back by
-- parsers we did not write (Python's csv and json modules, Debian's dkjson), its
-- exit status and stderr checked; the password prompt in a real terminal (tmux).
-- Against Wine's real WMI, and the test WMI server's simulated hosts (--locator).
local json = require "dkjson"
local terminal = dofile("spec/host/terminal.lua")
local q = terminal.quote

local run = dofile("spec/host/run.lua")
local TESTWMI, wmiq, python = run.TESTWMI, run.wmiq, run.python
local slurp, CSV_ROWS, JSON_DOC = run.slurp, run.CSV_ROWS, run.JSON_DOC
local SERVICES = "SELECT Name, DisplayName, State FROM Win32_Service"
local EVENTS = "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'"
local SPOOLER = "SELECT Name FROM Win32_Service WHERE Name = 'Spooler'"
local KEY = [[Software\luawmi-wmiq-spec]]
-- A value with a quote, commas and a CRLF line break: CSV must quote it.
local TRICKY = 'He said "hi", then left\r\nsecond, line'

-- A JSON document whose objects each name a key once (json.load keeps the last of two).
local JSON_UNIQUE = [=[
import json, sys
def unique(pairs):
    assert len(pairs) == len(dict(pairs)), 'duplicate key in %r' % pairs
    return dict(pairs)
print(json.dumps(json.load(open(sys.argv[1], encoding='utf-8'), object_pairs_hook=unique)))]=]
local JSON_LINES = [=[
import json, sys
data = open(sys.argv[1], 'rb').read().decode('utf-8')
lines = data.split('\r\n')
assert lines[-1] == '', 'the last line is not ended'
print(json.dumps([json.loads(line) for line in lines[:-1]]))]=]

-- The number of objects the synchronous query returns (svc:query in the Windows Lua).
local function sync_count(wql, namespace)
  local code = "local wmi = require 'wmi'\nlocal svc = assert(wmi.connect(%q))\nprint(#assert(svc:query(%q)))\n"
  local out = run.winlua(code:format(namespace or "root\\cimv2", wql))
  return assert(math.tointeger(tonumber(out:match("^(%d+)%s*$"))), out)
end

-- CRLF-ended lines of TEXT (wmiq writes Windows line ends).
local function lines(text)
  assert.equal("\r\n", text:sub(-2))
  local t = {}
  for line in text:gmatch("(.-)\r\n") do t[#t + 1] = line end
  return t
end

describe("wmiq", function()
  local started_wineserver

  setup(function()
    -- One wineserver for every run below (each scripts/wmiq would otherwise start its own).
    started_wineserver = os.execute("bash -c '. scripts/wine-env.sh && wineserver -p' </dev/null >/dev/null 2>&1")
    local _, err, status = wmiq { "-n", "root\\default", "call", "StdRegProv", "CreateKey",
      "hDefKey=2147483649", "sSubKeyName=" .. KEY }
    assert(status == 0, err)
  end)

  teardown(function()
    wmiq { "-n", "root\\default", "call", "StdRegProv", "DeleteKey", "hDefKey=2147483649", "sSubKeyName=" .. KEY }
    if started_wineserver then
      os.execute("bash -c '. scripts/wine-env.sh && wineserver -k' </dev/null >/dev/null 2>&1")
    end
  end)

  it("documents every command, option, format and exit status in --help", function()
    local out, err, status = wmiq { "--help" }
    assert.same({ "", 0 }, { err, status })
    local text = table.concat(lines(out), "\n")
    for _, needed in ipairs {
      '"SELECT ..."', "get PATH", "call PATH METHOD [NAME=VALUE ...]", "classes [SUPERCLASS]", "watch",
      "-n, --namespace", "-H, --host", "@FILE", "-u, --user", "-p, --password", "without echo",
      "-f, --format", "--throttle", "--timeout", "--locator", "-h, --help",
      "table", "list", "csv", "RFC 4180", "json", "jsonl", "mof",
      "0 when every host and call succeeded", "1 when one failed", "2 for a usage error", "130 after Ctrl+C",
    } do
      assert.truthy(text:find(needed, 1, true), "--help does not mention " .. needed)
    end
    assert.equal(out, (wmiq { "-h" }))
  end)

  it("writes CSV that Python's csv module reads back: quotes, commas and line breaks in values", function()
    local _, err, status = wmiq { "-n", "root\\default", "call", "StdRegProv", "SetStringValue",
      "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=tricky", "sValue=" .. TRICKY }
    assert.same({ "", 0 }, { err, status })
    local out
    out, err, status = wmiq { "-n", "root\\default", "-f", "csv", "call", "StdRegProv", "GetStringValue",
      "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=tricky" }
    assert.same({ "", 0 }, { err, status })
    assert.same({ { "ReturnValue", "sValue" }, { "0", TRICKY } }, python(CSV_ROWS, out))
    -- The same value through json, parsed by Python and by dkjson.
    out = wmiq { "-n", "root\\default", "-f", "json", "call", "StdRegProv", "GetStringValue",
      "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=tricky" }
    assert.same({ { ReturnValue = 0, sValue = TRICKY } }, python(JSON_DOC, out))
    assert.same({ { ReturnValue = 0, sValue = TRICKY } }, (json.decode(out)))
  end)

  it("gives as many rows as the synchronous query in csv, json, jsonl, list and table", function()
    local n = sync_count(SERVICES)
    assert.equal(23, n)                         -- a default prefix
    local out, err, status = wmiq { "-f", "csv", SERVICES }
    assert.same({ "", 0 }, { err, status })
    local rows = python(CSV_ROWS, out)
    assert.equal(n + 1, #rows)
    assert.same({ "DisplayName", "Name", "State" }, { rows[1][1], rows[1][2], rows[1][3] })

    out = wmiq { "-f", "json", SERVICES }
    local doc = python(JSON_DOC, out)
    assert.equal(n, #doc)
    local names = {}
    for i, obj in ipairs(doc) do names[i] = obj.Name end
    table.sort(names)
    local from_csv = {}
    for i = 2, #rows do from_csv[i - 1] = rows[i][2] end
    table.sort(from_csv)
    assert.same(from_csv, names)

    out = wmiq { "-f", "jsonl", SERVICES }
    local objs = python(JSON_LINES, out)
    assert.equal(n, #objs)
    for _, obj in ipairs(objs) do assert.equal("string", type(obj.Name)) end

    out = wmiq { "-f", "list", SERVICES }
    local count = 0
    for _ in out:gmatch("\r\nName=") do count = count + 1 end
    if out:sub(1, 5) == "Name=" then count = count + 1 end
    assert.equal(n, count)

    out = wmiq { SERVICES }
    assert.equal(n + 1, #lines(out))
  end)

  it("aligns the table's columns, and fits them to COLUMNS", function()
    local function check(out, width)
      local t = lines(out)
      local header = t[1]
      local starts = {}
      for pos in header:gmatch("()%S+") do starts[#starts + 1] = pos end
      assert.equal(3, #starts)
      for _, line in ipairs(t) do
        if width then assert.is_true(#line <= width, line) end
        for i = 2, #starts do
          -- Two spaces before each column, and a value starting right at it.
          assert.equal("  ", line:sub(starts[i] - 2, starts[i] - 1), line)
          assert.matches("^%S", line:sub(starts[i]), line)
        end
      end
      return t
    end
    local wide = check((wmiq { SERVICES }))
    assert.equal("DisplayName", wide[1]:match("^%S+"))
    local narrow = check(wmiq({ SERVICES }, "COLUMNS=40"), 40)
    assert.equal(#wide, #narrow)
    -- Cut values end with ~.
    assert.truthy(table.concat(narrow, "\n"):find("~", 1, true))
  end)

  it("exits 1 with the WBEM name and HRESULT on stderr when a call fails", function()
    local out, err, status = wmiq { "SELECT * FROM" }
    assert.same({ "", "wmiq: WBEM_E_INVALID_QUERY (0x80041017): Invalid query\n", 1 }, { out, err, status })
    out, err, status = wmiq { "-n", "root\\nowhere", "SELECT Name FROM Win32_Service" }
    assert.same({ "", "wmiq: WBEM_E_INVALID_NAMESPACE (0x8004100E): Invalid namespace\n", 1 },
      { out, err, status })
    -- Wine's limitations, as they are: no class enumeration, no event provider.
    out, err, status = wmiq { "classes" }
    assert.same({ "", "wmiq: WBEM_E_FAILED (0x80041001): Unspecified WMI failure\n", 1 }, { out, err, status })
    out, err, status = wmiq { "watch", EVENTS }
    assert.same({ "", "wmiq: WBEM_E_INVALID_QUERY (0x80041017): Invalid query\n", 1 }, { out, err, status })
  end)

  it("exits 2 on usage errors, saying what was wrong", function()
    for _, case in ipairs {
      { {}, "missing the query or command" },
      { { "--bogus", "SELECT * FROM Win32_BIOS" }, "unknown option '--bogus'" },
      { { "-x" }, "unknown option '-x'" },
      { { "-f" }, "option '-f' needs a value" },
      { { "-f", "xml", "SELECT * FROM Win32_BIOS" },
        "unknown format in option '--format' (table, list, csv, json, jsonl or mof)" },
      { { "--throttle", "many", "SELECT * FROM Win32_BIOS" },
        "option '--throttle' needs a positive integer" },
      { { "--timeout=0", "SELECT * FROM Win32_BIOS" }, "option '--timeout' needs a positive integer" },
      { { "Win32_BIOS" }, "unknown command 'Win32_BIOS' (a WQL query, get, call, classes or watch expected)" },
      { { "get" }, "'get' needs one PATH, got 0 arguments" },
      { { "call", "StdRegProv" }, "'call' needs PATH and METHOD" },
      { { "call", "StdRegProv", "EnumKey", "hDefKey" }, "bad parameter 'hDefKey' (NAME=VALUE expected)" },
      { { "-p", "x", "SELECT * FROM Win32_BIOS" }, "option '--password' needs '--user'" },
      { { "-H", "@/nonexistent/hosts", "SELECT * FROM Win32_BIOS" }, "cannot read the host list" },
      { { "--help=yes" }, "option '--help' takes no value" },
      -- The library's argument errors, without a source position.
      { { "get", "" }, "bad argument #1 to 'get' (empty object path)" },
      -- wmiq's own words for what the library refused.
      { { "--locator", "xyz", "SELECT * FROM Win32_BIOS" },
        "option '--locator' needs a CLSID such as {4590F811-1D3A-11D0-891F-00AA004B2E24} (WMI's own), got 'xyz'" },
      { { "-n", "root\\default", "call", "StdRegProv", "CreateKey", "Bogus=1" },
        "StdRegProv.CreateKey has no parameter 'Bogus' (it takes hDefKey, sSubKeyName)" },
      { { "-n", "root\\default", "call", "StdRegProv", "GetStringValue", "Nope=1" },
        "StdRegProv.GetStringValue has no parameter 'Nope' (it takes hDefKey, sSubKeyName, sValueName)" },
      { { "-n", "root\\default", "call", "StdRegProv", "EnumKey", "hDefKey=abc", "sSubKeyName=x" },
        "'abc' is not an integer (StdRegProv.EnumKey's hDefKey is a sint32)" },
      -- With hosts: said once, no host's failure with it.
      { { "--yes", "-H", ".,localhost", "-n", "root\\default", "call", "StdRegProv", "CreateKey", "Bogus=1" },
        "StdRegProv.CreateKey has no parameter 'Bogus' (it takes hDefKey, sSubKeyName)" },
    } do
      local out, err, status = wmiq(case[1])
      assert.equal(2, status, table.concat(case[1], " "))
      assert.equal("", out)
      assert.equal("wmiq: " .. case[2], err:match("^(.-)\n"):sub(1, 6 + #case[2]))
      assert.matches("\nTry 'wmiq %-%-help'%.\n$", err)
      assert.falsy(err:find("%.lua:%d+:"), err)
      assert.equal(2, select(2, err:gsub("\n", "")), err)   -- the message and the hint, nothing else
    end
  end)

  it("takes arguments and writes to a console in any language", function()
    -- Through the ANSI code page 'ü' was no UTF-8 (exit 2) and an emoji became '??'.
    local text = "Grüße, Привет, 日本 😀"
    local _, err, status = wmiq { "-n", "root\\default", "call", "StdRegProv", "SetStringValue",
      "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=tricky", "sValue=" .. text }
    assert.same({ "", 0 }, { err, status })
    local get = { "-n", "root\\default", "call", "StdRegProv", "GetStringValue", "hDefKey=2147483649",
      "sSubKeyName=" .. KEY, "sValueName=tricky" }
    local out
    out, err, status = wmiq { "-f", "csv", table.unpack(get) }
    assert.same({ "", 0 }, { err, status })
    assert.same({ { "ReturnValue", "sValue" }, { "0", text } }, python(CSV_ROWS, out))
    out, err, status = wmiq { "-f", "csv", "SELECT Name FROM Win32_Service WHERE Name = 'Müller'" }
    assert.same({ "", "", 0 }, { out, err, status })
    -- On a console the text is written as UTF-16, whatever its code page (UTF-8
    -- bytes showed as "Gr├╝├ƒe"). Wine's console keeps UTF-16 code units in its
    -- cells: a character beyond U+FFFF reaches the terminal as two U+FFFD.
    local quoted = {}
    for i, a in ipairs(get) do quoted[i] = q(a) end
    local term = terminal.open(("cd %s && LUAWMI_WINESERVER=1 scripts/wmiq -f list %s; echo EXIT=$?")
      :format(q(os.getenv("PWD")), table.concat(quoted, " ")))
    local ok, screen = pcall(term.wait_for, term, "EXIT=%d")
    term:close()
    assert(ok, screen)
    assert.matches("\nsValue=Grüße, Привет, 日本 \u{FFFD}\u{FFFD}\n", screen)
    assert.matches("EXIT=0$", screen)
  end)

  it("says when there is no row, and fails a query projecting a property its class lacks", function()
    local none = "SELECT Name FROM Win32_Service WHERE Name = 'nonexistent'"
    for _, format in ipairs { "table", "list" } do
      assert.same({ "", "No instances.\n", 0 }, { wmiq { "-f", format, none } })
    end
    assert.same({ "", "", 0 }, { wmiq { "-f", "csv", none } })
    -- Windows fails such a query with WBEM_E_INVALID_QUERY; Wine returns objects without it.
    local missing = "wmiq: WBEM_E_INVALID_QUERY (0x80041017): Invalid query (Win32_Service has no property 'Nope')\n"
    assert.same({ "", missing, 1 }, { wmiq { "SELECT Name, Nope FROM Win32_Service" } })
    assert.same({ "", missing, 1 }, { wmiq { "--locator", TESTWMI, "-H", "lat5,lat6", "-f", "jsonl",
      "SELECT Nope FROM Win32_Service" } })
  end)

  it("gets one object and calls a method", function()
    local out, err, status = wmiq { "-f", "json", "get", "Win32_Service.Name='Spooler'" }
    assert.same({ "", 0 }, { err, status })
    local doc = python(JSON_DOC, out)
    assert.same({ 1, "Spooler", "Print Spooler" }, { #doc, doc[1].Name, doc[1].DisplayName })
    local _
    _, err, status = wmiq { "-n", "root\\default", "call", "StdRegProv", "SetStringValue",
      "hDefKey=0x80000001", "sSubKeyName=" .. KEY, "sValueName=tricky", "sValue=x" }
    assert.same({ "", 0 }, { err, status })
    out, err, status = wmiq { "-f", "csv", "-n", "root\\default", "call", "StdRegProv", "EnumValues",
      "hDefKey=2147483649", "sSubKeyName=" .. KEY }
    assert.same({ "", 0 }, { err, status })
    local rows = python(CSV_ROWS, out)
    assert.same({ "ReturnValue", "sNames", "Types" }, rows[1])
    assert.same({ "0", "{tricky}", "{1}" }, rows[2])
  end)

  describe("with several hosts (the test WMI server's simulated machines)", function()
    it("prefixes every row with its host, reports a down host on stderr and exits 1", function()
      local n = sync_count(SERVICES)
      local out, err, status = wmiq { "--locator", TESTWMI, "-H", "lat50,lat10,down,LAT10", "-f", "csv", SERVICES }
      assert.equal(1, status)
      assert.equal("wmiq: down: RPC_S_SERVER_UNAVAILABLE (0x800706BA): RPC server unavailable\n", err)
      local rows = python(CSV_ROWS, out)
      assert.same({ "Host", "DisplayName", "Name", "State" }, rows[1])
      local per_host = {}
      for i = 2, #rows do per_host[rows[i][1]] = (per_host[rows[i][1]] or 0) + 1 end
      assert.same({ lat50 = n, lat10 = n }, per_host)   -- LAT10 is lat10: one host
    end)

    -- issue 17, item 8: the "mixed" host answers a query with a row of another class
    -- (TestWmi_Node: Name, Port and a Host property of its own) after Wine's rows.
    it("puts every class's columns in csv, and keeps a class's own Host apart from the host column", function()
      local wql = "SELECT Name FROM Win32_Process WHERE Name = 'services.exe'"
      local out, err, status = wmiq { "--locator", TESTWMI, "-H", "mixed,mixed.2", "-f", "csv", wql }
      assert.same({ "", 0 }, { err, status })
      local rows = python(CSV_ROWS, out)
      assert.same({ "Host", "Name", "Port", "TestWmi_Node.Host" }, table.remove(rows, 1))
      table.sort(rows, function(a, b) return a[1] < b[1] or a[1] == b[1] and a[2] < b[2] end)
      assert.same({
        { "mixed", "node", "135", "from-the-class" }, { "mixed", "services.exe", "", "" },
        { "mixed.2", "node", "135", "from-the-class" }, { "mixed.2", "services.exe", "", "" },
      }, rows)
      -- Each key once in each JSON object.
      out, err, status = wmiq { "--locator", TESTWMI, "-H", "mixed,mixed.2", "-f", "json", wql }
      assert.same({ "", 0 }, { err, status })
      local doc = python(JSON_UNIQUE, out)
      local nodes = {}
      for _, o in ipairs(doc) do
        if o.Name == "node" then nodes[o.Host] = { o.Port, o["TestWmi_Node.Host"] } end
      end
      assert.same({ mixed = { 135, "from-the-class" }, ["mixed.2"] = { 135, "from-the-class" } }, nodes)
    end)

    it("reads hosts from @file, streams jsonl, and exits 0 when all succeed", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write("# two simulated machines\nlat20\n\nlat5  # the fast one\n")
      f:close()
      local out, err, status = wmiq { "--locator", TESTWMI, "-H", "@" .. path, "-f", "jsonl",
        "SELECT Name FROM Win32_Service WHERE Name = 'Spooler'" }
      os.remove(path)
      assert.same({ "", 0 }, { err, status })
      local objs = python(JSON_LINES, out)
      table.sort(objs, function(a, b) return a.Host < b.Host end)
      assert.same({ { Host = "lat20", Name = "Spooler" }, { Host = "lat5", Name = "Spooler" } }, objs)
    end)

    it("ends a host at --timeout: WBEM_E_TIMED_OUT on stderr, the others' rows on stdout", function()
      local out, err, status = wmiq { "--locator", TESTWMI, "-H", "hang,lat5,denied", "--timeout", "1500",
        "-f", "csv", "SELECT Name FROM Win32_Service WHERE Name = 'Spooler'" }
      assert.equal(1, status)
      local errs = {}
      for line in err:gmatch("[^\n]+") do errs[#errs + 1] = line end
      table.sort(errs)
      assert.same({
        "wmiq: denied: E_ACCESSDENIED (0x80070005): Access denied",
        "wmiq: hang: WBEM_E_TIMED_OUT (0x80041069): Operation timed out (no result within 1500 ms)",
      }, errs)
      assert.same({ { "Host", "Name" }, { "lat5", "Spooler" } }, python(CSV_ROWS, out))
    end)
  end)

  it("holds --timeout with one host or none, for every command", function()
    -- `timeout 120`: the run must end by itself, long before.
    for _, args in ipairs {
      { "SELECT Name FROM Win32_Service WHERE Name = 'Spooler'" },
      { "get", "Win32_Service.Name='Spooler'" },
      { "classes" },
    } do
      local out, err, status = wmiq({ "--locator", TESTWMI, "-H", "hang.1", "--timeout", "1000", table.unpack(args) },
        "timeout 120 env")
      assert.same({ "", "wmiq: hang.1: WBEM_E_TIMED_OUT (0x80041069): Operation timed out (no result within 1000 ms)\n",
        1 }, { out, err, status }, table.concat(args, " "))
    end
    -- This machine with --timeout: the same rows, without a Host column.
    local out, err, status = wmiq { "--timeout", "60000", "-f", "csv", SPOOLER }
    assert.same({ "", 0 }, { err, status })
    assert.same({ { "Name" }, { "Spooler" } }, python(CSV_ROWS, out))
  end)

  it("watches events until --timeout, one JSON object a line", function()
    local out, err, status = wmiq { "--locator", TESTWMI, "-H", "lat5", "--timeout", "1500", "-f", "jsonl",
      "watch", EVENTS }
    assert.same({ "", 0 }, { err, status })
    local events = python(JSON_LINES, out)
    assert.is_true(#events >= 3, out)
    for i, ev in ipairs(events) do assert.equal(i, ev.Sequence) end
    -- A uint64 above 2^63-1 (the test events' Signature, 2^64 - Sequence) is exact
    -- in every format (it printed as -1).
    local seq = 0
    for line in out:gmatch("[^\r\n]+") do
      seq = seq + 1    -- 2^64 = 18446744073709551616
      assert.matches(('"Sequence":%d,"TIME_CREATED":%%d+,"Signature":1844674407370955%04d}$'):format(seq, 1616 - seq),
        line)
    end
    for _, format in ipairs { "csv", "list", "json" } do
      out, err, status = wmiq { "--locator", TESTWMI, "-H", "lat5", "--timeout", "1500", "-f", format,
        "watch", EVENTS }
      assert.same({ "", 0 }, { err, status })
      assert.truthy(out:find("18446744073709551615", 1, true), out)
      assert.truthy(out:find("18446744073709551614", 1, true), out)
      assert.falsy(out:find("-1", 1, true), out)
    end
    -- Two hosts: each one's events in order, every line with its host; --timeout
    -- ends the watch normally.
    out, err, status = wmiq { "--locator", TESTWMI, "-H", "lat5,lat20", "--timeout", "1500", "-f", "jsonl",
      "watch", EVENTS }
    assert.same({ "", 0 }, { err, status })
    local seen = { lat5 = 0, lat20 = 0 }
    for _, ev in ipairs(python(JSON_LINES, out)) do
      seen[ev.Host] = seen[ev.Host] + 1
      assert.equal(seen[ev.Host], ev.Sequence)
    end
    assert.is_true(seen.lat5 >= 3 and seen.lat20 >= 3, out)
    -- A host that never connected did not watch: its timeout is a failure.
    out, err, status = wmiq { "--locator", TESTWMI, "-H", "lat5,hang.1", "--timeout", "1500", "-f", "jsonl",
      "watch", EVENTS }
    assert.same({ "wmiq: hang.1: WBEM_E_TIMED_OUT (0x80041069): Operation timed out (no result within 1500 ms)\n", 1 },
      { err, status })
    local n = 0
    for _, ev in ipairs(python(JSON_LINES, out)) do
      n = n + 1
      assert.same({ "lat5", n }, { ev.Host, ev.Sequence })
    end
    assert.is_true(n >= 3, out)
  end)

  it("ends a watch on Ctrl+C with status 130, its table's rows printed as they arrived", function()
    local term = terminal.open(("cd %s && LUAWMI_WINESERVER=1 scripts/wmiq --locator %s -H lat5 watch %s; echo EXIT=$?")
      :format(q(os.getenv("PWD")), q(TESTWMI), q(EVENTS)))
    local ok, err = pcall(function()
      -- Rows show before Ctrl+C, under the header, in the first row's widths.
      term:wait_for("\n3 ")
      term:tmux("send-keys -t 0 C-c")
      local screen = term:wait_for("EXIT=%d+")
      assert.matches("EXIT=130$", screen)
      local rows = {}
      for seq in screen:gmatch("\n(%d+) +%d+") do rows[#rows + 1] = tonumber(seq) end
      assert.is_true(#rows >= 3, screen)
      for i, seq in ipairs(rows) do assert.equal(i, seq) end
      assert.matches("Sequence  TIME_CREATED +Signature\n1 +%d+  18446744073709551615\n", screen)
    end)
    term:close()
    assert(ok, err)
    -- Several hosts: the lines written so far stay, and the hosts' cancellation
    -- is not reported as their failure.
    local errfile = os.tmpname()
    term = terminal.open(("cd %s && LUAWMI_WINESERVER=1 scripts/wmiq --locator %s -H lat5,lat20 -f jsonl watch %s 2>%s;"
      .. " echo EXIT=$?"):format(q(os.getenv("PWD")), q(TESTWMI), q(EVENTS), q(errfile)))
    ok, err = pcall(function()
      term:wait_for('"Host":"lat20","Sequence":3,', true)
      term:tmux("send-keys -t 0 C-c")
      assert.matches("EXIT=130$", term:wait_for("EXIT=%d+"))
    end)
    term:close()
    local stderr = slurp(errfile)
    os.remove(errfile)
    assert(ok, err)
    assert.equal("", stderr)
  end)

  -- As a Windows user runs it: no -H, no --timeout (one connection, events until Ctrl+C).
  describe("watches this machine until Ctrl+C", function()
    -- Runs `wmiq --locator TESTWMI [-f FORMAT] watch EVENTS` in a terminal, stdout
    -- into a file; after the third event, Ctrl+C. Returns stdout, stderr, the screen.
    local function watch(format)
      local outfile, errfile = os.tmpname(), os.tmpname()
      local term = terminal.open(("cd %s && LUAWMI_WINESERVER=1 scripts/wmiq --locator %s %s watch %s >%s 2>%s;"
        .. " echo EXIT=$?"):format(q(os.getenv("PWD")), q(TESTWMI), format and "-f " .. format or "", q(EVENTS),
        q(outfile), q(errfile)))
      local ok, err = pcall(function()
        -- Each event is written as it arrives, before Ctrl+C.
        local deadline = os.time() + 60
        while not slurp(outfile):find(format and '"Sequence":3' or "\n3 ") do
          assert(os.time() < deadline, "no third event in the output: " .. slurp(outfile) .. slurp(errfile))
          os.execute("sleep 0.2")
        end
        term:tmux("send-keys -t 0 C-c")
        term:wait_for("EXIT=%d+")
      end)
      local screen = term:screen()
      term:close()
      local out, stderr = slurp(outfile), slurp(errfile)
      os.remove(outfile)
      os.remove(errfile)
      assert(ok, err)
      assert.matches("EXIT=130$", screen)
      return out, stderr
    end

    it("in a table, each row as its event arrives, without a Host column", function()
      local out, err = watch()
      assert.equal("", err)
      local t = lines(out)
      assert.matches("^Sequence  TIME_CREATED", t[1])
      assert.falsy(out:find("Host", 1, true))
      assert.falsy(out:find("wmi.Call", 1, true))
      for i = 2, #t do assert.equal(i - 1, tonumber(t[i]:match("^(%d+) "))) end
      assert.matches(" 18446744073709551615$", t[2])
      assert.is_true(#t >= 4, out)
    end)

    it("in json and jsonl, each object as its event arrives; json ends a valid document", function()
      for _, format in ipairs { "jsonl", "json" } do
        local out, err = watch(format)
        assert.equal("", err)
        local events = python(format == "json" and JSON_DOC or JSON_LINES, out)
        assert.is_true(#events >= 3, out)
        for i, ev in ipairs(events) do
          assert.same({ i, nil }, { ev.Sequence, ev.Host })
        end
      end
    end)
  end)

  -- That the password read reaches ConnectServer (a test host accepts any), the
  -- in-process spec shows from the test server's records (spec/16-stream_spec.lua,
  -- "hands the password read for -p - to ConnectServer, with the user given").
  it("reads a password given as - without echo in a terminal, and from a pipe", function()
    local term = terminal.open(
      ("cd %s && LUAWMI_WINESERVER=1 scripts/wmiq --locator %s -H lat5 -u %s -p - %s; echo EXIT=$?")
        :format(q(os.getenv("PWD")), q(TESTWMI), q("DOM\\someone"), q(SPOOLER)))
    local ok, err = pcall(function()
      term:wait_for("Password:", true)
      term:type("s3cr3t-typed")
      local screen = term:wait_for("EXIT=%d")
      assert.falsy(screen:find("s3cr3t", 1, true))
      assert.matches("Name%s*\nSpooler%s*\nEXIT=0", screen)
    end)
    term:close()
    assert(ok, err)
    local out, err2, status = wmiq({ "--locator", TESTWMI, "-H", "lat5", "-u", "DOM\\someone", "-p", "-",
      "-f", "csv", SPOOLER }, nil, "piped-secret")
    assert.same({ "Password: \n", 0 }, { err2, status })
    assert.same({ { "Name" }, { "Spooler" } }, python(CSV_ROWS, out))
  end)
end)
