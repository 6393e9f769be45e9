-- Reliability: seeded lifecycle stress, calls on several connections at once, and
-- a sweep of every public function with arguments of every wrong type.
-- (`make stress` runs the long versions: bench/stress.lua.)
local wmi = require "wmi"
local helpers = require "spec.helpers"
local stress = require "spec.support.stress"

describe("reliability", function()
  after_each(function() helpers.assert_all_released() end)

  it("survives a seeded random lifecycle stress (100 iterations)", function()
    local seed = tonumber(os.getenv("LUAWMI_SEED")) or os.time()
    print(("\nlifecycle stress seed %d (LUAWMI_SEED=%d reproduces it)"):format(seed, seed))
    local result = stress(seed, 100)
    assert.is_true(result.started + result.refused > 0)
    assert.equal(0, wmi.pending())
  end)

  it("runs calls on several connections at once, one class each", function()
    local classes = { "Win32_Process", "Win32_Service", "Win32_OperatingSystem", "Win32_BIOS" }
    local expected, got, calls, connections = {}, {}, {}, {}
    for i, class in ipairs(classes) do
      local svc = assert(wmi.connect())
      connections[i] = svc
      expected[class] = helpers.keys(svc:query("SELECT * FROM " .. class), "__RELPATH")
    end
    for i, class in ipairs(classes) do
      got[class] = {}
      calls[i] = assert(connections[i]:query_async("SELECT * FROM " .. class, function(obj)
        table.insert(got[class], obj.__RELPATH)
      end))
    end
    assert.is_true(wmi.run(30000))
    for i, class in ipairs(classes) do
      assert.is_true(calls[i].done)
      assert.same(expected[class], helpers.sorted(got[class]))
      assert.equal(#expected[class], calls[i].count)
      connections[i]:close()
    end
  end)

  it("runs 300 sequential async calls on one connection and holds nothing after", function()
    local svc = assert(wmi.connect())
    local total = 0
    for _ = 1, 300 do
      local call = assert(svc:query_async("SELECT * FROM Win32_BIOS", function() total = total + 1 end))
      assert.is_true(call:wait(10000))
      assert.is_true(call:result())
    end
    assert.equal(300, total)  -- Wine has one BIOS
    svc:close()
  end)
end)

-- Every public function and method, every argument position, every wrong type.
describe("misuse sweep", function()
  after_each(function() helpers.assert_all_released() end)

  it("raises a clean Lua error for each wrong-typed argument, never a crash", function()
    local svc = assert(wmi.connect())
    local apt = assert(wmi.apartment())
    local obj = assert(svc:get("Win32_BIOS"))
    local stub = assert(apt:stub(function() end))
    local closed_svc = assert(wmi.connect())
    closed_svc:close()
    local closed_apt = assert(wmi.apartment())
    closed_apt:close()
    local bad = { false, 42, "x", {}, function() end, stub, obj, apt, svc, closed_svc, closed_apt }

    -- name, function, the valid arguments (a sweep replaces one at a time)
    local cases = {
      { "wmi.connect", wmi.connect, { "root\\cimv2" }, only = { 42, false, function() end, stub } },
      { "wmi.apartment", wmi.apartment, { {} }, only = { 42, "x", false, function() end } },
      { "wmi.hresult", wmi.hresult, { 0 } },
      { "wmi.datetime", wmi.datetime, { "20230101000000.000000+000" } },
      { "wmi.dispatch", wmi.dispatch, { 0 }, only = { "x", {}, false, function() end, svc } },
      { "wmi.run", wmi.run, { 0 }, only = { "x", {}, false, function() end, svc } },
      { "svc:query", svc.query, { svc, "SELECT * FROM Win32_BIOS" } },
      { "svc:each", svc.each, { svc, "SELECT * FROM Win32_BIOS" } },
      { "svc:instances", svc.instances, { svc, "Win32_BIOS" } },
      { "svc:get", svc.get, { svc, "Win32_BIOS" } },
      { "svc:exec", svc.exec, { svc, "StdRegProv", "EnumKey" } },
      { "svc:put", svc.put, { svc, obj } },
      { "svc:delete", svc.delete, { svc, "Win32_BIOS" } },
      { "svc:query_async", svc.query_async, { svc, "SELECT * FROM Win32_BIOS", function() end }, sink = 3 },
      { "svc:get_async", svc.get_async, { svc, "Win32_BIOS", function() end }, sink = 3 },
      { "svc:put_async", svc.put_async, { svc, obj, function() end }, sink = 3 },
      { "svc:subscribe", svc.subscribe, { svc, "SELECT * FROM __InstanceCreationEvent", function() end }, sink = 3 },
      { "obj:get", obj.get, { obj, "Name" } },
      { "obj:inparams", obj.inparams, { obj, "Create" } },
      { "apt:stub", apt.stub, { apt, function() end }, sink = 2 },
    }
    for _, case in ipairs(cases) do
      local name, fn, valid = case[1], case[2], case[3]
      for position = 1, #valid do
        for _, value in ipairs(case.only or bad) do
          -- Skip values of the valid type (a number is a string to Lua's C API, as
          -- everywhere in Lua); a sink also takes a table or a stub.
          local same = rawequal(value, valid[position])
            or (type(value) == type(valid[position]) and type(value) ~= "userdata")
            or (type(valid[position]) == "string" and type(value) == "number")
          local sink_ok = position == case.sink and (type(value) == "table" or value == stub)
          if not (same or sink_ok) then
            local args = { table.unpack(valid) }
            args[position] = value
            local ok, err = pcall(fn, table.unpack(args, 1, #valid))
            assert.is_false(ok, ("%s accepted %s as argument %d"):format(name, tostring(value), position))
            assert.equal("string", type(err), name .. ": the error is not a message")
            assert.is_true(#err > 0)
          end
        end
      end
    end
    svc:close()
    apt:close()
  end)
end)
