-- Memory held per queued object: LUAWMI_BENCH_QUEUED Indicates of the same few
-- Win32_Service instances reach the module's queue of a call in flight (the test
-- apartment holds the call's status back, see bench/dispatch.lua) and none is
-- dispatched. The COM objects are shared, so what grows is the module's own: a node
-- per object. Private bytes come from GetProcessMemoryInfo (under Wine: the process's
-- anonymous resident memory plus swap). Run in a process of its own, so the heap has
-- no free blocks from earlier benchmarks to hide the growth.
local wmi = require "wmi"
local testapt = require "testapt"
local raw = require "bench_raw"
local common = require "bench.common"

io.stdout:setvbuf("line")
local say, emit, row = common.say, common.emit, common.row
local Q = common.env_int("LUAWMI_BENCH_QUEUED", 100000)
local CLASS = "Win32_Service"

local svc = assert(wmi.connect())
local apt = assert(wmi.apartment { mode = "unsecapp", clsid = testapt.clsid, context = "inproc" })

testapt.probe { class = CLASS, iterations = 1 }      -- the flood's objects, read before measuring
local n = 0
testapt.hold(true)
local stub = assert(apt:stub { indicate = function(obj) local _ = obj.Name; n = n + 1 end })
testapt.hold(false)
local call = assert(svc:query_async("SELECT * FROM Win32_OperatingSystem", stub, { queue_limit = false }))
local t0 = common.now()
while not testapt.held() do
  assert(common.now() - t0 < 10, "the call's status never arrived")
  raw.sleep(1)
end
local queued0 = wmi.stats().queued                   -- the call's own object, not yet dispatched
collectgarbage()
collectgarbage()
local before = raw.memory()
local _, sent = testapt.flood { objects = Q, threads = 1, class = CLASS, release = false }
local peak = raw.memory()
local queued = wmi.stats().queued - queued0
assert(sent == Q and queued == Q, ("%d sent, %d queued, expected %d"):format(sent, queued, Q))

testapt.release()
assert(call:wait(60000))
assert(call:result())
call:close()
collectgarbage()
collectgarbage()
local after = raw.memory()
assert(n == Q + queued0)

local per = (peak.private - before.private) / Q
say("luawmi memory: %d objects queued, undispatched", Q)
say("  private bytes before %.1f MiB, with the queue %.1f MiB (+%.2f MiB), after dispatching %.1f MiB",
    before.private / 2^20, peak.private / 2^20, (peak.private - before.private) / 2^20, after.private / 2^20)
say("  => %.1f bytes per queued object (sizeof(struct node) is 48 on x64, plus the heap's block header)", per)
row("memory", "bytes held per queued object (beyond the COM object)", ("%.1f"):format(per))
row("memory", ("private bytes with %d objects queued (peak) / before"):format(Q),
    ("%.1f MiB / %.1f MiB"):format(peak.private / 2^20, before.private / 2^20))
emit("bytes_per_queued_object", per)
emit("peak_private_bytes", peak.private)
emit("private_bytes_before_queue", before.private)
