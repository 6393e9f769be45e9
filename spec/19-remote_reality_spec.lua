-- Remote hosts as they really are (issue 16, items 5-9): the module against the test
-- WMI server's DCOM model (spec/support/testwmi.c's header):
--   wedge   connects, then every method and every last Release block until
--           testwmi.release(): the Lua thread must never be the one blocked;
--   vanish  the sink is released without a status after vanish_after Indicates:
--           the call ends with RPC_E_DISCONNECTED, once, and no wait hangs on it.
-- A wait that a regression could turn into a hang is bounded twice: the server is
-- released from another thread (testwmi.release(ms)), and a module timer raises
-- out of the wait, so a broken module fails here instead of hanging.
local wmi = require "wmi"
local core = require "wmi.core"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local SERVICES = "SELECT Name FROM Win32_Service"   -- 23 in a default prefix
local BIOS = "SELECT Name FROM Win32_BIOS"
local RPC_E_DISCONNECTED = 0x80010108
local RPC_S_SERVER_UNAVAILABLE = 0x800706BA
local WBEM_E_TIMED_OUT = 0x80041069
local WBEM_E_CALL_CANCELLED = 0x80041032

-- Raises out of whatever wait is dispatching after MS: a hang becomes a failure.
local function watchdog(ms)
  return core.timer(ms, function() error(("still waiting after %d ms"):format(ms)) end)
end

local recorder = th.recorder

-- A test's delayed testwmi.release(ms) must not fire in the next test: while
-- something is wedged, wait for it (it is what unwedges it), then release the rest.
local function all_released()
  th.until_true(function() return testwmi.stats().wedged == 0 end, 6000)
  testwmi.release()
  collectgarbage()
  collectgarbage()
  assert.is_true(th.until_true(function() return wmi.stats().connects == 0 end, 10000))
  assert.equal(0, wmi.pending())
  th.assert_server_idle()
  helpers.assert_all_released()
  testwmi.reset()
end

describe("the Lua thread never waits on the network", function()
  before_each(function() testwmi.reset() end)
  after_each(all_released)

  it("a start, a cancel and a close return while the host is wedged", function()
    local svc = assert(th.connect { host = "wedge.1" })
    testwmi.release(3000)     -- a module that blocks fails below rather than hangs
    local rec = recorder()
    local call = assert(svc:query_async(SERVICES, rec.handlers))
    assert.matches("starting", tostring(call))
    -- The start is the pool's: it reaches the server and stays there.
    assert.is_true(th.until_true(function() return testwmi.stats().wedged == 1 end, 2000))
    call:cancel()
    assert.is_true(call:wait(0))                -- the module's own cancellation status was queued
    assert.same({ 0, 1, false, WBEM_E_CALL_CANCELLED }, { rec.objects, #rec.statuses, rec.statuses[1].ok,
      rec.statuses[1].hresult })
    call:close()
    svc:close()
    assert.equal(1, testwmi.stats().wedged)     -- still blocked: none of that waited for it
  end)

  it("closing a Services returns while its host is wedged", function()
    local svc = assert(th.connect { host = "wedge.3" })
    testwmi.release(3000)
    svc:close()     -- the last Release is a round trip: the pool's
    assert.is_true(th.until_true(function() return testwmi.stats().wedged == 1 end, 2000))
  end)

  it("counts the pool's work until it ran: wmi.stats().pool (what wmiq waits for before exiting)", function()
    local svc = assert(th.connect { host = "wedge.3" })
    local call = assert(svc:query_async(SERVICES, function() end))
    -- The start waits on the wedged host, on the pool; the cancel and the releases
    -- follow it there (how many are still queued or running depends on timing: the
    -- start's flight holds the Services, so their release may be no round trip).
    call:close()
    svc:close()
    assert.is_true(th.until_true(function() return testwmi.stats().wedged >= 1 end, 2000))
    assert.is_true(wmi.stats().pool >= 1, ("pool: %d"):format(wmi.stats().pool))
    testwmi.release()
    assert.is_true(th.until_true(function() return wmi.stats().pool == 0 end, 5000),
      ("pool: %d"):format(wmi.stats().pool))
  end)

  it("a start that fails ends the call through its status, as a sync call reports it", function()
    local svc = assert(th.connect { host = "wedge.2" })
    testwmi.release(200)
    local rec = recorder()
    local call = assert(svc:query_async(SERVICES, rec.handlers))
    local _ <close> = watchdog(10000)
    assert.is_true(call:wait())
    local _, message, hr = svc:query(BIOS)   -- the same host, the same failure, returned
    assert.equal(RPC_S_SERVER_UNAVAILABLE, hr)
    assert.same({ { ok = false, message = message, hresult = hr } }, rec.statuses)
    assert.same({ nil, message, hr }, { call:result() })
    assert.equal("RPC_S_SERVER_UNAVAILABLE (0x800706BA): RPC server unavailable", message)
    local s = testwmi.stats()
    assert.same({ 0, 0 }, { s.started, s.sinks })
    call:close()
    svc:close()
  end)
end)

describe("a server that vanishes mid-call", function()
  local svc
  before_each(function()
    testwmi.reset()
    testwmi.configure { vanish_after = 5, batch = 1 }
    svc = assert(th.connect { host = "vanish.1" })
  end)
  after_each(function()
    svc:close()
    all_released()
  end)

  it("ends the call with RPC_E_DISCONNECTED after its objects, once", function()
    local rec = recorder()
    local call = assert(svc:query_async(SERVICES, rec.handlers))
    assert.is_true(call:wait(5000))
    assert.equal(5, rec.objects)
    assert.equal(1, #rec.statuses)
    assert.same({ false, RPC_E_DISCONNECTED }, { rec.statuses[1].ok, rec.statuses[1].hresult })
    assert.equal("RPC_E_DISCONNECTED (0x80010108): Object has been disconnected from its clients",
      rec.statuses[1].message)
    assert.equal(0, wmi.dispatch(100))          -- nothing more
    assert.same({ 5, 0, 1 }, { testwmi.stats().indicated, testwmi.stats().statuses, testwmi.stats().vanished })
    call:close()
  end)

  it("call:wait() without a limit returns", function()
    local call = assert(svc:query_async(SERVICES, function() end))
    local _ <close> = watchdog(10000)
    assert.is_true(call:wait())
    assert.same({ 5, nil, RPC_E_DISCONNECTED }, { call.count, select(3, call:result()) and nil,
      select(3, call:result()) })
    call:close()
  end)

  it("wmi.run() returns, the call dropped", function()
    local rec = recorder()
    assert(svc:query_async(SERVICES, rec.handlers))
    collectgarbage()
    assert.is_true(wmi.run(10000))
    assert.same({ 5, 1, RPC_E_DISCONNECTED }, { rec.objects, #rec.statuses, rec.statuses[1].hresult })
  end)

  it("svc:stream raises after the objects that came", function()
    local n = 0
    local _ <close> = watchdog(10000)
    local ok, err = pcall(function()
      for _ in svc:stream(SERVICES) do n = n + 1 end
    end)
    assert.is_false(ok)
    assert.same({ 5, RPC_E_DISCONNECTED }, { n, err.hresult })
  end)
end)

describe("wmi.fanout with a wedged host", function()
  before_each(function() testwmi.reset() end)
  after_each(all_released)

  it("ends it with WBEM_E_TIMED_OUT at its timeout and delays no other host", function()
    testwmi.release(4000)     -- a module that blocks fails below rather than hangs
    local hosts, done, at = { "wedge.1" }, {}, {}
    for i = 1, 20 do hosts[#hosts + 1] = "lat1." .. i end
    local t0 = os.clock()
    local run = wmi.fanout(hosts, BIOS, { locator = testwmi.clsid, timeout = 500,
      done = function(host, ok, _, hr, count)
        done[host] = { ok, hr, count }
        at[host] = os.clock() - t0
      end })
    assert.is_true(run:wait(3000))
    for i = 1, 20 do
      local host = "lat1." .. i
      assert.same({ true, 0, 1 }, done[host], host)
      assert.is_true(at[host] < 1, ("%s done after %.3f s"):format(host, at[host]))
    end
    assert.same({ false, WBEM_E_TIMED_OUT, 0 }, done["wedge.1"])
    assert.is_true(at["wedge.1"] >= 0.45 and at["wedge.1"] < 1.5, ("wedge.1 after %.3f s"):format(at["wedge.1"]))
    assert.equal(1, testwmi.stats().wedged)     -- the wedged start still holds its pool thread
  end)

  it("run:cancel() returns at once with wedged hosts", function()
    testwmi.release(3000)
    local hosts = {}
    for i = 1, 5 do hosts[i] = "wedge." .. i end
    local run = wmi.fanout(hosts, BIOS, { locator = testwmi.clsid, timeout = 30000 })
    assert.is_true(th.until_true(function() return testwmi.stats().wedged == 5 end, 2000))
    run:cancel()
    assert.is_true(run.done)
    assert.equal(5, testwmi.stats().wedged)     -- cancels and releases wait on the pool, not here
    for _, r in pairs(run:results()) do assert.equal(WBEM_E_CALL_CANCELLED, r.hresult) end
  end)
end)

describe("what a remote server may do, through the module's thread-pool path", function()
  local svc
  before_each(function()
    testwmi.reset()
    svc = assert(th.connect { host = "lat1.1" })
  end)
  after_each(function()
    svc:close()
    all_released()
  end)

  it("inline = 'start': every object and exactly one status", function()
    testwmi.configure { inline = "start", batch = 5 }
    local rec = recorder()
    local call = assert(svc:query_async(SERVICES, rec.handlers))
    assert.is_true(call:wait(5000))
    assert.equal(0, wmi.dispatch(100))
    assert.same({ 23, 1, true, 0 }, { rec.objects, #rec.statuses, rec.statuses[1].ok, rec.statuses[1].hresult })
    assert.same({ 23, 1 }, { testwmi.stats().indicated, testwmi.stats().statuses })
    call:close()
  end)

  it("inline = 'cancel': what comes inside the cancel is dropped, one status: cancelled", function()
    testwmi.configure { inline = "cancel", batch = 5 }
    local rec = recorder()
    local call = assert(svc:query_async(SERVICES, rec.handlers))
    assert.is_true(th.until_true(function() return testwmi.stats().started == 1 end, 5000))
    call:cancel()
    assert.is_true(th.until_true(function() return testwmi.stats().statuses == 1 end, 5000))
    assert.is_true(call:wait(5000))
    assert.equal(0, wmi.dispatch(100))
    assert.same({ 0, 1, WBEM_E_CALL_CANCELLED }, { rec.objects, #rec.statuses, rec.statuses[1].hresult })
    assert.same({ 23, 1 }, { testwmi.stats().indicated, testwmi.stats().cancels_matched })
    call:close()
  end)

  it("final_hr = 0x40010: a success code other than 0 is success, with that code", function()
    testwmi.configure { final_hr = 0x40010 }
    local rec = recorder()
    local call = assert(svc:query_async(SERVICES, rec.handlers))
    assert.is_true(call:wait(5000))
    assert.same({ 23, true, 0x40010 }, { rec.objects, rec.statuses[1].ok, rec.statuses[1].hresult })
    assert.is_true(call:result())
    call:close()
  end)

  it("error_object = 'none' and 'subclass': the status' object is nil or the subclass", function()
    for kind, class in pairs { none = false, subclass = "Win32_PrivilegesStatus" } do
      testwmi.configure { error_object = kind }
      local rec = recorder()
      local call = assert(svc:query_async("garbage", rec.handlers))
      assert.is_true(call:wait(5000))
      local st = rec.statuses[1]
      assert.same({ false, 0x80041017 }, { st.ok, st.hresult }, kind)
      assert.equal(class, st.object and st.object:get("__CLASS") or false, kind)
      assert.matches("^WBEM_E_INVALID_QUERY %(0x80041017%)", st.message)
      call:close()
    end
  end)

  it("progress = false: no progress handler call, the call still completes", function()
    testwmi.configure { progress = false }
    local n, rec = 0, recorder()
    rec.handlers.progress = function() n = n + 1 end
    local call = assert(svc:query_async(SERVICES, rec.handlers, { progress = true }))
    assert.is_true(call:wait(5000))
    assert.same({ 0, 23, true }, { n, rec.objects, rec.statuses[1].ok })
    call:close()
  end)

  it("next_fail_after: a sync query fails, each raises after the objects that came", function()
    testwmi.configure { next_fail_after = 5, next_hr = 0x80041010 }
    local ok, msg, hr = svc:query(SERVICES)
    assert.same({ nil, 0x80041010 }, { ok, hr })
    assert.matches("^WBEM_E_INVALID_CLASS %(0x80041010%)", msg)
    local n = 0
    local ran, err = pcall(function() for _ in svc:each(SERVICES) do n = n + 1 end end)
    assert.same({ false, 5 }, { ran, n })
    assert.matches("WBEM_E_INVALID_CLASS %(0x80041010%)", err)
  end)

  -- Item 9: README, "Cancel is not a rollback".
  it("cancel is not a rollback: a cancelled put_async that ran to completion wrote", function()
    testwmi.configure { run_to_completion = true }
    svc:close()
    svc = assert(th.connect { host = "lat200.1" })   -- the cancel comes long before the result would
    local obj = assert(assert(svc:get("Win32_Process")):spawn())
    obj.Handle = "464646"
    local rec = recorder()
    local call = assert(svc:put_async(obj, rec.handlers))
    assert.is_true(th.until_true(function() return testwmi.stats().started == 1 end, 5000))
    call:cancel()
    assert.is_true(call:wait(5000))
    assert.same({ false, WBEM_E_CALL_CANCELLED }, { rec.statuses[1].ok, rec.statuses[1].hresult })
    assert.is_true(testwmi.idle(5000))
    local written = assert(svc:get('Win32_Process.Handle="464646"'))
    assert.equal("464646", written.Handle)
    assert.is_true(svc:delete('Win32_Process.Handle="464646"'))
    call:close()
  end)
end)

describe("a host that rejects callbacks into an unsecured client", function()
  after_each(all_released)

  -- [MS-WMI] 3.2.4.1.1: a server whose callbacks fail gives up and releases the sink
  -- without a status; the call ends at that release, well within its timeout.
  it("ends an in-process sink's call within its fan-out timeout, with nothing held", function()
    testwmi.reset()
    local apt <close> = assert(wmi.apartment { mode = "inproc" })
    local done = {}
    local t0 = os.clock()
    local run = wmi.fanout({ "reject.1", "lat1.1" }, SERVICES, { locator = testwmi.clsid, apartment = apt,
      timeout = 5000, indicate = function() end,
      done = function(host, ok, _, hr, count) done[host] = { ok, hr, count, os.clock() - t0 } end })
    assert.is_true(run:wait(10000))
    local r = done["reject.1"]
    assert.same({ false, RPC_E_DISCONNECTED, 0 }, { r[1], r[2], r[3] })
    assert.is_true(r[4] < 5, ("reject.1 ended after %.3f s"):format(r[4]))
    assert.same({ true, 0, 23 }, { done["lat1.1"][1], done["lat1.1"][2], done["lat1.1"][3] })
    assert.equal(2, testwmi.stats().rejected)
  end)
end)

describe("wmiq -H with a wedged host", function()
  local cli = require "wmi.cli"
  local function sink()
    local parts = {}
    return { write = function(self, ...)
      for _, v in ipairs { ... } do parts[#parts + 1] = v end
      return self
    end, text = function() return table.concat(parts) end }
  end

  after_each(all_released)

  it("reports it WBEM_E_TIMED_OUT at --timeout, every other host's row, exit status 1", function()
    testwmi.reset()
    testwmi.release(4000)     -- a module that blocks fails below rather than hangs
    local hosts = { "wedge.1" }
    for i = 1, 10 do hosts[#hosts + 1] = "lat1." .. i end
    local out, err = sink(), sink()
    local t0 = os.clock()
    local status = cli.main({ "--locator", testwmi.clsid, "-H", table.concat(hosts, ","), "--timeout", "500",
      "-f", "csv", BIOS }, out, err, { width = false })
    local took = os.clock() - t0
    assert.equal(1, status)
    assert.is_true(took < 2, ("wmiq took %.3f s"):format(took))
    local rows = select(2, out:text():gsub("\n", "\n"))
    assert.equal(11, rows)                      -- the header and one row per answering host
    for i = 1, 10 do assert.matches("lat1%." .. i .. ",", out:text()) end
    assert.matches("wedge%.1.*WBEM_E_TIMED_OUT %(0x80041069%)", err:text())
    assert.not_matches("lat1", err:text())
  end)
end)

-- Item 7. Proxies that are not agile (configure{ proxies = true }, testwmi_proxy.c):
-- an unmarshalled proxy starts with the default blanket, its IUnknown has a blanket
-- of its own, and a sink passed from an STA is called through that thread's message
-- queue. In an MTA the Lua thread and the pool share one apartment; an STA child
-- gets the services marshalled into it (connect_async) and marshals it to the pool
-- for each remote call's start.
describe("proxies that are not agile", function()
  local PKT_PRIVACY = 6

  it("an MTA: the blanket on every proxy and its IUnknown, no call with the default one", function()
    testwmi.reset()
    testwmi.configure { proxies = true, batch = 5 }
    local svc = assert(th.connect { host = "lat1.1", user = "DOM\\u", password = "pw" })
    assert.equal(23, #assert(svc:query(SERVICES)))
    local rec = recorder()
    local call = assert(svc:query_async(SERVICES, rec.handlers))
    assert.is_true(call:wait(5000))
    assert.same({ 23, true }, { rec.objects, rec.statuses[1].ok })
    call:close()
    svc:close()
    local kinds = {}
    for _, b in ipairs(testwmi.blankets()) do
      kinds[b.kind] = (kinds[b.kind] or 0) + 1
      assert.same({ PKT_PRIVACY, "u", true }, { b.authn_level, b.user, b.password }, b.kind)
    end
    assert.is_true((kinds.unknown or 0) >= 1 and (kinds.services or 0) >= 1 and (kinds.enumerator or 0) >= 1)
    local s = testwmi.stats()
    assert.same({ 0, 0 }, { s.default_blanket_calls, s.wrong_thread })
    all_released()
  end)

  it("an STA child: the blanket set again after each unmarshalling; callbacks only inside a wait", function()
    local out, ok, how, status = th.run_child([[
local testapt = require "testapt"
io.write("init ", testapt.init_sta(), "\n")
local wmi = require "wmi"
local testwmi = require "testwmi"
testwmi.configure { proxies = true, batch = 5 }
local function busy() local t = os.clock() while os.clock() - t < 0.3 do end end   -- pumps nothing
-- Another host: connected on the pool, marshalled into this STA.
local remote
local c = wmi.connect_async({ locator = testwmi.clsid, host = "lat5.1", user = "DOM\\u", password = "pw" },
  function(s) remote = s end)
io.write("connect ", tostring(c:wait(10000)), "\n")
c:close()
io.write("query ", #assert(remote:query("SELECT Name FROM Win32_Service")), "\n")
-- Its call starts on the pool, with the services marshalled there.
local call = assert(remote:query_async("SELECT Name FROM Win32_Service", function() end))
busy()
io.write("remote ", call.count, " ", tostring(call:wait(5000)), " ", call.count, "\n")
call:close()
remote:close()
-- This machine: the call starts on the Lua thread, so its sink is this STA's and the
-- server's callbacks wait in the message queue until a wait pumps it.
local here = assert(wmi.connect { locator = testwmi.clsid })
call = assert(here:query_async("SELECT Name FROM Win32_Service", function() end))
local t = os.clock()   -- busy, pumping no message, until the server waits on the queue
while testwmi.stats().posted_waiting == 0 and os.clock() - t < 10 do end
busy()
local s = testwmi.stats()
io.write("local ", call.count, " ", s.posted_waiting, " ", tostring(call:wait(5000)), " ", call.count, "\n")
call:close()
here:close()
s = testwmi.stats()
local unknown = 0
for _, b in ipairs(testwmi.blankets()) do
  if b.kind == "unknown" and b.authn_level == 6 and b.user == "u" then unknown = unknown + 1 end
end
io.write("stats ", s.unmarshalled, " ", s.default_blanket_calls, " ", s.wrong_thread, " ", s.posted_calls, " ",
  unknown >= 2 and "unknown set" or ("unknown " .. unknown), "\n")
os.exit(0, true)
]])
    assert.same({ true, "exit", 0 }, { ok, how, status }, out)
    -- 23 objects in batches of 5 through the local call's queue: 5 Indicates and the status.
    assert.equal("init 0\nconnect true\nquery 23\nremote 0 true 23\nlocal 0 1 true 23\n"
      .. "stats 2 0 0 6 unknown set\n", out)
  end)
end)
