-- Many machines at once: wmi.connect_async against Wine's real WMI, and
-- wmi.fanout against the test WMI server's simulated hosts (spec/support/testwmi*):
--   lat<N>  N ms added to connect and to every call, serving Wine's data;
--   down    RPC_S_SERVER_UNAVAILABLE (0x800706BA) after a short delay;
--   denied  E_ACCESSDENIED (0x80070005);
--   hang    connect blocks until testwmi.release().
-- Every host is reported once through done; the server's own counts prove the
-- throttle and that everything it handed out came back.
local wmi = require "wmi"
local helpers = require "spec.helpers"
local testwmi = require "testwmi"
local server = require "spec.support.testwmi_helpers"

-- Wine answers a Win32_Service query in ~100 ms (it asks services.exe for each
-- service) and the server serialises its use of Wine's WMI: many-host runs ask
-- for Win32_BIOS (~0.1 ms), the ordering test for the services' 23 names.
local SERVICES = "SELECT Name FROM Win32_Service"
local BIOS = "SELECT Name FROM Win32_BIOS"
local WBEM_E_CALL_CANCELLED = 0x80041032
local WBEM_E_TIMED_OUT = 0x80041069
local RPC_S_SERVER_UNAVAILABLE = 0x800706BA
local E_ACCESSDENIED = 0x80070005

local EXPECTED = {
  lat = { ok = true, hresult = 0 },
  down = { ok = false, hresult = RPC_S_SERVER_UNAVAILABLE, name = "RPC_S_SERVER_UNAVAILABLE" },
  denied = { ok = false, hresult = E_ACCESSDENIED, name = "E_ACCESSDENIED" },
  hang = { ok = false, hresult = WBEM_E_TIMED_OUT, name = "WBEM_E_TIMED_OUT" },
}

-- A simulated host of KIND ("lat<N>", "down", "denied", "hang"), made distinct by I.
local function host(kind, i)
  return ("%s.%d"):format(kind, i)
end

local function kind_of(name)
  return name:match("^(%a+)")
end

-- What the connections and the server hold: nothing, once the abandoned connects of
-- `hang` hosts were released and their pool threads finished (bounded wait).
local function assert_all_released()
  collectgarbage()
  collectgarbage()
  for _ = 1, 500 do
    if wmi.stats().connects == 0 then break end
    wmi.dispatch(20)
  end
  assert.equal(0, wmi.stats().connects)
  assert.equal(0, wmi.stats().timers)
  assert.equal(0, wmi.pending())
  server.assert_server_idle()
  helpers.assert_all_released()
end

-- The sync answer of REQUEST, as the ordered list of names.
local function sync_names(request)
  local svc = assert(wmi.connect { locator = testwmi.clsid })
  local names = {}
  for i, s in ipairs(assert(svc:query(request))) do names[i] = s.Name end
  svc:close()
  assert.is_true(#names >= 1)
  return names
end

-- Runs a fan-out and records every done call and each host's objects, in order.
-- OPTS: wmi.fanout's, and request (default BIOS) and pull (no indicate handler).
local function record(hosts, opts)
  local rec = { done = {}, order = {}, objects = {} }
  local request, pull = opts.request, opts.pull
  opts.request, opts.pull = nil, nil
  opts.locator = testwmi.clsid
  opts.done = function(name, ok, msg, hr, count)
    rec.order[#rec.order + 1] = name
    assert.is_nil(rec.done[name], "host reported twice: " .. name)
    rec.done[name] = { ok = ok, message = msg, hresult = hr, count = count }
  end
  if not pull then
    opts.indicate = function(obj, name)
      local list = rec.objects[name] or {}
      rec.objects[name] = list
      list[#list + 1] = obj.Name
    end
  end
  rec.run = wmi.fanout(hosts, request or BIOS, opts)
  return rec
end

describe("wmi.connect_async against Wine's WMI", function()
  after_each(function()
    assert_all_released()
  end)

  it("delivers a Services whose queries equal wmi.connect's", function()
    local got
    local c = wmi.connect_async(nil, function(svc, msg, hr, call) got = { svc, msg, hr, call } end)
    assert.equal(1, wmi.pending())
    assert.equal(1, wmi.stats().connects)
    assert.is_true(c:wait(10000))
    assert.is_true(c.done)
    local svc = got[1]
    assert.equal("wmi.Services (root\\cimv2)", tostring(svc))
    assert.same({ svc, nil, 0, c }, { got[1], got[2], got[3], got[4] })
    assert.equal(svc, c:result())
    local sync = assert(wmi.connect())
    assert.same(helpers.keys(assert(sync:query(SERVICES)), "Name"), helpers.keys(assert(svc:query(SERVICES)), "Name"))
    local bios = assert(svc:query("SELECT * FROM Win32_BIOS"))[1]
    assert.equal(assert(sync:query("SELECT * FROM Win32_BIOS"))[1].SerialNumber, bios.SerialNumber)
    sync:close()
    svc:close()
    c:close()
  end)

  it("reports a failed connect through the handler, as wmi.connect returns it", function()
    local got
    local c = wmi.connect_async("root\\nope", function(...) got = { n = select("#", ...), ... } end)
    assert.is_true(wmi.run(10000))
    local _, msg, hr = wmi.connect("root\\nope")
    assert.same({ n = 4, nil, msg, hr, c }, got)
    helpers.assert_fail(0x8004100E, "WBEM_E_INVALID_NAMESPACE", c:result())
    c:close()
  end)

  it("wmi.run waits for a connect in flight, even when it was dropped", function()
    local svc
    wmi.connect_async({ namespace = "root\\cimv2" }, function(s) svc = s end)
    collectgarbage()
    collectgarbage()
    assert.is_true(wmi.run(10000))
    assert.equal(1, #assert(svc:query("SELECT * FROM Win32_OperatingSystem")))
    svc:close()
  end)

  it("cancel: the handler gets WBEM_E_CALL_CANCELLED, the connection is released unseen", function()
    local calls = {}
    local c = wmi.connect_async(nil, function(...) calls[#calls + 1] = { ... } end)
    c:cancel()
    c:cancel()                                -- idempotent
    assert.is_true(c:wait(10000))
    assert.equal(1, #calls)
    helpers.assert_fail(WBEM_E_CALL_CANCELLED, "WBEM_E_CALL_CANCELLED", table.unpack(calls[1], 1, 3))
    assert.equal(c, calls[1][4])
    helpers.assert_fail(WBEM_E_CALL_CANCELLED, "WBEM_E_CALL_CANCELLED", c:result())
    for _ = 1, 50 do wmi.dispatch(20) end     -- the pool thread's result, dropped
    assert.equal(1, #calls)
    assert.equal(0, wmi.stats().services)
    c:cancel()                                -- after the status: no-op
    c:close()
  end)

  it("close before completion: nothing reaches Lua", function()
    local calls = 0
    local c = wmi.connect_async(nil, function() calls = calls + 1 end)
    c:close()
    c:close()
    assert.equal(0, wmi.pending())
    for _ = 1, 50 do wmi.dispatch(20) end
    assert.equal(0, calls)
    assert.equal("wmi.Connect (closed)", tostring(c))
  end)

  it("a handler's error propagates out of the wait, with a traceback", function()
    local c = wmi.connect_async(nil, function(svc) svc:close() error("handler failed") end)
    local ok, err = pcall(c.wait, c, 10000)
    assert.is_false(ok)
    assert.matches("handler failed", err)
    assert.matches("stack traceback:", err)
    assert.is_true(c.done)
    c:close()
  end)

  it("raises on misuse, naming the argument", function()
    assert.error_matches(function() wmi.connect_async(nil) end, "bad argument #2 to 'connect_async'")
    assert.error_matches(function() wmi.connect_async({ authentication = "loud" }, print) end,
      "bad option 'authentication' to 'connect_async' %(invalid value 'loud'%)")
    assert.error_matches(function() wmi.connect_async({ host = 1 }, print) end,
      "bad option 'host' to 'connect_async' %(string expected, got number%)")
    assert.error_matches(function() wmi.connect_async(true, print) end, "bad argument #1 to 'connect_async'")
    local c = wmi.connect_async(nil, function(svc) svc:close() end)
    c:close()
    assert.error_matches(function() c:wait() end, "attempt to use a closed wmi.Connect")
    assert.error_matches(function() return c.done end, "attempt to use a closed wmi.Connect")
    assert.error_matches(function() c.wait(42) end, "bad argument #1 to 'wait' %(wmi.Connect expected, got number%)")
    local d = wmi.connect_async(nil, function(svc) svc:close() end)
    assert.error_matches(function() d:result() end, "has not finished")
    d:close()
  end)
end)

-- A child process whose Lua thread is an STA (as spec/06 does it): the services is
-- made on an MTA pool thread and marshalled into the STA. The test server's
-- objects aggregate the free-threaded marshaler; Wine's wbemprox objects have no
-- proxy/stub and no IMarshal, so Wine cannot marshal them (E_NOINTERFACE).
local function interpreter()
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  return assert(arg and arg[i], "cannot find the running lua.exe in arg")
end

local function run_child(code)
  local dir = assert(os.getenv("TEMP") or os.getenv("TMP"), "no TEMP folder")
  local path = ("%s\\luawmi-fanout-%d.lua"):format(dir, math.random(1, 1e9))
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local pipe = assert(io.popen(('""%s" "%s" 2>&1"'):format(interpreter(), path)))
  local out = pipe:read("a"):gsub("\r", "")
  local ok, how, status = pipe:close()
  os.remove(path)
  return out, ok, how, status
end

describe("a host whose Lua thread is an STA", function()
  it("connect_async and the 200-host fan-out deliver through the STA", function()
    local out, ok, how, status = run_child([[
local testapt = require "testapt"
io.write("init ", testapt.init_sta(), "\n")
local wmi = require "wmi"
local testwmi = require "testwmi"
local server = require "spec.support.testwmi_helpers"
io.write("threading ", wmi.threading(), "\n")
-- Wine's own services cannot be marshalled into an STA.
local c = wmi.connect_async(nil, function() end)
c:wait(10000)
io.write("wine ", select(3, c:result()), "\n")
c:close()
-- The test server's can: a query through the marshalled services.
local got
c = wmi.connect_async({ locator = testwmi.clsid, host = "lat5.1" }, function(svc) got = svc end)
io.write("testwmi ", tostring(c:wait(10000)), " ", #assert(got:query("SELECT Name FROM Win32_Service")), "\n")
got:close()
c:close()
local kinds = {}
local hosts = {}
for i = 1, 200 do hosts[#hosts + 1] = ({ "lat10", "down", "denied", "hang" })[i % 4 + 1] .. "." .. i end
local run = wmi.fanout(hosts, "SELECT Name FROM Win32_BIOS", { locator = testwmi.clsid, throttle = 50,
  timeout = 3000, done = function(host, ok, msg, hr, count)
    local k = host:match("^(%a+)") .. " " .. tostring(ok) .. " " .. hr .. " " .. count
    kinds[k] = (kinds[k] or 0) + 1
  end })
io.write("wait ", tostring(run:wait(60000)), "\n")
local lines = {}
for k, n in pairs(kinds) do lines[#lines + 1] = k .. " x" .. n end
table.sort(lines)
io.write(table.concat(lines, "\n"), "\n")
testwmi.release()
for _ = 1, 500 do if wmi.stats().connects == 0 then break end wmi.dispatch(20) end
collectgarbage() collectgarbage()
local s, t = wmi.stats(), testwmi.stats()
io.write("held ", s.connects, s.services, s.calls, s.stubs, s.queued, s.identities, t.calls, t.sinks, t.services,
  "\n")
os.exit(0, true)
]])
    assert.same({ true, "exit", 0 }, { ok, how, status })
    local n = assert(out:match("testwmi true (%d+)"), out)
    assert.equal(("init 0\nthreading sta\nwine 2147500034\ntestwmi true %s\nwait true\n"
      .. "denied false 2147942405 0 x50\ndown false 2147944122 0 x50\nhang false 2147749993 0 x50\n"
      .. "lat true 0 1 x50\nheld 000000000\n"):format(n), out)
  end)
end)

describe("a process ending with connects and timers in flight", function()
  it("exits cleanly: late results land in a dead queue", function()
    local out, ok, how, status = run_child([[
local wmi = require "wmi"
local testwmi = require "testwmi"
wmi.connect_async({ locator = testwmi.clsid, host = "hang" }, function() end)  -- blocked in the pool
wmi.connect_async(nil, function() end)                                         -- finishes after lua_close
local run = wmi.fanout({ "lat300.1", "lat300.2" }, "SELECT Name FROM Win32_BIOS", { locator = testwmi.clsid })
io.write("pending ", wmi.pending(), " ", tostring(run.done), "\n")
os.exit(0, true)
]])
    assert.same({ true, "exit", 0 }, { ok, how, status })
    assert.equal("pending 6 false\n", out)     -- 4 connects, 2 timers
  end)
end)

describe("wmi.fanout against simulated hosts", function()
  before_each(function()
    testwmi.reset()
  end)
  after_each(function()
    testwmi.release()
    assert_all_released()
    testwmi.reset()
  end)

  it("200 hosts mixed: each reported once with its exact HRESULT, hang at its timeout", function()
    local names = sync_names(BIOS)
    local hosts, expected = {}, {}
    local kinds = { "lat0", "lat5", "lat20", "down", "lat10", "denied", "lat1", "hang" }
    for i = 1, 200 do
      local name = host(kinds[i % #kinds + 1], i)
      hosts[#hosts + 1] = name
      expected[name] = EXPECTED[kind_of(name):match("^lat") and "lat" or kind_of(name)]
    end
    hosts[#hosts + 1] = hosts[3]              -- duplicates are one host
    hosts[#hosts + 1] = hosts[8]:upper()
    local rec = record(hosts, { throttle = 50, timeout = 3000 })
    assert.is_false(rec.run.done)
    assert.is_true(rec.run:wait(120000))
    assert.is_true(rec.run.done)
    assert.equal(200, #rec.order)
    local results = rec.run:results()
    for name, want in pairs(expected) do
      local got = rec.done[name]
      assert.is_truthy(got, name)
      assert.equal(want.ok, got.ok, name .. ": " .. tostring(got.message))
      assert.equal(want.hresult, got.hresult, name)
      if want.ok then
        assert.is_nil(got.message)
        assert.equal(#names, got.count)
        assert.same(names, rec.objects[name])
      else
        assert.equal(0, got.count)
        local prefix = ("%s (0x%08X): "):format(want.name, want.hresult)
        assert.equal(prefix, got.message:sub(1, #prefix))
      end
      assert.same(got, results[name])
    end
    assert.matches("no result within 3000 ms", rec.done[host("hang", 7)].message)
  end)

  it("never has more than `throttle` hosts in flight at the server, and fills it", function()
    -- The first 16 hang until released: the throttle must fill (the server sees 16
    -- connects blocked at once, and no 17th starts); then 184 more pass through it.
    local hosts = {}
    for i = 1, 200 do hosts[i] = host(i <= 16 and "hang" or "lat20", i) end
    local rec = record(hosts, { throttle = 16, timeout = 60000 })
    for _ = 1, 1500 do
      if testwmi.stats().in_flight == 16 then break end
      wmi.dispatch(20)
    end
    assert.same({ 16, 16 }, { testwmi.stats().in_flight, testwmi.stats().connects })
    assert.equal(0, #rec.order)
    testwmi.release()
    assert.is_true(rec.run:wait(120000))
    assert.equal(200, #rec.order)
    for i = 1, 200 do
      assert.equal(i <= 16 and RPC_S_SERVER_UNAVAILABLE or 0, rec.done[hosts[i]].hresult, hosts[i])
    end
    assert.equal(16, testwmi.stats().max_in_flight)
  end)

  it("delivers each host's objects complete and in arrival order, in the pull form too", function()
    local names = sync_names(SERVICES)
    assert.is_true(#names >= 10)
    testwmi.configure { batch = 3 }
    local hosts = {}
    for i = 1, 30 do hosts[i] = host("lat" .. (i % 7), i) end
    local rec = record(hosts, { throttle = 10, timeout = 60000, pull = true, request = SERVICES })
    local per_host, n = {}, 0
    for name, obj in rec.run:each() do
      n = n + 1
      local list = per_host[name] or {}
      per_host[name] = list
      list[#list + 1] = obj.Name
    end
    assert.is_true(rec.run.done)
    assert.equal(30 * #names, n)
    for _, name in ipairs(hosts) do
      assert.same(names, per_host[name], name)
      assert.same({ ok = true, hresult = 0, count = #names }, rec.done[name])
    end
  end)

  it("cancel in the middle: every host reported once, everything released", function()
    local hosts = {}
    for i = 1, 200 do hosts[i] = host(i % 10 == 0 and "hang" or "lat30", i) end
    local rec = record(hosts, { throttle = 20, timeout = 60000, pull = true })
    local n, came = 0, {}
    for name in rec.run:each() do
      n = n + 1
      came[name] = true
      if n == 40 then break end              -- leaving the loop cancels the run
    end
    assert.is_true(rec.run.done)
    assert.equal(200, #rec.order)
    -- One dispatch may bring several hosts' objects and statuses: those not yet
    -- pulled when the loop ended wait in the run, and a second loop gets them.
    local yielded = n
    for name in rec.run:each() do
      yielded = yielded + 1
      came[name] = true
    end
    local cancelled, ok = 0, 0
    for _, name in ipairs(hosts) do
      local got = rec.done[name]
      if got.ok then
        ok = ok + 1
        assert.is_true(came[name], name .. " ended well, its object never came")
      else
        cancelled = cancelled + 1
        assert.equal(WBEM_E_CALL_CANCELLED, got.hresult, name)
      end
    end
    assert.equal(200, ok + cancelled)
    -- Each host gives one object before its status: only hosts whose object came
    -- ended well, all the others were cancelled; without the cancel 180 would have.
    assert.is_true(yielded <= 100, ("%d ok, %d cancelled, %d objects"):format(ok, cancelled, yielded))
    rec.run:cancel()                          -- again: nothing more
    assert.equal(200, #rec.order)
    -- Only the calls in flight (at most the throttle) were cancelled, each once. One
    -- the server had just finished may miss its table (its status not yet here).
    local st = testwmi.stats()
    assert.is_true(st.cancels_matched + st.cancels_unmatched <= 20,
      ("cancels: %d matched, %d unmatched"):format(st.cancels_matched, st.cancels_unmatched))
  end)

  it("connects on a pool thread with the credentials and blanket of wmi.connect", function()
    local svc
    local c = wmi.connect_async({ locator = testwmi.clsid, host = "lat5.1", user = "DOM\\u", password = "secret",
      authority = "ntlmdomain:DOM", authentication = "integrity" }, function(s) svc = s end)
    assert.is_true(c:wait(10000))
    c:close()
    local log = testwmi.connects()
    assert.same({ "lat5.1", "DOM\\u", "ntlmdomain:DOM", true, 0 },
      { log[1].host, log[1].user, log[1].authority, log[1].password, log[1].hresult })
    local b
    for _, x in ipairs(testwmi.blankets()) do if x.kind == "services" then b = x end end
    assert.same({ 5, 3, true, "u", "DOM", true },      -- RPC_C_AUTHN_LEVEL_PKT_INTEGRITY, IMPERSONATE
      { b.authn_level, b.imp_level, b.identity, b.user, b.domain, b.password })
    assert.equal(1, #assert(svc:query(BIOS)))          -- the identity the proxy holds is intact
    local st = testwmi.stats()
    assert.is_true(st.identity_checks >= 1)
    assert.equal(0, st.identity_lost)
    svc:close()
    -- A fan-out hands the same options to every host.
    local run = wmi.fanout({ "lat1.1", "lat1.2", "lat1.3" }, BIOS, { locator = testwmi.clsid, user = "v",
      password = "p" })
    assert.is_true(run:wait(30000))
    log = testwmi.connects()
    assert.same({ "v", "v", "v" }, { log[2].user, log[3].user, log[4].user })
  end)

  it("runs under wmi.run() alone, dropped: the timeout of a hang host fires there", function()
    local order = {}
    wmi.fanout({ "lat5.1", "hang.2", "down.3" }, BIOS, { locator = testwmi.clsid, timeout = 500,
      done = function(name, _, _, hr) order[#order + 1] = ("%s %08X"):format(name, hr) end })
    collectgarbage()
    collectgarbage()
    assert.is_true(wmi.run(60000))
    table.sort(order)
    assert.same({ "down.3 800706BA", "hang.2 80041069", "lat5.1 00000000" }, order)
  end)

  it("run:cancel() from a done handler stops the rest", function()
    local hosts = {}
    for i = 1, 50 do hosts[i] = host("lat10", i) end
    local run
    local order = {}
    run = wmi.fanout(hosts, BIOS, { locator = testwmi.clsid, throttle = 5, done = function(name, ok, _, hr)
      order[#order + 1] = { name, ok, hr }
      if #order == 3 then run:cancel() end
    end })
    assert.is_true(run:wait(60000))
    assert.equal(50, #order)
    local cancelled = 0
    for _, o in ipairs(order) do
      if o[3] == WBEM_E_CALL_CANCELLED then cancelled = cancelled + 1 end
    end
    assert.equal(47, cancelled)
  end)

  it("the timeout covers the request: a slow call is cancelled at the server", function()
    -- lat200.1's query of the 23 services takes 22 pauses of 300 ms: far beyond the
    -- timeout, its connect (200 ms) far within it. lat0.2 asks for the BIOS (one
    -- object, no pause). The request function hears each host's name.
    testwmi.configure { batch = 1, batch_delay = 300 }
    local asked = {}
    local rec = record({ "lat200.1", "lat0.2" }, { throttle = 2, timeout = 3000,
      request = function(svc, handlers, name)
        asked[#asked + 1] = name
        return svc:query_async(name == "lat200.1" and SERVICES or BIOS, handlers)
      end })
    assert.is_true(rec.run:wait(60000))
    table.sort(asked)
    assert.same({ "lat0.2", "lat200.1" }, asked)
    local slow = rec.done["lat200.1"]
    assert.same({ false, WBEM_E_TIMED_OUT }, { slow.ok, slow.hresult })
    assert.is_true(slow.count < #sync_names(SERVICES), tostring(slow.count))
    assert.same({ ok = true, hresult = 0, count = 1 }, rec.done["lat0.2"])
    -- The cancel is a round trip of its own, on the thread pool: it lands soon after.
    assert.is_true(server.until_true(function() return testwmi.stats().cancels_matched == 1 end, 5000))
    local st = testwmi.stats()
    assert.equal(0, st.cancels_unmatched)
  end)

  it("a request function that raises: its host ends with WBEM_E_FAILED, the error reaches the wait", function()
    local rec = record({ "lat1.1", "lat1.2" }, { throttle = 1,
      request = function(svc, handlers, name)
        if name == "lat1.1" then error("no request for " .. name) end
        return svc:query_async(BIOS, handlers)
      end })
    local ok, err = pcall(rec.run.wait, rec.run, 60000)
    assert.is_false(ok)
    assert.matches("no request for lat1.1", err)
    assert.is_true(rec.run:wait(60000))           -- the run went on: lat1.2 started after lat1.1
    local failed = rec.done["lat1.1"]
    assert.same({ false, 0x80041001, 0 }, { failed.ok, failed.hresult, failed.count })
    assert.matches("^WBEM_E_FAILED %(0x80041001%): .*no request for lat1.1", failed.message)
    assert.same({ ok = true, hresult = 0, count = 1 }, rec.done["lat1.2"])
    assert.same({ "lat1.1", "lat1.2" }, rec.order)
  end)

  it("refuses a host name that is not UTF-8 before anything starts, wherever it is", function()
    local reported = 0
    assert.error_matches(function()
      wmi.fanout({ "lat5.1", "lat5.\xff" }, BIOS, { locator = testwmi.clsid, throttle = 1,
        done = function() reported = reported + 1 end })
    end, "bad argument #1 to 'fanout' %(host #2: invalid UTF%-8%)")
    assert.same({ 0, 0, 0 }, { wmi.pending(), #testwmi.connects(), reported })
  end)

  it("a start that raises mid-run (its apartment closed) ends that host; every done runs, the run ends", function()
    local apt = assert(wmi.apartment())
    local order = {}
    local run = wmi.fanout({ "lat5.1", "lat5.2", "lat5.3" }, BIOS, { locator = testwmi.clsid, throttle = 1,
      apartment = apt, done = function(name, ok, msg, hr)
        order[#order + 1] = { name, ok, hr, msg }
        if name == "lat5.1" then apt:close() end
      end })
    local ok, err = pcall(run.wait, run, 60000)
    assert.is_false(ok)
    assert.matches("attempt to use a closed wmi.Apartment", err)
    assert.is_true(run:wait(60000))
    assert.equal(3, #order)
    assert.same({ "lat5.1", true, 0 }, { order[1][1], order[1][2], order[1][3] })
    for i = 2, 3 do
      assert.same({ "lat5." .. i, false, 0x80041001 }, { order[i][1], order[i][2], order[i][3] })
      assert.matches("^WBEM_E_FAILED %(0x80041001%): .*attempt to use a closed wmi.Apartment", order[i][4])
    end
    assert.equal(1, #testwmi.connects())
  end)

  it("takes any async request as a function of the services and handlers", function()
    local rec = record({ "lat1.1", "denied.2" }, {
      request = function(svc, handlers) return svc:instances_async("Win32_Service", handlers) end,
    })
    assert.is_true(rec.run:wait(60000))
    assert.equal(#sync_names(SERVICES), rec.done["lat1.1"].count)
    assert.equal(E_ACCESSDENIED, rec.done["denied.2"].hresult)
  end)

  it("raises on misuse", function()
    assert.error_matches(function() wmi.fanout("x", SERVICES) end, "bad argument #1 to 'fanout'")
    assert.error_matches(function() wmi.fanout({ "a", {} }, SERVICES) end, "host #2")
    assert.error_matches(function() wmi.fanout({ "a" }, true) end, "bad argument #2 to 'fanout'")
    assert.error_matches(function() wmi.fanout({ "a" }, SERVICES, { throttle = 0 }) end, "bad option 'throttle'")
    assert.error_matches(function() wmi.fanout({ "a" }, SERVICES, { timeout = -1 }) end, "bad option 'timeout'")
    assert.error_matches(function() wmi.fanout({ "a" }, SERVICES, { authentication = "x" }) end,
      "bad option 'authentication' to 'connect_async'")
    local run = wmi.fanout({}, SERVICES)
    assert.is_true(run.done)
    assert.is_true(run:wait())
    assert.same({}, run:results())
    local with = wmi.fanout({}, SERVICES, { indicate = print })
    assert.error_matches(function() with:each() end, "the run has an indicate handler")
  end)
end)
