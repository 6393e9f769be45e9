-- Shared by the benchmark scripts: the clock, statistics and output lines.
-- Output: free text for people, `table: | ... |` rows that bench/run.sh gathers into
-- the results table, and `bench: NAME VALUE` lines it repeats at the end.
local raw = require "bench_raw"

local common = {}

common.now = raw.now        -- seconds, QueryPerformanceCounter (the raw C client's clock too)

function common.env_int(name, default)
  local v = os.getenv(name)
  return v and math.tointeger(tonumber(v)) or default
end

-- median, min, max of a list of numbers
function common.stats(samples)
  local s = {}
  for i, v in ipairs(samples) do s[i] = v end
  table.sort(s)
  local n = #s
  local median = n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
  return median, s[1], s[n]
end

local function fmt(v)
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v or v == math.huge then return tostring(v) end
  if math.abs(v) >= 1000 then return ("%.0f"):format(v) end
  if math.abs(v) >= 10 then return ("%.1f"):format(v) end
  return ("%.3f"):format(v)
end
common.fmt = fmt

function common.emit(name, value)
  print(("bench: %s %s"):format(name, fmt(value)))
end

-- A results table row: cells are strings or numbers.
function common.row(...)
  local cells = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    cells[i] = type(v) == "number" and fmt(v) or tostring(v)
  end
  print("table: | " .. table.concat(cells, " | ") .. " |")
end

-- The list rotated left by K (alternates which variant runs first).
function common.rotate(list, k)
  local out, n = {}, #list
  for i = 1, n do out[i] = list[(i - 1 + k) % n + 1] end
  return out
end

function common.say(fmtstr, ...)
  io.write(fmtstr:format(...), "\n")
  io.flush()
end

return common
