-- Issue 22, in-process: connections that fail closed (authentication levels, a
-- password without a user, host names), Kerberos with the authority's principal
-- name in every proxy's blanket, and wmiq's password sources (Credential Manager,
-- the console) as wmi.cli runs them. Blankets are read back from the test WMI
-- server's records; credentials are written with CredWriteW (valuetest).
local wmi = require "wmi"
local testwmi = require "testwmi"
local valuetest = require "valuetest"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local RPC_C_AUTHN_WINNT, RPC_C_AUTHN_GSS_KERBEROS, RPC_C_AUTHN_DEFAULT = 10, 16, 0xFFFFFFFF
local RPC_C_AUTHZ_NONE, RPC_C_AUTHZ_DEFAULT = 0, 0xFFFFFFFF
local SPOOLER = "SELECT Name FROM Win32_Service WHERE Name = 'Spooler'"

describe("connections fail closed", function()
  it("refuses authentication below packet integrity unless insecure = true", function()
    for _, level in ipairs { "none", "connect", "call", "packet" } do
      for _, f in ipairs {
        function() return wmi.connect { authentication = level } end,
        function() return wmi.connect_async({ authentication = level }, function() end) end,
        function() return wmi.init_security { authentication = level } end,
        function() return wmi.fanout({ "lat5" }, SPOOLER, { authentication = level, locator = testwmi.clsid }) end,
      } do
        local ok, err = pcall(f)
        assert.is_false(ok)
        assert.matches("bad option 'authentication' to '[%w_]+' %(below packet integrity: DCOM%-hardened hosts "
          .. "refuse it; set insecure = true to use it anyway%)", err)
      end
    end
    -- Asked for knowingly, it is used (the test server records the level).
    testwmi.reset()
    local svc = assert(th.connect { host = "lat0", user = "u", password = "p", authentication = "packet",
                                    insecure = true })
    assert.equal(4, testwmi.blankets()[1].authn_level)
    svc:close()
    for _, level in ipairs { "default", "integrity", "privacy" } do
      svc = assert(wmi.connect { authentication = level })
      svc:close()
    end
    assert.is_true(wmi.init_security { authentication = "none", insecure = true })
  end)

  it("raises for a password without a user, before anything connects", function()
    testwmi.reset()
    assert.has_error(function() th.connect { host = "lat0", password = "secret" } end,
      "bad option 'password' to 'connect' (a password needs a user)")
    assert.has_error(function() wmi.connect_async({ host = "lat0", password = "secret" }, function() end) end,
      "bad option 'password' to 'connect_async' (a password needs a user)")
    assert.same({}, testwmi.connects())
  end)

  it("takes only host names: nothing in one can change the namespace", function()
    testwmi.reset()
    for _, bad in ipairs { "a\\root\\x", "a/b", "a b", "", "host\n", "\\\\srv", "é.example", ("a"):rep(256) } do
      assert.same({ false, "not a host name (DNS, NetBIOS, IPv4 or IPv6; no '\\', '/' or spaces)" },
        { wmi.valid_host(bad) })
      assert.has_error(function() th.connect { host = bad } end,
        "bad option 'host' to 'connect' (not a host name: DNS, NetBIOS, IPv4 or IPv6; no '\\', '/' or spaces)")
    end
    assert.same({}, testwmi.connects())
    for _, good in ipairs { "srv01", "srv-01.corp.example.com", "SRV_01", "10.0.0.1", "fe80::1%12", "[::1]", "." } do
      assert.is_true((wmi.valid_host(good)))
    end
    -- A fan-out checks every host before it starts any.
    local ok, err = pcall(wmi.fanout, { "lat5", "lat5\\root\\x" }, SPOOLER, { locator = testwmi.clsid })
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'fanout' %(host #2: not a host name", err)
    assert.same({}, testwmi.connects())
  end)
end)

describe("check_access = true fails closed", function()
  local testapt = require "testapt"

  it("where it cannot be honoured: in-process, no Unsecapp, CreateObjectStub's stubs", function()
    assert.has_error(function() wmi.apartment { mode = "inproc", check_access = true } end,
      "bad option 'check_access' to 'apartment' (true needs unsecapp: an in-process sink checks no caller)")
    -- "auto" on Wine (no Unsecapp registered) falls back only when no check was asked for.
    helpers.assert_fail(0x80040154, "REGDB_E_CLASSNOTREG", wmi.apartment { mode = "auto", check_access = true })
    helpers.assert_fail(0x80040154, "REGDB_E_CLASSNOTREG", wmi.apartment { check_access = true })
    assert.equal("unchecked", assert(wmi.apartment { mode = "auto", check_access = false }).access)
    -- An unsecapp without IWbemUnsecuredApartment offers CreateObjectStub only.
    testapt.reset { wbem = false }
    local apt, msg, hr = wmi.apartment { mode = "unsecapp", clsid = testapt.clsid, context = "inproc",
                                         check_access = true }
    assert.same({ nil, "check_access = true needs IWbemUnsecuredApartment (CreateObjectStub's stubs cannot check "
      .. "access): E_NOINTERFACE (0x80004002): Interface not supported", 0x80004002 }, { apt, msg, hr })
    assert.equal(0, testapt.counts().apartments)
    -- With CreateSinkStub, the check is asked for (spec/05 asserts the flag).
    testapt.reset()
    apt = assert(wmi.apartment { mode = "unsecapp", clsid = testapt.clsid, context = "inproc", check_access = true })
    assert.equal("check", apt.access)
    apt:close()
    testapt.reset()
    collectgarbage()
    helpers.assert_all_released()
  end)
end)

describe("Kerberos", function()
  after_each(function()
    th.assert_server_idle()
    helpers.assert_all_released()
  end)

  -- Every blanket of a connection that queried, enumerated and wrote.
  local function blankets_of(opts)
    testwmi.reset()
    local svc <close> = assert(th.connect(opts))
    assert.equal(23, #assert(svc:query("SELECT Name FROM Win32_Service")))
    for _ in svc:each("SELECT Name FROM Win32_OperatingSystem") do end
    local obj = assert(assert(svc:get("Win32_Process")):spawn())
    obj.Handle = "222222"
    assert(svc:put(obj))
    assert.is_true(svc:delete('Win32_Process.Handle="222222"'))
    svc:close()
    local b, kinds = testwmi.blankets(), {}
    for _, r in ipairs(b) do kinds[r.kind] = true end
    assert.same({ services = true, enumerator = true, call_result = true }, kinds)
    return b
  end

  it("sets RPC_C_AUTHN_GSS_KERBEROS and the authority's principal name on every proxy", function()
    for _, how in ipairs {
      { user = "alice", domain = "CORP", name = "alice" },              -- the domain from the authority
      { user = "LAB\\bob", domain = "LAB", name = "bob" },              -- the user's own
      { user = "carol@corp.example.com", name = "carol@corp.example.com" },  -- a UPN carries its realm
    } do
      for _, b in ipairs(blankets_of { host = "lat0", user = how.user, password = "pw",
                                        authority = "kerberos:CORP\\srv01" }) do
        assert.same({ RPC_C_AUTHN_GSS_KERBEROS, RPC_C_AUTHZ_NONE, "CORP\\srv01", how.name, how.domain, true, 6 },
          { b.authn_svc, b.authz_svc, b.principal, b.user, b.domain, b.password, b.authn_level })
      end
    end
    assert.equal(0, testwmi.stats().identity_lost)
    -- connect_async (fan-outs) makes the same blanket.
    testwmi.reset()
    local got
    local c = wmi.connect_async({ locator = testwmi.clsid, host = "lat5", user = "alice", password = "pw",
                                  authority = "kerberos:CORP\\srv01" }, function(svc) got = svc end)
    assert.is_true(c:wait(10000))
    local b = testwmi.blankets()[1]
    assert.same({ RPC_C_AUTHN_GSS_KERBEROS, "CORP\\srv01", "CORP" }, { b.authn_svc, b.principal, b.domain })
    got:close()
    c:close()
    -- The pool thread's job ends just after it handed the connection over.
    assert.is_true(th.until_true(function()
      collectgarbage()
      return wmi.stats().connects == 0
    end))
  end)

  it("keeps NTLM for ntlmdomain:, and lets DCOM negotiate without an authority", function()
    for _, b in ipairs(blankets_of { host = "lat0", user = "bob", password = "pw", authority = "ntlmdomain:LAB" }) do
      assert.same({ RPC_C_AUTHN_WINNT, RPC_C_AUTHZ_NONE, nil, "LAB" },
        { b.authn_svc, b.authz_svc, b.principal, b.domain })
    end
    for _, b in ipairs(blankets_of { host = "lat0", user = "LAB\\bob", password = "pw" }) do
      assert.same({ RPC_C_AUTHN_DEFAULT, RPC_C_AUTHZ_DEFAULT, nil }, { b.authn_svc, b.authz_svc, b.principal })
    end
  end)
end)

describe("memory bounded under a hostile server", function()
  local svc
  th.connection_per_test(function(s) svc = s end)
  local MiB = 1 << 20
  local WBEM_E_QUEUE_OVERFLOW = 0x80041061

  local function private_bytes()
    collectgarbage()
    collectgarbage()
    return wmi.stats().private_bytes
  end

  -- Starts the query with OPTS and lets the server finish flooding, nothing
  -- dispatched; returns the call, what it gave its handlers, and the growth of
  -- the process' private bytes meanwhile.
  local function flooded(opts)
    local got = { objects = 0, progress = {} }
    local before = private_bytes()
    local call = assert(svc:query_async("SELECT Name FROM Win32_Service", {
      indicate = function() got.objects = got.objects + 1 end,
      status = function(ok, msg, hr) got.status = { ok, msg, hr } end,
      progress = function(_, _, msg) got.progress[#got.progress + 1] = msg end,
    }, opts))
    assert.is_true(testwmi.idle(120000))
    local growth = wmi.stats().private_bytes - before
    got.queued = wmi.stats().queued
    assert.is_true(call:wait(10000))
    call:close()
    return got, growth
  end

  it("queues no progress nobody asked for", function()
    testwmi.configure { progress_flood = 100000, progress_text = 2000 }
    local got, growth = flooded { queue_limit = 30 }
    assert.same({ 23, {}, { true, nil, 0 } }, { got.objects, got.progress, got.status })
    assert.is_true(growth < 16 * MiB, ("grew %d bytes"):format(growth))   -- 200 MB were sent
  end)

  it("counts progress against queue_bytes and ends the call with WBEM_E_QUEUE_OVERFLOW", function()
    testwmi.configure { progress_flood = 100000, progress_text = 2000 }
    local got, growth = flooded { progress = true, queue_bytes = 4 * MiB }
    assert.equal(WBEM_E_QUEUE_OVERFLOW, got.status[3])
    assert.matches("queue_bytes 4194304%)", got.status[2])
    -- 4 MiB of nodes and texts, some 2000 progress calls of the 100000 sent.
    assert.is_true(#got.progress > 1000 and #got.progress < 4000, #got.progress)
    assert.is_true(growth < 4 * MiB + 16 * MiB, ("grew %d bytes"):format(growth))
    assert.equal(0, got.objects)
    -- The default budget, 64 MiB, holds the same way.
    got, growth = flooded { progress = true }
    assert.equal(WBEM_E_QUEUE_OVERFLOW, got.status[3])
    assert.matches("queue_bytes 67108864%)", got.status[2])
    assert.is_true(growth < 64 * MiB + 32 * MiB, ("grew %d bytes"):format(growth))
  end)

  it("counts progress against queue_limit too, caps texts at 4 KiB, and takes one final status", function()
    testwmi.configure { progress_flood = 100, progress_text = 10 }
    local got = flooded { progress = true, queue_limit = 10 }
    assert.same({ 10, WBEM_E_QUEUE_OVERFLOW }, { #got.progress, got.status[3] })
    testwmi.configure { progress_flood = 3, progress_text = 100000, final_statuses = 1000 }
    got = flooded { progress = true }
    local lengths = {}
    for i, msg in ipairs(got.progress) do lengths[i] = #msg end
    -- the flood's 3 (cut to 2048 characters), then the server's own (no text)
    assert.same({ 2048, 2048, 2048 }, { lengths[1], lengths[2], lengths[3] })
    assert.same({ 23, true }, { got.objects, got.status[1] })
    -- Before dispatch: 23 objects, 3 + 24 progress, one status; the 999 extra
    -- final statuses were dropped.
    assert.equal(23 + 27 + 1, got.queued)
  end)
end)

describe("values the module cannot convert", function()
  local svc
  th.connection_per_test(function(s) svc = s end)
  after_each(function() testwmi.configure { malformed = false } end)

  local VT_DATE, VT_BSTR_ARRAY, VT_I4_ARRAY = 7, 0x2008, 0x2003
  local VT_BYREF = 0x4000
  for _, case in ipairs {
    { "date", VT_DATE, "unsupported VARIANT type 0x7" },
    -- the descriptor says VT_I8, the VARIANT VT_BSTR: 8-byte elements both on x64
    { "vartype", VT_BYREF | VT_BSTR_ARRAY, "malformed array in a VARIANT (its elements are not of the VARIANT's "
      .. "type 0x8)" },
    { "bounds", VT_BYREF | VT_I4_ARRAY, "malformed array in a VARIANT (2147483649 elements)" },
  } do
    it(("become a marker with the VARTYPE, in every object: malformed = %q"):format(case[1]), function()
      testwmi.configure { malformed = case[1] }
      local list = assert(svc:query("SELECT Name, State FROM Win32_Service"))
      assert.equal(23, #list)
      for _, obj in ipairs(list) do
        local name = obj.Name
        assert.same({ true, case[2], case[3] }, { name.unconvertible, name.vartype, name.message })
        assert.equal(("<unconvertible VARIANT 0x%x: %s>"):format(case[2], case[3]), tostring(name))
        assert.equal("string", type(obj.State))          -- the other properties as ever
        local seen = {}
        for k, v in pairs(obj) do seen[k] = v end
        assert.same(name, seen.Name)
      end
    end)
  end

  it("never fails a wmiq fan-out: every host's rows, the marker as text", function()
    local cli = require "wmi.cli"
    testwmi.configure { malformed = "date" }
    local out, err = helpers.output(), helpers.output()
    assert.equal(0, cli.main({ "--locator", testwmi.clsid, "-H", "lat5,lat10", "-f", "csv",
      "SELECT Name FROM Win32_Service" }, out, err, { width = false }))
    assert.equal("", err:text())
    local text = out:text()
    local _, rows = text:gsub("\r\n", "")
    assert.equal(1 + 2 * 23, rows)
    local _, markers = text:gsub("<unconvertible VARIANT 0x7: unsupported VARIANT type 0x7>", "")
    assert.equal(2 * 23, markers)
  end)
end)

describe("wmiq's password sources (wmi.cli in-process)", function()
  local cli = require "wmi.cli"
  local NAME = "luawmi-spec/credential"

  local function run(args, env)
    local out, err = helpers.output(), helpers.output()
    env = env or {}
    env.width = false
    local full = { "--locator", testwmi.clsid, "-H", "lat5", "-f", "csv" }
    table.move(args, 1, #args, #full + 1, full)
    full[#full + 1] = SPOOLER
    return cli.main(full, out, err, env), out:text(), err:text()
  end

  local function connected()
    local got = {}
    for i, c in ipairs(testwmi.connects()) do got[i] = { c.user, c.password } end
    return got
  end

  before_each(function() testwmi.reset() end)
  after_each(function()
    pcall(valuetest.credential, NAME)
    th.assert_server_idle()
    helpers.assert_all_released()
  end)

  it("uses a generic credential of Windows Credential Manager by name", function()
    valuetest.credential(NAME, "CORP\\svc-wmi", "from-the-vault")
    assert.same({ 0, "Name\r\nSpooler\r\n", "" }, { run { "--credential", NAME } })
    assert.same({ { "CORP\\svc-wmi", true } }, connected())
    -- The blanket carries the credential's user, with its domain.
    local b = testwmi.blankets()[1]
    assert.same({ "svc-wmi", "CORP", true }, { b.user, b.domain, b.password })
    -- A missing credential: a usage error that does not repeat the name.
    valuetest.credential(NAME)
    local status, out, err = run { "--credential", NAME }
    assert.same({ 2, "" }, { status, out })
    assert.matches("^wmiq: cannot read the credential of option '%-%-credential': ", err)
    assert.falsy(err:find(NAME, 1, true))
    assert.same({ 2, "", "wmiq: option '--credential' names its own user: no '--user'\nTry 'wmiq --help'.\n" },
      { run { "--credential", NAME, "-u", "x" } })
  end)

  it("asks at the console for -u without a password, and says what to use without one", function()
    local asked = {}
    local function console(answer)
      return function(_, pipe) asked[#asked + 1] = pipe return answer end
    end
    assert.same({ 0, "Name\r\nSpooler\r\n", "" }, { run({ "-u", "DOM\\u" }, { read_password = console("typed") }) })
    assert.same({ false }, asked)              -- the console only, never a line of stdin
    assert.same({ { "DOM\\u", true } }, connected())
    local status, out, err = run({ "-u", "DOM\\u" }, { read_password = console(nil) })
    assert.same({ 2, "" }, { status, out })
    assert.equal("wmiq: option '--user' needs a password, and there is no console to ask for it: use --password-env"
      .. " VAR, --credential NAME or -p - (a line of standard input)\nTry 'wmiq --help'.\n", err)
    assert.equal(1, #connected())              -- no connection was tried
  end)

  it("warns that -p PASSWORD is visible, and still uses it", function()
    assert.same({ 0, "Name\r\nSpooler\r\n", "wmiq: warning: a password on the command line is visible to other users"
      .. " (the process list, shell history, audit logs); use -p -, --password-env or --credential\n" },
      { run { "-u", "DOM\\u", "-p", "Hunter2" } })
    assert.same({ { "DOM\\u", true } }, connected())
  end)
end)
