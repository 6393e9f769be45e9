-- Asynchronous calls against Wine's real WMI (wbemprox's ExecQueryAsync).
--
-- Wine facts these specs rely on (measured on Wine 8.0, see DESIGN.md):
-- * only ExecQueryAsync and ExecNotificationQueryAsync are implemented; every other
--   *Async method returns WBEM_E_FAILED (0x80041001) at once, CreateInstanceEnumAsync
--   included;
-- * one async call may be pending per IWbemServices (the module parks a finished
--   call's stub and frees Wine's slot only when the next call needs it);
-- * callbacks come one object per Indicate, then one SetStatus; no progress calls;
-- * an instance's values live in its class's table, which the next query of that
--   class refills: handlers copy values into plain Lua values at once, and no two
--   queries of one class run at the same time.
local wmi = require "wmi"
local helpers = require "spec.helpers"

local PROCESSES = "SELECT Handle, ProcessId FROM Win32_Process"
local SERVICES = "SELECT Name FROM Win32_Service"
local WBEM_E_FAILED = 0x80041001
local WBEM_E_INVALID_QUERY = 0x80041017

-- "pid/handle" strings of a list of Win32_Process objects, sorted.
local function process_keys(list)
  local keys = {}
  for i, p in ipairs(list) do keys[i] = ("%d/%s"):format(p.ProcessId, p.Handle) end
  return helpers.sorted(keys)
end

-- Handlers recording every callback, in order, as plain values.
local function recorder(field)
  local rec = { events = {}, keys = {}, statuses = {}, progress = 0 }
  rec.handlers = {
    indicate = function(obj, call)
      rec.events[#rec.events + 1] = "indicate"
      rec.keys[#rec.keys + 1] = field == "process" and ("%d/%s"):format(obj.ProcessId, obj.Handle) or obj[field]
      rec.call = call
    end,
    status = function(ok, msg, hr, obj, call)
      rec.events[#rec.events + 1] = "status"
      rec.statuses[#rec.statuses + 1] = { ok = ok, msg = msg, hr = hr, obj = obj, call = call }
    end,
    progress = function()
      rec.progress = rec.progress + 1
    end,
  }
  return rec
end

-- Asserts a successful, complete delivery: N indicates, then exactly one status.
local function assert_complete(rec, call, n)
  assert.equal(n + 1, #rec.events)
  for i = 1, n do assert.equal("indicate", rec.events[i]) end
  assert.equal("status", rec.events[n + 1])
  assert.equal(1, #rec.statuses)
  local st = rec.statuses[1]
  assert.same({ true, nil, 0, nil }, { st.ok, st.msg, st.hr, st.obj })
  assert.equal(call, st.call)
  assert.is_true(call.done)
  assert.equal(n, call.count)
  assert.same({ true }, { call:result() })
end

describe("async calls", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  it("query_async delivers what svc:query returns, then one status", function()
    local expected = helpers.settled_processes(svc)
    assert.is_true(#expected >= 5)
    local rec = recorder("process")
    local call = assert(svc:query_async(PROCESSES, rec.handlers))
    assert.equal("wmi.Call (running, 0 objects)", tostring(call))
    assert.is_false(call.done)
    assert.equal(1, wmi.pending())
    assert.is_true(call:wait(10000))
    assert.equal(0, wmi.pending())
    assert_complete(rec, call, #expected)
    assert.equal(call, rec.call)
    assert.same(expected, helpers.sorted(rec.keys))
    assert.equal(("wmi.Call (done, %d objects)"):format(#expected), tostring(call))
  end)

  it("takes handlers as a function, a table or a wmi.Stub", function()
    local expected = helpers.settled_processes(svc)

    -- A function is the indicate handler.
    local keys, seen_call = {}, nil
    local call = assert(svc:query_async(PROCESSES, function(obj, c)
      keys[#keys + 1] = ("%d/%s"):format(obj.ProcessId, obj.Handle)
      seen_call = c
    end))
    assert.is_true(wmi.run(10000))
    assert.same(expected, helpers.sorted(keys))
    assert.equal(call, seen_call)
    assert.same({ true, #expected }, { call.done, call.count })

    -- A stub made by an apartment, from a table and from a function.
    local apt = assert(wmi.apartment { mode = "auto" })
    local rec = recorder("process")
    local stub = assert(apt:stub(rec.handlers))
    assert.equal("wmi.Stub (ready)", tostring(stub))
    call = assert(svc:query_async(PROCESSES, stub))
    assert.equal("wmi.Stub (used)", tostring(stub))
    assert.is_true(call:wait(10000))
    assert_complete(rec, call, #expected)
    assert.same(expected, helpers.sorted(rec.keys))

    keys = {}
    stub = assert(apt:stub(function(obj) keys[#keys + 1] = ("%d/%s"):format(obj.ProcessId, obj.Handle) end))
    call = assert(svc:query_async(PROCESSES, stub))
    assert.is_true(call:wait(10000))
    assert.same(expected, helpers.sorted(keys))
    apt:close()
  end)

  it("runs sequential async calls on one Services (Wine has one slot)", function()
    local processes = helpers.settled_processes(svc)
    local services = helpers.keys(svc:query(SERVICES), "Name")
    assert.equal(23, #services)   -- a default prefix
    for round = 1, 3 do
      for _, case in ipairs { { PROCESSES, "process", processes }, { SERVICES, "Name", services } } do
        local rec = recorder(case[2])
        local call = assert(svc:query_async(case[1], rec.handlers),
          ("round %d: %s"):format(round, case[1]))
        assert.is_true(call:wait(10000))
        assert_complete(rec, call, #case[3])
        assert.same(case[3], helpers.sorted(rec.keys))
      end
    end
  end)

  it("instances_async fails at once on Wine (CreateInstanceEnumAsync is a stub there)", function()
    -- On Windows this matches svc:instances; Wine returns WBEM_E_FAILED without
    -- calling the sink, and the stub stays unused, ready for another call.
    local apt = assert(wmi.apartment { mode = "auto" })
    local rec = recorder("process")
    local stub = assert(apt:stub(rec.handlers))
    helpers.assert_fail(WBEM_E_FAILED, "WBEM_E_FAILED", svc:instances_async("Win32_Process", stub))
    assert.equal(0, wmi.pending())
    assert.equal("wmi.Stub (ready)", tostring(stub))
    local expected = helpers.settled_processes(svc)
    assert.same(expected, process_keys(svc:instances("Win32_Process")))
    local call = assert(svc:query_async(PROCESSES, stub))
    assert.is_true(call:wait(10000))
    assert_complete(rec, call, #expected)
    assert.same(expected, helpers.sorted(rec.keys))
    apt:close()
  end)

  it("reports invalid WQL through the status: WBEM_E_INVALID_QUERY", function()
    -- Wine's ExecQueryAsync accepts any text and fails in SetStatus.
    -- (Wine's parser is lenient elsewhere: "SELECT FROM Win32_Process" and an unknown
    -- property succeed, a WHERE on an unknown property fails with WBEM_E_FAILED.)
    for _, wql in ipairs { "SELEC * FRM x", "SELECT * FROM", "SELECT * FROM Win32_Process WHERE", "DELETE FROM x" } do
      local rec = recorder("process")
      local call = assert(svc:query_async(wql, rec.handlers), wql)
      assert.is_true(call:wait(10000))
      assert.same({ "status" }, rec.events)
      local st = rec.statuses[1]
      assert.is_false(st.ok)
      assert.equal(WBEM_E_INVALID_QUERY, st.hr)
      assert.equal("WBEM_E_INVALID_QUERY (0x80041017): Invalid query", st.msg)
      assert.is_nil(st.obj)
      assert.equal(call, st.call)
      assert.same({ true, 0 }, { call.done, call.count })
      helpers.assert_fail(WBEM_E_INVALID_QUERY, "WBEM_E_INVALID_QUERY", call:result())
      assert.equal("wmi.Call (failed, 0 objects)", tostring(call))
    end
    -- Wine answers an unknown class like an empty one, in both flavours.
    assert.equal(0, #svc:query("SELECT * FROM NoSuchClass"))
    local rec = recorder("process")
    local empty = assert(svc:query_async("SELECT * FROM NoSuchClass", rec.handlers))
    assert.is_true(empty:wait(10000))
    assert_complete(rec, empty, 0)
    -- The Services still works afterwards.
    local n = #svc:query(SERVICES)
    local call = assert(svc:query_async(SERVICES, function() end))
    assert.is_true(call:wait(10000))
    assert.same({ true, n }, { call.done, call.count })
  end)

  it("returns WBEM_E_FAILED at once for the async methods Wine lacks", function()
    local os_obj = svc:query("SELECT * FROM Win32_OperatingSystem")[1]
    local called = 0
    local function handler() called = called + 1 end
    local attempts = {
      function() return svc:get_async("Win32_OperatingSystem=@", handler) end,
      function() return svc:classes_async(nil, handler) end,
      function() return svc:classes_async("Win32_Process", { indicate = handler, status = handler }) end,
      function() return svc:put_async(os_obj, handler) end,
      function() return svc:delete_async("Win32_Process.Handle=\"0\"", handler) end,
      function() return svc:exec_async("Win32_Process", "Create", { CommandLine = "cmd /c exit" }, handler) end,
      function() return svc:instances_async("Win32_Service", handler) end,
    }
    for i, attempt in ipairs(attempts) do
      local message = helpers.assert_fail(WBEM_E_FAILED, "WBEM_E_FAILED", attempt())
      assert.equal("WBEM_E_FAILED (0x80041001): Unspecified WMI failure", message, i)
      assert.equal(0, wmi.pending())
    end
    assert.equal(0, wmi.dispatch(50))
    assert.equal(0, called)
    os_obj = nil -- luacheck: ignore 311
  end)

  it("subscribe: Wine fails the event query in SetStatus, and delivers no event", function()
    local rec = recorder("process")
    local call = assert(svc:subscribe(
      "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'", rec.handlers))
    assert.is_true(call:wait(10000))
    assert.same({ "status" }, rec.events)
    assert.is_false(rec.statuses[1].ok)
    assert.equal(WBEM_E_INVALID_QUERY, rec.statuses[1].hr)
    assert.equal("WBEM_E_INVALID_QUERY (0x80041017): Invalid query", rec.statuses[1].msg)
    helpers.assert_fail(WBEM_E_INVALID_QUERY, "WBEM_E_INVALID_QUERY", call:result())
    assert.equal(0, call.count)
    -- Its slot is freed for the next call.
    local n = #svc:query(SERVICES)
    call = assert(svc:query_async(SERVICES, function() end))
    assert.is_true(call:wait(10000))
    assert.equal(n, call.count)
  end)

  it("wmi.dispatch, wmi.run and wmi.pending", function()
    assert.equal(0, wmi.pending())
    assert.equal(0, wmi.dispatch())
    assert.equal(0, wmi.dispatch(20))     -- waits, nothing comes
    assert.is_true(wmi.run())             -- nothing pending: returns at once
    assert.is_true(wmi.run(10))

    -- A process that starts meanwhile (a Wine service late in a new prefix) moves
    -- the count: read again after, and the round run again when it moved.
    local n, rec, call, delivered
    for _ = 1, 5 do
      n = #helpers.settled_processes(svc)
      rec = recorder("process")
      call = assert(svc:query_async(PROCESSES, rec.handlers))
      assert.equal(1, wmi.pending())
      local rounds = 0
      delivered = 0
      while wmi.pending() > 0 do
        local got = wmi.dispatch(5000)
        assert.is_true(got >= 1)          -- waited for the first callback
        delivered, rounds = delivered + got, rounds + 1
        assert.is_true(rounds <= n + 2)
      end
      if #helpers.settled_processes(svc) == n then break end
      call:close()
    end
    assert.equal(n + 1, delivered)        -- every object and the status, each counted once
    assert_complete(rec, call, n)
    assert.equal(0, wmi.dispatch())

    -- Two calls in flight at once, on two Services, different classes.
    local svc2 = assert(wmi.connect())
    local services = #svc2:query(SERVICES)
    local c1 = assert(svc:query_async(PROCESSES, function() end))
    local c2 = assert(svc2:query_async(SERVICES, function() end))
    assert.equal(2, wmi.pending())
    assert.is_true(wmi.run(10000))
    assert.equal(0, wmi.pending())
    assert.same({ true, n, true, services }, { c1.done, c1.count, c2.done, c2.count })
    svc2:close()
  end)

  it("accepts the progress option; Wine sends no progress calls", function()
    -- WBEM_FLAG_SEND_STATUS is passed; Wine's wbemprox never calls
    -- SetStatus(WBEM_STATUS_PROGRESS), so the progress handler stays silent.
    local expected = helpers.settled_processes(svc)
    local rec = recorder("process")
    local call = assert(svc:query_async(PROCESSES, rec.handlers, { progress = true }))
    assert.is_true(call:wait(10000))
    assert.equal(0, rec.progress)
    assert_complete(rec, call, #expected)
    assert.same(expected, helpers.sorted(rec.keys))
    call = assert(svc:query_async(PROCESSES, rec.handlers, { progress = false }))
    assert.is_true(call:wait(10000))
  end)

  it("a stub serves one call", function()
    local apt = assert(wmi.apartment { mode = "inproc" })
    local stub = assert(apt:stub(function() end))
    local call = assert(svc:query_async(PROCESSES, stub))
    assert.has_error(function() svc:query_async(SERVICES, stub) end,
      "bad argument #2 to 'query_async' (stub already used (a stub serves one call))")
    assert.is_true(call:wait(10000))
    assert.has_error(function() svc:query_async(SERVICES, stub) end,
      "bad argument #2 to 'query_async' (stub already used (a stub serves one call))")
    -- A stub whose apartment is closed cannot start a call either.
    local unused = assert(apt:stub(function() end))
    apt:close()
    assert.has_error(function() svc:query_async(SERVICES, unused) end,
      "bad argument #2 to 'query_async' (the stub's apartment is closed)")
    assert.has_error(function() apt:stub(function() end) end, "attempt to use a closed wmi.Apartment")
  end)

  it("raises argument errors naming the argument", function()
    local f = function() end
    assert.has_error(function() svc:query_async({}, f) end,
      "bad argument #1 to 'query_async' (a query table needs from, event, associators_of or references_of)")
    assert.has_error(function() svc:query_async(PROCESSES) end,
      "bad argument #2 to 'query_async' (wmi.Stub, function or table of handlers expected, got no value)")
    assert.has_error(function() svc:query_async(PROCESSES, 42) end,
      "bad argument #2 to 'query_async' (wmi.Stub, function or table of handlers expected, got number)")
    assert.has_error(function() svc:query_async(PROCESSES, f, 5) end,
      "bad argument #3 to 'query_async' (table expected, got number)")
    assert.has_error(function() svc:query_async(PROCESSES, { indicate = 5 }) end,
      "bad handler 'indicate' (function expected, got number)")
    assert.has_error(function() svc:instances_async(nil, f) end,
      "bad argument #1 to 'instances_async' (string expected, got nil)")
    assert.has_error(function() svc:subscribe(PROCESSES, "f") end,
      "bad argument #2 to 'subscribe' (wmi.Stub, function or table of handlers expected, got string)")
    assert.has_error(function() svc:put_async(5, f) end,
      "bad argument #1 to 'put_async' (wmi.Object expected, got number)")
    assert.has_error(function() svc:exec_async("Win32_Process", "Create", 5, f) end,
      "bad argument #3 to 'exec_async' (table or wmi.Object expected, got number)")
    assert.has_error(function() svc:exec_async("Win32_Process", "Create", { Nope = 1 }, f) end,
      "bad argument #3 to 'exec_async' (no parameter 'Nope')")
    assert.has_error(function() wmi.dispatch("soon") end, "bad argument #1 to 'dispatch' (number expected, got string)")
    assert.has_error(function() wmi.run({}) end, "bad argument #1 to 'run' (number expected, got table)")
    local apt = assert(wmi.apartment { mode = "inproc" })
    assert.has_error(function() apt:stub(5) end,
      "bad argument #1 to 'stub' (function or table of handlers expected, got number)")
    assert.has_error(function() apt:stub { status = true } end,
      "bad handler 'status' (function expected, got boolean)")
    apt:close()

    local call = assert(svc:query_async(PROCESSES, f))
    assert.has_error(function() call:result() end, "the call has not finished (use call:wait())")
    assert.has_error(function() call:wait("x") end, "bad argument #1 to 'wait' (number expected, got string)")
    assert.is_true(call:wait())
    call:close()
    call:close()      -- closing twice is harmless
    assert.equal("wmi.Call (closed)", tostring(call))
    assert.has_error(function() return call.done end, "attempt to use a closed wmi.Call")
    assert.has_error(function() call:wait() end, "attempt to use a closed wmi.Call")

    -- Nothing was started by the misuse: no argument error left a call behind.
    assert.equal(0, wmi.pending())
    local closed = assert(wmi.connect())
    closed:close()
    assert.has_error(function() closed:query_async(PROCESSES, f) end, "attempt to use a closed wmi.Services")
  end)
end)
