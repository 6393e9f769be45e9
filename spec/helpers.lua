-- Shared by every spec file (loaded by busted before the specs, see .busted).
local wmi = require "wmi"
local helpers = {}

-- Asserts an operational failure: exactly nil, "NAME (0x...): text", hresult.
function helpers.assert_fail(hresult, name, ...)
  local n, value, message, code = select("#", ...), ...
  assert(n == 3, ("expected nil, message, hresult; got %d values"):format(n))
  assert(value == nil, "expected nil, got " .. tostring(value))
  assert(code == hresult, ("expected hresult 0x%08X, got %s"):format(hresult, tostring(code)))
  local prefix = ("%s (0x%08X): "):format(name, hresult)
  assert(message:sub(1, #prefix) == prefix, ("expected %q to start with %q"):format(message, prefix))
  return message
end

-- An output for wmi.cli.main (anything with :write) that keeps what is written: :text().
function helpers.output()
  local parts = {}
  return { write = function(self, ...)
    for _, s in ipairs { ... } do parts[#parts + 1] = s end
    return self
  end, text = function() return table.concat(parts) end }
end

local HELD = { "objects", "services", "stubs", "calls", "queued", "enumerators", "connects", "timers", "identities",
  "pool" }

-- Asserts that the module holds nothing any more, once garbage is collected and
-- the thread pool has run what another host's calls left it (their releases are
-- round trips: a sink and an identity go with them, a moment after the status).
function helpers.assert_all_released()
  collectgarbage()
  collectgarbage()
  local stats = wmi.stats()
  -- Nothing may wait in the queue: the polling below must not deliver it.
  assert(stats.queued == 0, ("wmi.stats().queued is %d, expected 0"):format(stats.queued))
  for _ = 1, 250 do
    collectgarbage()
    collectgarbage()
    stats = wmi.stats()
    local held = false
    for _, what in ipairs(HELD) do held = held or stats[what] ~= 0 end
    if not held then return end
    wmi.dispatch(20)
  end
  for _, what in ipairs(HELD) do
    assert(stats[what] == 0, ("wmi.stats().%s is %d, expected 0"):format(what, stats[what]))
  end
end

-- In a describe block: a fresh connection before each test, given to USE; after
-- each, it is closed, no call may be pending and the module must hold nothing
-- (CHECK, when given, runs first: more that must have been released).
function helpers.connection_per_test(use, check)
  local busted = require "busted"
  local svc
  busted.before_each(function()
    svc = assert(wmi.connect())
    use(svc)
  end)
  busted.after_each(function()
    svc:close()
    assert(wmi.pending() == 0, ("%d calls still pending"):format(wmi.pending()))
    if check then check() end
    helpers.assert_all_released()
  end)
end

function helpers.sorted(t)
  table.sort(t)
  return t
end

-- The sorted values of FIELD over a list of objects.
function helpers.keys(list, field)
  local keys = {}
  for i, obj in ipairs(list) do keys[i] = obj[field] end
  return helpers.sorted(keys)
end

function helpers.contains(list, value)
  for _, v in ipairs(list or {}) do if v == value then return true end end
  return false
end

-- The sorted "pid/handle" keys of Win32_Process, once two reads 200 ms apart
-- agree: async results are compared with a sync read, and Wine's own processes
-- come and go. Notably rpcss.exe starts on demand the first time COM looks up a
-- local server, which wmi.apartment{ mode = "auto" } does (measured): make that
-- happen first, as the first async call with bare handlers would.
function helpers.settled_processes(svc)
  assert(wmi.apartment { mode = "auto" }):close()
  local function read()
    local keys = {}
    for i, p in ipairs(assert(svc:query("SELECT Handle, ProcessId FROM Win32_Process"))) do
      keys[i] = ("%d/%s"):format(p.ProcessId, p.Handle)
    end
    return table.concat(helpers.sorted(keys), " "), keys
  end
  local last, keys = read()
  for _ = 1, 50 do
    wmi.dispatch(200)   -- only a sleep: the callers have no call in flight
    local now, now_keys = read()
    if now == last then return keys end
    last, keys = now, now_keys
  end
  error("Win32_Process never settled")
end

package.loaded["spec.helpers"] = helpers
return helpers
