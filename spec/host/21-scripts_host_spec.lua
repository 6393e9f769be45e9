-- scripts/lua as a developer runs it from a shell, its output into pipes and files.
local terminal = dofile("spec/host/terminal.lua")
local q = terminal.quote

describe("scripts/lua", function()
  it("keeps stderr apart from stdout when stdout is not a terminal, each without '\\r'", function()
    local script = os.tmpname() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write('io.stdout:write("to stdout\\n") io.stdout:flush() io.stderr:write("to stderr\\n") os.exit(3)\n')
    f:close()
    local errfile = os.tmpname()
    local p = assert(io.popen(("LUAWMI_WINESERVER=1 scripts/lua %s 2>%s"):format(q(script), q(errfile))))
    local out = p:read("a")
    local _, _, status = p:close()
    local e = assert(io.open(errfile, "rb"))
    local err = e:read("a")
    e:close()
    os.remove(script)
    os.remove(errfile)
    assert.same({ "to stdout\n", "to stderr\n", 3 }, { out, err, status })
  end)
end)

-- issue 17, item 15: a killed run leaves no wineserver behind. In a checkout of
-- its own (symlinks to the scripts, the code and what build/ holds but a fresh Wine prefix:
-- about 5 s to make), so the shared prefix's wineserver, which the other host
-- specs use, is never touched.
describe("scripts/lua and scripts/wmiq, killed", function()
  local checkout = dofile("spec/host/checkout.lua")
  local own, top

  setup(function()
    own = checkout.new()
    top = own.top
    own:write("busy.lua", "local t = os.time() + 60 repeat until os.time() > t\n")
  end)

  teardown(function() own:remove() end)

  local function programs(what) return own:programs(what) end

  -- Runs COMMAND (a shell command line in TOP that ends with `exec`ing the script)
  -- in the background; a second after the script's lua.exe started, kills the
  -- script with SIGNAL; returns what of the prefix still runs 10 s later.
  local function killed(command, signal)
    os.remove(top .. "/pid")
    -- sh writes its pid, then becomes the script (exec keeps the pid), which
    -- starts a wineserver of its own (scripts/check's LUAWMI_WINESERVER says not to).
    local sh = "unset LUAWMI_WINESERVER; echo $$ >pid && " .. command
    assert(os.execute(("cd %s && { sh -c %s >out 2>&1 & }"):format(q(top), q(sh))))
    local pid
    repeat
      os.execute("sleep 0.1")
      local f = io.open(top .. "/pid")
      pid = f and math.tointeger(tonumber(f:read("l")))
      if f then f:close() end
    until pid
    local deadline = os.time() + 60
    repeat os.execute("sleep 0.2") until programs("lua.exe") ~= "" or os.time() > deadline
    os.execute("sleep 1")
    assert.truthy(programs("lua.exe") ~= "" and programs("wineserver") ~= "", "the script did not run")
    os.execute(("kill -%s %d"):format(signal, pid))
    deadline = os.time() + 10
    while programs("wineserver") .. programs("lua.exe") ~= "" and os.time() <= deadline do os.execute("sleep 0.2") end
    return programs("wineserver") .. programs("lua.exe")
  end

  for _, signal in ipairs { "TERM", "HUP", "KILL" } do
    it("scripts/lua, SIG" .. signal, function()
      assert.equal("", killed("exec scripts/lua busy.lua </dev/null", signal))
    end)
  end

  it("scripts/wmiq waiting for a password, SIGTERM", function()
    -- -p - reads the password from standard input: a pipe whose writer never writes.
    assert.equal("", killed("rm -f fifo && mkfifo fifo && { sleep 60 >fifo & }"
      .. " && exec scripts/wmiq -u someone -p - 'SELECT Name FROM Win32_BIOS' <fifo", "TERM"))
  end)
end)
