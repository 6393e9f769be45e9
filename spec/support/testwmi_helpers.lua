-- Shared by the specs against the test WMI server (spec/support/testwmi*.c).
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"

local M = {}

M.LIVE = { "calls", "sinks", "objects", "services", "enumerators", "call_results", "in_flight", "held", "gated",
  "wedged" }

-- wmi.connect through the test server's locator (OPTS as wmi.connect's table).
function M.connect(opts)
  local o = { locator = testwmi.clsid }
  for k, v in pairs(opts or {}) do o[k] = v end
  return wmi.connect(o)
end

-- Asserts that the server holds nothing: no call running, no sink, no object,
-- no services, enumerator or call result alive, nothing in flight.
function M.assert_server_idle()
  collectgarbage()
  collectgarbage()
  assert(testwmi.idle(10000), "the test server still runs a call or holds a sink")
  -- A remote proxy's last Release runs on the thread pool: give it a moment.
  local s = testwmi.stats()
  for _ = 1, 500 do
    local live = false
    for _, what in ipairs(M.LIVE) do live = live or s[what] ~= 0 end
    if not live then break end
    wmi.dispatch(20)
    s = testwmi.stats()
  end
  for _, what in ipairs(M.LIVE) do
    assert(s[what] == 0, ("testwmi.stats().%s is %d, expected 0"):format(what, s[what]))
  end
  assert(s.double_status == 0 and s.same_thread == 0, "the test server broke its own rules")
end

-- In a describe block: the server reset and a connection through it before each
-- test (USE receives it); after each, the connection closed and both the module
-- and the server holding nothing.
function M.connection_per_test(use, opts)
  local busted = require "busted"
  local svc
  busted.before_each(function()
    testwmi.reset()
    svc = assert(M.connect(opts))
    use(svc)
  end)
  busted.after_each(function()
    svc:close()
    assert(wmi.pending() == 0, ("%d calls still pending"):format(wmi.pending()))
    -- The server first: it releases a sink just after the client saw its status.
    M.assert_server_idle()
    helpers.assert_all_released()
    testwmi.reset()
  end)
end

-- Dispatches until PRED() holds (at most MS milliseconds); returns PRED()'s last value.
function M.until_true(pred, ms)
  local deadline = os.clock() + (ms or 10000) / 1000
  local v = pred()
  while not v and os.clock() < deadline do
    wmi.dispatch(10)
    v = pred()
  end
  return v
end

-- The sorted "pid/handle" keys of Win32_Process objects.
function M.process_keys(list)
  local keys = {}
  for i, p in ipairs(list) do keys[i] = ("%d/%s"):format(p.ProcessId, p.Handle) end
  return helpers.sorted(keys)
end

-- Runs CODE in a new lua.exe (e.g. one whose Lua thread is an STA); returns its
-- output (without \r) and how it ended, as io.popen's close.
function M.run_child(code)
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  local lua = assert(arg and arg[i], "cannot find the running lua.exe in arg")
  local dir = assert(os.getenv("TEMP") or os.getenv("TMP"), "no TEMP folder")
  local path = ("%s\\luawmi-testwmi-%d.lua"):format(dir, math.random(1, 1e9))
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local pipe = assert(io.popen(('""%s" "%s" 2>&1"'):format(lua, path)))
  local out = pipe:read("a"):gsub("\r", "")
  local ok, how, status = pipe:close()
  os.remove(path)
  return out, ok, how, status
end

package.loaded["spec.support.testwmi_helpers"] = M
-- Handlers that record what reached Lua: rec.objects counts the objects,
-- rec.statuses lists each status (ok, message, hresult, object).
function M.recorder()
  local rec = { objects = 0, statuses = {} }
  rec.handlers = {
    indicate = function() rec.objects = rec.objects + 1 end,
    status = function(ok, msg, hr, obj)
      rec.statuses[#rec.statuses + 1] = { ok = ok, message = msg, hresult = hr, object = obj }
    end,
  }
  return rec
end

return M
