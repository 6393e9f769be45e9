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
    local call = assert(svc:query_async("SELECT * FROM Win32_BIOS", function() end))
    assert.is_true(call:wait(10000))
    local closed = {
      svc = assert(wmi.connect()), apt = assert(wmi.apartment()), obj = assert(svc:get("Win32_BIOS")),
      stub = assert(apt:stub(function() end)),
      call = assert(svc:query_async("SELECT * FROM Win32_BIOS", function() end)),
    }
    assert.is_true(closed.call:wait(10000))
    for _, v in pairs(closed) do v:close() end
    local bad = { false, 42, "x", {}, function() end, stub, obj, apt, svc, call,
                  closed.svc, closed.apt, closed.obj, closed.stub, closed.call }
    local fn = function() end
    local BIOS = "SELECT * FROM Win32_BIOS"

    -- name, function, the valid arguments (a sweep replaces one at a time);
    -- sink: the position that also takes a table or a stub; close: closing a
    -- closed object of its own type is harmless, not an error; also: a value the
    -- table position takes too (method parameters as an object).
    local cases = {
      { "wmi.connect", wmi.connect, { "root\\cimv2" }, only = { 42, false, fn, stub } },
      { "wmi.apartment", wmi.apartment, { {} }, only = { 42, "x", false, fn } },
      { "wmi.init_security", wmi.init_security, { {} }, only = { 42, "x", false, fn, stub } },
      { "wmi.hresult", wmi.hresult, { 0 } },
      { "wmi.datetime", wmi.datetime, { "20230101000000.000000+000" } },
      { "wmi.dispatch", wmi.dispatch, { 0 }, only = { "x", {}, false, fn, svc } },
      { "wmi.run", wmi.run, { 0 }, only = { "x", {}, false, fn, svc } },
      { "svc:query", svc.query, { svc, BIOS } },
      { "svc:each", svc.each, { svc, BIOS } },
      { "svc:instances", svc.instances, { svc, "Win32_BIOS" } },
      { "svc:classes", svc.classes, { svc, "CIM_Process" } },
      { "svc:get", svc.get, { svc, "Win32_BIOS" } },
      { "svc:exec", svc.exec, { svc, "StdRegProv", "EnumKey" } },
      { "svc:put", svc.put, { svc, obj } },
      { "svc:delete", svc.delete, { svc, "Win32_BIOS" } },
      { "svc:close", svc.close, { svc }, close = closed.svc },
      { "svc:query_async", svc.query_async, { svc, BIOS, fn }, sink = 3 },
      { "svc:instances_async", svc.instances_async, { svc, "Win32_BIOS", fn }, sink = 3 },
      { "svc:classes_async", svc.classes_async, { svc, "CIM_Process", fn }, sink = 3 },
      { "svc:get_async", svc.get_async, { svc, "Win32_BIOS", fn }, sink = 3 },
      { "svc:exec_async", svc.exec_async, { svc, "StdRegProv", "EnumKey", {}, fn }, sink = 5, also = obj },
      { "svc:put_async", svc.put_async, { svc, obj, fn }, sink = 3 },
      { "svc:delete_async", svc.delete_async, { svc, "Win32_BIOS", fn }, sink = 3 },
      { "svc:subscribe", svc.subscribe, { svc, "SELECT * FROM __InstanceCreationEvent", fn }, sink = 3 },
      { "obj:get", obj.get, { obj, "Name" } },
      { "obj:properties", obj.properties, { obj } },
      { "obj:methods", obj.methods, { obj } },
      { "obj:path", obj.path, { obj } },
      { "obj:class", obj.class, { obj } },
      { "obj:text", obj.text, { obj } },
      { "obj:spawn", obj.spawn, { obj } },
      { "obj:clone", obj.clone, { obj } },
      { "obj:inparams", obj.inparams, { obj, "Create" } },
      { "obj:close", obj.close, { obj }, close = closed.obj },
      { "apt:stub", apt.stub, { apt, fn }, sink = 2 },
      { "apt:close", apt.close, { apt }, close = closed.apt },
      { "stub:close", stub.close, { stub }, close = closed.stub },
      { "call:cancel", call.cancel, { call } },
      { "call:wait", call.wait, { call, 0 } },
      { "call:result", call.result, { call } },
      { "call:close", call.close, { call }, close = closed.call },
    }
    for _, case in ipairs(cases) do
      local name, f, valid = case[1], case[2], case[3]
      for position = 1, #valid do
        for _, value in ipairs(case.only or bad) do
          -- Skip values of the valid type (a number is a string to Lua's C API, as
          -- everywhere in Lua); a sink also takes a table or a stub.
          local same = rawequal(value, valid[position])
            or (type(value) == type(valid[position]) and type(value) ~= "userdata")
            or (type(valid[position]) == "string" and type(value) == "number")
          local sink_ok = position == case.sink and (type(value) == "table" or value == stub)
          local close_ok = position == 1 and rawequal(value, case.close)
          local also_ok = type(valid[position]) == "table" and rawequal(value, case.also)
          if not (same or sink_ok or close_ok or also_ok) then
            local args = { table.unpack(valid) }
            args[position] = value
            local ok, err = pcall(f, table.unpack(args, 1, #valid))
            assert.is_false(ok, ("%s accepted %s as argument %d"):format(name, tostring(value), position))
            assert.equal("string", type(err), name .. ": the error is not a message")
            assert.is_true(#err > 0)
          end
        end
      end
    end
    call:close()
    svc:close()
    apt:close()
  end)
end)
