-- Fan-out against the test WMI server's simulated hosts (spec/support/testwmi*): a
-- lat<N> host costs N ms per DCOM round trip, and a host costs 6 of them (connect 3,
-- the start 1, the result 1, the Services' release 1).
--   fanout_vs_ideal       N hosts (1,000) of 50 ms, throttle T (100): wall time over
--                         the ideal ceil(N/T) x 6 x 50 ms (goal <= 1.25);
--   fanout_wedged         100 hosts of 20 ms with one `wedge` among them (it never
--                         answers): time until the 100 are done over the same run
--                         without it (goal <= 1.10);
--   fanout_10k_bytes_per_host  10,000 hosts of 5 ms, throttle 500: growth of private
--                         bytes once the run is done, every host's result and object
--                         kept, per host (goal <= 32 KiB); fanout_10k_threads: the
--                         peak thread count of the process during that run;
--   fanout_vs_sequential  50 such hosts: fan-out time over a plain loop of
--                         wmi.connect + svc:query (expected near 1/throttle);
--   fanout_bytes_per_host growth of private bytes with 1,000 hosts connected and their
--                         calls still running (results undispatched), over 1,000;
--   fanout_vs_ideal_lat200  as the first with 200 ms latencies (the scheduling's own cost).
-- The per-host work (what a host costs beside its latency) is measured with hosts
-- of no latency. The test server runs in this process and serialises its own use of
-- Wine's WMI, so its work is counted in every figure here.
local wmi = require "wmi"
local core = require "wmi.core"
local testwmi = require "testwmi"
local raw = require "bench_raw"
local common = require "bench.common"

io.stdout:setvbuf("line")
local say, emit, row = common.say, common.emit, common.row
local RUNS = common.env_int("LUAWMI_BENCH_FANOUT_RUNS", 5)
local N = common.env_int("LUAWMI_BENCH_FANOUT_HOSTS", 1000)
local T = common.env_int("LUAWMI_BENCH_FANOUT_THROTTLE", 100)
local HELD = common.env_int("LUAWMI_BENCH_FANOUT_HELD", 1000)
local REQUEST = "SELECT Name FROM Win32_BIOS"
local LATENCY = 50
local TRIPS = 6             -- round trips a host costs: connect 3, start 1, result 1, release 1

-- Collects, then waits until Wine's idle pool threads have exited (each after 5 s
-- without work, all at about the same time): the thread count must have stopped
-- changing for 2 s, at least 6 s after the collection. A fixed 6 s sleep left a
-- second to hundreds of exiting threads, too little on a loaded machine (457 of
-- them still alive: +484,409 bytes per host). Returns the thread count left.
local function settle()
  collectgarbage()
  collectgarbage()
  raw.sleep(6000)
  local t0, count, since = common.now(), raw.threads(), common.now()
  while common.now() - since < 2 do
    assert(common.now() - t0 < 60, ("%d threads still changing 60 s after the pool went idle"):format(count))
    raw.sleep(250)
    local now = raw.threads()
    if now ~= count then count, since = now, common.now() end
  end
  return count
end

local function hosts(kind, n)
  local list = {}
  for i = 1, n do list[i] = ("%s.%d"):format(kind, i) end
  return list
end

-- Seconds for one fan-out; every host must succeed.
local function fanout_time(list, throttle, request)
  local failed = 0
  local t0 = common.now()
  local run = wmi.fanout(list, request or REQUEST, { locator = testwmi.clsid, throttle = throttle, timeout = 60000,
    indicate = function() end, done = function(_, ok) if not ok then failed = failed + 1 end end })
  assert(run:wait(600000), "the fan-out did not finish")
  local t = common.now() - t0
  assert(failed == 0, failed .. " hosts failed")
  return t
end

local function sequential_time(list)
  local t0 = common.now()
  for _, host in ipairs(list) do
    local svc = assert(wmi.connect { locator = testwmi.clsid, host = host })
    assert(#assert(svc:query(REQUEST)) == 1)
    svc:close()
  end
  return common.now() - t0
end

testwmi.reset()
fanout_time(hosts("lat0", 20), 20)            -- warm-up: pool threads, Wine's WMI, the server

-- Per-host work: hosts of no latency, the same throttle.
local work = {}
for r = 1, RUNS do work[r] = fanout_time(hosts("lat0", N), T) / N end
local work_med, work_min, work_max = common.stats(work)
say("fan-out: per-host work (%d hosts of no latency, throttle %d): %.3f ms (%.3f - %.3f)",
    N, T, work_med * 1e3, work_min * 1e3, work_max * 1e3)

-- A remote connection starts its calls on the thread pool, a local one directly (the
-- module's choice: no round trip to save locally). Per call, alternating: the Lua
-- thread's time inside query_async, and the whole call to its status.
local function per_call(svc, n)
  local inside, total = 0, 0
  for _ = 1, n do
    local t0 = common.now()
    local call = assert(svc:query_async(REQUEST, function() end))
    inside = inside + common.now() - t0
    assert(call:wait(10000) and call:result())
    call:close()
    total = total + common.now() - t0
  end
  return inside / n, total / n
end
local pooled_svc = assert(wmi.connect { locator = testwmi.clsid, host = "lat0.start" })
local direct_svc = assert(wmi.connect { locator = testwmi.clsid })
local p_in, p_all, d_in, d_all = {}, {}, {}, {}
for r = 1, RUNS do
  if r % 2 == 1 then
    p_in[r], p_all[r] = per_call(pooled_svc, 200)
    d_in[r], d_all[r] = per_call(direct_svc, 200)
  else
    d_in[r], d_all[r] = per_call(direct_svc, 200)
    p_in[r], p_all[r] = per_call(pooled_svc, 200)
  end
end
pooled_svc:close()
direct_svc:close()
local p_in_med, p_all_med = common.stats(p_in), common.stats(p_all)
local d_in_med, d_all_med = common.stats(d_in), common.stats(d_all)
say("query_async on the test server: started on the pool (remote, lat0) %.3f ms in the call, %.3f ms to its"
    .. " status; started directly (local) %.3f ms, %.3f ms", p_in_med * 1e3, p_all_med * 1e3, d_in_med * 1e3,
    d_all_med * 1e3)

-- Against the ideal.
local ideal = math.ceil(N / T) * TRIPS * LATENCY / 1000
local ratios, times = {}, {}
for r = 1, RUNS do
  times[r] = fanout_time(hosts("lat" .. LATENCY, N), T)
  ratios[r] = times[r] / ideal
end
local t_med, t_min, t_max = common.stats(times)
local r_med = common.stats(ratios)
say("fan-out: %d hosts of %d ms (6 round trips), throttle %d: %.0f ms (%.0f - %.0f), ideal %.0f ms, ratio %.3f",
    N, LATENCY, T, t_med * 1e3, t_min * 1e3, t_max * 1e3, ideal * 1e3, r_med)

-- The same with 200 ms latencies: the per-host work above then weighs a quarter as
-- much beside the latency, which shows what the scheduling itself costs.
local ideal200 = math.ceil(N / T) * TRIPS * 200 / 1000
local ratios200 = {}
for r = 1, math.max(2, RUNS // 2) do ratios200[r] = fanout_time(hosts("lat200", N), T) / ideal200 end
local r200 = common.stats(ratios200)
say("fan-out: %d hosts of 200 ms (6 round trips), throttle %d: ratio to the ideal %.0f ms: %.3f",
    N, T, ideal200 * 1e3, r200)

-- One wedged host among 100: the time until the 100 others are done, with and without
-- it, alternating. The wedge is released after each run (its pool threads return).
local function until_others_done(list)
  local left, t_done = 0, nil
  for _, h in ipairs(list) do if not h:match("^wedge") then left = left + 1 end end
  local t0 = common.now()
  local run = wmi.fanout(list, REQUEST, { locator = testwmi.clsid, throttle = 32, timeout = 60000,
    indicate = function() end,
    done = function(host, ok)
      if host:match("^wedge") then return end
      assert(ok, host .. " failed")
      left = left - 1
      if left == 0 then t_done = common.now() - t0 end
    end })
  while not t_done do wmi.dispatch(1000) end
  run:cancel()
  testwmi.release()
  assert(wmi.run(60000), "the wedged host's work did not end")
  testwmi.reset()
  return t_done
end
local plain, wedged = hosts("lat20", 100), hosts("lat20", 99)
table.insert(wedged, 50, "wedge.1")
local with, without = {}, {}
for r = 1, RUNS do
  if r % 2 == 1 then
    without[r] = until_others_done(plain)
    with[r] = until_others_done(wedged)
  else
    with[r] = until_others_done(wedged)
    without[r] = until_others_done(plain)
  end
end
local with_med, without_med = common.stats(with), common.stats(without)
-- 99 + 1 hosts against 100: the same rounds of 32 (the wedge holds one slot).
local wedged_ratio = with_med / without_med
say("fan-out: 100 hosts of 20 ms, throttle 32: %.0f ms; 99 of them and one wedged: %.0f ms until the 99 are done;"
    .. " ratio %.3f", without_med * 1e3, with_med * 1e3, wedged_ratio)

-- 10,000 hosts of 5 ms, throttle 500: what stays per host once the run is done (each
-- host's result and object kept), and the peak thread count meanwhile.
local function tenk()
  settle()
  local before, peak = raw.memory(), raw.threads()
  local kept = {}
  local t0 = common.now()
  local run = wmi.fanout(hosts("lat5", 10000), REQUEST, { locator = testwmi.clsid, throttle = 500, timeout = 600000,
    indicate = function(obj, host) kept[host] = obj end })
  local sampler
  local function sample()
    peak = math.max(peak, raw.threads())
    sampler = not run.done and core.timer(100, sample) or nil
  end
  sample()
  assert(run:wait(1200000), "the 10,000-host fan-out did not finish")
  local took = common.now() - t0
  if sampler then sampler:close() end
  local results = run:results()
  local failed = 0
  for _, r in pairs(results) do if not r.ok then failed = failed + 1 end end
  assert(failed == 0, failed .. " of 10,000 hosts failed")
  settle()
  local after = raw.memory()
  local n = 0
  for _ in pairs(kept) do n = n + 1 end
  assert(n == 10000, n .. " objects kept")
  return (after.private - before.private) / 10000, peak, took, results, kept
end
local tenk_bytes, tenk_threads, tenk_time = tenk()
say("fan-out: 10,000 hosts of 5 ms, throttle 500: %.1f s; %.0f bytes per host kept; peak %d threads",
    tenk_time, tenk_bytes, tenk_threads)

-- Against a plain sequential loop, 50 hosts.
local seq_hosts = hosts("lat" .. LATENCY, 50)
local seq, fan = {}, {}
for r = 1, math.max(3, RUNS // 2) do
  if r % 2 == 1 then
    seq[#seq + 1] = sequential_time(seq_hosts)
    fan[#fan + 1] = fanout_time(seq_hosts, 50)
  else
    fan[#fan + 1] = fanout_time(seq_hosts, 50)
    seq[#seq + 1] = sequential_time(seq_hosts)
  end
end
local seq_med, fan_med = common.stats(seq), common.stats(fan)
say("fan-out: 50 hosts, throttle 50: %.0f ms; sequential connect + query: %.0f ms; ratio %.4f",
    fan_med * 1e3, seq_med * 1e3, fan_med / seq_med)

-- Memory per host: HELD hosts connected with their calls still running as the client
-- sees them (results not yet dispatched). The test server's calls hold threads of
-- the pool (about 1 MB of private bytes each under Wine), which is its cost, not
-- the client's: the calls wait at the server's gate until all are started, then
-- finish there while nobody dispatches, and the server's threads are gone (idle)
-- before measuring. What stays is the client's: per host a Services, a call with
-- its stub and sink, a timer, the fan-out's records, and the object and status
-- queued for it.
local function held_run(n)
  local started = 0
  testwmi.configure { gate = true }
  local run = wmi.fanout(hosts("lat0", n), function(svc, handlers)
    local call, msg, hr = svc:query_async(REQUEST, handlers)
    if call then started = started + 1 end
    return call, msg, hr
  end, { locator = testwmi.clsid, throttle = n, timeout = 3600000, indicate = function() end })
  local t0 = common.now()
  while started < n do
    assert(common.now() - t0 < 120, ("only %d of %d calls started"):format(started, n))
    wmi.dispatch(100)
  end
  testwmi.open_gate()
  assert(testwmi.idle(120000), "the server's calls did not end")
  testwmi.configure { gate = false }
  return run
end
local function settled_memory()
  local threads = settle()
  return raw.memory(), threads
end
local warm = held_run(50)                       -- warm-up
warm:cancel()
local before, threads_before = settled_memory()
local run = held_run(HELD)
local held, threads_held = settled_memory()
local st = wmi.stats()
assert(st.services == HELD and st.calls == HELD and st.connects == 0 and st.queued == 2 * HELD,
  ("not all hosts held: %d services, %d calls, %d connects, %d queued"):format(st.services, st.calls, st.connects,
    st.queued))
run:cancel()
collectgarbage()
collectgarbage()
local after = raw.memory()
local per_host = (held.private - before.private) / HELD
say("fan-out: %d hosts connected, their calls running: private bytes %.1f MiB -> %.1f MiB"
    .. " (+%.0f bytes per host; threads %d -> %d); after cancel %.1f MiB", HELD, before.private / 2^20,
    held.private / 2^20, per_host, threads_before, threads_held, after.private / 2^20)

row("fanout", ("per-host work, %d hosts of no latency, throttle %d (ms)"):format(N, T),
    ("%.3f"):format(work_med * 1e3))
row("fanout", ("%d hosts x 6 round trips of %d ms, throttle %d: time / ideal %.0f ms"):format(N, LATENCY, T,
    ideal * 1e3), ("%.3f (%.0f ms)"):format(r_med, t_med * 1e3))
row("fanout", ("%d hosts x 6 round trips of 200 ms, throttle %d: time / ideal %.0f ms"):format(N, T, ideal200 * 1e3),
    ("%.3f"):format(r200))
row("fanout", "50 hosts: fan-out / sequential connect + query", ("%.4f (%.0f / %.0f ms)"):format(fan_med / seq_med,
    fan_med * 1e3, seq_med * 1e3))
row("fanout", ("private bytes per host, %d hosts connected with a call running"):format(HELD),
    ("%.0f"):format(per_host))
row("fanout", "100 hosts x 20 ms, one of them wedged: time until the others are done / without it",
    ("%.3f (%.0f / %.0f ms)"):format(wedged_ratio, with_med * 1e3, without_med * 1e3))
row("fanout", "10,000 hosts x 5 ms, throttle 500: private bytes per host kept (result and object)",
    ("%.0f"):format(tenk_bytes))
row("fanout", "10,000 hosts x 5 ms, throttle 500: peak threads", tenk_threads)
row("fanout", "query_async to its status: started on the pool (remote) / directly (local)",
    ("%.3f (%.3f / %.3f ms; in the call %.3f / %.3f ms)"):format(p_all_med / d_all_med, p_all_med * 1e3,
    d_all_med * 1e3, p_in_med * 1e3, d_in_med * 1e3))
emit("async_pool_vs_direct", p_all_med / d_all_med)
emit("fanout_vs_ideal", r_med)
emit("fanout_wedged", wedged_ratio)
emit("fanout_10k_bytes_per_host", tenk_bytes)
emit("fanout_10k_threads", tenk_threads)
emit("fanout_vs_sequential", fan_med / seq_med)
emit("fanout_vs_ideal_lat200", r200)
emit("fanout_bytes_per_host", per_host)
emit("fanout_work_ms_per_host", work_med * 1e3)
