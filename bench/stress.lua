-- `make stress` (bench/stress.sh runs this once per kind, each in a fresh process, so
-- that free blocks left in the heap by one kind cannot hide the growth of the next):
--
--   scripts/lua bench/stress.lua KIND   one kind of work, leak-measured by slope (bench/leak.lua):
--                                       prints `stress: KIND bytes/op B (±S) ...`, fails above the bound
--   scripts/lua bench/stress.lua lifecycle   the seeded lifecycle stress (LUAWMI_SEED=N reproduces)
--   scripts/lua bench/stress.lua --list      the kinds, one a line
--
-- LUAWMI_LEAK=BYTES (make stress LEAK=64) calls testapt.leak(BYTES) once per operation:
-- the calibration run, which must fail every judged kind. LUAWMI_STRESS_POINTS=1
-- prints every point of the fit; LUAWMI_STRESS_OPS=N and LUAWMI_STRESS_BLOCKS=N
-- override a kind's block size and count (to study the noise).
local wmi = require "wmi"
local helpers = require "spec.helpers"
local leak = require "bench.leak"

io.stdout:setvbuf("line")

local HKCU = 0x80000001
local REG_KEY = "Software\\luawmi-stress"

-- Each kind: ops per block, measured blocks, warm-up blocks, a bound in bytes/op
-- (false: shown, not judged), settle() after each block, and setup() --> op(i),
-- teardown(): op asserts what WMI really answered, so the kind also
-- proves the work was done.
local kinds = {}
local order = {}
local function kind(name, spec)
  spec.name = name
  kinds[name] = spec
  order[#order + 1] = name
end

-- Bounds in bytes per operation, from the measured noise (README, "Leaks"):
-- private bytes (everything the process holds) and bytes in use in its heaps (what a
-- forgotten free leaves behind, read exactly by walking the heaps: no thread stacks,
-- no commit granularity, so its bound can be tight).
local BOUND, HEAP_BOUND = 16, 8

kind("query", { ops = 2000, blocks = 10, setup = function()
  local svc = assert(wmi.connect())
  return function()
    local list = assert(svc:query("SELECT * FROM Win32_BIOS"))
    assert(#list == 1 and list[1].Manufacturer == "The Wine Project")
  end, function() svc:close() end
end })

-- Win32_IP4RouteTable: a class of several instances that Wine lists quickly
-- (Win32_Service takes ~40 ms a query), so the break leaves the enumerator unfinished.
kind("each+break", { ops = 1000, blocks = 10, setup = function()
  local svc = assert(wmi.connect())
  assert(#assert(svc:query("SELECT * FROM Win32_IP4RouteTable")) >= 2, "break must leave objects unread")
  return function()
    local n = 0
    for route in svc:each("SELECT Destination FROM Win32_IP4RouteTable") do -- luacheck: ignore 512 (break is the point)
      assert(type(route.Destination) == "string")
      n = n + 1
      break
    end
    assert(n == 1)
  end, function() svc:close() end
end })

-- One async call START(SVC, WHAT, handler) that delivers Win32_BIOS's one instance.
local function one_bios(start, svc, what)
  local n = 0
  local call = assert(start(svc, what, function(bios)
    assert(bios.Manufacturer == "The Wine Project")
    n = n + 1
  end))
  assert(call:wait(10000), "a call did not finish")
  assert(call:result())
  assert(n == 1 and call.count == 1)
  call:close()
end

kind("query_async", { ops = 500, blocks = 40, warmup = 4, setup = function()
  local svc = assert(wmi.connect())
  return function()
    one_bios(svc.query_async, svc, "SELECT * FROM Win32_BIOS")
  end, function() svc:close() end
end })

-- Reads of every kind of value Win32_OperatingSystem has (strings, integers, uint64,
-- datetime, boolean, nil, pairs) and writes. Wine's only writable objects are records
-- (method in-parameters, spawned instances), and its record_set_value never frees the
-- string a Put replaces (48 bytes a write, measured on the informational line below):
-- so integers are written into Wine's in-parameters, strings into the test-only
-- valuetest object, which runs the module's own conversion and Put code against an
-- object that frees what it replaces.
kind("object read+write", { ops = 2000, blocks = 10, setup = function()
  local valuetest = require "valuetest"
  local svc = assert(wmi.connect())
  local os_obj = assert(svc:query("SELECT * FROM Win32_OperatingSystem"))[1]
  local inp = assert(assert(svc:get("StdRegProv")):inparams("SetStringValue"))
  local fake = valuetest.fake()
  return function(i)
    assert(os_obj.Caption == "Microsoft Windows 10 Pro" and os_obj.OSLanguage == 1033)
    assert(math.type(os_obj.TotalVisibleMemorySize) == "integer" and os_obj.Primary == true)
    assert(os_obj.CSDVersion == nil and #os_obj.LastBootUpTime == 25)
    local n = 0
    for _ in pairs(os_obj) do n = n + 1 end
    assert(n > 30)
    inp.hDefKey = i
    assert(inp.hDefKey == i)
    local value = "value " .. i
    fake.string, fake.uint64 = value, i
    assert(fake.string == value and fake.uint64 == i)
  end, function()
    os_obj:close()
    inp:close()
    fake:close()
    svc:close()
  end
end })

kind("object string write (Wine's leak)", { ops = 1000, blocks = 10, bound = false, setup = function()
  local svc = assert(wmi.connect())
  local inp = assert(assert(svc:get("StdRegProv")):inparams("SetStringValue"))
  return function(i)
    local value = "value " .. i
    inp.sValue = value
    assert(inp.sValue == value)
  end, function()
    inp:close()
    svc:close()
  end
end })

-- StdRegProv on HKCU: SetStringValue (four in-parameters) and EnumValues (two, with
-- array out-parameters). Not GetStringValue: Wine's reg_get_stringvalue never frees
-- the value's BSTR (~40 bytes a call for a short value, 2 KB for 1,000 characters,
-- whether or not the out-parameters are read); the informational line below shows it.
local function registry()
  local reg = assert(wmi.connect("root\\default"))
  local function exec(method, params)
    params.hDefKey, params.sSubKeyName = HKCU, REG_KEY
    local out = assert(reg:exec("StdRegProv", method, params))
    assert(out.ReturnValue == 0, method)
    return out
  end
  exec("CreateKey", {})
  return exec, function()
    exec("DeleteKey", {})
    reg:close()
  end
end

kind("exec with in-parameters", { ops = 500, blocks = 10, setup = function()
  local exec, teardown = registry()
  return function(i)
    exec("SetStringValue", { sValueName = "name", sValue = "value " .. i })
    local out = exec("EnumValues", {})
    assert(#out.sNames == 1 and out.sNames[1] == "name" and out.Types[1] == 1)
  end, teardown
end })

kind("exec GetStringValue (Wine's leak)", { ops = 500, blocks = 10, bound = false, setup = function()
  local exec, teardown = registry()
  exec("SetStringValue", { sValueName = "name", sValue = "value" })
  return function()
    assert(exec("GetStringValue", { sValueName = "name" }).sValue == "value")
  end, teardown
end })

kind("connect+close", { ops = 1000, blocks = 10, setup = function()
  return function()
    local svc = assert(wmi.connect())
    svc:close()
  end
end })

kind("error: invalid WQL", { ops = 2000, blocks = 10, setup = function()
  local svc = assert(wmi.connect())
  return function()
    helpers.assert_fail(0x80041017, "WBEM_E_INVALID_QUERY", svc:query("SELEC * FRM x"))
  end, function() svc:close() end
end })

kind("error: unknown class", { ops = 2000, blocks = 10, setup = function()
  local svc = assert(wmi.connect())
  return function()
    helpers.assert_fail(0x80041002, "WBEM_E_NOT_FOUND", svc:get("Win32_Nope"))
  end, function() svc:close() end
end })

kind("error: unknown namespace", { ops = 500, blocks = 10, setup = function()
  return function()
    helpers.assert_fail(0x8004100E, "WBEM_E_INVALID_NAMESPACE", wmi.connect("root\\nope"))
  end
end })

-- Against the test WMI server (spec/support/testwmi*.c), which has the asynchronous
-- methods and events Wine lacks. It runs each call on threads of its own, which end a
-- little after the client saw the status: a block is read once the server is idle
-- (and its logs are cleared: they grow with every connection by design).
local BIOS = "SELECT * FROM Win32_BIOS"
local EVENTS = "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'"
local WBEM_E_CALL_CANCELLED = 0x80041032

local function server_settle(config)
  local testwmi = require "testwmi"
  return function()
    assert(testwmi.idle(10000), "the test server still runs a call")
    testwmi.reset()
    if config then testwmi.configure(config) end
  end
end

kind("instances_async (test server)", { ops = 250, blocks = 40, warmup = 4, settle = server_settle(),
  setup = function()
  local testwmi = require "testwmi"
  local svc = assert(wmi.connect { locator = testwmi.clsid })
  return function()
    one_bios(svc.instances_async, svc, "Win32_BIOS")
  end, function() svc:close() end
end })

kind("subscribe+cancel (test server)", { ops = 250, blocks = 40, warmup = 4,
  settle = server_settle { event_interval = 1 }, setup = function()
  local testwmi = require "testwmi"
  testwmi.configure { event_interval = 1 }
  local svc = assert(wmi.connect { locator = testwmi.clsid })
  return function()
    local events = 0
    local call = assert(svc:subscribe(EVENTS, function(ev)
      assert(ev:class() == "__InstanceCreationEvent")
      events = events + 1
    end))
    while events == 0 do wmi.dispatch(1000) end
    call:cancel()
    assert(call:wait(10000), "a cancelled subscription did not finish")
    helpers.assert_fail(WBEM_E_CALL_CANCELLED, "WBEM_E_CALL_CANCELLED", call:result())
    call:close()
  end, function() svc:close() end
end })

kind("connect_async+close", { ops = 250, blocks = 40, warmup = 4, setup = function()
  return function()
    local svc
    local c = wmi.connect_async(nil, function(s) svc = s end)
    assert(c:wait(10000), "a connect did not finish")
    assert(svc and c:result() == svc)
    svc:close()
    c:close()
  end
end })

-- One round: three hosts that answer (the test server serves this machine's data)
-- and one that refuses the credentials, each reported once. A round is four
-- connections and three queries on threads that come and go: private bytes drift
-- by 3 to 37 bytes a round over 4,000 rounds (measured; Wine's heap and stacks,
-- while the bytes in use stay flat, 0.0 to 1.2 a round), hence 64 a round (16 a
-- connection) there; the heap bound is the sharp one for this kind.
kind("fanout round (test server)", { ops = 100, blocks = 40, warmup = 8, bound = 64, settle = server_settle(),
  setup = function()
  local testwmi = require "testwmi"
  local hosts = { "a", "b", "c", "denied" }
  return function()
    local objects, done = 0, 0
    local run = wmi.fanout(hosts, BIOS, {
      locator = testwmi.clsid,
      indicate = function(bios) assert(bios.Manufacturer == "The Wine Project") objects = objects + 1 end,
      done = function() done = done + 1 end,
    })
    assert(run:wait(10000), "a fan-out round did not finish")
    assert(objects == 3 and done == 4)
    local results = run:results()
    assert(results.a.ok and results.b.count == 1 and results.denied.hresult == 0x80070005)
  end
end })

-- Wine's thread pool for these sequential calls stays at a handful of threads; more
-- than this is a thread leak, which the fit's thread term must not hide.
local MAX_THREADS = 16

local function run_kind(spec)
  local testapt = require "testapt"
  local op, teardown = spec.setup()
  local inject = tonumber(os.getenv("LUAWMI_LEAK"))
  if inject then
    local clean = op
    op = function(i)
      clean(i)
      testapt.leak(inject)
    end
  end
  local ops = tonumber(os.getenv("LUAWMI_STRESS_OPS")) or spec.ops
  local blocks = tonumber(os.getenv("LUAWMI_STRESS_BLOCKS")) or spec.blocks
  local r = leak.measure { op = op, ops = ops, blocks = blocks, warmup = spec.warmup, settle = spec.settle,
                           probe = function()
                             local heap = testapt.heap()
                             return heap.threads, heap.busy
                           end }
  if teardown then teardown() end
  assert(wmi.pending() == 0, "calls still pending")
  helpers.assert_all_released()
  local bound = spec.bound == nil and BOUND or spec.bound
  local ok = (not bound or r.slope <= bound and r.heap <= HEAP_BOUND) and r.threads[2] <= MAX_THREADS
  local threads = r.threads[1] == r.threads[2] and r.threads[1]
    or ("%d-%d, %.0f KB each"):format(r.threads[1], r.threads[2], r.per_thread / 1024)
  print(("stress: %s bytes/op %.1f (±%.1f)  [%s; heap %.1f (±%.1f); %d ops in %d blocks after %d warm-up%s; "
    .. "threads %s; %.0f s]%s%s")
    :format(spec.name, r.slope, r.spread, bound and ("bound %d, heap %d"):format(bound, HEAP_BOUND) or "not judged",
            r.heap, r.heap_spread, r.ops, r.blocks, spec.warmup or 1,
            r.dropped > 0 and (", %d set aside"):format(r.dropped) or "", threads, r.seconds,
            inject and (" injected %d B/op"):format(inject) or "", ok and "" or "  FAIL"))
  if os.getenv("LUAWMI_STRESS_POINTS") then
    for _, p in ipairs(r.points) do
      print(("  %d ops: %d bytes, %d threads, heap %d"):format(p[1], p[2], p[3], p[4]))
    end
  end
  return ok
end

local function run_lifecycle()
  local stress = require "spec.support.stress"
  local seed = tonumber(os.getenv("LUAWMI_SEED")) or os.time()
  local started = os.clock()
  local result = stress(seed, 1000)
  helpers.assert_all_released()
  print(("stress: lifecycle seed %d, 1000 iterations: %d started, %d refused by Wine's one-call slot, "
    .. "%d objects, %d statuses, %d cancelled, %d closed, %d handler errors; all released [%.0f s]")
    :format(seed, result.started, result.refused, result.indicated, result.statuses, result.cancelled,
            result.closed, result.handler_errors, os.clock() - started))
  return true
end

local what = arg[1]
if what == "--list" then
  for _, name in ipairs(order) do print(name) end
  print("lifecycle")
  os.exit(0)
end
local ok
if what == "lifecycle" then
  ok = run_lifecycle()
else
  local spec = kinds[what] or error("no stress kind " .. tostring(what) .. " (see --list)")
  ok = run_kind(spec)
end
os.exit(ok and 0 or 1)
