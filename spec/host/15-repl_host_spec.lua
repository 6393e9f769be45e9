-- The REPL as a user meets it: `scripts/lua -i` in a real terminal (tmux), what
-- the user types echoed back, and what luawmi's values look like there.
local terminal = dofile("spec/host/terminal.lua")

describe("scripts/lua -i in a terminal", function()
  local term

  -- Types LINE and returns what appeared between its echo and the next prompt.
  local function enter(line)
    term:type(line)
    return term:wait_for(function(screen)
      local echoed, from = nil, 1
      repeat   -- the last echo of LINE
        local at = screen:find("> " .. line, from, true)
        if at then echoed, from = at, at + 1 end
      until not at
      if not echoed then return nil end
      local after = screen:sub(echoed + 2 + #line)
      -- The output ends at the next prompt, the last line of the screen (trimmed).
      if after == "" or not after:find("\n>$") then return nil end
      return (after:gsub("^\n", ""):gsub("\n?>$", ""))
    end)
  end

  setup(function()
    term = terminal.open("cd " .. terminal.quote(os.getenv("PWD")) .. " && scripts/lua -i")
    term:wait_for("\n>$")
  end)

  teardown(function()
    term:close()
  end)

  it("echoes input and prints lists, projected objects, MOF text and WBEM errors readably", function()
    assert.equal("", enter('wmi = require "wmi"; svc = assert(wmi.connect())'))
    assert.equal("wmi.Services (root\\cimv2)", enter("svc"))
    -- A list shows how many, then a table of its objects' values (Format-Table).
    assert.equal("1 object:\nName     State\nSpooler  Stopped",
      enter([[svc:query("SELECT Name, State FROM Win32_Service WHERE Name = 'Spooler'")]]))
    -- The count a user sees is the synchronous query's (Wine's prefix has 23 services).
    local count = enter([[#svc:query("SELECT Name FROM Win32_Service")]])
    assert.equal(enter([[select("#", table.unpack(svc:query("SELECT * FROM Win32_Service")))]]), count)
    assert.equal("23", count)
    assert.equal("{Create, GetOwner}", enter([[svc:get("Win32_Process"):methods()]]))
    local mof = enter([[print(svc:query("SELECT * FROM Win32_OperatingSystem")[1]:text())]])
    -- MOF text as WMI writes it (it starts with a line break; the terminal shows tabs as spaces).
    assert.matches("^\ninstance of Win32_OperatingSystem\n{\n", mof)
    assert.matches('\n%s+Caption = "Microsoft Windows [^"]*";\n', mof)
    assert.matches("\n};$", mof)
    assert.matches("^nil%s+WBEM_E_INVALID_QUERY %(0x80041017%): Invalid query%s+2147749911$",
      enter([[svc:query("SELEC nonsense")]]))
  end)

  -- issue 18, item 4: PowerShell's way of showing values.
  it("shows a list as a table of its first columns, as wide as the terminal", function()
    enter('wmi = require "wmi"; svc = assert(wmi.connect())')
    local count = tonumber(enter([[#svc:query("SELECT * FROM Win32_Service")]]))
    local shown = enter([[svc:query("SELECT * FROM Win32_Service")]])
    local lines = {}
    for line in shown:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(count .. " objects:", lines[1])
    -- The first properties in WMI's order, as many as fit the 200 columns; 20 rows, then "...".
    assert.matches("^AcceptPause%s+AcceptStop%s+DisplayName%s+Name%s+ProcessID%s+", lines[2])
    assert.is_true(#lines[2] <= 200 and #lines[2] > 100, lines[2])
    assert.equal(23, #lines)
    assert.matches("^false%s+false%s+BITS", lines[3])
    assert.equal("...", lines[23])
  end)

  it("shows wmi.stats(), a wmi.datetime result and the module readably", function()
    enter('wmi = require "wmi"')
    assert.matches("^{calls = %d+, connects = %d+, .*objects = %d+, .*stubs = %d+, timers = %d+}$",
      enter("wmi.stats()"))
    assert.equal("2023-11-29 13:45:30.123456 +01:00", enter([[wmi.datetime("20231129134530.123456+060")]]))
    assert.matches("^luawmi 0%.1%.0: wmi%.apartment, wmi%.connect, ", enter("wmi"))
  end)
end)

-- issue 17, item 11: leaving the REPL, and Ctrl+C in a wait.
describe("scripts/lua -i, keys", function()
  local term

  local function open()
    term = terminal.open("cd " .. terminal.quote(os.getenv("PWD"))
      .. " && scripts/lua -i; echo EXIT=$?; stty -a | grep -o 'susp = [^;]*'")
    term:wait_for("\n>$")
    term:type("x = 1")
    term:wait_for("> x = 1\n>$")
  end

  after_each(function()
    term:close()
  end)

  it("ends at Ctrl+D, Enter, as at the end of input", function()
    open()
    term:tmux("send-keys -t 0 C-d Enter")
    assert.truthy(term:wait_for("\nEXIT=0\n", true, 20))
  end)

  it("ends at Ctrl+Z, Enter, as Windows' console does, and gives the terminal its suspend key back", function()
    open()
    term:tmux("send-keys -t 0 C-z Enter")
    assert.truthy(term:wait_for("\nEXIT=0\nsusp = ^Z", true, 20))
  end)

  it("shows one traceback when Ctrl+C interrupts a handler during a wait, and goes on", function()
    open()
    -- Each object's handler takes 0.3 s: the interrupt lands inside one.
    term:type('wmi = require "wmi"; c = wmi.connect():query_async("SELECT Name FROM Win32_Process", '
      .. "{ indicate = function() local t = os.clock() + 0.3 repeat until os.clock() > t end }); wmi.run()")
    os.execute("sleep 1.5")
    term:tmux("send-keys -t 0 C-c")
    local screen = term:wait_for("interrupted!.*\n>$", false, 20)
    local _, tracebacks = screen:gsub("stack traceback:", "")
    assert.equal(1, tracebacks)
    -- The dispatch's own protected delivery shows as an anonymous C frame ("[C]: in ?");
    -- the interrupt lands inside os.clock (its return hook) or between the loop's
    -- instructions (the count hook), as the signal's moment falls.
    local shown = screen:gsub("\n%s+%[C%]: in %?", ""):gsub("\n%s+%[C%]: in function 'os%.clock'", "")
    assert.matches("interrupted!\nstack traceback:\n"
      .. "%s+stdin:1: in function <stdin:1>\n"
      .. "%s+%[C%]: in function 'wmi[%.%a]*run'\n", shown)
    term:type("print(6 * 7)")
    assert.truthy(term:wait_for("\n42\n>$"))
  end)
end)
