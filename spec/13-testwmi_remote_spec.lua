-- Remote hosts, credentials and proxy blankets, against the test WMI server: its
-- services, enumerators and call results implement IClientSecurity, so what
-- CoSetProxyBlanket set on each is read back (testwmi.blankets()); like a DCOM
-- proxy, each keeps the client's COAUTHIDENTITY pointer and checks at every use
-- that it still holds what was set (testwmi.stats().identity_lost).
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local PKT_PRIVACY, PKT_INTEGRITY, IMP_IMPERSONATE, IMP_IDENTIFY = 6, 5, 3, 2

local function blankets_of(kind)
  local found = {}
  for _, b in ipairs(testwmi.blankets()) do
    if b.kind == kind then found[#found + 1] = b end
  end
  return found
end

describe("remote hosts through the test WMI server", function()
  local svc
  before_each(function() testwmi.reset() end)
  after_each(function()
    if svc then svc:close() end
    svc = nil
    assert.equal(0, wmi.pending())
    th.assert_server_idle()
    helpers.assert_all_released()
    testwmi.reset()
  end)

  it("hands user, password and authority to ConnectServer and sets the blanket on the Services", function()
    svc = assert(th.connect { host = "lat50", user = "DOM\\u", password = "secret", authority = "ntlmdomain:DOM" })
    local c = testwmi.connects()
    assert.equal(1, #c)
    assert.same({ "lat50", "root\\cimv2", "DOM\\u", "ntlmdomain:DOM", true, 0 },
      { c[1].host, c[1].namespace, c[1].user, c[1].authority, c[1].password, c[1].hresult })
    -- Twice: on IWbemServices and on its IUnknown (a blanket of its own on a proxy).
    local b = blankets_of("services")
    assert.equal(2, #b)
    assert.same(b[1], b[2])
    assert.same({ PKT_PRIVACY, IMP_IMPERSONATE, true, "u", "DOM", true },
      { b[1].authn_level, b[1].imp_level, b[1].identity, b[1].user, b[1].domain, b[1].password })
    -- Every call checks the identity the proxy was given: still intact.
    assert.equal(23, #assert(svc:query("SELECT Name FROM Win32_Service")))
    local s = testwmi.stats()
    assert.is_true(s.identity_checks >= 1)
    assert.equal(0, s.identity_lost)
  end)

  it("sets the authentication and impersonation levels asked for", function()
    svc = assert(th.connect { host = "lat1", user = "x", password = "p", authentication = "integrity",
      impersonation = "identify" })
    local b = blankets_of("services")
    assert.same({ PKT_INTEGRITY, IMP_IDENTIFY, "x", true },
      { b[1].authn_level, b[1].imp_level, b[1].user, b[1].password })
  end)

  it("sets no identity on a local connection", function()
    svc = assert(th.connect())
    local b = blankets_of("services")
    assert.equal(2, #b)
    assert.same({ PKT_PRIVACY, IMP_IMPERSONATE, false }, { b[1].authn_level, b[1].imp_level, b[1].identity })
    assert.is_nil(b[1].user)
  end)
end)
