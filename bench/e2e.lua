-- End to end, against Wine's real WMI: the raw C client (bench_raw) and luawmi on the
-- same queries, in one process, timed with the same clock, in rotating order.
--   small:  Win32_Process in the bench prefix as it is (about ten processes)
--   medium: Win32_Process with LUAWMI_BENCH_SLEEPERS extra tiny processes
--   large:  CIM_DataFile over C:\bench\files (bench/run.sh makes the files)
-- Every variant reads one property (Name) of every object, in the handler for the
-- async ones: Wine refills a class's values on its next query of that class.
-- bench/run.sh pins this process and its wineserver to one CPU (see there why).
local wmi = require "wmi"
local raw = require "bench_raw"
local common = require "bench.common"

local now, say, emit, row = common.now, common.say, common.emit, common.row
local RUNS = common.env_int("LUAWMI_BENCH_RUNS", 7)
local SLEEPERS = common.env_int("LUAWMI_BENCH_SLEEPERS", 200)
local FILES = common.env_int("LUAWMI_BENCH_FILES", 3000)
local DIR = os.getenv("LUAWMI_BENCH_DIR") or "C:\\luawmi-bench"
local PROP = "Name"
io.stdout:setvbuf("line")

local svc = assert(wmi.connect())

-- Wine's CIM_DataFile has only Name and Version (no Drive or Path), and LIKE compares
-- the pattern's "\\" pairs with Name's own doubled backslashes ("c:\\bench\\..."):
-- four backslashes in the WQL text per path separator. Its walk covers all of C:
-- (only "Name = '...'" narrows it), which is bounded because the bench prefix has no Z:.
local bs4 = ("\\"):rep(4)
local LARGE_WQL = ("SELECT * FROM CIM_DataFile WHERE Name LIKE 'c:%sbench%sfiles%s%%'"):format(bs4, bs4, bs4)
local PROCESS_WQL = "SELECT * FROM Win32_Process"

-- Each variant returns the number of objects read and the seconds it took. The Lua
-- variants include a full garbage collection: it releases their objects, which the
-- raw C client releases as it goes.
local function lua_async(wql)
  local n = 0
  local t0 = now()
  local call = assert(svc:query_async(wql, { indicate = function(obj) local _ = obj[PROP]; n = n + 1 end }))
  call:wait()
  assert(call:result())
  call:close()
  return n, t0
end

local function lua_query(wql)
  local t0 = now()
  local list = assert(svc:query(wql))
  for i = 1, #list do local _ = list[i][PROP] end
  return #list, t0
end

local function lua_each(wql)
  local n = 0
  local t0 = now()
  for obj in svc:each(wql) do
    local _ = obj[PROP]
    n = n + 1
  end
  return n, t0
end

-- The Lua variants run in a function of their own, so their results are garbage
-- (not left in a live register) when the collection runs.
local function timed_lua(f)
  return function(wql)
    local n, t0 = f(wql)
    collectgarbage()
    return n, now() - t0
  end
end

local VARIANTS = {
  { name = "raw_async", label = "raw C ExecQueryAsync + C sink",
    run = function(wql) return assert(raw.async(wql, PROP)) end },
  { name = "lua_async", label = "luawmi query_async + Lua handler", run = timed_lua(lua_async) },
  { name = "raw_sync", label = "raw C ExecQuery + Next loop",
    run = function(wql) return assert(raw.sync(wql, PROP)) end },
  { name = "lua_query", label = "luawmi query", run = timed_lua(lua_query) },
  { name = "lua_each", label = "luawmi each", run = timed_lua(lua_each) },
}

local function measure(size, wql, expect)
  say("-- %s: %s", size, wql)
  local times, counts = {}, {}
  for _, v in ipairs(VARIANTS) do
    times[v.name], counts[v.name] = {}, {}
    v.run(wql)                           -- warm-up, untimed
  end
  for rep = 1, RUNS do
    for _, v in ipairs(common.rotate(VARIANTS, rep - 1)) do
      local n, s = v.run(wql)
      table.insert(times[v.name], s)
      table.insert(counts[v.name], n)
    end
  end
  local med = {}
  for _, v in ipairs(VARIANTS) do
    local m, lo, hi = common.stats(times[v.name])
    local _, fewest, c = common.stats(counts[v.name])
    if expect then
      assert(fewest == expect and c == expect, ("%s %s: %d objects, expected %d"):format(size, v.name, fewest, expect))
    end
    med[v.name] = m
    say("  %-34s %5d objects  median %9.2f ms  min %9.2f  max %9.2f", v.label, c, m * 1e3, lo * 1e3, hi * 1e3)
    local ratio = v.name:find("^lua_") and m / med[v.name == "lua_async" and "raw_async" or "raw_sync"]
    row(size, c, v.label, m * 1e3, ("%s - %s"):format(common.fmt(lo * 1e3), common.fmt(hi * 1e3)),
        ratio and ("%.3f"):format(ratio) or "1 (reference)")
    emit(("%s_%s_ms"):format(size, v.name), m * 1e3)
  end
  emit("async_ratio_" .. size, med.lua_async / med.raw_async)
  emit("sync_ratio_" .. size, med.lua_query / med.raw_sync)
  emit("each_ratio_" .. size, med.lua_each / med.raw_sync)
end

local function process_count()
  local n = 0
  for _ in svc:each("SELECT ProcessId FROM Win32_Process") do n = n + 1 end
  return n
end

local started = now()
say("luawmi end-to-end benchmarks: %d timed runs per variant, order rotating", RUNS)

measure("small", PROCESS_WQL)

local base = process_count()
local t0 = now()
local ready = raw.spawn(DIR .. "\\sleeper.exe", SLEEPERS)
say("-- medium: %d sleeper processes ready in %.1f s (%d processes before)", ready, now() - t0, base)
local ok, err = pcall(function()
  assert(ready == SLEEPERS, "not every sleeper started")
  local total = process_count()
  assert(total >= base + SLEEPERS, ("Win32_Process lists %d processes, expected %d"):format(total, base + SLEEPERS))
  local mem = raw.memory()
  say("   (this process: %.1f MiB private)", mem.private / 2^20)
  measure("medium", PROCESS_WQL)
end)
local exited = raw.stop()
say("-- medium: %d sleepers stopped", exited)
assert(ok, err)

measure("large", LARGE_WQL, FILES)
say("end-to-end benchmarks took %.1f s", now() - started)
