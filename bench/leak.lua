-- Leak measurement by slope: growth of private bytes per operation, fitted over many
-- points, so that Wine's swings between two readings average out instead of deciding
-- the verdict.
--
-- One run of a kind: WARMUP blocks of OPS operations (discarded: caches, Wine's
-- tables and the thread pool fill up), then BLOCKS blocks; after each block the queue
-- is drained, the garbage collected twice, and wmi.stats().private_bytes read with
-- the process's thread count. Least squares fit private bytes on operations done
-- and live threads: a thread-pool worker that Wine starts (or retires) at a random
-- moment moves private bytes by ~1 MB at once (its stack, measured), which the
-- thread term absorbs instead of reading it as growth per operation. The slope's
-- spread is its standard error (residual variance over the spread of operations
-- not explained by threads), so a reader sees how far the noise could move it.
local wmi = require "wmi"

local leak = {}

local function centred_sums(xs, ys)
  local n, mx, my = #xs, 0, 0
  for i = 1, n do mx, my = mx + xs[i], my + ys[i] end
  mx, my = mx / n, my / n
  local sxx, sxy = 0, 0
  for i = 1, n do
    sxx = sxx + (xs[i] - mx) ^ 2
    sxy = sxy + (xs[i] - mx) * (ys[i] - my)
  end
  return sxx, sxy, mx, my
end

-- Least squares of ys on xs: slope, standard error of the slope, intercept.
function leak.fit(xs, ys)
  local n = #xs
  assert(n >= 3 and n == #ys, "a fit needs at least 3 points")
  local sxx, sxy, mx, my = centred_sums(xs, ys)
  local slope = sxy / sxx
  local intercept = my - slope * mx
  local ssr = 0
  for i = 1, n do ssr = ssr + (ys[i] - intercept - slope * xs[i]) ^ 2 end
  return slope, math.sqrt(ssr / (n - 2) / sxx), intercept
end

-- Least squares of ys on xs and ts together: the slope on xs, its standard error,
-- and the coefficient of ts. Falls back to leak.fit when ts does not vary apart
-- from xs (constant, or in step with it: then nothing can tell them apart).
function leak.fit2(xs, ts, ys)
  local n = #xs
  assert(n >= 4 and n == #ys and n == #ts, "a fit on two variables needs at least 4 points")
  local sxx, sxy, mx, my = centred_sums(xs, ys)
  local stt, sty, mt = centred_sums(ts, ys)
  local sxt = 0
  for i = 1, n do sxt = sxt + (xs[i] - mx) * (ts[i] - mt) end
  local det = sxx * stt - sxt ^ 2
  if stt == 0 or det <= 1e-9 * sxx * stt then
    local slope, spread, intercept = leak.fit(xs, ys)
    return slope, spread, 0, intercept
  end
  local b = (stt * sxy - sxt * sty) / det
  local c = (sxx * sty - sxt * sxy) / det
  local a = my - b * mx - c * mt
  local ssr = 0
  for i = 1, n do ssr = ssr + (ys[i] - a - b * xs[i] - c * ts[i]) ^ 2 end
  return b, math.sqrt(ssr / (n - 3) * stt / det), c, a
end

-- Readings farther than this from the line are set aside, one at a time, worst first
-- (at most a quarter of them): Wine at times reads a thread stack's ~1 MB (or 2) more
-- for one block only, a thread that has ended but whose stack is not yet freed. A
-- leak cannot hide this way: it moves every later reading, and the line with it.
leak.OUTLIER = 256 * 1024

-- leak.fit2 over the points, less the outliers: slope, spread, per thread, dropped.
function leak.robust_fit(xs, ts, ys)
  local function copy(t) return table.move(t, 1, #t, 1, {}) end
  xs, ts, ys = copy(xs), copy(ts), copy(ys)
  local dropped, most = 0, #xs // 4
  while true do
    local slope, spread, per_thread, intercept = leak.fit2(xs, ts, ys)
    if dropped >= most then return slope, spread, per_thread, dropped end
    local worst, at = 0, nil
    for i = 1, #xs do
      local residual = math.abs(ys[i] - intercept - slope * xs[i] - per_thread * ts[i])
      if residual > worst then worst, at = residual, i end
    end
    if worst <= leak.OUTLIER then
      return slope, spread, per_thread, dropped
    end
    table.remove(xs, at)
    table.remove(ts, at)
    table.remove(ys, at)
    dropped = dropped + 1
  end
end

-- Private bytes once nothing is queued and all garbage is collected.
function leak.settle()
  wmi.dispatch(0)
  collectgarbage()
  collectgarbage()
  return assert(wmi.stats().private_bytes, "wmi.stats() has no private_bytes")
end

-- Runs op(i) for i = 1 .. (warmup + blocks) * ops and fits the blocks after the
-- warm-up. SETTLE(), when given, runs after each block, before the reading (e.g. to
-- wait for a server's threads). PROBE() --> the process's threads, bytes in use in its
-- heaps (without it: 0, 0). Returns { slope =, spread =, per_thread =, dropped =
-- outliers set aside, heap =, heap_spread = (the same fit of heap bytes in use),
-- threads = { min, max }, ops =, blocks =, seconds =, points = { { ops, bytes, threads, heap } } }.
function leak.measure(spec)
  local op, ops, blocks, warmup = spec.op, spec.ops, spec.blocks, spec.warmup or 1
  local probe = spec.probe or function() return 0, 0 end
  local started = os.clock()
  local i = 0
  local function block()
    for _ = 1, ops do
      i = i + 1
      op(i)
    end
    if spec.settle then spec.settle() end
    local bytes = leak.settle()
    return bytes, probe()
  end
  for _ = 1, warmup do block() end
  -- Filled in advance: tables growing during the run would be heap growth of our own.
  local xs, ts, ys, hs, points = {}, {}, {}, {}, {}
  for b = 1, blocks do xs[b], ts[b], ys[b], hs[b], points[b] = 0, 0, 0, 0, { 0, 0, 0, 0 } end
  for b = 1, blocks do
    ys[b], ts[b], hs[b] = block()
    xs[b] = b * ops
    local p = points[b]
    p[1], p[2], p[3], p[4] = xs[b], ys[b], ts[b], hs[b]
  end
  local slope, spread, per_thread, dropped = leak.robust_fit(xs, ts, ys)
  local heap, heap_spread = leak.fit(xs, hs)
  return { slope = slope, spread = spread, per_thread = per_thread, dropped = dropped,
           heap = heap, heap_spread = heap_spread,
           threads = { math.min(table.unpack(ts)), math.max(table.unpack(ts)) },
           ops = ops * blocks, blocks = blocks, points = points, seconds = os.clock() - started }
end

return leak
