-- Regression specs of the C core's review (issue 10): one block per item, each
-- failing on the code before its fix. Against Wine's real WMI; the items only
-- Windows shows are in the blocks that use the test WMI server.
local wmi = require "wmi"
local helpers = require "spec.helpers"

local PROCESS_PATH = 'Win32_Process.Handle="1:2"'   -- a key value holding a ':'

describe("core review", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  -- item 2
  it("reads connect's options raw: no __index runs", function()
    local opts = setmetatable({}, { __index = function() error("user code ran") end })
    local s = assert(wmi.connect(opts))
    assert.equal("wmi.Services (root\\cimv2)", tostring(s))
    s:close()
    -- An __index that makes a new string each time is never asked either.
    local made = 0
    s = assert(wmi.connect(setmetatable({}, { __index = function(_, k)
      made = made + 1
      return k == "namespace" and ("root\\" .. "nope") or nil
    end })))
    assert.equal(0, made)
    s:close()
  end)

  -- item 3
  it("finds the class of a path whose key holds a ':'", function()
    -- The class is Win32_Process, so the parameter is checked against Create's.
    for _, ns in ipairs { "", "\\\\.\\root\\cimv2:", "//srv.example/root/cimv2:", "root\\cimv2:" } do
      local path = ns .. PROCESS_PATH
      assert.has_error(function() svc:exec(path, "Create", { Nope = 1 }) end,
        "bad argument #3 to 'exec' (no parameter 'Nope')")
    end
  end)

  -- item 4
  it("raises argument errors for text that is not UTF-8, never E_OUTOFMEMORY", function()
    for _, field in ipairs { "user", "password", "authority", "locale", "namespace", "host" } do
      assert.has_error(function() wmi.connect { host = "x", [field] = "\xff" } end,
        ("bad option '%s' to 'connect' (invalid UTF-8)"):format(field))
    end
    assert.has_error(function() wmi.connect("root\\\xff") end, "bad argument #1 to 'connect' (invalid UTF-8)")
    local me = svc:query("SELECT * FROM Win32_Process WHERE Name = 'services.exe'")[1]
    assert.has_error(function() svc:exec("Win32_Process", "Create", { ["\xff"] = 1 }) end,
      "bad argument #3 to 'exec' (parameter names must be valid UTF-8)")
    assert.has_error(function() svc:exec(me:path(), "Get\xffOwner") end,
      "bad argument #2 to 'exec' (invalid UTF-8)")
    assert.has_error(function() svc:query("SELECT \xff FROM Win32_Process") end,
      "bad argument #1 to 'query' (invalid UTF-8)")
  end)

  -- item 5
  it("takes {} as no parameters", function()
    local me = svc:query("SELECT * FROM Win32_Process WHERE Name = 'services.exe'")[1]
    local with_nil = assert(svc:exec(me:path(), "GetOwner"))
    local with_empty = assert(svc:exec(me:path(), "GetOwner", {}))
    assert.equal(0, with_empty.ReturnValue)
    assert.equal(with_nil.User, with_empty.User)
  end)
end)

describe("core review, without a connection", function()
  local valuetest = require "valuetest"

  after_each(function()
    assert.equal(0, wmi.pending())
    helpers.assert_all_released()
  end)

  -- A handler that takes at least MS of wall time (CPU time never runs ahead of it).
  local function spin(ms)
    local stop = os.clock() + ms / 1000
    repeat until os.clock() >= stop
  end

  -- item 1
  it("returns from call:wait(ms), wmi.run(ms) and wmi.dispatch(ms) within the limit while objects keep coming",
    function()
      local svc = assert(wmi.connect())
      for _, how in ipairs { "wait", "run", "dispatch" } do
        local n, slow = 0, true
        local call = assert(svc:query_async("SELECT Name FROM Win32_Service", {
          indicate = function() n = n + 1; if slow then spin(50) end end,
        }))
        -- The first object waits in the queue (nothing dispatched yet).
        local stop = os.clock() + 10
        repeat until wmi.stats().queued > 0 or os.clock() > stop
        local done
        if how == "wait" then done = call:wait(100)
        elseif how == "run" then done = wmi.run(100)
        else wmi.dispatch(100) end
        -- Each handler takes 50 ms: within 100 ms at most 2 run (3 with a coarse clock).
        assert.is_true(n >= 1 and n <= 3, how .. " delivered " .. n)
        assert.is_falsy(done)
        assert.is_false(call.done)
        slow = false
        assert.is_true(call:wait(10000))
        assert.equal(23, n)
        call:close()
      end
      svc:close()
    end)

  -- item 13
  it("keeps sint32's uint32 leniency to method parameters", function()
    assert.same({ nil, "out of range for sint32" }, { valuetest.roundtrip(0x80000001, "sint32") })
    assert.same({ nil, "out of range for sint32" }, { valuetest.roundtrip(3e9, "sint32") })
    local fake = valuetest.fake()
    assert.has_error(function() fake.sint32 = 3e9 end, "bad value for property 'sint32' (out of range for sint32)")
    fake:close()
    -- A method's in-parameters still take HKEY_CURRENT_USER's bit pattern.
    local reg = assert(wmi.connect("root\\default"))
    local inp = assert(assert(reg:get("StdRegProv")):inparams("EnumKey"))
    inp.hDefKey = 0x80000001
    assert.equal(0x80000001 - 0x100000000, inp.hDefKey)
    local out = assert(reg:exec("StdRegProv", "EnumKey", { hDefKey = 0x80000001, sSubKeyName = "Software" }))
    assert.equal(0, out.ReturnValue)
    inp:close()
    reg:close()
  end)

  -- item 15
  it("keeps the COM apartment per Lua state", function()
    assert.equal("mta", wmi.threading())
    assert.same({ true, "sta" }, { valuetest.state("return require('wmi').threading()", "sta") })
    assert.equal("mta", wmi.threading())      -- the other state's STA is not this one's
    assert.same({ true, "mta" }, { valuetest.state("return require('wmi').threading()", "mta") })
  end)
end)

-- item 14: out of memory, in a Lua state of its own whose allocator fails on demand
-- (valuetest.state: oom(n) lets n more allocations succeed, then fails every one).
describe("core review, out of memory", function()
  local valuetest = require "valuetest"
  local testwmi = require "testwmi"

  after_each(function()
    assert.equal(0, wmi.pending())
    helpers.assert_all_released()
  end)

  -- Runs CODE (which returns what it checks) in a fresh state once for each
  -- n in 0..LAST; returns how many of the runs hit a failed allocation.
  local function sweep(last, code, check)
    local hit = 0
    for n = 0, last do
      local r = { valuetest.state((code:gsub("%$N", tostring(n)))) }
      assert(r[1], r[2])
      if r[2] ~= "0" then hit = hit + 1 end
      check(table.unpack(r, 3))
      helpers.assert_all_released()
    end
    return hit
  end

  -- For a sweep's code: waits (bounded) until QUEUED callbacks wait; runs full
  -- collections, which shrink the stack and free spare CallInfos (calling a handler
  -- then needs memory, unless the module reserved it before taking the callback);
  -- dispatches with $N more allocations allowed, then without a limit. Returns
  -- whether an allocation failed, and wmi.pending() after.
  local DELIVER_STARVED = [[
      local function deliver_starved(wmi, queued)
        local deadline = os.time() + 10
        repeat until wmi.stats().queued >= queued or os.time() > deadline
        for _ = 1, 8 do collectgarbage() end
        oom($N)
        pcall(wmi.run)
        local failed = oom()
        oom(false)
        assert(wmi.run(10000))
        return failed, wmi.pending()
      end
  ]]

  it("never leaks a queued object or its sink when delivering it runs out of memory", function()
    local hits = sweep(40, DELIVER_STARVED .. [[
      local wmi = require "wmi"
      local svc = assert(wmi.connect())
      -- Counted first, every object released before the async query refills Wine's table.
      local total = 0
      for obj in svc:each("SELECT Name FROM Win32_Service") do
        total = total + 1
        obj:close()
      end
      local n = 0
      local call = assert(svc:query_async("SELECT Name FROM Win32_Service", { indicate = function() n = n + 1 end }))
      -- Every object and the status wait (bounded: a service may come or go meanwhile).
      local failed, pending = deliver_starved(wmi, total + 1)
      call:close()
      svc:close()
      return failed, n, call and pending, total
    ]], function(n, pending, total)
      -- The object whose handler could not be called (its arguments or its call
      -- frame could not be made) is delivered after all: every handler runs once.
      n, total = tonumber(n), tonumber(total)
      assert.is_true(total > 10 and n == total, ("%s of %s"):format(n, total))
      assert.equal("0", pending)
    end)
    assert.is_true(hits > 5)
  end)

  -- issue 17, item 7: the failed connect's message is made before the job is done
  it("runs a failed connect's handler once and frees its job when pushing the message runs out of memory", function()
    local hits = sweep(12, DELIVER_STARVED .. [[
      local wmi = require "wmi"
      local calls, got = 0, nil
      local c = assert(wmi.connect_async({ namespace = "root\\nowhere" }, function(svc, msg, hr)
        calls = calls + 1
        got = svc == nil and hr
      end))
      local failed, pending = deliver_starved(wmi, 1)
      c:close()
      c = nil
      collectgarbage()
      -- The pool thread lets go of the job just after queueing its result (bounded).
      local deadline = os.time() + 10
      repeat until wmi.stats().connects == 0 or os.time() > deadline
      return failed, calls, tostring(got), pending, wmi.stats().connects
    ]], function(calls, got, pending, connects)
      assert.equal("1", calls)
      assert.equal(tostring(0x8004100E), got)     -- WBEM_E_INVALID_NAMESPACE
      assert.equal("0", pending)
      assert.equal("0", connects)
    end)
    assert.is_true(hits >= 2)
  end)

  it("keeps wmi.pending() exact when anchoring a call runs out of memory", function()
    local hits = sweep(40, [[
      local wmi = require "wmi"
      local svc = assert(wmi.connect())
      local handlers = { indicate = function() end }
      local stub = assert(assert(wmi.apartment { mode = "inproc" }):stub(handlers))
      oom($N)
      local ok, call = pcall(svc.query_async, svc, "SELECT Name FROM Win32_Service", stub)
      local failed = oom()
      oom(false)
      local started = ok and call and 1 or 0
      local during = wmi.pending()
      assert(wmi.run(10000))
      for _ = 1, 20 do wmi.dispatch(10) end    -- a status of a call never counted, too
      svc:close()
      return failed, started - during, wmi.pending()
    ]], function(diff, after)
      assert.equal("0", diff)
      assert.equal("0", after)
    end)
    assert.is_true(hits > 0)
  end)

  it("ends a method enumeration and leaks no object when a synchronous call runs out of memory", function()
    local hits = sweep(30, [[
      local valuetest = require "valuetest"
      local fake = valuetest.fake()
      oom($N)
      pcall(fake.methods, fake)
      local failed = oom()
      oom(false)
      local enums = valuetest.method_enums()
      local names = table.concat(fake:methods(), ",")
      return failed, enums, names
    ]], function(enums, names)
      assert.equal("0", enums)
      assert.equal("First,Second", names)
    end)
    assert.is_true(hits > 0)

    -- get, query and exec against the test WMI server, which counts the objects
    -- it handed out: none may stay alive after the state closed.
    for _, op in ipairs {
      'svc:get("Win32_OperatingSystem=@")',
      'svc:query("SELECT Name FROM Win32_Service")',
      'svc:exec(svc:query("SELECT * FROM Win32_Process WHERE Name = \'services.exe\'")[1]:path(), "GetOwner")',
      'for o in svc:each("SELECT Name FROM Win32_Service") do end',
    } do
      testwmi.reset()
      hits = sweep(30, ([[
        local wmi = require "wmi"
        local svc = assert(wmi.connect { locator = "%s" })
        local ok = pcall(function()
          oom($N)
          %s
        end)
        local failed = oom()
        oom(false)
        svc:close()
        return failed
      ]]):format(testwmi.clsid, op), function() end)
      assert.is_true(hits > 0, op)
      collectgarbage()
      assert.is_true(testwmi.idle(10000))
      assert.equal(0, testwmi.stats().objects, op)
      assert.equal(0, testwmi.stats().enumerators, op)
    end
  end)
end)

-- The items only Windows shows, against the test WMI server (spec/support/testwmi*.c):
-- many calls per Services, remote hosts, IClientSecurity on every proxy it hands out.
describe("core review, against the test WMI server", function()
  local testwmi = require "testwmi"
  local th = require "spec.support.testwmi_helpers"
  local svc
  th.connection_per_test(function(s) svc = s end)

  local function kinds(blankets)
    local t = {}
    for i, b in ipairs(blankets) do t[i] = b.kind end
    return t
  end

  -- item 6
  it("lets go of each call's stub at its status, with several calls in flight on one Services", function()
    testwmi.configure { gate = true }
    local statuses = {}
    local calls = {}
    for i, class in ipairs { "Win32_Service", "Win32_Process", "Win32_OperatingSystem" } do
      calls[i] = assert(svc:instances_async(class, { status = function(ok) statuses[#statuses + 1] = ok end }))
    end
    assert.equal(3, wmi.stats().stubs)
    testwmi.open_gate()
    assert.is_true(wmi.run(10000))
    assert.same({ true, true, true }, statuses)
    -- Once the server let go of its sinks (just after each SetStatus), nothing
    -- holds a stub, while the Services and the calls stay open.
    assert.is_true(testwmi.idle(10000))
    assert.equal(0, testwmi.stats().sinks)
    assert.equal(0, wmi.stats().stubs)
    -- A later call needs no CancelAsyncCall of a finished one.
    local c = assert(svc:query_async("SELECT Name FROM Win32_Service", {}))
    assert.is_true(c:wait(10000))
    for _, call in ipairs(calls) do call:close() end
    c:close()
    assert.is_true(testwmi.idle(10000))
    assert.equal(0, wmi.stats().stubs)
    assert.same({ 0, 0 }, { testwmi.stats().cancels_matched, testwmi.stats().cancels_unmatched })
  end)

  -- item 8 (and the domain of item 4: no buffer to be too long for)
  it("sets the connection's blanket and identity on every proxy it hands out", function()
    local domain = ("D"):rep(300)
    for _, how in ipairs {
      { user = "CORP\\alice", domain = "CORP", name = "alice" },
      { user = "bob", authority = "ntlmdomain:LAB", domain = "LAB", name = "bob" },
      { user = domain .. "\\carol", domain = domain, name = "carol" },
    } do
      testwmi.reset()
      local remote = assert(th.connect { host = "lat0", user = how.user, password = "pw", authority = how.authority,
                                         authentication = "integrity", impersonation = "impersonate" })
      assert.equal(23, #assert(remote:query("SELECT Name FROM Win32_Service")))
      assert.equal(1, #assert(remote:instances("Win32_OperatingSystem")))
      for _ in remote:each("SELECT Name FROM Win32_OperatingSystem") do end
      local obj = assert(assert(remote:get("Win32_Process")):spawn())
      obj.Handle = "434343"
      assert.equal('Win32_Process.Handle="434343"', assert(remote:put(obj)))
      assert.is_true(remote:delete('Win32_Process.Handle="434343"'))
      remote:close()
      local b = testwmi.blankets()
      -- Each proxy twice: its interface and its IUnknown (COM's rule; the same object here).
      assert.same({ "services", "services", "enumerator", "enumerator", "enumerator", "enumerator", "enumerator",
                    "enumerator", "call_result", "call_result" }, kinds(b))
      for _, r in ipairs(b) do
        assert.same({ 5, 3, true, how.name, how.domain, true },
          { r.authn_level, r.imp_level, r.identity, r.user, r.domain, r.password })
      end
      assert.equal(0, testwmi.stats().identity_lost)
    end
  end)

  -- item 9
  it("keeps the identity valid for a proxy still in use after svc:close()", function()
    local remote = assert(th.connect { host = "lat0", user = "CORP\\alice", password = "pw" })
    local iter = remote:each("SELECT Name FROM Win32_Service")
    assert.is_not_nil(iter())
    remote:close()
    local n = 1
    for _ in iter do n = n + 1 end
    assert.equal(23, n)
    local s = testwmi.stats()
    assert.is_true(s.identity_checks >= 23)
    assert.equal(0, s.identity_lost)
  end)

  -- item 10
  it("gives put_async's status the written path as its message", function()
    local obj = assert(assert(svc:get("Win32_Process")):spawn())
    obj.Handle = "454545"
    local got
    local call = assert(svc:put_async(obj, { status = function(ok, msg, hr) got = { ok, msg, hr } end }))
    assert.is_true(call:wait(10000))
    assert.same({ true, 'Win32_Process.Handle="454545"', 0 }, got)
    assert.is_true(call:result())
    assert.is_true(svc:delete('Win32_Process.Handle="454545"'))
  end)
end)

-- Written by the test server's helper before these fixes (items 6, 8 and 10).
describe("Windows semantics (moved from spec/todo/windows_semantics.lua)", function()
  local testwmi = require "testwmi"
  local testapt = require "testapt"
  local th = require "spec.support.testwmi_helpers"
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("releases the stub at once on SetStatus (the seed's step 7)", function()
    testapt.reset()
    testwmi.configure { batch = 7 }
    local apt = assert(wmi.apartment { mode = "unsecapp", clsid = testapt.clsid, context = "inproc" })
    local call = assert(svc:instances_async("Win32_Process", assert(apt:stub(function() end))))
    assert.is_true(call:wait(10000))
    assert.is_true(testwmi.idle(5000))
    local log = testapt.log()
    assert.equal("StubReleased", log[#log].op)
    assert.equal(0, testapt.counts().stubs)
    assert.equal(0, wmi.stats().stubs)
    svc:close()
    assert.same({ 1, 0 }, { testwmi.stats().cancels_matched + 1, testwmi.stats().cancels_unmatched })
    apt:close()
  end)

  it("put_async's status message is the written path", function()
    local obj = assert(assert(svc:get("Win32_Process")):spawn())
    obj.Handle = "434343"
    local msg
    local call = assert(svc:put_async(obj, { status = function(ok, m) assert(ok) msg = m end }))
    assert.is_true(call:wait(10000))
    assert.equal('Win32_Process.Handle="434343"', msg)
    assert.is_true(assert(svc:delete('Win32_Process.Handle="434343"')))
  end)

  it("sets the blanket on the Services, the enumerators and put's call result of a remote host", function()
    testwmi.reset()   -- the log then holds the remote connection's blankets only
    local remote = assert(th.connect { host = "lat50", user = "u", password = "secret",
      authority = "ntlmdomain:DOM" })
    assert(remote:query("SELECT Name FROM Win32_Service"))
    for _ in remote:each("SELECT Name FROM Win32_BIOS") do end
    assert(remote:instances("Win32_BIOS"))
    assert(remote:classes())
    local obj = assert(assert(remote:get("Win32_Process")):spawn())
    obj.Handle = "454545"
    assert(remote:put(obj))
    local kinds = {}
    for _, b in ipairs(testwmi.blankets()) do
      kinds[b.kind] = (kinds[b.kind] or 0) + 1
      assert.same({ 6, 3, "u", "DOM", true }, { b.authn_level, b.imp_level, b.user, b.domain, b.password })
    end
    assert.same({ services = 2, enumerator = 8, call_result = 2 }, kinds)   -- each on its IUnknown too
    assert.equal(0, testwmi.stats().identity_lost)
    assert.is_true(remote:delete('Win32_Process.Handle="454545"'))  -- the server keeps what was put
    remote:close()
  end)
end)
