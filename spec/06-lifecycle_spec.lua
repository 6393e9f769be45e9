-- Lifetimes of async calls: cancel, close, dropped calls, errors in handlers,
-- handlers that start calls, and a process exiting with calls in flight.
--
-- Wine's CancelAsyncCall does not stop its worker: it waits for it (every object
-- still reaches the sink). The module's own semantics must hold anyway: nothing
-- reaches Lua after cancel, and the status handler reports WBEM_E_CALL_CANCELLED.
local wmi = require "wmi"
local helpers = require "spec.helpers"

local PROCESSES = "SELECT Handle, ProcessId FROM Win32_Process"
local SERVICES = "SELECT Name FROM Win32_Service"
local WBEM_E_CALL_CANCELLED = 0x80041032
local CANCELLED_MESSAGE = "WBEM_E_CALL_CANCELLED (0x80041032): Call cancelled"

-- Handlers that count callbacks and keep each status as plain values.
local function counter()
  local rec = { indicated = 0, statuses = {}, order = {} }
  rec.handlers = {
    indicate = function()
      rec.indicated = rec.indicated + 1
      rec.order[#rec.order + 1] = "indicate"
    end,
    status = function(ok, msg, hr, obj, call)
      rec.statuses[#rec.statuses + 1] = { ok = ok, msg = msg, hr = hr, obj = obj, call = call }
      rec.order[#rec.order + 1] = "status"
    end,
  }
  return rec
end

local function assert_cancelled_status(rec, call)
  assert.equal(1, #rec.statuses)
  local st = rec.statuses[1]
  assert.same({ false, CANCELLED_MESSAGE, WBEM_E_CALL_CANCELLED }, { st.ok, st.msg, st.hr })
  assert.equal(call, st.call)
  assert.equal("status", rec.order[#rec.order])
  assert.is_true(call.done)
  helpers.assert_fail(WBEM_E_CALL_CANCELLED, "WBEM_E_CALL_CANCELLED", call:result())
end

-- The interpreter running these specs, and a way to run a Lua file with it. The
-- child inherits LUA_PATH/LUA_CPATH, so it loads the same module.
local function interpreter()
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  local exe = arg and arg[i]
  assert(exe and exe:lower():match("lua[%d.]*%.exe$"), "cannot find the running lua.exe in arg")
  return exe
end

local function run_child(code)
  local dir = assert(os.getenv("TEMP") or os.getenv("TMP"), "no TEMP folder")
  local path = ("%s\\luawmi-child-%d.lua"):format(dir, math.random(1, 1e9))
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  -- cmd.exe /c strips one pair of quotes around the whole line: add one.
  local pipe = assert(io.popen(('""%s" "%s" 2>&1"'):format(interpreter(), path)))
  local out = pipe:read("a"):gsub("\r", "")
  local ok, how, code_ = pipe:close()
  os.remove(path)
  return out, ok, how, code_
end

describe("async call lifecycle", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)
  teardown(function()
    helpers.assert_all_released()
  end)

  it("cancel from inside an indicate handler: nothing more reaches Lua", function()
    local n = #helpers.settled_processes(svc)
    assert.is_true(n >= 3)
    local rec, call = counter(), nil
    local indicate = rec.handlers.indicate
    rec.handlers.indicate = function(obj, c)
      indicate(obj, c)
      assert.equal(call, c)
      c:cancel()
      c:cancel()          -- twice: harmless
      assert.is_false(c.done)   -- done once the status was delivered
    end
    call = assert(svc:query_async(PROCESSES, rec.handlers))
    assert.is_true(call:wait(10000))
    assert.equal(1, rec.indicated)
    assert.equal(1, call.count)
    assert_cancelled_status(rec, call)
    assert.equal(0, wmi.pending())
    assert.equal(0, wmi.dispatch(100))     -- Wine's worker finished inside cancel: nothing late
    assert.equal(1, rec.indicated)
    assert.equal(1, #rec.statuses)
    -- The Services goes on: the cancel freed Wine's slot.
    local c2 = assert(svc:query_async(PROCESSES, function() end))
    assert.is_true(c2:wait(10000))
    assert.equal(n, c2.count)
  end)

  it("cancel before any dispatch, twice, then after completion", function()
    local n = #helpers.settled_processes(svc)
    local rec = counter()
    local call = assert(svc:query_async(PROCESSES, rec.handlers))
    call:cancel()
    assert.equal("wmi.Call (cancelling, 0 objects)", tostring(call))
    call:cancel()
    assert.is_false(call.done)
    assert.equal(1, wmi.pending())
    assert.equal(1, wmi.dispatch(1000))    -- the cancellation status, only
    assert.equal(0, rec.indicated)
    assert_cancelled_status(rec, call)
    call:cancel()                          -- after the status: no-op
    assert.equal(0, wmi.dispatch(50))
    assert.equal(1, #rec.statuses)

    -- Cancel after completion changes nothing.
    rec = counter()
    call = assert(svc:query_async(PROCESSES, rec.handlers))
    assert.is_true(call:wait(10000))
    call:cancel()
    call:cancel()
    assert.same({ true }, { call:result() })
    assert.same({ true, n, n, 1 }, { call.done, call.count, rec.indicated, #rec.statuses })
    assert.equal(0, wmi.dispatch(50))
  end)

  it("call:close() with the call in flight ends it unheard", function()
    local rec = counter()
    local call = assert(svc:query_async(PROCESSES, rec.handlers))
    assert.equal(1, wmi.pending())
    call:close()
    assert.equal(0, wmi.pending())
    assert.equal(0, wmi.dispatch(100))
    assert.same({ 0, 0 }, { rec.indicated, #rec.statuses })
    assert.has_error(function() return call.count end, "attempt to use a closed wmi.Call")
    call:close()
    -- With part of the results already delivered.
    rec = counter()
    local indicate = rec.handlers.indicate
    rec.handlers.indicate = function(obj, c)
      indicate(obj, c)
      c:close()
    end
    call = assert(svc:query_async(PROCESSES, rec.handlers))
    assert.is_true(call:wait(10000))      -- closed from its handler: finished, silently
    assert.same({ 1, 0 }, { rec.indicated, #rec.statuses })
    assert.equal(0, wmi.dispatch(50))
  end)

  it("services:close() with calls in flight ends them silently", function()
    local other = assert(wmi.connect())
    local n = #svc:query(SERVICES)
    local r1, r2 = counter(), counter()
    local c1 = assert(other:query_async(PROCESSES, r1.handlers))
    local c2 = assert(svc:query_async(SERVICES, r2.handlers))
    assert.equal(2, wmi.pending())
    other:close()
    other:close()
    assert.equal(1, wmi.pending())
    assert.is_true(c1.done)
    helpers.assert_fail(WBEM_E_CALL_CANCELLED, "WBEM_E_CALL_CANCELLED", c1:result())
    assert.is_true(c1:wait(0))
    -- The other Services' call is untouched.
    assert.is_true(c2:wait(10000))
    assert.same({ n, 1, true }, { r2.indicated, #r2.statuses, r2.statuses[1].ok })
    assert.same({ 0, 0 }, { r1.indicated, #r1.statuses })
    assert.has_error(function() other:query_async(PROCESSES, function() end) end,
      "attempt to use a closed wmi.Services")
  end)

  it("a call in flight keeps its Services from the collector (issue 10, item 7)", function()
    local n = #helpers.settled_processes(svc)
    local rec = counter()
    local weak = setmetatable({}, { __mode = "v" })
    local call
    do
      local other = assert(wmi.connect())
      weak[1] = other
      call = assert(other:query_async(PROCESSES, rec.handlers))
    end
    collectgarbage()
    collectgarbage()
    assert.is_not_nil(weak[1])             -- anchored through its call
    assert.is_true(wmi.run(10000))
    assert.same({ n, 1, true }, { rec.indicated, #rec.statuses, rec.statuses[1].ok })
    assert.is_true(call:result())
    call = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])                 -- a finished call lets go of it
  end)

  it("a stub closed in flight ends its call silently", function()
    local apt = assert(wmi.apartment { mode = "inproc" })
    local rec = counter()
    local stub = assert(apt:stub(rec.handlers))
    local call = assert(svc:query_async(PROCESSES, stub))
    stub:close()
    stub:close()
    assert.equal("wmi.Stub (closed)", tostring(stub))
    assert.is_true(call.done)
    assert.equal(0, wmi.dispatch(100))
    assert.same({ 0, 0 }, { rec.indicated, #rec.statuses })
    helpers.assert_fail(WBEM_E_CALL_CANCELLED, "WBEM_E_CALL_CANCELLED", call:result())
    apt:close()
  end)

  it("a dropped in-flight call still delivers every object and its status", function()
    local n = #helpers.settled_processes(svc)
    local rec = counter()
    local weak = setmetatable({}, { __mode = "v" })
    weak[1] = assert(svc:query_async(PROCESSES, rec.handlers))
    collectgarbage()
    collectgarbage()
    assert.is_not_nil(weak[1])             -- anchored while in flight
    assert.equal(1, wmi.pending())
    assert.is_true(wmi.run(10000))
    assert.same({ n, 1, true }, { rec.indicated, #rec.statuses, rec.statuses[1].ok })
    assert.equal(n, rec.statuses[1].call.count)
    rec.statuses = nil
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])                 -- let go after the status
  end)

  it("releases the handlers after the status, even when they refer to the call", function()
    local n = #helpers.settled_processes(svc)
    local weak = setmetatable({}, { __mode = "k" })
    local call
    do
      local handlers = { status = function() return call end }   -- a cycle through the call
      handlers.indicate = function() return handlers end
      weak[handlers] = true
      call = assert(svc:query_async(PROCESSES, handlers))
    end
    collectgarbage()
    collectgarbage()
    assert.is_not_nil(next(weak))          -- held while in flight
    assert.is_true(call:wait(10000))
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))              -- gone, though the call is still referenced
    assert.same({ true, n }, { call.done, call.count })
  end)

  it("a to-be-closed call in flight is closed at the end of its scope", function()
    local rec = counter()
    do
      local call <close> = assert(svc:query_async(PROCESSES, rec.handlers))
      assert.same({ false, 1 }, { call.done, wmi.pending() })
    end
    assert.equal(0, wmi.pending())
    assert.equal(0, wmi.dispatch(100))
    assert.same({ 0, 0 }, { rec.indicated, #rec.statuses })
  end)

  it("an error in a handler propagates with a traceback; nothing queued is lost", function()
    local n = #helpers.settled_processes(svc)
    assert.is_true(n >= 3)
    for _, how in ipairs { "run", "wait", "dispatch" } do
      local rec = counter()
      local indicate = rec.handlers.indicate
      rec.handlers.indicate = function(obj, c)
        indicate(obj, c)
        if rec.indicated == 2 then error("boom in indicate") end
      end
      local call = assert(svc:query_async(PROCESSES, rec.handlers))
      local ok, err
      if how == "run" then ok, err = pcall(wmi.run, 10000)
      elseif how == "wait" then ok, err = pcall(call.wait, call, 10000)
      else
        ok = true
        while ok and wmi.pending() > 0 do ok, err = pcall(wmi.dispatch, 1000) end
      end
      assert.is_false(ok, how)
      assert.matches("boom in indicate", err)
      assert.matches("stack traceback:", err)
      assert.matches("06%-lifecycle_spec%.lua", err)
      assert.equal(2, rec.indicated)
      assert.is_false(call.done)
      assert.equal(1, wmi.pending())
      -- The rest arrives at the next dispatch, in order.
      assert.is_true(wmi.run(10000))
      assert.same({ n, n, 1, true }, { rec.indicated, call.count, #rec.statuses, rec.statuses[1].ok })
      assert.equal("status", rec.order[#rec.order])
    end
    -- An error in a status handler: the call is finished and released all the same.
    local call = assert(svc:query_async(SERVICES, { status = function() error("boom in status") end }))
    local ok, err = pcall(call.wait, call, 10000)
    assert.is_false(ok)
    assert.matches("boom in status", err)
    assert.is_true(call.done)
    assert.same({ true }, { call:result() })
    assert.equal(0, wmi.pending())
    -- A non-string error value passes through unchanged.
    local value = {}
    call = assert(svc:query_async(SERVICES, function() error(value) end))
    ok, err = pcall(wmi.run, 10000)
    assert.is_false(ok)
    assert.equal(value, err)
    call:close()
  end)

  it("a handler may start another call, on another Services or after the status", function()
    local n = #helpers.settled_processes(svc)
    local services = #svc:query(SERVICES)
    -- From an indicate handler, on a second Services (one Wine slot each).
    local other = assert(wmi.connect())
    local inner, started = counter(), nil
    local outer = assert(svc:query_async(PROCESSES, function()
      if not started then started = assert(other:query_async(SERVICES, inner.handlers)) end
    end))
    assert.is_true(wmi.run(10000))
    assert.same({ true, n }, { outer.done, outer.count })
    assert.same({ true, services, services, 1 }, { started.done, started.count, inner.indicated, #inner.statuses })
    other:close()

    -- From each status handler, sequentially on the same Services.
    local chain, counts = {}, {}
    local function step(i)
      chain[i] = assert(svc:query_async(i % 2 == 1 and PROCESSES or SERVICES, {
        status = function(ok, _, _, _, call)
          assert.is_true(ok)
          counts[i] = call.count
          if i < 4 then step(i + 1) end
        end,
      }))
    end
    step(1)
    assert.is_true(wmi.run(10000))
    assert.same({ n, services, n, services }, counts)
    for i = 1, 4 do assert.is_true(chain[i].done) end

    -- From a status handler: a new call on the same Services while the finished
    -- one's stub is parked in Wine's slot is the case that needs the unpark.
    local second
    local first = assert(svc:query_async(SERVICES, { status = function()
      second = assert(svc:query_async(SERVICES, function() end))
    end }))
    assert.is_true(first:wait(10000))
    assert.is_true(second:wait(10000))
    assert.equal(services, second.count)
  end)

  it("a nested wait inside a handler delivers in order", function()
    local n = #helpers.settled_processes(svc)
    local other = assert(wmi.connect())
    local services = #other:query(SERVICES)
    local order = {}
    local c2
    local c1 = assert(svc:query_async(PROCESSES, {
      indicate = function()
        order[#order + 1] = "p"
        if not c2 then
          c2 = assert(other:query_async(SERVICES, { status = function() order[#order + 1] = "s-status" end }))
          assert.is_true(c2:wait(10000))
        end
      end,
      status = function() order[#order + 1] = "p-status" end,
    }))
    assert.is_true(c1:wait(10000))
    assert.same({ true, n, true, services }, { c1.done, c1.count, c2.done, c2.count })
    -- Each call's callbacks in its own order: the nested wait may deliver the
    -- outer call's later objects (even its status) before the inner status.
    local seen = { p = 0 }
    for i, what in ipairs(order) do
      if what == "p" then
        assert.is_nil(seen["p-status"])
        seen.p = seen.p + 1
      else
        assert.is_nil(seen[what])
        seen[what] = i
      end
    end
    assert.same({ p = n, ["s-status"] = seen["s-status"], ["p-status"] = seen["p-status"] }, seen)
    assert.is_number(seen["s-status"])
    assert.is_number(seen["p-status"])
    other:close()
  end)

  it("a child process exits cleanly with calls in flight (os.exit(0, true))", function()
    local out, ok, how, code = run_child([[
local wmi = require "wmi"
local s1 = assert(wmi.connect())
local s2 = assert(wmi.connect())
local apt = assert(wmi.apartment { mode = "inproc" })
local c1 = assert(s1:query_async("SELECT * FROM Win32_Process", function() end))
local c2 = assert(s2:query_async("SELECT * FROM Win32_Service", assert(apt:stub(function() end))))
io.write("pending ", wmi.pending(), " ", tostring(c1.done), " ", tostring(c2.done), "\n")
io.flush()
os.exit(0, true)
]])
    assert.equal("pending 2 false false\n", out)
    assert.same({ true, "exit", 0 }, { ok, how, code })

    -- From inside a handler, in the middle of a dispatch, after a cancel and with
    -- another call just started: lua_close runs under the dispatching C function.
    out, ok, how, code = run_child([[
local wmi = require "wmi"
local s1 = assert(wmi.connect())
local s2 = assert(wmi.connect())
local c = assert(s1:query_async("SELECT * FROM Win32_Process", function(_, call)
  call:cancel()
  assert(s2:query_async("SELECT * FROM Win32_Service", function() end))
  io.write("exiting ", wmi.pending(), "\n")
  io.flush()
  os.exit(0, true)
end))
wmi.run(10000)
io.write("not reached ", tostring(c.done), "\n")
]])
    assert.equal("exiting 2\n", out)
    assert.same({ true, "exit", 0 }, { ok, how, code })

    -- And a child whose exit code is not 0 is seen as such: the check means something.
    out, ok, how, code = run_child("os.exit(3, true)")
    assert.same({ "", nil, "exit", 3 }, { out, ok, how, code })
  end)
end)

describe("a host whose Lua thread is an STA", function()
  it("works in that STA: waits pump messages and callbacks arrive", function()
    local out, ok, how, code = run_child([[
local testapt = require "testapt"
io.write("init ", testapt.init_sta(), "\n")
local wmi = require "wmi"
io.write("threading ", wmi.threading(), "\n")
local svc = assert(wmi.connect())
local expected = #svc:query("SELECT * FROM Win32_Service")
local names = {}
local call = assert(svc:query_async("SELECT * FROM Win32_Service", function(obj) names[#names + 1] = obj.Name end))
io.write("wait ", tostring(call:wait(10000)), " ", tostring(call:result()), "\n")
io.write("count ", #names == expected and "same" or (#names .. " ~= " .. expected), " ", call.count, "\n")
local second = assert(svc:query_async("SELECT * FROM Win32_BIOS", function() end))
io.write("run ", tostring(wmi.run(10000)), " ", second.count, "\n")
os.exit(0, true)
]])
    assert.same({ true, "exit", 0 }, { ok, how, code })
    local services = out:match("count same (%d+)")
    assert.is_truthy(services, out)
    assert.equal(("init 0\nthreading sta\nwait true true\ncount same %s\nrun true 1\n"):format(services), out)
  end)

  it("reports an MTA when the module initialised COM itself", function()
    assert.equal("mta", wmi.threading())
  end)
end)

-- Found by review: each of these crashed, hung or misdelivered before its fix.
describe("lifecycle regressions", function()
  local testapt = require "testapt"
  after_each(function()
    testapt.reset()
    helpers.assert_all_released()
  end)

  it("reads options raw: an __index in an options table never runs", function()
    local svc = assert(wmi.connect())
    local trap = setmetatable({}, { __index = function() svc:close() error("__index ran") end })
    local call = assert(svc:exec_async("StdRegProv", "EnumKey", {}, function() end, trap) or
                        svc:query_async("SELECT * FROM Win32_BIOS", function() end, trap))
    assert.is_true(call:wait(10000))
    assert.equal(1, #svc:query("SELECT * FROM Win32_BIOS", trap))
    assert.is_true(wmi.apartment(trap) ~= nil)
    svc:close()
  end)

  it("closing a finished call whose slot a later call took does not cancel that call", function()
    -- Wine's CancelAsyncCall cancels whatever holds the connection's one slot.
    testapt.reset()
    local apt = assert(wmi.apartment { mode = "unsecapp", clsid = testapt.clsid, context = "inproc" })
    local svc = assert(wmi.connect { apartment = apt })
    local a = assert(svc:query_async("SELECT * FROM Win32_BIOS", function() end))
    while wmi.stats().queued < 2 do end           -- A's object and status, undispatched
    testapt.hold(true)                             -- B's final status stays with its stub
    local b = assert(svc:query_async("SELECT * FROM Win32_OperatingSystem", function() end))
    while not testapt.held() do end                -- B finished at Wine; Lua has not heard
    a:close()                                      -- must not touch B's slot
    -- B still holds the slot: a third call finds it taken (nothing completed to
    -- free). Its stub comes from elsewhere: testapt releases its latest stub.
    local inproc = assert(wmi.apartment { mode = "inproc" })
    helpers.assert_fail(0x80041001, "WBEM_E_FAILED",
      svc:query_async("SELECT * FROM Win32_BIOS", assert(inproc:stub(function() end))))
    inproc:close()
    assert.is_true(testapt.release())
    assert.is_true(b:wait(10000))
    assert.equal(1, b.count)
    assert.is_true(b:result())
    b:close()
    svc:close()
    apt:close()
  end)

  it("delivers nothing to a call a finalizer ended while its arguments were pushed", function()
    collectgarbage("incremental", 0, 1000, 0)     -- a GC step at nearly every allocation
    local nil_calls, statuses = 0, 0
    for _ = 1, 40 do
      local holder = { svc = assert(wmi.connect()) }
      holder.svc:query_async("SELECT Handle FROM Win32_Process", {
        indicate = function(_, c)
          if c == nil then nil_calls = nil_calls + 1 end
          holder.svc = nil                         -- the services may now be collected
        end,
        status = function() statuses = statuses + 1 end,
      })
      wmi.run(5000)
    end
    collectgarbage("incremental", 200, 100, 13)
    assert.equal(0, nil_calls)
    assert.is_true(statuses >= 35)                 -- a collected services ends its call unheard
  end)
end)
