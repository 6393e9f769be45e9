-- Many calls at once on one Services, and event subscriptions, against the test
-- WMI server: Wine allows one async call per IWbemServices and delivers no event.
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local SERVICES = "SELECT Name FROM Win32_Service"
local EVENTS = "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'"
local WBEM_E_CALL_CANCELLED = 0x80041032

describe("the test WMI server under load", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("serves 200 calls in flight at once on one Services, each to its own handlers", function()
    local expected = helpers.keys(assert(svc:query(SERVICES)), "Name")
    assert.equal(23, #expected)
    testwmi.configure { batch = 7, gate = true, batch_delay = 2 }
    local calls, names, statuses, order = {}, {}, {}, {}
    for i = 1, 200 do
      names[i], statuses[i] = {}, {}
      calls[i] = assert(svc:query_async(SERVICES, {
        indicate = function(obj, call)
          assert.equal(calls[i], call)
          names[i][#names[i] + 1] = obj.Name
          order[#order + 1] = i
        end,
        status = function(ok, _, hr) statuses[i][#statuses[i] + 1] = { ok, hr } end,
      }))
    end
    -- All 200 are in flight together: the gate holds every one before its first Indicate.
    for _ = 1, 6000 do
      if testwmi.stats().gated == 200 then break end
      testwmi.idle(10)    -- a sleep: nothing is dispatched meanwhile
    end
    local s = testwmi.stats()
    assert.equal(200, s.gated)
    assert.same({ 200, 200, 200 }, { s.calls, s.in_flight, s.started })
    assert.equal(200, wmi.pending())
    testwmi.open_gate()
    assert.is_true(wmi.run(60000))
    for i = 1, 200 do
      assert.same(expected, helpers.sorted(names[i]))
      assert.same({ { true, 0 } }, statuses[i])
      assert.equal(23, calls[i].count)
    end
    s = testwmi.stats()
    assert.same({ 200, 200 * 4, 200 * 23, 200 }, { s.max_in_flight, s.indicates, s.indicated, s.statuses })
    -- Batches of different calls interleave: another call's objects arrive between
    -- the first and the last object of some call.
    local first, final = {}, {}
    for at, i in ipairs(order) do
      first[i] = first[i] or at
      final[i] = at
    end
    local interleaved = false
    for i = 1, 200 do
      for at = first[i] + 1, final[i] - 1 do
        if order[at] ~= i then interleaved = true break end
      end
      if interleaved then break end
    end
    assert.is_true(interleaved)
  end)

  it("subscribe: an event every 10 ms, in order, until cancelled; nothing after", function()
    testwmi.configure { event_interval = 10 }
    local seqs, statuses = {}, {}
    local call = assert(svc:subscribe(EVENTS, {
      indicate = function(ev) seqs[#seqs + 1] = { ev.Sequence, ev:class(), type(ev.TIME_CREATED) } end,
      status = function(ok, _, hr) statuses[#statuses + 1] = { ok, hr } end,
    }))
    assert.is_true(th.until_true(function() return #seqs >= 100 end, 30000))
    call:cancel()
    local n = #seqs
    for i = 1, n do assert.same({ i, "__InstanceCreationEvent", "number" }, seqs[i]) end
    assert.is_true(call:wait(10000))
    assert.is_true(testwmi.idle(5000))
    wmi.dispatch(100)
    assert.equal(n, #seqs)
    assert.same({ { false, WBEM_E_CALL_CANCELLED } }, statuses)
    local s = testwmi.stats()
    assert.same({ 1, 0 }, { s.cancels_matched, s.cancels_unmatched })
    assert.is_true(s.events >= n)
  end)

  it("subscribe: nobody dispatching, the call ends at its queue limit with WBEM_E_QUEUE_OVERFLOW", function()
    testwmi.configure { event_interval = 1 }
    local seen, statuses = 0, {}
    local call = assert(svc:subscribe(EVENTS, {
      indicate = function() seen = seen + 1 end,
      status = function(ok, _, hr) statuses[#statuses + 1] = { ok, hr } end,
    }, { queue_limit = 50 }))
    -- Without dispatching: testwmi.idle(10) only sleeps while the subscription runs.
    for _ = 1, 3000 do
      if testwmi.stats().events > 60 then break end
      testwmi.idle(10)
    end
    assert.is_true(testwmi.stats().events > 60)
    assert.is_true(call:wait(10000))
    assert.equal(50, seen)
    assert.same({ false, "WBEM_E_QUEUE_OVERFLOW" }, { statuses[1][1], (wmi.hresult(statuses[1][2])) })
    assert.equal(1, #statuses)
    -- The module then cancelled it by its stub.
    assert.is_true(testwmi.idle(5000))
    assert.same({ 1, 0 }, { testwmi.stats().cancels_matched, testwmi.stats().cancels_unmatched })
  end)

  it("rejects an event query without a class in SetStatus", function()
    local statuses = {}
    local call = assert(svc:subscribe("SELECT nothing", {
      status = function(ok, _, hr, obj) statuses[#statuses + 1] = { ok, hr, obj and obj.Operation } end,
    }))
    assert.is_true(call:wait(10000))
    assert.same({ { false, 0x80041017, "ExecNotificationQuery" } }, statuses)
  end)
end)
