-- issue 21, item 4: a == b for wmi.Object (src/equality.c): by __PATH, compared
-- case-insensitively, for objects with one; by IWbemClassObject::CompareTo
-- (WBEM_COMPARISON_INCLUDE_ALL) for objects without.
local wmi = require "wmi"
local testwmi = require "testwmi"
local th = require "spec.support.testwmi_helpers"

local PROCESSES = "SELECT * FROM Win32_Process"

describe("wmi.Object equality against Wine", function()
  local svc
  setup(function() svc = assert(wmi.connect()) end)
  teardown(function() svc:close() end)

  it("the same process fetched twice (a query, svc:get) is equal; another process is not", function()
    local list = assert(svc:query(PROCESSES))
    assert.is_true(#list >= 2)
    local first, second = list[1], list[2]
    local again = assert(svc:get(first.__PATH))
    assert.is_false(rawequal(first, again))     -- two userdata
    assert.is_true(first == again)
    assert.is_true(again == first)
    -- By a relative path written in other case: Wine hands back the canonical path.
    local lower = assert(svc:get(first.__RELPATH:lower()))
    assert.is_true(lower == first)
    assert.is_false(first == second)
    assert.is_true(first ~= second)
    -- Through another connection, to the namespace written in other case.
    local other = assert(wmi.connect("ROOT\\CIMV2"))
    local far = assert(other:get(first.__PATH))
    assert.is_true(far == first)
    other:close()
  end)

  it("a path-less object equals only itself where Wine's CompareTo fails (E_NOTIMPL)", function()
    local proto = assert(svc:get("Win32_Process"))
    local a, b = assert(proto:spawn()), assert(proto:spawn())
    assert.is_true(a == a)
    assert.is_false(a == b)
    -- A path-less object never equals one with a path.
    assert.is_false(a == proto)
    assert.is_false(proto == a)
  end)

  it("what Wine gives for a class is an instance (a Wine limitation): equal to that instance", function()
    -- Wine answers GetObject("Win32_Process") with the class's first instance.
    local cls = assert(svc:get("Win32_Process"))
    assert.equal(2, cls.__GENUS)    -- WBEM_GENUS_INSTANCE; a class would be 1
    local same = assert(svc:get(cls.__PATH))
    assert.is_true(cls == same)
    assert.is_truthy(cls.__PATH:find(":Win32_Process.Handle=", 1, true))
  end)

  it("closed objects: equal only to themselves, and == never raises", function()
    local list = assert(svc:query(PROCESSES))
    local a, b = list[1], assert(svc:get(list[1].__PATH))
    assert.is_true(a == b)
    b:close()
    assert.is_false(a == b)
    assert.is_false(b == a)
    assert.is_true(b == b)
    a:close()
    assert.is_false(a == b)
    -- Neither another userdata nor another type is an object.
    assert.is_false(list[2] == svc)
    assert.is_false(svc == list[2])
    assert.is_false(list[2] == list[2].__PATH)
  end)
end)

describe("wmi.Object equality of the test WMI server's path-less objects", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  -- The TestWmi_Node row the "mixed" host adds to an async query's answer.
  local function node(services)
    local got
    local call = assert(services:query_async("SELECT Name FROM Win32_Process WHERE Name = 'services.exe'",
      function(o) if o:class() == "TestWmi_Node" then got = o end end))
    assert.is_true(call:wait(10000))
    th.until_true(function() return got ~= nil end, 5000)
    return assert(got)
  end

  it("compares them with CompareTo and WBEM_COMPARISON_INCLUDE_ALL: alike is equal", function()
    local mixed = assert(th.connect { host = "mixed" })
    local a, b = node(mixed), node(mixed)
    local calls = testwmi.compares()
    assert.is_true(a == b)
    local now, flags = testwmi.compares()
    assert.same({ calls + 1, 0 }, { now, flags })   -- WBEM_COMPARISON_INCLUDE_ALL
    assert.is_nil(a.__PATH)

    -- Events: path-less too, each its own Sequence.
    testwmi.configure { event_interval = 10 }
    local events = {}
    local call = assert(svc:subscribe(
      "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'",
      function(ev) events[#events + 1] = ev end))
    assert.is_true(th.until_true(function() return #events >= 2 end, 10000))
    call:cancel()
    assert.is_true(call:wait(10000))
    assert.is_false(events[1] == events[2])
    assert.is_true(events[1] == events[1])
    assert.is_false(events[1] == a)
    assert.equal(now + 2, (testwmi.compares()))
    mixed:close()
  end)
end)
