-- The success and failure paths of every asynchronous method, against the test WMI
-- server (Wine implements only ExecQueryAsync). Failures arrive as SetStatus(hr,
-- NULL, error object): the server's __ExtendedStatus (Wine has no such class, so
-- the server makes it with Windows' properties) reaches the status handler's obj.
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local CLASSES = { "StdRegProv", "Win32_BIOS", "Win32_BaseBoard", "Win32_ComputerSystem", "Win32_OperatingSystem",
  "Win32_Process", "Win32_Processor", "Win32_Service" }

-- Runs START(handlers) to its end; returns the indicated objects' values (READ
-- turns each into plain values at once) and the one status as a table.
local function run(start, read)
  local got, statuses, progress = {}, {}, {}
  local call = assert(start {
    indicate = function(obj) got[#got + 1] = read and read(obj) or obj end,
    status = function(ok, msg, hr, obj)
      statuses[#statuses + 1] = { ok = ok, msg = msg, hr = hr, obj = obj,
        class = obj and obj:class(), code = obj and obj.StatusCode, op = obj and obj.Operation,
        param = obj and obj.ParameterInfo, provider = obj and obj.ProviderName }
    end,
    progress = function(current, total) progress[#progress + 1] = { current, total } end,
  })
  assert.is_true(call:wait(10000))
  assert.equal(1, #statuses)
  return got, statuses[1], progress, call
end

-- Asserts a failed status carrying the server's extended error object.
local function assert_failed(st, hr, name, operation, param)
  assert.same({ false, hr, "__ExtendedStatus", hr, operation, param, "testwmi" },
    { st.ok, st.hr, st.class, st.code, st.op, st.param, st.provider })
  assert.equal(name, st.msg:match("^(%S+)"))
end

describe("async methods against the test WMI server", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("classes_async delivers class objects; an unknown superclass fails", function()
    local names, st = run(function(h) return svc:classes_async(nil, h) end, function(o) return o:class() end)
    assert.is_true(st.ok)
    assert.same(CLASSES, helpers.sorted(names))
    assert.same(CLASSES, helpers.sorted(helpers.keys(assert(svc:classes()), "__CLASS")))
    local _, failed = run(function(h) return svc:classes_async("Win32_Nope", h) end)
    assert_failed(failed, 0x80041010, "WBEM_E_INVALID_CLASS", "CreateClassEnum", "Win32_Nope")
  end)

  it("get_async delivers the object of a path; a missing instance fails", function()
    local bits = 'Win32_Service.Name="BITS"'
    local expected = assert(svc:get(bits)).DisplayName
    local got, st = run(function(h) return svc:get_async(bits, h) end,
      function(o) return { o:class(), o.DisplayName } end)
    assert.is_true(st.ok)
    assert.same({ { "Win32_Service", expected } }, got)
    assert.equal("string", type(expected))
    local path = 'Win32_Process.Handle="999999"'
    local _, failed = run(function(h) return svc:get_async(path, h) end)
    assert_failed(failed, 0x80041002, "WBEM_E_NOT_FOUND", "GetObject", path)
  end)

  it("exec_async delivers the out-parameters by Indicate; an unknown method fails", function()
    local me = assert(svc:query("SELECT * FROM Win32_Process WHERE Name = 'services.exe'"))[1]
    local path = me:path()
    local direct = assert(wmi.connect())
    local expected = assert(direct:exec(path, "GetOwner"))
    expected = { expected.ReturnValue, expected.User, expected.Domain }
    direct:close()
    local got, st = run(function(h) return svc:exec_async(path, "GetOwner", nil, h) end,
      function(o) return { o.ReturnValue, o.User, o.Domain } end)
    assert.is_true(st.ok)
    assert.same({ expected }, got)
    assert.equal(0, expected[1])
    local _, failed = run(function(h) return svc:exec_async(path, "Nope", nil, h) end)
    assert_failed(failed, 0x8004102E, "WBEM_E_INVALID_METHOD", "ExecMethod", path)
  end)

  it("put_async writes an instance that get_async, instances and delete_async then see", function()
    local obj = assert(assert(svc:get("Win32_Process")):spawn())
    obj.Handle = "424242"
    obj.Name = "written.exe"
    local path = 'Win32_Process.Handle="424242"'
    local _, st = run(function(h) return svc:put_async(obj, h) end)
    assert.same({ true, 0 }, { st.ok, st.hr })
    local got = run(function(h) return svc:get_async(path, h) end, function(o) return { o.Handle, o.Name } end)
    assert.same({ { "424242", "written.exe" } }, got)
    local names = helpers.keys(assert(svc:instances("Win32_Process")), "Name")
    assert.is_true(helpers.contains(names, "written.exe"))
    -- The synchronous put answers the same path (IWbemCallResult::GetResultString).
    assert.equal(path, assert(svc:put(obj)))
    local _, deleted = run(function(h) return svc:delete_async(path, h) end)
    assert.same({ true, 0 }, { deleted.ok, deleted.hr })
    local _, gone = run(function(h) return svc:get_async(path, h) end)
    assert_failed(gone, 0x80041002, "WBEM_E_NOT_FOUND", "GetObject", path)
  end)

  it("put_async of an instance without its key, and delete_async of a built-in instance, fail", function()
    local obj = assert(assert(svc:get("Win32_Process")):spawn())
    local _, st = run(function(h) return svc:put_async(obj, h) end)
    assert_failed(st, 0x80041028, "WBEM_E_ILLEGAL_NULL", "PutInstance", nil)
    -- Wine cannot delete its own instances: its answer reaches the handler.
    local path = 'Win32_Process.Handle="1"'
    local _, failed = run(function(h) return svc:delete_async(path, h) end)
    assert_failed(failed, 0x80041001, "WBEM_E_FAILED", "DeleteInstance", path)
  end)

  it("query_async and instances_async report their failures with the error object", function()
    local _, st = run(function(h) return svc:query_async("garbage", h) end)
    assert_failed(st, 0x80041017, "WBEM_E_INVALID_QUERY", "ExecQuery", "garbage")
  end)

  it("sends progress with opts.progress = true: objects sent of the total, before the status", function()
    testwmi.configure { batch = 7 }
    local got, st, progress = run(function(h) return svc:query_async("SELECT Name FROM Win32_Service", h,
      { progress = true }) end)
    assert.is_true(st.ok)
    assert.equal(23, #got)
    assert.same({ { 0, 23 }, { 7, 23 }, { 14, 23 }, { 21, 23 }, { 23, 23 } }, progress)
    assert.equal(5, testwmi.stats().progress)
    -- Without the option, none.
    local _, _, none = run(function(h) return svc:query_async("SELECT Name FROM Win32_Service", h) end)
    assert.same({}, none)
  end)
end)
