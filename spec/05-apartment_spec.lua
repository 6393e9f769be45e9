-- The unsecured apartment protocol, checked against the test-only apartment server
-- (spec/support/testapt.c, registered in the test prefix as an in-process server):
-- Wine has no Unsecapp.exe and no proxy/stubs for the WMI interfaces. The server
-- follows the documented contract of IUnsecuredApartment/IWbemUnsecuredApartment
-- and records what it is asked (testapt.log(), testapt.counts()).
--
-- Not checked here: that CancelAsyncCall receives the same stub that started the
-- call. Wine's CancelAsyncCall ignores its argument (it cancels the one call pending
-- on the Services), so nothing observable distinguishes the right pointer.
local wmi = require "wmi"
local testapt = require "testapt"
local helpers = require "spec.helpers"

local PROCESSES = "SELECT Handle, ProcessId FROM Win32_Process"
local SERVICES = "SELECT Name FROM Win32_Service"

local function test_apartment(options)
  options = options or {}
  options.mode, options.clsid, options.context = "unsecapp", testapt.clsid, "inproc"
  return wmi.apartment(options)
end

-- The log's records with op OP (and, if given, target TARGET), with their positions.
local function find(log, op, target)
  local found = {}
  for i, r in ipairs(log) do
    if r.op == op and (not target or r.target == target) then
      r.at = i
      found[#found + 1] = r
    end
  end
  return found
end

describe("wmi.apartment", function()
  local svc, apt
  before_each(function()
    testapt.reset()
    svc = assert(wmi.connect())
  end)
  after_each(function()
    svc:close()
    if apt then apt:close() end
    apt = nil
    assert.equal(0, wmi.pending())
    helpers.assert_all_released()
    local counts = testapt.counts()
    assert.same({ 0, 0, 0 }, { counts.stubs, counts.sinks_held, counts.apartments })
  end)

  it("passes check_access to CreateSinkStub as its flag", function()
    local cases = {
      { nil, 0, "default" }, { "default", 0, "default" }, { true, 1, "check" }, { false, 2, "none" },
    }
    for _, case in ipairs(cases) do
      testapt.reset()
      local a = assert(test_apartment { check_access = case[1] })
      assert.same({ "unsecapp", case[3] }, { a.kind, a.access })
      assert.equal(("wmi.Apartment (unsecapp, access %s)"):format(case[3]), tostring(a))
      local log = testapt.log()
      assert.same({ op = "CreateInstance", iid = "IUnsecuredApartment" }, log[1])
      assert.same({ op = "QueryInterface", target = "apartment", iid = "IWbemUnsecuredApartment" }, log[2])
      assert.equal(2, #log)
      local stub = assert(a:stub(function() end))
      log = testapt.log()
      assert.same({ op = "CreateSinkStub", flags = case[2], reserved_null = true }, log[3])
      assert.equal(3, #log)
      assert.same({ 1, 1 }, { testapt.counts().stubs, testapt.counts().sinks_held })
      stub:close()
      assert.same({ 0, 0 }, { testapt.counts().stubs, testapt.counts().sinks_held })
      a:close()
    end
  end)

  it("falls back to CreateObjectStub and asks the stub for IWbemObjectSink", function()
    testapt.reset { wbem = false }
    apt = assert(test_apartment { check_access = false })
    -- CreateObjectStub has no flags: the stubs enforce unsecapp's default policy.
    assert.same({ "unsecapp", "default" }, { apt.kind, apt.access })
    local log = testapt.log()
    assert.same({ op = "QueryInterface", target = "apartment", iid = "IWbemUnsecuredApartment",
                  hresult = 0x80004002 }, log[2])   -- E_NOINTERFACE
    local expected = helpers.settled_processes(svc)
    local keys = {}
    local stub = assert(apt:stub(function(p) keys[#keys + 1] = ("%d/%s"):format(p.ProcessId, p.Handle) end))
    log = testapt.log()
    assert.same({ op = "CreateObjectStub" }, log[3])
    assert.same({ op = "QueryInterface", target = "stub", iid = "IWbemObjectSink" }, log[4])
    assert.equal(0, #find(log, "CreateSinkStub"))
    local call = assert(svc:query_async(PROCESSES, stub))
    assert.is_true(call:wait(10000))
    assert.same(expected, helpers.sorted(keys))
    assert.equal(#expected, testapt.counts().indicated)
  end)

  it("hands WMI the stub, which forwards every object and the status", function()
    apt = assert(test_apartment())
    local expected = helpers.settled_processes(svc)
    local keys, statuses = {}, {}
    local stub = assert(apt:stub {
      indicate = function(p) keys[#keys + 1] = ("%d/%s"):format(p.ProcessId, p.Handle) end,
      status = function(ok, msg, hr) statuses[#statuses + 1] = { ok, msg, hr } end,
    })
    local made = #testapt.log()
    local call = assert(svc:query_async(PROCESSES, stub))
    assert.is_true(call:wait(10000))
    assert.same(expected, helpers.sorted(keys))
    assert.same({ { true, nil, 0 } }, statuses)

    local log = testapt.log()
    -- Wine's ExecQueryAsync asks the stub it was given for IWbemObjectSink.
    local qi = find(log, "QueryInterface", "stub")
    assert.equal(1, #qi)
    assert.equal("IWbemObjectSink", qi[1].iid)
    assert.is_true(qi[1].at > made)
    local indicates, sets = find(log, "Indicate"), find(log, "SetStatus")
    assert.equal(call.count, #indicates)
    for _, r in ipairs(indicates) do
      assert.equal(1, r.count)          -- Wine: one object per Indicate
      assert.is_true(r.at > qi[1].at)
    end
    assert.same({ { op = "SetStatus", flags = 0, hresult = 0, at = #log } }, sets)
    local counts = testapt.counts()
    assert.same({ #expected, 1 }, { counts.indicated, counts.statuses })

    -- The module let go of the stub at the status; Wine's async slot keeps its own
    -- reference until CancelAsyncCall, which closing the Services makes.
    assert.equal(0, #find(log, "StubReleased"))
    assert.same({ 1, 1 }, { counts.stubs, counts.sinks_held })
    svc:close()
    log = testapt.log()
    local released = find(log, "StubReleased")
    assert.equal(1, #released)
    assert.is_true(released[1].at > sets[1].at)
    assert.same({ 0, 0 }, { testapt.counts().stubs, testapt.counts().sinks_held })
  end)

  it("releases a finished call's stub when the next call needs Wine's slot", function()
    apt = assert(test_apartment())
    local processes = #helpers.settled_processes(svc)
    local services = #svc:query(SERVICES)
    local first = assert(svc:query_async(PROCESSES, assert(apt:stub(function() end))))
    assert.is_true(first:wait(10000))
    assert.equal(0, #find(testapt.log(), "StubReleased"))
    local second = assert(svc:query_async(SERVICES, assert(apt:stub(function() end))))
    -- The first stub went when the second call freed the slot.
    assert.equal(1, #find(testapt.log(), "StubReleased"))
    assert.is_true(second:wait(10000))
    assert.same({ processes, services }, { first.count, second.count })
    assert.equal(processes + services, testapt.counts().indicated)
    assert.equal(2, testapt.counts().statuses)
  end)

  it("is what connect{apartment = apt} uses for bare handlers", function()
    apt = assert(test_apartment { check_access = true })
    local own = assert(wmi.connect { apartment = apt })
    local n = #own:query(SERVICES)
    testapt.reset()
    local names = {}
    local call = assert(own:query_async(SERVICES, function(s) names[#names + 1] = s.Name end))
    local log = testapt.log()
    assert.same({ op = "CreateSinkStub", flags = 1, reserved_null = true }, log[1])
    assert.is_true(call:wait(10000))
    assert.equal(n, #names)
    assert.equal(n, testapt.counts().indicated)
    -- A Services without the option uses the module's own apartment (in-process on Wine).
    testapt.reset()
    call = assert(svc:query_async(SERVICES, function() end))
    assert.is_true(call:wait(10000))
    assert.same({}, testapt.log())
    assert.equal(n, call.count)
    own:close()
  end)

  it("returns nil, message, hresult when the apartment cannot make a stub", function()
    testapt.reset { fail_create = 0x80041003 }   -- WBEM_E_ACCESS_DENIED
    apt = assert(test_apartment())
    helpers.assert_fail(0x80041003, "WBEM_E_ACCESS_DENIED", apt:stub(function() end))
    local own = assert(wmi.connect { apartment = apt })
    local called = false
    helpers.assert_fail(0x80041003, "WBEM_E_ACCESS_DENIED",
      own:query_async(SERVICES, function() called = true end))
    assert.equal(0, wmi.pending())
    assert.is_false(called)
    local creates = find(testapt.log(), "CreateSinkStub")
    assert.equal(2, #creates)
    assert.equal(0x80041003, creates[2].hresult)
    own:close()

    testapt.reset { wbem = false, fail_create = 0x80004005 }  -- E_FAIL
    local fallback = assert(test_apartment())
    helpers.assert_fail(0x80004005, "E_FAIL", fallback:stub { status = function() end })
    fallback:close()
  end)

  it("mode = 'unsecapp' fails clearly where Unsecapp is not registered (Wine)", function()
    helpers.assert_fail(0x80040154, "REGDB_E_CLASSNOTREG", wmi.apartment { mode = "unsecapp" })
    helpers.assert_fail(0x80040154, "REGDB_E_CLASSNOTREG",
      wmi.apartment { mode = "unsecapp", clsid = "{00000000-0000-0000-0000-00000000CAFE}", context = "inproc" })
  end)

  it("mode = 'auto' falls back to in-process on Wine; 'inproc' never asks", function()
    for _, options in ipairs { {}, { mode = "auto" }, { mode = "inproc" },
                               { mode = "inproc", check_access = false } } do
      local a = assert(wmi.apartment(options))
      assert.same({ "inproc", "unchecked" }, { a.kind, a.access })
      assert.equal("wmi.Apartment (inproc, access unchecked)", tostring(a))
      local n = #svc:query(SERVICES)
      local call = assert(svc:query_async(SERVICES, assert(a:stub(function() end))))
      assert.is_true(call:wait(10000))
      assert.equal(n, call.count)
      a:close()
    end
    assert.same({}, testapt.log())
  end)

  it("closing the apartment ends its calls silently; closing twice is harmless", function()
    apt = assert(test_apartment())
    local heard = 0
    local call = assert(svc:query_async(PROCESSES, assert(apt:stub {
      indicate = function() heard = heard + 1 end,
      status = function() heard = heard + 1 end,
    })))
    apt:close()
    apt:close()
    assert.equal("wmi.Apartment (closed)", tostring(apt))
    assert.is_true(call.done)
    assert.equal(0, wmi.pending())
    helpers.assert_fail(0x80041032, "WBEM_E_CALL_CANCELLED", call:result())
    assert.equal(0, wmi.dispatch(50))
    assert.equal(0, heard)
    assert.has_error(function() return apt.kind end, "attempt to use a closed wmi.Apartment")
    assert.has_error(function() apt:stub(function() end) end, "attempt to use a closed wmi.Apartment")
    -- The Services works on with another apartment's stubs.
    local other = assert(test_apartment())
    local n = #svc:query(SERVICES)
    call = assert(svc:query_async(SERVICES, assert(other:stub(function() end))))
    assert.is_true(call:wait(10000))
    assert.equal(n, call.count)
    other:close()
  end)

  it("raises for bad options", function()
    assert.has_error(function() wmi.apartment(5) end, "bad argument #1 to 'apartment' (table expected, got number)")
    assert.has_error(function() wmi.apartment { mode = "remote" } end,
      "bad option 'mode' to 'apartment' (invalid value 'remote')")
    assert.has_error(function() wmi.apartment { context = "far" } end,
      "bad option 'context' to 'apartment' (invalid value 'far')")
    assert.has_error(function() wmi.apartment { check_access = "yes" } end,
      "bad option 'check_access' to 'apartment' (\"default\", true or false expected)")
    assert.has_error(function() wmi.apartment { context = 1 } end,
      "bad option 'context' to 'apartment' (string expected, got number)")
    assert.has_error(function() wmi.apartment { clsid = "nope" } end,
      "bad option 'clsid' to 'apartment' (not a CLSID: nope)")
    assert.same({}, testapt.log())
  end)
end)
