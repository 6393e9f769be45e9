-- Issue 23: an allocation that fails anywhere in a short scenario ends in a Lua
-- error or nil, message: never a crash, never a leak. spec/support/allocfail.c
-- runs each scenario in a new Lua state whose K-th allocation fails, for every K
-- up to the scenario's own count of allocations; after each run the state is
-- closed and every count of wmi.stats() (process-wide) must return to zero. The
-- sweep runs in a child process: a crash fails this spec instead of the run.
local function interpreter()
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  return assert(arg and arg[i], "cannot find the running lua.exe in arg")
end

local SWEEP = [==[
local allocfail = require "allocfail"
local wmi = require "wmi"
local testwmi = require "testwmi"
local SETUP = [[ wmi = require "wmi"; testwmi = require "testwmi" ]]
local SCENARIOS = {
  connect = [[
    local svc, msg = wmi.connect { locator = testwmi.clsid }
    if not svc then return nil, msg end
    svc:close()
    return true ]],
  query = [[
    local svc, msg = wmi.connect { locator = testwmi.clsid }
    if not svc then return nil, msg end
    local list, qmsg = svc:query("SELECT * FROM Win32_BIOS")
    svc:close()
    if not list then return nil, qmsg end
    return #list ]],
  async = [[
    local svc, msg = wmi.connect { locator = testwmi.clsid }
    if not svc then return nil, msg end
    local apt = assert(wmi.apartment { mode = "inproc" })
    local stub = assert(apt:stub { indicate = function() end, status = function() end })
    local call, cmsg = svc:query_async("SELECT * FROM Win32_BIOS", stub)
    if not call then return nil, cmsg end
    call:wait(10000)
    call:close(); stub:close(); apt:close(); svc:close()
    return true ]],
  fanout = [[
    local run = wmi.fanout({ "lat0", "lat1", "lat2" }, "SELECT * FROM Win32_BIOS",
                           { locator = testwmi.clsid, timeout = 5000 })
    run:wait(10000)
    return run.done ]],
}
local COUNTS = { "objects", "services", "stubs", "calls", "queued", "enumerators", "connects", "timers", "identities" }
-- What the module, or the test server, still holds (nil: nothing).
local SERVER = { "calls", "sinks", "objects", "services", "enumerators", "call_results", "in_flight" }
local function holding()
  local s, t = wmi.stats(), testwmi.stats()
  for _, k in ipairs(COUNTS) do if s[k] ~= 0 then return ("wmi.stats().%s=%d"):format(k, s[k]) end end
  for _, k in ipairs(SERVER) do if t[k] ~= 0 then return ("testwmi.stats().%s=%d"):format(k, t[k]) end end
end
local function leaked()
  for _ = 1, 300 do
    collectgarbage()
    if not holding() then return nil end
    wmi.dispatch(10)
  end
  return holding()
end
for _, name in ipairs { "connect", "query", "async", "fanout" } do
  local k, errors, fails, bad = 0, 0, 0, 0
  repeat
    k = k + 1
    local verdict, allocations, message = allocfail.run(SETUP, SCENARIOS[name], k)
    if verdict == "error" then errors = errors + 1
    elseif verdict == "returned" and message:find("^nil, ") then fails = fails + 1
    elseif verdict ~= "returned" then bad = bad + 1; io.write("BAD ", name, " k=", k, " ", verdict, " ", message, "\n")
    end
    testwmi.idle(10000)
    local left = leaked()
    if left then bad = bad + 1; io.write("LEAK ", name, " k=", k, " ", left, "\n") end
  until allocations < k
  io.write(("%s: %d allocations, %d errors, %d nil+message, %d bad\n"):format(name, k - 1, errors, fails, bad))
end
]==]

describe("an allocation failure at every step of a scenario (issue 23)", function()
  it("connect, query, async query with a stub, fan-out of 3 hosts: an error or nil, message; nothing leaks", function()
    local dir = assert(os.getenv("TEMP") or os.getenv("TMP"), "no TEMP folder")
    local path = ("%s\\luawmi-allocfail-%d.lua"):format(dir, math.random(1, 1e9))
    local f = assert(io.open(path, "w"))
    f:write(SWEEP)
    f:close()
    local pipe = assert(io.popen(('""%s" "%s" 2>&1"'):format(interpreter(), path)))
    local out = pipe:read("a"):gsub("\r", "")
    local ok, how, status = pipe:close()
    os.remove(path)
    assert(ok and how == "exit" and status == 0, ("the sweep's process failed (%s %s):\n%s"):format(how, status, out))
    for _, name in ipairs { "connect", "query", "async", "fanout" } do
      local n, errors, fails, bad =
        out:match(name .. ": (%d+) allocations, (%d+) errors, (%d+) nil%+message, (%d+) bad")
      assert(n, "no line for " .. name .. ":\n" .. out)
      assert.is_true(tonumber(n) >= 3, name .. " made too few allocations to prove anything")
      assert.are.equal(0, tonumber(bad), out)
      -- Most failures raise; Lua absorbs a few itself (a string table that cannot grow).
      assert.is_true(tonumber(errors) + tonumber(fails) >= tonumber(n) - 2, out)
    end
  end)
end)
