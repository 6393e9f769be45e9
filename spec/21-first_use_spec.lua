-- What a new user hits first (issue 17): misspelt options are errors, negative
-- time limits are argument errors, fan-out keeps its promises.
local wmi = require "wmi"
local helpers = require "spec.helpers"
local testwmi = require "testwmi"
local server = require "spec.support.testwmi_helpers"

local ticks = require("wmi.core").ticks
local SPOOLER = "SELECT Name FROM Win32_Service WHERE Name = 'Spooler'"

describe("options and handlers tables", function()
  local svc
  setup(function() svc = assert(wmi.connect()) end)
  teardown(function()
    svc:close()
    helpers.assert_all_released()
  end)

  it("refuse a misspelt key, naming it and the closest known one", function()
    assert.has_error(function() wmi.connect { namspace = "root\\default" } end,
      "bad option 'namspace' to 'connect' (unknown option; did you mean 'namespace'?)")
    assert.has_error(function() wmi.connect { timeout = 5 } end,
      "bad option 'timeout' to 'connect' (unknown option)")
    assert.has_error(function() wmi.connect { "root\\default" } end,
      "bad option '1' to 'connect' (unknown option)")
    assert.has_error(function() wmi.connect_async({ Host = "x" }, function() end) end,
      "bad option 'Host' to 'connect_async' (unknown option; did you mean 'host'?)")
    assert.has_error(function() wmi.apartment { mod = "inproc" } end,
      "bad option 'mod' to 'apartment' (unknown option; did you mean 'mode'?)")
    assert.has_error(function() wmi.init_security { authentification = "none" } end,
      "bad option 'authentification' to 'init_security' (unknown option; did you mean 'authentication'?)")
    assert.has_error(function() svc:query(SPOOLER, { shalow = true }) end,
      "bad option 'shalow' to 'query' (unknown option; did you mean 'shallow'?)")
    assert.has_error(function() svc:each(SPOOLER, { bogus = 1 }) end,
      "bad option 'bogus' to 'each' (unknown option)")
    assert.has_error(function() svc:query_async(SPOOLER, function() end, { progres = true }) end,
      "bad option 'progres' to 'query_async' (unknown option; did you mean 'progress'?)")
    assert.has_error(function() svc:stream(SPOOLER, { bogus = 1 }) end,
      "bad option 'bogus' to 'stream' (unknown option)")
    assert.has_error(function() svc:stream(SPOOLER, { subscrbe = true }) end,
      "bad option 'subscrbe' to 'stream' (unknown option; did you mean 'subscribe'?)")
    assert.has_error(function() wmi.fanout({ "a" }, SPOOLER, { throtle = 2 }) end,
      "bad option 'throtle' to 'fanout' (unknown option; did you mean 'throttle'?)")
    assert.has_error(function() wmi.fanout({ "a" }, SPOOLER, { namspace = "root" }) end,
      "bad option 'namspace' to 'fanout' (unknown option; did you mean 'namespace'?)")
    -- Nothing started on the way.
    assert.equal(0, wmi.pending())
  end)

  it("refuse a misspelt handler, in a stub or in place of one", function()
    local apt = wmi.apartment()
    assert.has_error(function() apt:stub { indicat = function() end } end,
      "bad handler 'indicat' to 'stub' (unknown handler; did you mean 'indicate'?)")
    assert.has_error(function() svc:query_async(SPOOLER, { statsu = function() end }) end,
      "bad handler 'statsu' to 'stub' (unknown handler; did you mean 'status'?)")
    -- A table without indicate (a buffering call) is checked as well.
    assert.has_error(function() svc:query_async(SPOOLER, { status = function() end, bogus = 1 }) end,
      "bad handler 'bogus' to 'stub' (unknown handler)")
    apt:close()
    assert.equal(0, wmi.pending())
  end)

  it("take every documented key", function()
    local apt = wmi.apartment { mode = "inproc", check_access = "default" }
    local s = assert(wmi.connect { namespace = "root\\cimv2", authentication = "privacy",
      impersonation = "impersonate", apartment = apt, locator = nil })
    local names = {}
    for obj in s:stream(SPOOLER, { progress = false, queue_limit = 10 }) do names[#names + 1] = obj.Name end
    assert.same({ "Spooler" }, names)
    s:close()
    apt:close()
  end)
end)

describe("obj:cimtype", function()
  it("names a property's CIM type, which a wrapped uint64's value does not say", function()
    local svc = assert(wmi.connect())
    local os_ = assert(svc:query("SELECT * FROM Win32_OperatingSystem"))[1]
    assert.same({ "uint64", "string", "uint16" },
      { os_:cimtype("FreePhysicalMemory"), os_:cimtype("Caption"), os_:cimtype("OSType") })
    helpers.assert_fail(0x80041002, "WBEM_E_NOT_FOUND", os_:cimtype("Nope"))
    os_:close()
    svc:close()
    helpers.assert_all_released()
  end)
end)

describe("credentials with a UNC namespace", function()
  before_each(function() testwmi.reset() end)

  it("travel in the blanket, as with host (the proxies ran as the process' own account)", function()
    for _, ns in ipairs { "\\\\lat5\\root\\cimv2", "//lat5/root/cimv2" } do
      testwmi.reset()
      local svc = assert(wmi.connect { locator = testwmi.clsid, namespace = ns, user = "DOM\\u", password = "secret" })
      local c, b = testwmi.connects(), testwmi.blankets()
      assert.same({ "lat5", "DOM\\u", true }, { c[1].host, c[1].user, c[1].password })
      assert.same({ "services", true, "u", "DOM", true },
        { b[1].kind, b[1].identity, b[1].user, b[1].domain, b[1].password })
      svc:close()
    end
    -- This machine by name: no identity, as without a namespace.
    for _, ns in ipairs { "\\\\.\\root\\cimv2", "//LocalHost/root/cimv2" } do
      testwmi.reset()
      local svc = assert(wmi.connect { locator = testwmi.clsid, namespace = ns })
      assert.is_false(testwmi.blankets()[1].identity)
      svc:close()
    end
    server.assert_server_idle()
    helpers.assert_all_released()
  end)
end)

describe("time limits", function()
  it("are argument errors when negative, for every wait", function()
    local svc = assert(wmi.connect())
    local call = assert(svc:query_async(SPOOLER, function() end))
    local run = wmi.fanout({}, SPOOLER)
    for _, case in ipairs {
      { function() wmi.run(-1) end, "bad argument #1 to 'run' (non-negative milliseconds expected)" },
      { function() call:wait(-1) end, "bad argument #1 to 'wait' (non-negative milliseconds expected)" },
      { function() run:wait(-1) end, "bad argument #1 to 'wait' (non-negative milliseconds expected)" },
      -- Last: before the fix it waited for ever.
      { function() wmi.dispatch(-5) end, "bad argument #1 to 'dispatch' (non-negative milliseconds expected)" },
    } do
      assert.has_error(case[1], case[2])
    end
    assert.is_true(call:wait())
    call:close()
    svc:close()
    helpers.assert_all_released()
  end)
end)

describe("wmi.fanout", function()
  before_each(function() testwmi.reset() end)

  it("returns from run:wait(ms) within its limit, however slow the handler", function()
    -- 8 hosts of 23 services each and a 20 ms indicate handler: ~3.7 s of handling,
    -- while the objects arrive faster than that and queue up.
    local hosts = {}
    for i = 1, 8 do hosts[i] = "lat" .. i end
    testwmi.configure { batch = 1 }
    local seen = 0
    local run = wmi.fanout(hosts, "SELECT Name FROM Win32_Service", {
      locator = testwmi.clsid,
      indicate = function()
        seen = seen + 1
        local t = ticks() + 20
        repeat until ticks() >= t
      end,
    })
    local longest, most_queued = 0, 0
    while not run.done do
      most_queued = math.max(most_queued, wmi.stats().queued)
      local start = ticks()
      run:wait(100)
      longest = math.max(longest, ticks() - start)
    end
    assert.equal(8 * 23, seen)
    assert.is_true(most_queued > 20, most_queued)
    assert.is_true(longest < 1000, ("run:wait(100) took %d ms (%d objects were queued)"):format(longest, most_queued))
    assert.is_true(wmi.run(10000))
    server.assert_server_idle()
    helpers.assert_all_released()
  end)

  it("takes a timeout in integer milliseconds only, and a WQL in UTF-8, or raises before starting", function()
    for _, v in ipairs { 300.5, 0, -1, 2^31, "100" } do
      assert.has_error(function() wmi.fanout({ "lat5" }, SPOOLER, { locator = testwmi.clsid, timeout = v }) end,
        ("bad option 'timeout' to 'fanout' (positive integer of milliseconds expected, got %s)"):format(v))
    end
    assert.has_error(function() wmi.fanout({ "lat5" }, "SELECT Name FROM Win32_Service WHERE Name = '\xff'") end,
      "bad argument #2 to 'fanout' (invalid UTF-8)")
    assert.equal(0, wmi.pending())
    helpers.assert_all_released()
  end)

  it("ends every host, once, when done raises during run:cancel() or each()'s break", function()
    finally(function() testwmi.release() end)    -- the hanging hosts, whatever happens
    local reported = {}
    local function failing_done(host)
      reported[#reported + 1] = host
      if host:find("^hang") then error("done failed for " .. host, 0) end
    end
    local run = wmi.fanout({ "hang.1", "hang.2", "hang.3" }, SPOOLER,
      { locator = testwmi.clsid, indicate = function() end, done = failing_done })
    assert.has_error(function() run:cancel() end, "done failed for hang.1")
    assert.same({ "hang.1", "hang.2", "hang.3" }, reported)
    assert.is_true(run.done)
    assert.is_true(run:wait())
    -- The pull form: leaving the loop cancels the run.
    reported = {}
    run = wmi.fanout({ "lat5", "hang.4", "hang.5" }, SPOOLER, { locator = testwmi.clsid, done = failing_done })
    local first
    local ok, err = pcall(function()
      for host in run:each() do
        first = first or host
        if first then break end
      end
    end)
    assert.same({ false, "done failed for hang.4" }, { ok, err })
    assert.same({ "lat5", "hang.4", "hang.5" }, reported)
    assert.is_true(run:wait())
    -- The abandoned connects end once released, on their pool threads.
    testwmi.release()
    assert.is_true(server.until_true(function() return wmi.stats().connects == 0 end))
    server.assert_server_idle()
    helpers.assert_all_released()
  end)
end)
