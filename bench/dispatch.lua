-- Dispatch throughput: the binding's own cost, which Wine's slow WMI hides.
--
-- A call runs through the test apartment (spec/support/testapt.c), whose stub holds
-- back the call's final status (testapt.hold), so the call stays in flight. Then
-- testapt.flood calls that stub's Indicate, as WMI calls a stub, from two threads,
-- one object per call, with a few real Win32_Service instances (AddRef'd around each
-- call, as a provider holds them), and releases the status after the last object:
-- it reaches the module's queue behind every object (nodes are delivered in arrival
-- order), so call:wait() returns once all have reached the Lua handler, which reads
-- one property (Name). The reference is the same driver into a bare C sink (a lock,
-- a list, an event) whose C consumer reads the same property with Get.
local wmi = require "wmi"
local testapt = require "testapt"
local raw = require "bench_raw"
local common = require "bench.common"

io.stdout:setvbuf("line")
local now, say, emit, row = common.now, common.say, common.emit, common.row
local N = common.env_int("LUAWMI_BENCH_OBJECTS", 200000)
local RUNS = common.env_int("LUAWMI_BENCH_DISPATCH_RUNS", 7)
local THREADS = 2
local CLASS = "Win32_Service"
-- The call the flood rides on: another class, so the flood's objects keep their
-- values (Wine refills a class's values on its next query of that class).
local CARRIER = "SELECT * FROM Win32_OperatingSystem"

local svc = assert(wmi.connect())
local apt = assert(wmi.apartment { mode = "unsecapp", clsid = testapt.clsid, context = "inproc" })

-- Starts the carrier call with HANDLER and waits until the apartment holds its
-- final status (Wine's worker sends its one object and the status at once).
local function carrier(handler)
  testapt.reset()
  testapt.hold(true)
  local stub = assert(apt:stub { indicate = handler })
  testapt.hold(false)
  -- No queue limit: the phases below queue every object before dispatching any.
  local call = assert(svc:query_async(CARRIER, stub, { queue_limit = false }))
  local t0 = now()
  while not testapt.held() do
    assert(now() - t0 < 10, "the carrier call's status never arrived")
    raw.sleep(1)
  end
  return call
end

local function finish(call, delivered, expected, what)
  assert(call:result())
  call:close()
  assert(delivered == expected, ("%s: %d objects delivered, expected %d"):format(what, delivered, expected))
end

-- Lua, end to end: the producers run while this thread dispatches.
local function lua_concurrent()
  local n = 0
  local call = carrier(function(obj) local _ = obj.Name; n = n + 1 end)
  collectgarbage()
  local t0 = now()
  assert(testapt.flood { objects = N, threads = THREADS, class = CLASS, background = true })
  assert(call:wait(120000), "the flood was not delivered in 2 minutes")
  local elapsed = now() - t0
  local produced, sent = testapt.flood_wait()
  assert(sent == N)
  finish(call, n, N + 1, "concurrent")
  return elapsed, produced
end

-- The same in two phases: queue everything (this thread waits), then dispatch.
local function lua_phases(handler_reads)
  local n = 0
  local handler = handler_reads and function(obj) local _ = obj.Name; n = n + 1 end or function() n = n + 1 end
  local call = carrier(handler)
  collectgarbage()
  local produced, sent = testapt.flood { objects = N, threads = THREADS, class = CLASS }
  assert(sent == N)
  local queued = wmi.stats().queued
  local t0 = now()
  assert(call:wait(120000))
  local consumed = now() - t0
  finish(call, n, N + 1, "phases")
  return produced, consumed, queued
end

local function per_s(seconds) return N / seconds end
local function ns(seconds) return seconds * 1e9 / N end

local started = now()
say("luawmi dispatch benchmark: %d objects per run from %d threads, %d runs, order alternating", N, THREADS, RUNS)
testapt.flood { sink = "bare", objects = 1000, threads = THREADS, class = CLASS }    -- fills the object pool
lua_concurrent()                                                                     -- warm-up

local lua_t, lua_p, c_t, c_p = {}, {}, {}, {}
for rep = 1, RUNS do
  local function run_lua()
    local e, p = lua_concurrent()
    lua_t[#lua_t + 1], lua_p[#lua_p + 1] = e, p
  end
  local function run_c()
    local e, p, got = testapt.flood { sink = "bare", objects = N, threads = THREADS, class = CLASS, property = "Name" }
    assert(got == N)
    c_t[#c_t + 1], c_p[#c_p + 1] = e, p
  end
  if rep % 2 == 1 then run_lua(); run_c() else run_c(); run_lua() end
  collectgarbage()
end
local lua_m, lua_lo, lua_hi = common.stats(lua_t)
local c_m, c_lo, c_hi = common.stats(c_t)
local ratio = lua_m / c_m

-- Where the time goes.
local EACH = math.min(N, 50000)    -- slow: a smaller sample
local bare_each = {}
for i = 1, 3 do
  local e = testapt.flood { sink = "bare", signal = "each", objects = EACH, threads = THREADS, class = CLASS }
  bare_each[i] = e * N / EACH
end
local prod, cons, queued, cons_noread = {}, {}, nil, {}
for i = 1, 3 do
  prod[i], cons[i], queued = lua_phases(true)
  collectgarbage()
  local _, c2 = lua_phases(false)
  cons_noread[i] = c2
  collectgarbage()
end
local prod_m = common.stats(prod)
local cons_m = common.stats(cons)
local cons_noread_m = common.stats(cons_noread)
local bare_each_m = common.stats(bare_each)

-- One property read from Lua (__index, Get, UTF-8) and from C (Get, VariantClear).
local obj
do
  local call = carrier(function(o) obj = o end)   -- the last: a flood object
  testapt.flood { objects = 1, threads = 1, class = CLASS }
  assert(call:wait(10000))
  call:close()
end
local READS = 1000000
local function lua_reads(f)
  local t0 = now()
  for _ = 1, READS do f() end
  return (now() - t0) * 1e9 / READS
end
local lua_read_ns = lua_reads(function() return obj.Name end)
local lua_get_ns = lua_reads(function() return obj:get("Name") end)
local lua_int_ns = lua_reads(function() return obj.ProcessId end)
local lua_call_ns = lua_reads(function() return obj end)      -- the loop and call alone
local c_read_ns = testapt.probe { class = CLASS, property = "Name", iterations = READS }
local c_int_ns = testapt.probe { class = CLASS, property = "ProcessId", iterations = READS }

local micro = {}
for _, what in ipairs { "setevent", "critsec", "calloc", "interlocked", "sysalloc" } do
  micro[what] = raw.micro(what, what == "setevent" and 200000 or 2000000)
end

say("  luawmi, Lua handler reading Name: median %.3f s (%.3f - %.3f) = %.0f objects/s, %.0f ns/object",
    lua_m, lua_lo, lua_hi, per_s(lua_m), ns(lua_m))
say("     its producers finished after %.3f s (median): %.0f ns/object", common.stats(lua_p), ns(common.stats(lua_p)))
say("  bare C sink, C consumer (Get Name): median %.3f s (%.3f - %.3f) = %.0f objects/s, %.0f ns/object",
    c_m, c_lo, c_hi, per_s(c_m), ns(c_m))
say("     its producers finished after %.3f s (median)", common.stats(c_p))
say("  luawmi / bare C: %.2f x the time", ratio)
say("-- where the time goes (medians of 3, ns per object)")
say("  bare C sink with one SetEvent per object:                 %6.0f ns/object end to end", ns(bare_each_m))
say("  producers into luawmi's sink, alone (Lua thread waiting): %6.0f ns/object (2 threads, wall clock)", ns(prod_m))
say("  Lua thread dispatching %d queued objects, handler reads Name: %6.0f ns/object", queued, ns(cons_m))
say("  the same, handler only counts:                            %6.0f ns/object", ns(cons_noread_m))
say("  obj.Name from Lua on one object:                          %6.0f ns (obj:get(\"Name\"): %.0f)",
    lua_read_ns - lua_call_ns, lua_get_ns - lua_call_ns)
say("  IWbemClassObject::Get + VariantClear of Name from C:      %6.0f ns", c_read_ns)
say("  obj.ProcessId (uint32) from Lua / Get from C:             %6.0f ns / %.0f ns",
    lua_int_ns - lua_call_ns, c_int_ns)
say("  SetEvent %.0f ns, critical section %.0f ns, calloc+free %.0f ns, interlocked %.0f ns, "
    .. "SysAllocString+Free %.0f ns", micro.setevent, micro.critsec, micro.calloc, micro.interlocked, micro.sysalloc)

row("dispatch", ("luawmi: objects/s into a Lua handler reading Name (%d objects, 2 producer threads)"):format(N),
    ("%.0f (median; %.0f - %.0f)"):format(per_s(lua_m), per_s(lua_hi), per_s(lua_lo)))
row("dispatch", "luawmi: ns per object", ("%.0f"):format(ns(lua_m)))
row("dispatch", "bare C sink + C consumer: objects/s",
    ("%.0f (median; %.0f - %.0f)"):format(per_s(c_m), per_s(c_hi), per_s(c_lo)))
row("dispatch", "luawmi time / bare C time", ("%.2f"):format(ratio))
row("dispatch", "phases: producers into luawmi's sink alone / Lua dispatch alone (ns per object)",
    ("%.0f / %.0f"):format(ns(prod_m), ns(cons_m)))

emit("dispatch_objects_per_s", per_s(lua_m))
emit("dispatch_ns_per_object", ns(lua_m))
emit("dispatch_c_objects_per_s", per_s(c_m))
emit("dispatch_vs_c", ratio)
emit("dispatch_c_signal_each_objects_per_s", per_s(bare_each_m))
emit("dispatch_produce_ns_per_object", ns(prod_m))
emit("dispatch_consume_ns_per_object", ns(cons_m))
emit("dispatch_consume_noread_ns_per_object", ns(cons_noread_m))
emit("lua_property_read_ns", lua_read_ns - lua_call_ns)
emit("c_property_read_ns", c_read_ns)
emit("setevent_ns", micro.setevent)
say("dispatch benchmark took %.1f s", now() - started)
