-- Windows semantics against the test WMI server: what the core keeps for a call or
-- an enumerator of a remote connection once the script lets go of it (issue 10,
-- items 6, 7 and 9).
local testwmi = require "testwmi"
local th = require "spec.support.testwmi_helpers"

local function sorted_names(list)
  local names = {}
  for i, o in ipairs(list) do names[i] = o.Name end
  table.sort(names)
  return names
end

describe("a remote connection's calls and enumerators after the script lets go", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("never cancels a finished call: a dropped call collected, then the Services closed", function()
    local call = assert(svc:query_async("SELECT Name FROM Win32_Service", function() end))
    assert.is_true(call:wait(10000))
    call = nil  -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    svc:close()
    assert.same({ 0, 0 }, { testwmi.stats().cancels_matched, testwmi.stats().cancels_unmatched })
  end)

  it("runs an async call on a slow host to its end with its identity intact", function()
    svc = assert(th.connect { host = "lat50", user = "DOM\\u", password = "secret" })
    local expected = sorted_names(assert(svc:query("SELECT Name FROM Win32_Service")), "Name")
    testwmi.configure { batch = 5 }
    local names, status = {}, nil
    local call = assert(svc:query_async("SELECT Name FROM Win32_Service", {
      indicate = function(obj) names[#names + 1] = obj.Name end,
      status = function(ok, _, hr) status = { ok, hr } end,
    }))
    -- The script drops its Services: the call in flight keeps it, and its identity.
    svc = nil
    collectgarbage()
    collectgarbage()
    assert.is_true(call:wait(10000))
    assert.same({ true, 0 }, status)
    table.sort(names)
    assert.same(expected, names)
    assert.is_true(testwmi.idle(5000))
    local s = testwmi.stats()
    assert.same({ 0, 5 }, { s.identity_lost, s.indicates })
    assert.is_true(s.identity_checks >= 3)   -- the query, the async start and its end
    call:close()
  end)
  it("keeps the identity of an enumerator still in use after svc:close()", function()
    local remote = assert(th.connect { host = "lat1", user = "DOM\\u", password = "secret" })
    local names = {}
    local iter = remote:each("SELECT Name FROM Win32_Service")
    names[1] = iter().Name
    remote:close()
    for obj in iter do names[#names + 1] = obj.Name end
    assert.equal(23, #names)
    local s = testwmi.stats()
    assert.is_true(s.identity_checks >= 23)
    assert.equal(0, s.identity_lost)
  end)

end)
