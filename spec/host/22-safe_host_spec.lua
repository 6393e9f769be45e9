-- Issue 22, wmiq as a user runs it: no password in the process list, no option
-- value echoed, WMI data that cannot drive the terminal, CSV cells no spreadsheet
-- runs as formulas, and a confirmation before a call changes several machines.
-- Against Wine's real WMI (StdRegProv) and the test WMI server's simulated hosts.
local terminal = dofile("spec/host/terminal.lua")
local q = terminal.quote

local run = dofile("spec/host/run.lua")
local TESTWMI, wmiq, winlua, python = run.TESTWMI, run.wmiq, run.winlua, run.python
local CSV_ROWS, JSON_DOC = run.CSV_ROWS, run.JSON_DOC
local SERVICES = "SELECT Name FROM Win32_Service"
local KEY = [[Software\luawmi-safe-spec]]
local SECRET = "Hunter2-s3cr3t"

-- Sets the registry value NAME under KEY (HKCU) to VALUE through StdRegProv.
local function set_value(name, value)
  winlua(([[
local wmi = require "wmi"
local svc = assert(wmi.connect("root\\default"))
assert(svc:exec("StdRegProv", "CreateKey", { hDefKey = 0x80000001, sSubKeyName = %q }))
local out = assert(svc:exec("StdRegProv", "SetStringValue",
  { hDefKey = 0x80000001, sSubKeyName = %q, sValueName = %q, sValue = %q }))
assert(out.ReturnValue == 0)
]]):format(KEY, KEY, name, value))
end

local function get_value(name)
  local out = winlua(([[
local wmi = require "wmi"
local svc = assert(wmi.connect("root\\default"))
local out = assert(svc:exec("StdRegProv", "GetStringValue",
  { hDefKey = 0x80000001, sSubKeyName = %q, sValueName = %q }))
io.write(tostring(out.sValue))
]]):format(KEY, name))
  return (out:gsub("\r", ""))
end

-- What must never reach a terminal raw: ESC, BEL, C1 CSI and OSC, DEL, U+202E.
local RAW = { "\27", "\7", "\u{9b}", "\u{9d}", "\127", "\u{202e}" }
local HOSTILE = "\27]0;owned\7\27[2J\u{9b}31m\u{9d}x\127evil\u{202e}gpj.exe"
local SHOWN = "\\x1b]0;owned\\x07\\x1b[2J\\u009b31m\\u009dx\\x7fevil\\u202egpj.exe"

local function assert_no_raw(text, what)
  for _, c in ipairs(RAW) do
    assert.falsy(text:find(c, 1, true), ("%s holds a raw %q"):format(what, c))
  end
end

-- Lines of the process list that hold NEEDLE: wmiq's (lua.exe's), not the shell
-- lines this spec starts it with.
local function ps_lines(needle)
  local f = assert(io.popen("ps -eo args"))
  local found = {}
  for line in f:lines() do
    if line:find(needle, 1, true) and line:find("lua.exe", 1, true) then found[#found + 1] = line end
  end
  f:close()
  return found
end

describe("wmiq, safe by default (issue 22)", function()
  local started_wineserver

  setup(function()
    started_wineserver = os.execute("bash -c '. scripts/wine-env.sh && wineserver -p' </dev/null >/dev/null 2>&1")
  end)

  teardown(function()
    winlua(([[
local svc = assert(require("wmi").connect("root\\default"))
svc:exec("StdRegProv", "DeleteKey", { hDefKey = 0x80000001, sSubKeyName = %q })]]):format(KEY))
    if started_wineserver then
      os.execute("bash -c '. scripts/wine-env.sh && wineserver -k' </dev/null >/dev/null 2>&1")
    end
  end)

  describe("credentials", function()
    -- A host that never answers keeps wmiq running while ps looks; -p SECRET is
    -- the control: the check sees a password on the command line.
    local function running(cmd, env)
      local term = terminal.open(("cd %s && %s LUAWMI_WINESERVER=1 scripts/wmiq --locator %s -H hang"
        .. " --timeout 8000 %s %s; echo EXIT=$?"):format(q(os.getenv("PWD")), env or "", q(TESTWMI), cmd, q(SERVICES)))
      return term
    end

    it("keeps a password from the environment or a prompt out of the process list", function()
      local term = running("-u DOM\\\\admin -p " .. SECRET)
      local ok, err = pcall(function()
        term:wait_for("visible to other users", true)
        assert.is_true(#ps_lines(SECRET) > 0)      -- the control: ps can see it
        term:wait_for("EXIT=%d")
      end)
      term:close()
      assert(ok, err)

      term = running("-u DOM\\\\admin --password-env WMIQ_SECRET", "WMIQ_SECRET=" .. SECRET)
      ok, err = pcall(function()
        os.execute("sleep 3")                       -- connected to hang, waiting
        assert.same({}, ps_lines(SECRET))
        assert.matches("hang: WBEM_E_TIMED_OUT", term:wait_for("EXIT=%d"))
      end)
      term:close()
      assert(ok, err)

      -- -u without a password: asked at the console, without echo.
      term = running("-u DOM\\\\admin")
      ok, err = pcall(function()
        term:wait_for("Password:", true)
        term:type(SECRET)
        os.execute("sleep 2")
        assert.same({}, ps_lines(SECRET))
        local screen = term:wait_for("EXIT=%d")
        assert.falsy(screen:find(SECRET, 1, true))
        assert.matches("hang: WBEM_E_TIMED_OUT", screen)
      end)
      term:close()
      assert(ok, err)
    end)

    it("names the alternatives when -u has no password and no console, and never echoes a value", function()
      local out, err, status = wmiq { "--locator", TESTWMI, "-H", "lat5", "-u", "DOM\\admin", SERVICES }
      assert.same({ "", 2 }, { out, status })
      assert.matches("^wmiq: option '%-%-user' needs a password, and there is no console to ask for it: use "
        .. "%-%-password%-env VAR, %-%-credential NAME or %-p %-", err)
      for _, args in ipairs {
        { "--pasword=" .. SECRET, SERVICES },
        { "--throttle", SECRET, SERVICES },
        { "-f", SECRET, SERVICES },
        { "-H", SECRET .. "\\root", SERVICES },
        { "--password-env", SECRET, "-u", "x", SERVICES },
        { "--credential", SECRET .. "-missing", SERVICES },
        { "-p", SECRET, SERVICES },
      } do
        _, err, status = wmiq(args)
        assert.equal(2, status, err)
        assert.falsy(err:find(SECRET, 1, true), err)
        assert.falsy(err:find("Hunter2", 1, true), err)
      end
      -- The misspelt option is named, without its value.
      err = select(2, wmiq { "--pasword=" .. SECRET, SERVICES })
      assert.equal("wmiq: unknown option '--pasword'\nTry 'wmiq --help'.\n", err)
    end)
  end)

  describe("output", function()
    setup(function()
      set_value("hostile", HOSTILE)
      set_value("formula", "=cmd|' /C calc'!A0")
      set_value("plus", "+1+2")
    end)

    it("shows control, C1 and bidi characters of a registry value visibly in every format", function()
      assert.equal(HOSTILE, get_value("hostile"))   -- the value is stored as it was written
      for _, fmt in ipairs { "table", "list", "csv" } do
        local text, problem, code = wmiq({ "-f", fmt, "-n", "root\\default", "call", "StdRegProv", "GetStringValue",
          "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=hostile" }, "COLUMNS=400")
        assert.same({ "", 0 }, { problem, code }, fmt)
        assert_no_raw(text, fmt)
        assert.truthy(text:find(SHOWN, 1, true), fmt .. ": " .. text)
      end
      -- mof: Wine's GetObjectText leaves sValue out of the out-parameters' text
      -- (a Wine limitation); what it writes is still filtered.
      local mof, problem, code = wmiq { "-f", "mof", "-n", "root\\default", "call", "StdRegProv", "GetStringValue",
        "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=hostile" }
      assert.same({ "", 0 }, { problem, code })
      assert.same({ "instance of __STDREGPROV_GETSTRINGVALUE_OUT", "{", "\tReturnValue = 0;", "};" },
        { mof:match("^\r\n(.-)\r\n(.-)\r\n(.-)\r\n(.-)\r\n") })
      -- json and jsonl: escaped as JSON, and Python reads the value back exactly.
      for _, fmt in ipairs { "json", "jsonl" } do
        local out, err, status = wmiq { "-f", fmt, "-n", "root\\default", "call", "StdRegProv", "GetStringValue",
          "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=hostile" }
        assert.same({ "", 0 }, { err, status })
        assert_no_raw(out, fmt)
        assert.truthy(out:find("\\u001b]0;owned\\u0007", 1, true), out)
        assert.truthy(out:find("\\u202e", 1, true), out)
        local doc = python(fmt == "json" and JSON_DOC or
          "import json, sys\nprint(json.dumps(json.loads(open(sys.argv[1], encoding='utf-8').readline())))", out)
        assert.equal(HOSTILE, (doc[1] or doc).sValue)
      end
    end)

    it("prefixes a CSV cell that starts as a formula with ', and --csv-raw turns that off", function()
      local out, err, status = wmiq { "-f", "csv", "-n", "root\\default", "call", "StdRegProv", "GetStringValue",
        "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=formula" }
      assert.same({ "", 0 }, { err, status })
      assert.same({ { "ReturnValue", "sValue" }, { "0", "'=cmd|' /C calc'!A0" } }, python(CSV_ROWS, out))
      out = wmiq { "-f", "csv", "-n", "root\\default", "call", "StdRegProv", "GetStringValue",
        "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=plus" }
      assert.same({ "0", "'+1+2" }, python(CSV_ROWS, out)[2])
      out = wmiq { "-f", "csv", "--csv-raw", "-n", "root\\default", "call", "StdRegProv", "GetStringValue",
        "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=formula" }
      assert.same({ "0", "=cmd|' /C calc'!A0" }, python(CSV_ROWS, out)[2])
    end)

    it("shows what it repeats on stderr visibly too", function()
      -- (lua.exe's arguments come in the ANSI code page: ESC and BEL survive it)
      local _, err, status = wmiq { "\27]0;owned\7\27[2J" }
      assert.equal(2, status)
      assert_no_raw(err, "stderr")
      assert.equal("wmiq: unknown command '\\x1b]0;owned\\x07\\x1b[2J' (a WQL query, get, call, classes or watch"
        .. " expected)\nTry 'wmiq --help'.\n", err)
    end)
  end)

  describe("a call on several hosts", function()
    -- Two simulated machines of the test server (Wine's own WMI has no
    -- ExecMethodAsync); both serve this prefix's registry.
    local SET = { "--locator", TESTWMI, "-H", "lat5,lat10", "-n", "root\\default", "call", "StdRegProv",
      "SetStringValue", "hDefKey=2147483649", "sSubKeyName=" .. KEY, "sValueName=fleet" }

    before_each(function() set_value("fleet", "before") end)

    it("needs --yes without a terminal, and --what-if calls nothing", function()
      local args = { table.unpack(SET) }
      args[#args + 1] = "sValue=changed"
      local out, err, status = wmiq(args)
      assert.same({ "", "wmiq: call on 2 hosts needs --yes (or --what-if) without a console to confirm at\n"
        .. "Try 'wmiq --help'.\n", 2 }, { out, err, status })
      assert.equal("before", get_value("fleet"))

      table.insert(args, 1, "--what-if")
      out, err, status = wmiq(args)
      assert.same({ "", 0 }, { err, status })
      local lines = {}
      for line in out:gmatch("([^\r\n]+)") do lines[#lines + 1] = line end
      local call = "StdRegProv SetStringValue(hDefKey=2147483649, sSubKeyName=" .. KEY .. ", sValueName=fleet, "
        .. "sValue=changed)"
      assert.same({ "What if: call " .. call .. " on lat5", "What if: call " .. call .. " on lat10" }, lines)
      assert.equal("before", get_value("fleet"))

      args[1] = "--yes"
      err, status = select(2, wmiq(args))
      assert.same({ "", 0 }, { err, status })
      assert.equal("changed", get_value("fleet"))
    end)

    it("asks at a terminal, showing the hosts and the method with its arguments", function()
      local cmd = {}
      for i, a in ipairs(SET) do cmd[i] = q(a) end
      for _, case in ipairs { { "n", "before", "EXIT=1" }, { "y", "typed", "EXIT=0" } } do
        local term = terminal.open(("cd %s && LUAWMI_WINESERVER=1 scripts/wmiq %s sValue=typed; echo EXIT=$?")
          :format(q(os.getenv("PWD")), table.concat(cmd, " ")))
        local ok, err = pcall(function()
          local screen = term:wait_for("Proceed? [y/N]", true)
          assert.truthy(screen:find("call StdRegProv SetStringValue(hDefKey=2147483649, sSubKeyName=" .. KEY
            .. ", sValueName=fleet, sValue=typed) on 2 hosts: lat5, lat10", 1, true), screen)
          term:type(case[1])
          assert.matches(case[3] .. "$", term:wait_for("EXIT=%d"))
        end)
        term:close()
        assert(ok, err)
        assert.equal(case[2], get_value("fleet"))
      end
    end)
  end)
end)
