-- The test WMI server behaves like DCOM (issue 16, items 1-4): every method is a
-- round trip, hosts stall or vanish, calls come back inline, final statuses and
-- error objects take every form [MS-WMI] allows. Driven through the module as it
-- is; asserted against what the server recorded (testwmi.stats()).
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local RPC_S_SERVER_UNAVAILABLE = 0x800706BA
local SERVICES = "SELECT Name FROM Win32_Service"   -- 23 in a default prefix

-- The server's count WHAT moved by how much while F ran.
local function delta(what, f)
  local before = testwmi.stats()[what]
  local r = table.pack(f())
  return testwmi.stats()[what] - before, table.unpack(r, 1, r.n)
end

local recorder = th.recorder

describe("the test WMI server as DCOM", function()
  local svc
  before_each(function() testwmi.reset() end)
  after_each(function()
    testwmi.release()
    if svc then svc:close() end
    svc = nil
    assert.equal(0, wmi.pending())
    th.assert_server_idle()
    helpers.assert_all_released()
    testwmi.reset()
  end)

  describe("lat<N>: N ms is one round trip", function()
    it("costs ConnectServer three round trips and the Services' last Release one", function()
      local trips
      trips, svc = delta("round_trips", function() return assert(th.connect { host = "lat20" }) end)
      assert.equal(3, trips)
      -- The module releases another host's proxy on the thread pool: counted once it ran.
      local before = testwmi.stats().round_trips
      svc:close()
      assert.is_true(th.until_true(function() return testwmi.stats().services == 0 end, 5000))
      assert.equal(1, testwmi.stats().round_trips - before)
    end)

    it("makes a start take one round trip, and the result come one more later", function()
      svc = assert(th.connect { host = "lat50" })
      local rec, at = recorder(), nil
      local status = rec.handlers.status
      rec.handlers.status = function(...) at = os.clock() status(...) end
      local t0 = os.clock()
      -- The module starts another host's call on the thread pool: the start's round
      -- trip is not the Lua thread's (spec/19), the result still comes two trips later.
      local before = testwmi.stats().round_trips
      local call = assert(svc:query_async(SERVICES, rec.handlers))
      assert.is_true(call:wait(10000))
      assert.equal(1, testwmi.stats().round_trips - before)
      assert.same({ 23, 1, true }, { rec.objects, #rec.statuses, rec.statuses[1].ok })
      local took = at - t0
      assert.is_true(took >= 0.095, ("the status arrived %.3f s after the start"):format(took))
      call:close()
    end)

    it("charges each sync call, each Next batch and the enumerator's last Release", function()
      svc = assert(th.connect { host = "lat5" })
      -- ExecQuery, one Next of 64 (23 come back), the enumerator's Release.
      local trips, list = delta("round_trips", function() return assert(svc:query(SERVICES)) end)
      assert.same({ 3, 23 }, { trips, #list })
      -- svc:each asks Next for one object at a time: 23 and the one that finds no more.
      local n = 0
      trips = delta("round_trips", function() for _ in svc:each(SERVICES) do n = n + 1 end end)
      assert.same({ 1 + 24 + 1, 23 }, { trips, n })
      trips = delta("round_trips", function() return assert(svc:get("Win32_Process")) end)
      assert.equal(1, trips)
    end)

    it("charges CancelAsyncCall one round trip", function()
      svc = assert(th.connect { host = "lat20" })
      testwmi.configure { gate = true }
      local call = assert(svc:query_async(SERVICES, function() end))
      assert.is_true(th.until_true(function() return testwmi.stats().started == 1 end, 5000))
      local before = testwmi.stats().round_trips
      call:cancel()   -- on the thread pool, after the start's round trip
      assert.is_true(th.until_true(function() return testwmi.stats().cancels_matched == 1 end, 5000))
      assert.equal(1, testwmi.stats().round_trips - before)
      assert.is_true(call:wait(10000))
      call:close()
    end)
  end)

  describe("wedge: connects, then stalls every call until testwmi.release()", function()
    it("connects like lat10", function()
      local trips
      trips, svc = delta("round_trips", function() return assert(th.connect { host = "wedge" }) end)
      assert.equal(3, trips)
      assert.equal(0, testwmi.connects()[1].hresult)
    end)

    it("blocks a start until released, then fails it 0x800706BA without starting anything", function()
      svc = assert(th.connect { host = "wedge.2" })
      testwmi.release(300)
      local t0 = os.clock()
      -- The module starts on the thread pool and ends the call through its status.
      local call = assert(svc:query_async(SERVICES, function() end))
      assert.is_true(call:wait(10000))
      local blocked = os.clock() - t0
      assert.is_true(blocked >= 0.25, ("the start failed after %.3f s"):format(blocked))
      local hr = select(3, call:result())
      call:close()
      assert.equal(RPC_S_SERVER_UNAVAILABLE, hr)
      local s = testwmi.stats()
      assert.same({ 0, 0, 0 }, { s.started, s.wedged, s.sinks })
    end)

    it("blocks a sync call and the last Release until released", function()
      svc = assert(th.connect { host = "wedge" })
      testwmi.release(300)
      local t0 = os.clock()
      local ok, _, hr = svc:query(SERVICES)
      assert.is_true(os.clock() - t0 >= 0.25)
      assert.same({ nil, RPC_S_SERVER_UNAVAILABLE }, { ok, hr })
      testwmi.reset()   -- wedged again
      local other = assert(th.connect { host = "wedge.3" })
      testwmi.release(300)
      t0 = os.clock()
      other:close()   -- the module releases another host's proxy on the thread pool
      assert.is_true(th.until_true(function() return testwmi.stats().services == 1 end, 5000))
      assert.is_true(os.clock() - t0 >= 0.25)   -- the first one only, once released
    end)
  end)

  describe("vanish: the host goes away mid-call", function()
    it("releases the sink after vanish_after Indicates without a status, then fails every call", function()
      testwmi.configure { vanish_after = 5, batch = 1 }
      svc = assert(th.connect { host = "vanish" })
      local rec = recorder()
      local call = assert(svc:query_async(SERVICES, rec.handlers))
      -- The module may or may not end the call (RPC_E_DISCONNECTED) once the sink is gone.
      call:wait(2000)
      -- The server drops its operation just after the sink: wait for both.
      assert.is_true(th.until_true(function() return testwmi.stats().sinks == 0 and testwmi.stats().calls == 0 end,
        5000))
      local s = testwmi.stats()
      assert.same({ 5, 5, 0, 1, 0 }, { rec.objects, s.indicated, s.statuses, s.vanished, s.calls })
      assert.is_true(#rec.statuses <= 1)
      local ok, _, hr = svc:query(SERVICES)
      assert.same({ nil, RPC_S_SERVER_UNAVAILABLE }, { ok, hr })
      call:close()
    end)
  end)

  describe("reject: callbacks reach only a stub of the unsecured apartment", function()
    it("refuses the callbacks into an in-process sink, gives up and releases the sink", function()
      svc = assert(th.connect { host = "reject", apartment = assert(wmi.apartment { mode = "inproc" }) })
      local rec = recorder()
      local call = assert(svc:query_async(SERVICES, rec.handlers))
      -- The module may or may not end a call whose sink was released unseen.
      call:wait(1000)
      assert.is_true(th.until_true(function() return testwmi.stats().sinks == 0 end, 5000))
      local s = testwmi.stats()
      -- The first Indicate and the final status were refused; nothing reached the sink.
      assert.same({ 2, 0, 0, 0 }, { s.rejected, s.indicated, s.statuses, rec.objects })
      assert.is_true(#rec.statuses <= 1)   -- the module's own RPC_E_DISCONNECTED (spec/19)
      call:close()
    end)

    it("calls a test apartment stub back as usual", function()
      local testapt = require "testapt"
      local apt = assert(wmi.apartment { mode = "unsecapp", clsid = testapt.clsid, context = "inproc" })
      svc = assert(th.connect { host = "reject.2", apartment = apt })
      local rec = recorder()
      local call = assert(svc:query_async(SERVICES, rec.handlers))
      assert.is_true(call:wait(5000))
      assert.same({ 23, 1, true, 0 }, { rec.objects, #rec.statuses, rec.statuses[1].ok, testwmi.stats().rejected })
      call:close()
      svc:close()
      svc = nil
      apt:close()
    end)
  end)

  describe("what a server may do and a client must absorb", function()
    before_each(function() svc = assert(th.connect()) end)

    it("inline = 'start': every object and the status reach the sink before the start returns", function()
      testwmi.configure { inline = "start", batch = 5 }
      local rec = recorder()
      local call = assert(svc:query_async(SERVICES, rec.handlers))
      local s = testwmi.stats()
      assert.same({ 23, 5, 1 }, { s.indicated, s.indicates, s.statuses })
      assert.is_true(call:wait(5000))
      assert.same({ 23, 1, true }, { rec.objects, #rec.statuses, rec.statuses[1].ok })
      call:close()
    end)

    it("inline = 'cancel': nothing before the cancel, everything inside it, one status", function()
      testwmi.configure { inline = "cancel", batch = 5 }
      local rec = recorder()
      local call = assert(svc:query_async(SERVICES, rec.handlers))
      wmi.dispatch(100)
      assert.same({ 0, 0 }, { testwmi.stats().indicated, testwmi.stats().statuses })
      call:cancel()
      local s = testwmi.stats()
      assert.same({ 23, 1, 1 }, { s.indicated, s.statuses, s.cancels_matched })
      assert.is_true(call:wait(5000))
      assert.equal(1, #rec.statuses)
      call:close()
    end)

    it("error_object: a failure carries __ExtendedStatus, a subclass of it, or nothing", function()
      local function failure(kind)
        testwmi.configure { error_object = kind }
        local got
        local call = assert(svc:query_async("garbage", {
          status = function(ok, _, hr, obj) got = { ok, hr, obj and obj:get("__CLASS") or "none" } end,
        }))
        assert.is_true(call:wait(5000))
        call:close()
        return got
      end
      assert.same({ false, 0x80041017, "__ExtendedStatus" }, failure("extended"))
      assert.same({ false, 0x80041017, "Win32_PrivilegesStatus" }, failure("subclass"))
      assert.same({ false, 0x80041017, "none" }, failure("none"))
    end)

    it("progress = false: WBEM_FLAG_SEND_STATUS gives no progress calls", function()
      local function progress_calls()
        local n = 0
        local call = assert(svc:query_async(SERVICES, { progress = function() n = n + 1 end }, { progress = true }))
        assert.is_true(call:wait(5000))
        call:close()
        return n
      end
      assert.is_true(progress_calls() > 0)
      testwmi.configure { progress = false }
      local before = testwmi.stats().progress
      assert.same({ 0, before }, { progress_calls(), testwmi.stats().progress })
    end)

    it("run_to_completion: a cancelled put_async still writes", function()
      local function cancelled_put(handle)
        local obj = assert(assert(svc:get("Win32_Process")):spawn())
        obj.Handle = handle
        local rec = recorder()
        local started = testwmi.stats().started
        local call = assert(svc:put_async(obj, rec.handlers))
        -- The module starts on the thread pool and skips a start cancelled before it
        -- was sent: cancel once the server has the call.
        assert.is_true(th.until_true(function() return testwmi.stats().started > started end, 5000))
        call:cancel()
        assert.is_true(call:wait(5000))
        call:close()
        assert.is_true(testwmi.idle(5000))
        return rec.statuses[1].ok, svc:get(('Win32_Process.Handle="%s"'):format(handle)) ~= nil
      end
      -- The write waits at the gate; the cancel reaches it there.
      testwmi.configure { gate = true }
      assert.same({ false, false }, { cancelled_put("434343") })
      testwmi.configure { run_to_completion = true, gate = true }
      assert.same({ false, true }, { cancelled_put("444444") })
      assert.is_true(svc:delete('Win32_Process.Handle="444444"'))
    end)

    it("next_fail_after, next_hr: Next fails after n objects", function()
      testwmi.configure { next_fail_after = 5, next_hr = 0x80041010 }
      local ok, _, hr = svc:query(SERVICES)
      assert.same({ nil, 0x80041010 }, { ok, hr })
      local n = 0
      local ok2, err = pcall(function() for _ in svc:each(SERVICES) do n = n + 1 end end)
      assert.same({ false, 5 }, { ok2, n })
      assert.matches("0x80041010", tostring(err))
    end)

    it("fails a start with flags its method does not define ([MS-WMI] 3.1.4.3.x)", function()
      local INVALID, SEND_STATUS, SHALLOW, RETURN_IMMEDIATELY = 0x80041008, 0x80, 0x1, 0x10
      assert.equal(0, testwmi.start_flags("query", SEND_STATUS))
      assert.equal(INVALID, testwmi.start_flags("query", RETURN_IMMEDIATELY))
      assert.equal(0, testwmi.start_flags("instances", SHALLOW))
      assert.equal(INVALID, testwmi.start_flags("get", SHALLOW))
      assert.equal(0, testwmi.start_flags("exec", SEND_STATUS))
      assert.equal(INVALID, testwmi.start_flags("exec", 0x20000))
      assert.equal(0, testwmi.start_flags("events", 0))
      assert.equal(INVALID, testwmi.start_flags("delete", SHALLOW))
    end)
  end)

  describe("proxies = true: what a client holds is not agile", function()
    it("is the same proxy in its apartment, a new one with the default blanket elsewhere, wrong there", function()
      local RPC_E_WRONG_THREAD, PKT_PRIVACY, PKT_INTEGRITY, CONNECT = 0x8001010E, 6, 5, 2
      local r = testwmi.proxy_check()
      assert.same({ true, RPC_E_WRONG_THREAD, 0, false, CONNECT, 0x80041008 },
        { r.same_apartment, r.wrong_thread, r.unmarshal, r.same, r.authn_level, r.call })
      local s = testwmi.stats()
      -- The call through the new proxy went out with the default blanket.
      assert.same({ 1, 1, 1 }, { s.wrong_thread, s.unmarshalled, s.default_blanket_calls })
      local levels = {}
      for _, b in ipairs(testwmi.blankets()) do levels[#levels + 1] = b.kind .. " " .. b.authn_level end
      assert.same({ "services " .. PKT_PRIVACY, "unknown " .. PKT_INTEGRITY }, levels)
    end)

    it("in an STA: the blanket set again after unmarshalling, callbacks only when the STA waits", function()
      local out, ok, how, status = th.run_child([[
local testapt = require "testapt"
io.write("init ", testapt.init_sta(), "\n")
local wmi = require "wmi"
local testwmi = require "testwmi"
testwmi.configure { proxies = true, batch = 5 }
local svc
local c = wmi.connect_async({ locator = testwmi.clsid, host = "lat5", user = "DOM\\u", password = "pw" },
  function(s) svc = s end)
io.write("connect ", tostring(c:wait(10000)), "\n")
c:close()
io.write("query ", #assert(svc:query("SELECT Name FROM Win32_Service")), "\n")
-- The module starts another host's calls on the thread pool (an MTA): a sink of
-- this STA is passed on a call to this machine, started on the Lua thread.
local here = assert(wmi.connect { locator = testwmi.clsid })
local call = assert(here:query_async("SELECT Name FROM Win32_Service", function() end))
local t = os.clock()   -- busy, pumping no message, until the server waits on the queue
while testwmi.stats().posted_waiting == 0 and os.clock() - t < 10 do end
t = os.clock()
while os.clock() - t < 0.1 do end
local s = testwmi.stats()
io.write("busy ", call.count, " ", s.posted_waiting, " ", s.posted_calls, "\n")
io.write("wait ", tostring(call:wait(5000)), " ", call.count, "\n")
call:close()
-- Through a stub of the test apartment server: the server calls the stub through the queue too.
local apt = assert(wmi.apartment { mode = "unsecapp", clsid = testapt.clsid, context = "inproc" })
local before = testwmi.stats().posted_calls
call = assert(here:query_async("SELECT Name FROM Win32_Service", apt:stub(function() end)))
io.write("stub ", tostring(call:wait(5000)), " ", call.count, " ", testwmi.stats().posted_calls - before, "\n")
call:close()
apt:close()
here:close()
svc:close()
s = testwmi.stats()
io.write("stats ", s.unmarshalled, " ", s.default_blanket_calls, " ", s.wrong_thread, " ", s.posted_calls, "\n")
os.exit(0, true)
]])
      assert.same({ true, "exit", 0 }, { ok, how, status })
      -- 23 objects in batches of 5: 5 Indicates and the status, each through the queue.
      assert.equal("init 0\nconnect true\nquery 23\nbusy 0 1 0\nwait true 23\nstub true 23 6\nstats 1 0 0 12\n",
        out)
    end)
  end)
end)
