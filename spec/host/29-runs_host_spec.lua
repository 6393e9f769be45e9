-- issue 21, item 6: runs of scripts/lua and scripts/wmiq that overlap in one
-- checkout share its wineserver, and none stops it while another still runs.
-- In a checkout of its own (spec/host/checkout.lua): the shared prefix's
-- wineserver, kept by scripts/check for the other host specs, would hide the
-- runs' own servers.
local q = dofile("spec/host/terminal.lua").quote
local checkout = dofile("spec/host/checkout.lua")

describe("overlapping runs in one checkout", function()
  local own, top

  local function read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
  end

  setup(function()
    own = checkout.new()
    top = own.top
    -- NAME COUNT STATUS: COUNT lines NAME1..NAMECOUNT, a second apart (wmi.dispatch
    -- waits without a CPU), then exit STATUS.
    own:write("count.lua", [[
local wmi = require "wmi"
local name, count, status = arg[1], tonumber(arg[2]), tonumber(arg[3])
for i = 1, count do
  wmi.dispatch(1000)
  io.write(name, i, "\n")
  io.flush()
end
os.exit(status)
]])
    -- The fresh prefix made first, by a run alone (unless LUAWMI_WINESERVER:
    -- scripts/check's says to keep its server, the runs here start their own).
    assert(os.execute(("cd %s && unset LUAWMI_WINESERVER && scripts/lua count.lua x 0 0 </dev/null >/dev/null 2>&1")
      :format(q(top))))
  end)

  teardown(function() own:remove() end)

  -- Starts COMMAND (a shell command line in TOP) in the background; its output
  -- goes to NAME.out and NAME.err, its exit status to NAME.status.
  local function start(name, command)
    assert(os.execute(("cd %s && { unset LUAWMI_WINESERVER; { %s; } </dev/null >%s.out 2>%s.err;"
      .. " echo $? >%s.status.tmp; mv %s.status.tmp %s.status; } &")
      :format(q(top), command, name, name, name, name, name)))
  end

  -- Waits (at most 120 s) until every one of NAMES ended; returns their
  -- { status, stdout, stderr }.
  local function ended(names)
    local deadline = os.time() + 120
    local results
    repeat
      os.execute("sleep 0.2")
      results = {}
      for _, name in ipairs(names) do
        local status = read(("%s/%s.status"):format(top, name))
        if not status then results = nil break end
        results[name] = { tonumber(status), read(("%s/%s.out"):format(top, name)),
                          read(("%s/%s.err"):format(top, name)) }
      end
    until results or os.time() > deadline
    return assert(results, "the runs did not end within 120 s")
  end

  local function lines(name, count)
    local t = {}
    for i = 1, count do t[i] = name .. i .. "\n" end
    return table.concat(t)
  end

  it("each of three ends with its own status and all its output; the last stops the wineserver", function()
    -- 4 s, then 10 s a second later, then 6 s a second after that: the first
    -- ends while both others run, the third while the second does.
    start("a", "scripts/lua count.lua a 4 11")
    os.execute("sleep 1")
    start("b", "scripts/lua count.lua b 10 12")
    os.execute("sleep 1")
    start("c", "scripts/lua count.lua c 6 13")
    local results = ended { "a", "b", "c" }
    assert.same({
      a = { 11, lines("a", 4), "" },
      b = { 12, lines("b", 10), "" },
      c = { 13, lines("c", 6), "" },
    }, results)
    -- Nothing of the prefix outlives the last run.
    local deadline = os.time() + 10
    while own:programs("wineserver") ~= "" and os.time() <= deadline do os.execute("sleep 0.2") end
    assert.equal("", own:programs("wineserver"))
  end)

  it("scripts/wmiq too: a query that starts first and ends first stops nothing", function()
    -- wmiq waits 3 s for its password (-p -: a line of standard input), then asks.
    start("wmiq", "{ sleep 3; echo secret; } | scripts/wmiq -u someone -p - -f csv 'SELECT Name FROM Win32_BIOS'")
    os.execute("sleep 1")
    start("long", "scripts/lua count.lua long 8 7")
    local results = ended { "wmiq", "long" }
    assert.same({ 7, lines("long", 8), "" }, results.long)
    assert.equal(0, results.wmiq[1])
    assert.matches("^Name\r\n[^\r\n]+\r\n$", results.wmiq[2])
  end)
end)
