-- Issue 18, item 5: call:next([ms]), the C core's own buffer of a call started
-- without an indicate handler, and the async methods as the C functions they are
-- (no Lua wrapper renumbers their argument errors). Against Wine's real WMI and
-- the test WMI server (events, numbered, that never end on their own).
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local SERVICES = "SELECT Name FROM Win32_Service"
local EVENTS = "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'"
local WBEM_E_INVALID_QUERY = 0x80041017
local WBEM_E_QUEUE_OVERFLOW = 0x80041061
local WBEM_E_CALL_CANCELLED = 0x80041032

-- What the module holds besides the test's own connection, once it let go
-- (STUBS: also its sinks; Wine keeps the last call's until the connection's next).
local function assert_released(stubs)
  local s, held
  for _ = 1, 250 do
    collectgarbage()
    collectgarbage()
    s = wmi.stats()
    held = { queued = s.queued, objects = s.objects, calls = s.calls, stubs = stubs and s.stubs or 0 }
    if held.queued + held.objects + held.calls + held.stubs == 0 then return end
    wmi.dispatch(20)
  end
  assert.same({ queued = 0, objects = 0, calls = 0, stubs = 0 }, held)
end

-- Everything call:next returns, with how many values.
local function next_of(call, ms)
  return table.pack(call:next(ms))
end

describe("call:next against Wine's WMI", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  it("returns the call's objects, as many as the synchronous query, then nil alone, again and again", function()
    local call = assert(svc:query_async(SERVICES, {}))
    local names = {}
    for _ = 1, 100 do
      local obj = call:next()
      if not obj then break end
      names[#names + 1] = obj.Name
    end
    assert.same(helpers.keys(svc:query(SERVICES), "Name"), helpers.sorted(names))
    assert.equal(23, #names)
    assert.same({ n = 1, nil }, next_of(call))
    assert.same({ n = 1, nil }, next_of(call, 0))
    assert.same({ true, 23 }, { call:result(), call.count })
    call:close()
  end)

  it("keeps the objects delivered meanwhile, counted as queued, and they are the ones next returns", function()
    local statuses = {}
    local call = assert(svc:query_async(SERVICES, { status = function(ok) statuses[#statuses + 1] = ok end }))
    assert.is_true(call:wait(10000))
    assert.same({ true }, statuses)             -- the status handler heard the end
    assert.equal(23, call.count)
    assert.equal(23, wmi.stats().queued)        -- held in C, not yet Lua objects
    local objects = wmi.stats().objects
    local first = call:next(0)
    assert.equal("wmi.Object", getmetatable(first).__name)
    assert.same({ 22, objects + 1 }, { wmi.stats().queued, wmi.stats().objects })
    call:close()
  end)

  it("ends a failed call with nil, message, hresult: call:result()'s, and what call:objects() raises", function()
    -- Wine has no event provider: ExecNotificationQueryAsync starts, then SetStatus fails.
    local call = assert(svc:subscribe(EVENTS, {}))
    local got = next_of(call)
    assert.equal(3, got.n)
    assert.is_nil(got[1])
    assert.equal(WBEM_E_INVALID_QUERY, got[3])
    assert.matches("^WBEM_E_INVALID_QUERY %(0x80041017%): ", got[2])
    assert.same({ nil, got[2], got[3] }, { call:result() })
    assert.same(got, next_of(call, 0))          -- the same, every time
    local ok, err = pcall(function() for _ in call:objects() do end end)
    assert.is_false(ok)
    assert.equal(wmi.Error, getmetatable(err))
    assert.same({ got[2], got[3] }, { err.message, err.hresult })
    call:close()
  end)

  it("raises argument errors naming the argument, numbered as the user wrote the call", function()
    local call = assert(svc:query_async(SERVICES, {}))
    assert.is_true(call:wait(10000))    -- Wine runs one async call per connection at once
    assert.has_error(function() call:next("soon") end, "bad argument #1 to 'next' (number expected, got string)")
    assert.has_error(function() call:next(-1) end, "bad argument #1 to 'next' (non-negative milliseconds expected)")
    assert.has_error(function() call.next(42) end, "bad argument #1 to 'next' (wmi.Call expected, got number)")
    local handled = assert(svc:query_async("SELECT * FROM Win32_BIOS", function() end))
    assert.has_error(function() handled:next() end,
      "calling 'next' on bad self (wmi.Call started without an indicate handler expected, got "
      .. tostring(handled) .. ")")
    assert.is_true(handled:wait(10000))
    handled:close()
    call:close()
    assert.has_error(function() call:next() end, "attempt to use a closed wmi.Call")
    -- The methods users call are the C functions themselves.
    local apt = assert(wmi.apartment())
    for _, f in ipairs { svc.query_async, svc.instances_async, svc.classes_async, svc.get_async, svc.exec_async,
                         svc.put_async, svc.delete_async, svc.subscribe, svc.stream, apt.stub, call.next,
                         call.objects } do
      assert.equal("C", debug.getinfo(f, "S").what)
    end
    assert.has_error(function() svc:get_async("Win32_BIOS", 7) end,
      "bad argument #2 to 'get_async' (wmi.Stub, function or table of handlers expected, got number)")
    assert.has_error(function() svc:exec_async("Win32_Process", "Create", { Nope = 1 }, {}) end,
      "bad argument #3 to 'exec_async' (no parameter 'Nope')")
    assert.has_error(function() svc:delete_async(".Name=1", {}) end,
      "bad argument #1 to 'delete_async' (object path names no class)")
    assert.has_error(function() svc:stream("SELECT\0 Name FROM Win32_Service") end,
      "bad argument #1 to 'stream' (string contains a NUL)")
    assert.has_error(function() svc:stream("\xff") end, "bad argument #1 to 'stream' (invalid UTF-8)")
    assert.has_error(function() apt:stub(5) end,
      "bad argument #1 to 'stub' (function or table of handlers expected, got number)")
    assert.has_error(function() apt.stub(5, {}) end, "bad argument #1 to 'stub' (wmi.Apartment expected, got number)")
    apt:close()
    assert.equal(0, wmi.pending())
  end)

  it("releases the objects it holds when the call is closed, collected or cancelled", function()
    local call = assert(svc:query_async(SERVICES, {}))
    assert.is_true(call:wait(10000))
    assert.equal(23, wmi.stats().queued)
    call:close()
    assert.equal(0, wmi.stats().queued)
    assert_released()

    call = assert(svc:query_async(SERVICES, {}))
    assert.is_true(call:wait(10000))
    call = nil    -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.equal(0, wmi.stats().queued)
    assert_released()

    -- A break out of call:objects() over a finished call empties its buffer; the call stays open.
    call = assert(svc:query_async(SERVICES, {}))
    assert.is_true(call:wait(10000))
    for _ in call:objects() do break end   -- luacheck: ignore 512
    assert.same({ 0, true, 23 }, { wmi.stats().queued, call:result(), call.count })
    call:close()
  end)
end)

describe("call:next against the test WMI server", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("returns false when ms elapse with nothing held, then the objects in their order", function()
    testwmi.configure { gate = true, batch = 5 }     -- nothing is delivered until the gate opens
    local call = assert(svc:query_async(SERVICES, {}))
    assert.same({ n = 1, false }, next_of(call, 50))
    assert.same({ n = 1, false }, next_of(call, 0))
    assert.is_false(call.done)
    testwmi.open_gate()
    local names = {}
    for obj in call:objects() do names[#names + 1] = obj.Name end
    -- The server's order is Wine's synchronous query's (it wraps it): in that order.
    local sync = {}
    for i, obj in ipairs(assert(svc:query(SERVICES))) do sync[i] = obj.Name end
    assert.same(sync, names)
    assert.same({ n = 1, nil }, next_of(call, 0))
    call:close()
  end)

  it("returns events in their order, then, after a cancel, what it held and the cancellation", function()
    testwmi.configure { event_interval = 20 }
    local call = assert(svc:subscribe(EVENTS, {}))
    local seq = {}
    for i = 1, 3 do seq[i] = call:next(5000).Sequence end
    assert.same({ 1, 2, 3 }, seq)
    assert.is_true(th.until_true(function() wmi.dispatch(10) return call.count >= 6 end, 5000))
    call:cancel()
    while true do
      local ev, msg, hr = call:next(5000)
      if not ev then
        assert.same({ "WBEM_E_CALL_CANCELLED (0x80041032): Call cancelled", WBEM_E_CALL_CANCELLED }, { msg, hr })
        break
      end
      seq[#seq + 1] = ev.Sequence
    end
    -- Every event delivered before the cancel, in order, none after it.
    assert.equal(call.count, #seq)
    for i, s in ipairs(seq) do assert.equal(i, s) end
    assert.is_true(testwmi.idle(5000))
    assert.same({ 1, 0 }, { testwmi.stats().cancels_matched, testwmi.stats().cancels_unmatched })
    call:close()

    -- Cancelled, then closed with the events it held: they go with it.
    call = assert(svc:subscribe(EVENTS, {}))
    assert.is_true(th.until_true(function() return call.count >= 3 end, 5000))
    call:cancel()
    assert.is_true(wmi.stats().queued >= 3)
    call:close()
    assert.is_true(testwmi.idle(5000))
    assert_released(true)
  end)

  it("bounds what a call holds by queue_limit and queue_bytes though nobody takes it", function()
    testwmi.configure { event_interval = 5 }
    local call = assert(svc:subscribe(EVENTS, {}, { queue_limit = 4 }))
    assert.is_true(call:wait(10000))    -- delivered into the call's buffer; never taken
    assert.equal(4, call.count)
    -- Ended: its stub and sink are gone (DESIGN.md), the objects it holds are not.
    assert.is_true(testwmi.idle(5000))
    assert.same({ 0, 4 }, { wmi.stats().stubs, wmi.stats().queued })
    local got = next_of(call, 0)
    local n = 0
    while got[1] do n, got = n + 1, next_of(call, 0) end
    assert.equal(4, n)
    assert.equal(WBEM_E_QUEUE_OVERFLOW, got[3])
    assert.matches("4 callbacks %(%d+ bytes%) waited for dispatch %(queue_limit 4, queue_bytes 67108864%)", got[2])
    call:close()

    call = assert(svc:subscribe(EVENTS, {}, { queue_bytes = 300, queue_limit = false }))
    assert.is_true(call:wait(10000))
    got = next_of(call, 0)
    n = 0
    while got[1] do n, got = n + 1, next_of(call, 0) end
    assert.equal(WBEM_E_QUEUE_OVERFLOW, got[3])
    local callbacks, bytes =
      got[2]:match("(%d+) callbacks %((%d+) bytes%) waited for dispatch %(queue_limit 0, queue_bytes 300%)")
    assert.is_truthy(callbacks, got[2])
    assert.same({ n, n }, { tonumber(callbacks), call.count })
    assert.is_true(n >= 1 and tonumber(bytes) <= 300, got[2])
    call:close()
  end)

  it("releases what a call holds at lua_close", function()
    local allocfail = require "allocfail"
    testwmi.configure { event_interval = 5 }
    local verdict, _, message = allocfail.run([[ wmi = require "wmi"; testwmi = require "testwmi" ]], [[
      local svc = assert(wmi.connect { locator = testwmi.clsid })
      local events = assert(svc:subscribe("]] .. EVENTS .. [[", {}))
      local query = assert(svc:query_async("SELECT Name FROM Win32_Service", {}))
      assert(query:wait(10000))
      assert(events:next(5000))
      wmi.dispatch(50)
      return events.count, query.count, wmi.stats().queued ]], 1000000000)
    assert.equal("returned", verdict, message)
    local events, services, queued = message:match("^(%d+), (%d+), (%d+)$")
    assert.is_truthy(events, message)
    assert.equal(23, tonumber(services))
    assert.is_true(tonumber(queued) >= 23 + tonumber(events) - 1, message)
    -- That state is closed: nothing of it is left.
    testwmi.idle(10000)
    assert_released(true)
  end)
end)
