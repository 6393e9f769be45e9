-- The seed's sequence and Windows' asynchronous semantics, against the test WMI
-- server (spec/support/testwmi*.c): an in-process IWbemLocator registered in the
-- test prefix, whose IWbemServices wraps Wine's real one for its data and follows
-- [MS-WMI] 3.1.4.3 for the asynchronous contract Wine lacks (CreateInstanceEnumAsync,
-- batches, cancel by the sink pointer, calls on the server's own threads).
local wmi = require "wmi"
local testwmi = require "testwmi"
local testapt = require "testapt"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local PROCESSES = "SELECT Handle, ProcessId FROM Win32_Process"
local WBEM_E_CALL_CANCELLED = 0x80041032

-- Handlers recording every callback as plain values.
local function recorder()
  local rec = { keys = {}, events = {}, statuses = {} }
  rec.handlers = {
    indicate = function(obj)
      rec.events[#rec.events + 1] = "indicate"
      rec.keys[#rec.keys + 1] = ("%d/%s"):format(obj.ProcessId, obj.Handle)
    end,
    status = function(ok, msg, hr, obj)
      rec.events[#rec.events + 1] = "status"
      rec.statuses[#rec.statuses + 1] = { ok = ok, msg = msg, hr = hr, obj = obj }
    end,
  }
  return rec
end

describe("the test WMI server", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("is reached through wmi.connect{ locator = CLSID } and serves Wine's data", function()
    assert.equal("wmi.Services (root\\cimv2)", tostring(svc))
    local s = testwmi.stats()
    assert.same({ 1, 1 }, { s.connects, s.services })
    local c = testwmi.connects()
    assert.equal(1, #c)
    assert.same({ "root\\cimv2", nil, false, 0 }, { c[1].namespace, c[1].host, c[1].password, c[1].hresult })
    -- The same answer as Wine's own services.
    local direct = assert(wmi.connect())
    local expected = helpers.keys(assert(direct:query("SELECT Name FROM Win32_Service")), "Name")
    direct:close()
    assert.equal(23, #expected)
    assert.same(expected, helpers.keys(assert(svc:query("SELECT Name FROM Win32_Service")), "Name"))
    assert.same(expected, helpers.keys(assert(svc:instances("Win32_Service")), "Name"))
    collectgarbage()
    collectgarbage()
    assert.equal(0, testwmi.stats().objects)
  end)

  it("counts the objects it hands out until the client releases them", function()
    local list = assert(svc:query("SELECT Name FROM Win32_Service"))
    assert.equal(23, #list)
    assert.equal(23, testwmi.stats().objects)
    list[1]:close()
    assert.equal(22, testwmi.stats().objects)
    list = nil  -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.equal(0, testwmi.stats().objects)
  end)

  it("runs the seed's sequence: unsecapp stub, CreateInstanceEnumAsync, batches of 7, SetStatus", function()
    -- Step 1-2: an apartment from the test apartment server in unsecapp mode; step 3:
    -- CreateSinkStub; step 4: CreateInstanceEnumAsync with the stub; step 5: Indicate
    -- in batches of 7 on the server's threads; step 6: SetStatus from another thread.
    local expected = helpers.settled_processes(svc)
    assert.same(expected, th.process_keys(assert(svc:instances("Win32_Process"))))
    testapt.reset()
    testwmi.configure { batch = 7 }
    local apt = assert(wmi.apartment { mode = "unsecapp", clsid = testapt.clsid, context = "inproc" })
    local rec = recorder()
    local stub = assert(apt:stub(rec.handlers))
    local call = assert(svc:instances_async("Win32_Process", stub))
    assert.is_true(call:wait(10000))
    assert.same(expected, helpers.sorted(rec.keys))
    assert.equal(#expected, call.count)
    assert.same({ "status" }, { rec.events[#rec.events] })
    assert.same({ true, nil, 0, nil }, { rec.statuses[1].ok, rec.statuses[1].msg, rec.statuses[1].hr,
      rec.statuses[1].obj })
    -- What passed through the stub: batches of 7, then one final SetStatus.
    local batches, statuses = {}, {}
    for _, r in ipairs(testapt.log()) do
      if r.op == "Indicate" then batches[#batches + 1] = r.count end
      if r.op == "SetStatus" then statuses[#statuses + 1] = { r.flags, r.hresult } end
    end
    local want = {}
    for i = 1, #expected, 7 do want[#want + 1] = math.min(7, #expected - i + 1) end
    assert.same(want, batches)
    assert.same({ { 0, 0 } }, statuses)
    local s = testwmi.stats()
    assert.same({ 1, #want, #expected, 1, 0 }, { s.started, s.indicates, s.indicated, s.statuses, s.same_thread })
    -- Step 7: the server released the stub after SetStatus ([MS-WMI] 3.2.4.1.2).
    assert.is_true(testwmi.idle(5000))
    assert.equal(0, testwmi.stats().sinks)
    call:close()
    apt:close()
    svc:close()
    collectgarbage()
    local counts = testapt.counts()
    assert.same({ 0, 0, 0 }, { counts.stubs, counts.sinks_held, counts.apartments })
  end)

  it("cancels a running call by the stub that started it", function()
    testwmi.configure { gate = true }    -- the call stays in flight until the gate opens
    local rec = recorder()
    local call = assert(svc:query_async(PROCESSES, rec.handlers))
    assert.equal(1, testwmi.stats().calls)
    call:cancel()
    assert.is_true(call:wait(10000))
    assert.same({ nil, "WBEM_E_CALL_CANCELLED (0x80041032): Call cancelled", WBEM_E_CALL_CANCELLED },
      { call:result() })
    assert.same({ "status" }, rec.events)
    local s = testwmi.stats()
    assert.same({ 1, 0 }, { s.cancels_matched, s.cancels_unmatched })
    assert.is_true(testwmi.idle(5000))
    assert.same({ 0, 0, 0 }, { testwmi.stats().indicates, testwmi.stats().calls, testwmi.stats().sinks })
  end)

  it("cancels by the stub from inside a handler, by call:close() and by closing the Services", function()
    -- From inside the indicate handler: the server waits 10 s after the first object
    -- (a pause CancelAsyncCall cuts short), so the call is still running there.
    testwmi.configure { batch = 1, batch_delay = 10000 }
    local seen, status = 0, nil
    local call
    call = assert(svc:query_async(PROCESSES, {
      indicate = function() seen = seen + 1 call:cancel() end,
      status = function(ok, _, hr) status = { ok, hr } end,
    }))
    assert.is_true(call:wait(10000))
    assert.same({ 1, false, WBEM_E_CALL_CANCELLED }, { seen, status[1], status[2] })
    assert.same({ 1, 0 }, { testwmi.stats().cancels_matched, testwmi.stats().cancels_unmatched })
    -- By call:close() while the gate holds it.
    testwmi.configure { batch_delay = 0, gate = true }
    local closed = assert(svc:query_async(PROCESSES, function() end))
    closed:close()
    assert.same({ 2, 0 }, { testwmi.stats().cancels_matched, testwmi.stats().cancels_unmatched })
    -- By closing its Services: every call it started.
    local other = assert(th.connect())
    local a = assert(other:query_async(PROCESSES, function() end))
    local b = assert(other:query_async("SELECT Name FROM Win32_Service", function() end))
    other:close()
    assert.same({ true, true }, { a.done, b.done })
    assert.same({ 4, 0 }, { testwmi.stats().cancels_matched, testwmi.stats().cancels_unmatched })
    assert.is_true(testwmi.idle(5000))
    assert.equal(1, testwmi.stats().indicates)
  end)

  it("cancels only the call started with that stub", function()
    -- Two calls with the same handlers have a stub each: cancelling one leaves the other.
    testwmi.configure { gate = true }
    local a = assert(svc:query_async(PROCESSES, function() end))
    local b = assert(svc:query_async("SELECT Name FROM Win32_Service", function() end))
    a:cancel()
    assert.equal(1, testwmi.stats().cancels_matched)
    assert.is_true(a:wait(10000))
    assert.is_false(b:wait(100))
    testwmi.open_gate()
    assert.is_true(b:wait(10000))
    assert.same({ true }, { b:result() })
    assert.equal(23, b.count)
    assert.same({ nil, "WBEM_E_CALL_CANCELLED (0x80041032): Call cancelled", WBEM_E_CALL_CANCELLED },
      { a:result() })
    assert.equal(0, testwmi.stats().cancels_unmatched)
  end)

  it("lets an Indicate already under way arrive after CancelAsyncCall returned; Lua never sees it", function()
    testwmi.configure { late_indicate = true, batch = 3 }
    local rec = recorder()
    local call = assert(svc:query_async(PROCESSES, rec.handlers))
    -- The server holds its first Indicate until the cancel returns.
    assert.is_true(th.until_true(function() return testwmi.stats().held == 1 end))
    call:cancel()
    assert.is_true(th.until_true(function() return testwmi.stats().late_indicates == 1 end))
    assert.is_true(testwmi.idle(5000))
    assert.is_true(call:wait(10000))
    wmi.dispatch(50)
    local s = testwmi.stats()
    assert.same({ 1, 3, 1 }, { s.indicates, s.indicated, s.late_indicates })
    assert.same({ "status" }, rec.events)
    assert.equal(WBEM_E_CALL_CANCELLED, rec.statuses[1].hr)
    assert.equal(0, call.count)
  end)

  it("simulates machines by host name", function()
    helpers.assert_fail(0x800706BA, "RPC_S_SERVER_UNAVAILABLE", th.connect { host = "down" })
    helpers.assert_fail(0x80070005, "E_ACCESSDENIED", th.connect { host = "denied" })
    local remote = assert(th.connect { host = "lat20", namespace = "root\\cimv2" })
    assert.equal("wmi.Services (\\\\lat20\\root\\cimv2)", tostring(remote))
    assert.equal(23, #assert(remote:query("SELECT Name FROM Win32_Service")))
    remote:close()
    local c = testwmi.connects()
    assert.same({ "down", 0x800706BA }, { c[2].host, c[2].hresult })
    assert.same({ "denied", 0x80070005 }, { c[3].host, c[3].hresult })
    assert.same({ "lat20", "root\\cimv2", 0 }, { c[4].host, c[4].namespace, c[4].hresult })
  end)
end)
