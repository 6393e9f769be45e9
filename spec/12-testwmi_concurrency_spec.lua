-- Many calls at once on one Services, and event subscriptions, against the test
-- WMI server: Wine allows one async call per IWbemServices and delivers no event.
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local SERVICES = "SELECT Name FROM Win32_Service"

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

  it("rejects an event query without a class in SetStatus", function()
    local statuses = {}
    local call = assert(svc:subscribe("SELECT nothing", {
      status = function(ok, _, hr, obj) statuses[#statuses + 1] = { ok, hr, obj and obj.Operation } end,
    }))
    assert.is_true(call:wait(10000))
    assert.same({ { false, 0x80041017, "ExecNotificationQuery" } }, statuses)
  end)
end)
