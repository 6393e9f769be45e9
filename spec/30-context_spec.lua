-- Issue 21, items 2 and 3: a call context (IWbemContext named values) on connect
-- and on every call, and privileges enabled for each call to a local provider.
--
-- Wine's own StdRegProv reads __ProviderArchitecture (dlls/wbemprox/reg.c): the
-- 32-bit and 64-bit registry views are read from real Wine. The test WMI server
-- (spec/support/testwmi_context.c) records what each call reached it with: the
-- context's names, VARTYPEs and values (Wine's IWbemContext cannot enumerate, so
-- the server asks for the names in testwmi.context_names) and the privileges
-- enabled on the calling thread's token (the server is in-process: a method runs
-- on the client's thread). The process token is read after the calls.
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local HKLM = 0x80000002
local VT_I4, VT_BSTR, VT_BOOL, VT_ARRAY_BSTR = 3, 8, 11, 0x2008
local ERROR_NOT_ALL_ASSIGNED = 0x80070514
local OS = "SELECT Name FROM Win32_OperatingSystem"
local NAMES = { "__ProviderArchitecture", "IncludeHidden", "Tag", "Views", "Absent" }
local CONTEXT = { __ProviderArchitecture = 64, IncludeHidden = true, Tag = "lua", Views = { "a", "b" } }

-- A new Win32_Process instance for the test server's store of written instances.
local function new_process(svc, handle)
  local obj = assert(assert(svc:get("Win32_Process")):spawn())
  obj.Handle = handle
  obj.Name = "written.exe"
  return obj
end

-- The calls the server recorded, ConnectServer apart.
local function calls()
  local n = 0
  for _, r in ipairs(testwmi.contexts()) do
    if r.method ~= "ConnectServer" then n = n + 1 end
  end
  return n
end

-- The subkeys of HKLM\KEY through StdRegProv.EnumKey on SVC, with OPTS.
local function subkeys(svc, key, opts)
  local out = assert(svc:exec("StdRegProv", "EnumKey", { hDefKey = HKLM, sSubKeyName = key }, opts))
  assert.equal(0, out.ReturnValue)
  return helpers.sorted(out.sNames)
end

-- The records of METHOD, in call order.
local function records(method)
  local found = {}
  for _, r in ipairs(testwmi.contexts()) do
    if r.method == method then found[#found + 1] = r end
  end
  return found
end

-- The one record of METHOD.
local function record(method)
  local found = records(method)
  assert(#found == 1, ("%d records of %s, expected 1"):format(#found, method))
  return found[1]
end

local function assert_context(r)
  assert.is_true(r.context)
  assert.is_false(r.enumerated)     -- Wine's IWbemContext::BeginEnumeration is E_NOTIMPL
  assert.same({
    __ProviderArchitecture = { vt = VT_I4, value = 64 },
    IncludeHidden = { vt = VT_BOOL, value = true },
    Tag = { vt = VT_BSTR, value = "lua" },
    Views = { vt = VT_ARRAY_BSTR, value = { "a", "b" } },
  }, r.values)
end

describe("a call context, against Wine's real StdRegProv", function()
  local svc
  before_each(function() svc = assert(wmi.connect()) end)
  after_each(function() svc:close() end)

  it("reads the 32-bit registry view with __ProviderArchitecture = 32, the 64-bit one with 64", function()
    local view64 = subkeys(svc, "SOFTWARE", { context = { __ProviderArchitecture = 64 } })
    local view32 = subkeys(svc, "SOFTWARE", { context = { __ProviderArchitecture = 32 } })
    -- This Lua is 64-bit: no context is the 64-bit view; the 32-bit one is Wow6432Node.
    assert.same(subkeys(svc, "SOFTWARE"), view64)
    assert.same(subkeys(svc, "SOFTWARE\\Wow6432Node"), view32)
    assert.truthy(helpers.contains(view64, "Wow6432Node"))
    assert.falsy(helpers.contains(view32, "Wow6432Node"))
  end)

  it("reaches Wine's ConnectServer and an asynchronous query, which succeed with it", function()
    local conn = assert(wmi.connect { context = CONTEXT })
    assert.equal(#assert(conn:query(OS)), #assert(conn:query(OS, { context = CONTEXT })))
    local names = {}
    local call = assert(conn:query_async(OS, { indicate = function(o) names[#names + 1] = o.Name end },
                                         { context = CONTEXT }))
    assert.is_true(call:wait(10000))
    assert.is_true(call:result())
    assert.equal(1, #names)
    conn:close()
  end)
end)

describe("a call context, recorded by the test WMI server", function()
  local svc
  th.connection_per_test(function(s)
    svc = s
    testwmi.context_names(NAMES)
  end)

  it("reaches every synchronous call with its names, VARTYPEs and values", function()
    local opts = { context = CONTEXT }
    assert(svc:query(OS, opts))
    for _ in svc:each(OS, opts) do end
    assert(svc:instances("Win32_BIOS", opts))
    assert(svc:classes(nil, opts))
    assert(svc:get("Win32_BIOS", opts))
    assert(svc:exec("StdRegProv", "EnumKey", { hDefKey = HKLM, sSubKeyName = "SOFTWARE" }, opts))
    local path = assert(svc:put(new_process(svc, "434343"), opts))
    assert.is_true(svc:delete(path, opts))
    assert.equal(2, #records("ExecQuery"))
    for _, r in ipairs(records("ExecQuery")) do assert_context(r) end
    for _, m in ipairs { "CreateInstanceEnum", "CreateClassEnum", "ExecMethod", "PutInstance", "DeleteInstance" } do
      assert_context(record(m))
    end
    -- svc:get's; the others are the module's own reads of classes (exec's in-parameters).
    local gets = {}
    for _, r in ipairs(records("GetObject")) do if r.context then gets[#gets + 1] = r end end
    assert.equal(1, #gets)
    assert_context(gets[1])
  end)

  it("reaches every asynchronous call, a stream and a subscription", function()
    local opts = { context = CONTEXT }
    local obj = new_process(svc, "444444")
    testwmi.reset()
    testwmi.context_names(NAMES)
    local started = {
      assert(svc:query_async(OS, {}, opts)),
      assert(svc:instances_async("Win32_BIOS", {}, opts)),
      assert(svc:classes_async(nil, {}, opts)),
      assert(svc:get_async("Win32_BIOS", {}, opts)),
      assert(svc:exec_async("StdRegProv", "EnumKey", { hDefKey = HKLM, sSubKeyName = "SOFTWARE" }, {}, opts)),
      assert(svc:put_async(obj, {}, opts)),
    }
    for _, c in ipairs(started) do
      assert.is_true(c:wait(10000))
      assert.is_true(c:result())
    end
    local del = assert(svc:delete_async('Win32_Process.Handle="444444"', {}, opts))
    assert.is_true(del:wait(10000))
    assert.is_true(del:result())
    for _ in svc:stream(OS, opts) do end
    local sub = assert(svc:subscribe("SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE "
                                     .. "TargetInstance ISA 'Win32_Process'", {}, opts))
    sub:close()
    assert.equal(2, #records("ExecQueryAsync"))
    for _, r in ipairs(records("ExecQueryAsync")) do assert_context(r) end
    for _, m in ipairs { "CreateInstanceEnumAsync", "CreateClassEnumAsync", "GetObjectAsync", "ExecMethodAsync",
                         "PutInstanceAsync", "DeleteInstanceAsync", "ExecNotificationQueryAsync" } do
      assert_context(record(m))
    end
  end)

  it("gives the server's StdRegProv, Wine's, the view it names", function()
    assert.same(subkeys(svc, "SOFTWARE\\Wow6432Node"),
                subkeys(svc, "SOFTWARE", { context = { __ProviderArchitecture = 32 } }))
    assert.same(subkeys(svc, "SOFTWARE"), subkeys(svc, "SOFTWARE", { context = { __ProviderArchitecture = 64 } }))
  end)

  it("is absent where none is given, and {} is none", function()
    assert(svc:query(OS))
    assert(svc:query(OS, { context = {} }))
    for _, r in ipairs(records("ExecQuery")) do assert.is_false(r.context) end
  end)

  it("reaches ConnectServer, and another host's call made on the thread pool", function()
    testwmi.reset()
    testwmi.context_names(NAMES)
    local remote = assert(th.connect { host = "lat1", context = CONTEXT })
    assert_context(record("ConnectServer"))
    local call = assert(remote:query_async(OS, {}, { context = CONTEXT }))
    assert.is_true(call:wait(10000))
    assert.is_true(call:result())
    assert_context(record("ExecQueryAsync"))
    remote:close()
  end)

  it("reaches a fan-out's connects and its WQL requests", function()
    testwmi.reset()
    testwmi.context_names(NAMES)
    local run = wmi.fanout({ "lat1.1", "lat1.2" }, OS, { locator = testwmi.clsid, context = CONTEXT })
    assert.is_true(run:wait(20000))
    for host, r in pairs(run:results()) do assert(r.ok, host .. ": " .. tostring(r.message)) end
    assert.equal(2, #records("ConnectServer"))
    assert.equal(2, #records("ExecQueryAsync"))
    for _, r in ipairs(testwmi.contexts()) do assert_context(r) end
  end)

  it("refuses a value it cannot send, naming its key", function()
    local bad = {
      { { n = 1.5 }, "value of 'n'.*got float" },
      { { big = 2 ^ 31 }, "value of 'big'" },
      { { huge = math.maxinteger }, "value of 'huge'.*32%-bit integer" },
      { { f = print }, "value of 'f'.*got function" },
      { { list = { "a", 1 } }, "value of 'list'.*got table" },
      { { map = { x = "a" } }, "value of 'map'" },
      { { [1] = "x" }, "names must be" },
    }
    for _, case in ipairs(bad) do
      for _, start in ipairs {
        function() return svc:query(OS, { context = case[1] }) end,
        function() return svc:get("Win32_BIOS", { context = case[1] }) end,
        function() return svc:query_async(OS, {}, { context = case[1] }) end,
        function() return th.connect { context = case[1] } end,
      } do
        local ok, err = pcall(start)
        assert.is_false(ok)
        assert.matches("bad option 'context'.*" .. case[2], err)
      end
    end
    assert.has_error(function() svc:query(OS, { context = "x" }) end,
                     "bad option 'context' to 'query' (table expected, got string)")
    assert.equal(0, calls(), "a refused context reached the server")
  end)

  it("keeps options strict", function()
    assert.has_error(function() svc:get("Win32_BIOS", { contxt = {} }) end,
                     "bad option 'contxt' to 'get' (unknown option; did you mean 'context'?)")
    assert.has_error(function() svc:delete("Win32_BIOS", { shallow = true }) end,
                     "bad option 'shallow' to 'delete' (unknown option)")
    assert.has_error(function() for _ in svc:stream(OS, { contxt = {} }) do end end)
  end)
end)

describe("privileges", function()
  local WANT = { "Shutdown", "SeSecurityPrivilege" }
  local ENABLED = { "SeShutdownPrivilege", "SeSecurityPrivilege" }

  before_each(function()
    testwmi.reset()
    -- What makes the thread token's state news: the process has them disabled.
    local process = testwmi.process_privileges()
    for _, p in ipairs(ENABLED) do assert.is_nil(process[p]) end
  end)
  after_each(function()
    th.assert_server_idle()
    helpers.assert_all_released()
    testwmi.reset()
  end)

  it("are enabled on a thread token for each local call, sync and async, and then reverted", function()
    local svc = assert(th.connect { privileges = WANT })
    assert(svc:query(OS))
    local call = assert(svc:query_async(OS, {}))
    assert.is_true(call:wait(10000))
    assert(svc:exec("StdRegProv", "EnumKey", { hDefKey = HKLM, sSubKeyName = "SOFTWARE" }))
    for _, m in ipairs { "ExecQuery", "ExecQueryAsync", "ExecMethod" } do
      local r = record(m)
      assert.is_true(r.thread_token)
      for _, p in ipairs(ENABLED) do assert.is_true(r.privileges[p], m .. " without " .. p) end
    end
    -- Reverted: the Lua thread has no token of its own; the process token is untouched.
    assert.is_false(testwmi.thread_token())
    local process = testwmi.process_privileges()
    for _, p in ipairs(ENABLED) do assert.is_nil(process[p]) end
    svc:close()
  end)

  it("are not touched without the option", function()
    local svc = assert(th.connect())
    assert(svc:query(OS))
    assert.is_false(record("ExecQuery").thread_token)
    svc:close()
  end)

  it("that the account does not hold fail the call, naming the privilege", function()
    local svc = assert(th.connect { privileges = { "Shutdown", "CreateToken" } })
    local r, msg, hr = svc:query(OS)
    assert.is_nil(r)
    assert.matches("SeCreateTokenPrivilege", msg)
    assert.matches("ERROR_NOT_ALL_ASSIGNED", msg)
    assert.equal(ERROR_NOT_ALL_ASSIGNED, hr)
    r, msg, hr = svc:query_async(OS, {})
    assert.is_nil(r)
    assert.matches("SeCreateTokenPrivilege", msg)
    assert.equal(ERROR_NOT_ALL_ASSIGNED, hr)
    assert.has_error(function() for _ in svc:each(OS) do end end)
    assert.equal(0, calls(), "a call was made without its privilege")
    assert.is_false(testwmi.thread_token())
    svc:close()
  end)

  it("are an argument error when the name is unknown", function()
    assert.has_error(function() th.connect { privileges = { "Shutdown", "Bogus" } } end,
                     "bad option 'privileges' to 'connect' (unknown privilege 'Bogus')")
    assert.has_error(function() th.connect { privileges = "Shutdown" } end,
                     "bad option 'privileges' to 'connect' (list of names expected, got string)")
  end)

  it("are not needed, and not enabled, for another host", function()
    local svc = assert(th.connect { host = "lat1", privileges = WANT })
    assert(svc:query(OS))
    assert.is_false(record("ExecQuery").thread_token)
    svc:close()
  end)

  it("let a real Wine call through", function()
    local svc = assert(wmi.connect { privileges = WANT })
    assert.equal(1, #assert(svc:query(OS)))
    svc:close()
  end)
end)
