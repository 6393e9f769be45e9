-- Issue 23: no crash from any order of calls. Each reproduction of the issue runs
-- in a child Lua process: before its fix it crashed (or hung), and a crash must
-- fail this spec, not kill the run. The child prints what it saw; the spec
-- asserts it, and the child's exit status.
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"

local function interpreter()
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  return assert(arg and arg[i], "cannot find the running lua.exe in arg")
end

-- A collector that runs at (nearly) every allocation: a finalizer made garbage
-- just before a module call runs inside that call's first allocation. Then the
-- shared helpers of every child.
local PRELUDE = [[
local wmi = require "wmi"
local testwmi = require "testwmi"
collectgarbage("incremental", 1, 1000, 20)
local inside = false        -- set around the module call under test
local hits = 0              -- finalizers that ran inside it
local function plant(f)
  setmetatable({}, { __gc = function() if inside then hits = hits + 1 end f() end })
end
-- A few allocations, as many as I says: where a GC step falls moves from one round
-- to the next, so that some finalizer runs inside the call under test.
local function jitter(i)
  for _ = 1, i % 17 do local _ = {} end
end
local function stats_zero()
  for _ = 1, 500 do
    collectgarbage()
    local s, left = wmi.stats(), nil
    for _, k in ipairs { "objects", "services", "stubs", "calls", "queued", "connects", "identities" } do
      if s[k] ~= 0 then left = k .. "=" .. s[k] end
    end
    if not left then return "zero" end
    wmi.dispatch(10)
  end
  return "left"
end
]]

local function run_child(code)
  local dir = assert(os.getenv("TEMP") or os.getenv("TMP"), "no TEMP folder")
  local path = ("%s\\luawmi-nocrash-%d.lua"):format(dir, math.random(1, 1e9))
  local f = assert(io.open(path, "w"))
  f:write(PRELUDE, code)
  f:close()
  local pipe = assert(io.popen(('""%s" "%s" 2>&1"'):format(interpreter(), path)))
  local out = pipe:read("a"):gsub("\r", "")
  local ok, how, status = pipe:close()
  os.remove(path)
  assert(ok and how == "exit" and status == 0, ("the child failed (%s %s):\n%s"):format(how, status, out))
  return out
end

describe("a finalizer that closes the object a method is using (issue 23, 1)", function()
  it("obj:spawn() whose object is closed by a finalizer at the result's allocation", function()
    local out = run_child([[
local svc = assert(wmi.connect())
local spawned, closed = 0, 0
for i = 1, 300 do
  local cls = assert(svc:get("Win32_Process"))
  jitter(i)
  plant(function() cls:close() end)
  inside = true
  local ok, inst = pcall(cls.spawn, cls)
  inside = false
  if ok then spawned = spawned + 1; inst:close()
  else assert(tostring(inst):find("attempt to use a closed wmi.Object", 1, true), inst); closed = closed + 1 end
  cls:close()
end
svc:close()
io.write("hits ", hits, " spawned ", spawned, " closed ", closed, " stats ", stats_zero(), "\n")
]])
    local hits, spawned, closed = out:match("hits (%d+) spawned (%d+) closed (%d+) stats zero")
    assert(hits, out)
    assert.is_true(tonumber(hits) > 0, "no finalizer ran inside spawn: the spec proves nothing\n" .. out)
    assert.are.equal(300, tonumber(spawned) + tonumber(closed))
    assert.is_true(tonumber(closed) > 0, out)
  end)

  it("svc:query_async(q, stub) whose stub or apartment a finalizer closes during the start", function()
    local out = run_child([[
local svc = assert(wmi.connect { locator = testwmi.clsid })
local query_async = svc.query_async    -- the C function: no Lua layer allocates first
assert(debug.getinfo(query_async, "S").what == "C")
local started, refused = 0, 0
for i = 1, 300 do
  local apt = assert(wmi.apartment { mode = "inproc" })
  local stub = assert(apt:stub { status = function() end })
  if i % 2 == 0 then plant(function() stub:close() end) else plant(function() apt:close() end) end
  inside = true
  local ok, call = pcall(query_async, svc, "SELECT * FROM Win32_BIOS", stub)
  inside = false
  if ok and call then started = started + 1; call:wait(); call:close()
  else
    assert(tostring(call):find("closed", 1, true), tostring(call))
    refused = refused + 1
  end
  stub:close()
  apt:close()
end
svc:close()
testwmi.idle(10000)
io.write("hits ", hits, " started ", started, " refused ", refused, " stats ", stats_zero(), "\n")
]])
    local hits, started, refused = out:match("hits (%d+) started (%d+) refused (%d+) stats zero")
    assert(hits, out)
    assert.is_true(tonumber(hits) > 0, "no finalizer ran inside query_async\n" .. out)
    assert.are.equal(300, tonumber(started) + tonumber(refused))
  end)
end)

describe("dispatch is not reentrant (issue 23, 2)", function()
  it("a finalizer's wmi.dispatch during a delivery never delivers that node again", function()
    local out = run_child([[
local svc = assert(wmi.connect())
-- Services: a stable count (processes come and go).
local expected = #assert(svc:query("SELECT Name FROM Win32_Service"))
local seen, statuses, min_queued = {}, 0, 0
local function reenter()
  local ok, n = pcall(wmi.dispatch, 0)
  assert(ok, n)
  local q = wmi.stats().queued
  if q < min_queued then min_queued = q end
end
for _ = 1, 20 do
  local got = 0
  local call = assert(svc:query_async("SELECT Name FROM Win32_Service", {
    indicate = function(s) got = got + 1; seen[s.Name] = true; plant(reenter) end,
    status = function() statuses = statuses + 1; plant(reenter) end,
  }))
  plant(reenter)
  inside = true
  assert(call:wait(10000))
  inside = false
  assert(got == expected, ("%d objects delivered, %d expected"):format(got, expected))
  call:close()
end
svc:close()
io.write("hits ", hits, " statuses ", statuses, " min_queued ", min_queued, " stats ", stats_zero(), "\n")
]])
    local hits, statuses, min_queued = out:match("hits (%d+) statuses (%d+) min_queued (%-?%d+) stats zero")
    assert(hits, out)
    assert.is_true(tonumber(hits) > 0, "no finalizer ran during a wait\n" .. out)
    assert.are.equal(20, tonumber(statuses))
    assert.are.equal(0, tonumber(min_queued))
  end)

  it("a finalizer's wmi.dispatch while a connect_async result is delivered", function()
    local out = run_child([[
local handled, opened = 0, 0
for _ = 1, 40 do
  local c = assert(wmi.connect_async({ locator = testwmi.clsid }, function(svc)
    handled = handled + 1
    if svc then opened = opened + 1; svc:close() end
  end))
  plant(function() assert(pcall(wmi.dispatch, 0)) end)
  inside = true
  assert(c:wait(10000))
  inside = false
  c:close()
end
testwmi.idle(10000)
io.write("hits ", hits, " handled ", handled, " opened ", opened, " queued ", wmi.stats().queued,
         " stats ", stats_zero(), "\n")
]])
    local handled, opened, queued = out:match("handled (%d+) opened (%d+) queued (%-?%d+) stats zero")
    assert(handled, out)
    assert.are.equal(40, tonumber(handled))
    assert.are.equal(40, tonumber(opened))
    assert.are.equal(0, tonumber(queued))
  end)
end)

describe("paths and NULs are parsed before use (issue 23, 3)", function()
  it("an empty class part or a NUL is an argument error in every form", function()
    local out = run_child([[
local svc = assert(wmi.connect())
local tsvc = assert(wmi.connect { locator = testwmi.clsid })
local function try(name, f)
  local ok, err = pcall(f)
  io.write(name, " -> ", ok and "returned" or tostring(err):gsub("^.-:%d+: ", ""), "\n")
end
local params = { hDefKey = 0x80000002, sSubKeyName = "Software" }
for _, path in ipairs { "", ".Name=1", "root:", "\0StdRegProv", "\\\\.\\root\\default:", "root\\default:.x=1" } do
  local q = ("%q"):format(path)
  try("exec " .. q, function() return svc:exec(path, "EnumKey", params) end)
  try("exec_async " .. q, function() return tsvc:exec_async(path, "EnumKey", params, function() end) end)
  try("get " .. q, function() return svc:get(path) end)
  try("get_async " .. q, function() return tsvc:get_async(path, function() end) end)
  try("delete " .. q, function() return svc:delete(path) end)
  try("delete_async " .. q, function() return tsvc:delete_async(path, function() end) end)
end
try("query NUL", function() return svc:query("SELECT * FROM Win32_BIOS\0 WHERE") end)
try("each NUL", function() return svc:each("SELECT\0") end)
try("query_async NUL", function() return tsvc:query_async("SELECT * FROM Win32_BIOS\0", function() end) end)
try("subscribe NUL", function() return tsvc:subscribe("SELECT\0", function() end) end)
try("instances NUL", function() return svc:instances("Win32_BIOS\0") end)
try("exec method NUL", function() return svc:exec("StdRegProv", "EnumKey\0", params) end)
try("exec_async method NUL", function() return tsvc:exec_async("StdRegProv", "EnumKey\0", params, function() end) end)
try("inparams NUL", function() return assert(svc:get("StdRegProv")):inparams("EnumKey\0x") end)
try("connect namespace NUL", function() return wmi.connect("root\\cimv2\0x") end)
try("connect option NUL", function() return wmi.connect { namespace = "root\0" } end)
try("connect_async NUL", function() return wmi.connect_async({ namespace = "root\0" }, function() end) end)
svc:close()
tsvc:close()
io.write("stats ", stats_zero(), "\n")
]])
    local count = 0
    for name, result in out:gmatch("([^\n]-) %-> ([^\n]*)") do
      count = count + 1
      if name:find("NUL") or name:find("\\0") then
        assert(result:find("contains a NUL", 1, true), name .. ": " .. result)
      elseif name:find('""', 1, true) then
        assert(result:find("empty object path", 1, true), name .. ": " .. result)
      else
        assert(result:find("object path names no class", 1, true), name .. ": " .. result)
      end
      assert(result:find("^bad argument") or result:find("^bad option"), name .. ": " .. result)
    end
    assert.are.equal(6 * 6 + 11, count)
    assert.truthy(out:find("stats zero", 1, true), out)
  end)
end)

describe("fan-out requests that return no call (issue 23, 4)", function()
  after_each(function()
    -- A cancelled host's connect is let go by its pool thread a little later.
    for _ = 1, 500 do
      if wmi.stats().connects == 0 then break end
      wmi.dispatch(10)
    end
    helpers.assert_all_released()
  end)

  it("a non-Call or a bare nil ends its host with a message and an HRESULT, done once", function()
    local returns = { ["lat0"] = 42, ["lat1.a"] = "text", ["lat1.b"] = { close = 1 }, ["lat1.c"] = false,
                      ["lat1.d"] = nil }
    local dones = {}
    local run = wmi.fanout({ "lat0", "lat1.a", "lat1.b", "lat1.c", "lat1.d", "lat2" }, function(svc, handlers, host)
      if host == "lat2" then return svc:query_async("SELECT * FROM Win32_BIOS", handlers) end
      return returns[host]
    end, {
      locator = testwmi.clsid, timeout = 3000,
      done = function(host, ok, msg, hresult) dones[#dones + 1] = { host, ok, msg, hresult } end,
    })
    assert.is_true(run:wait(10000))
    assert.are.equal(6, #dones)
    local by_host = {}
    for _, d in ipairs(dones) do
      assert.is_nil(by_host[d[1]], "done twice for " .. d[1])
      by_host[d[1]] = d
    end
    assert.is_true(by_host["lat2"][2])
    for host in pairs(returns) do
      local d = by_host[host]
      assert.is_false(d[2])
      assert.are.equal(0x80041001, d[4])
      assert.truthy(d[3]:find("^WBEM_E_FAILED %(0x80041001%): .*not a wmi%.Call"), d[3])
    end
    testwmi.idle(10000)
  end)

  it("run:cancel() whose done handler raises still ends every host, once; the error goes on", function()
    local dones = {}
    local run = wmi.fanout({ "lat0", "lat1", "lat2" }, "SELECT * FROM Win32_BIOS", {
      locator = testwmi.clsid, throttle = 1,
      done = function(host) dones[#dones + 1] = host; error("done raises for " .. host) end,
    })
    assert.error_matches(function() run:cancel() end, "done raises for lat0")
    assert.is_true(run.done)
    assert.are.same({ "lat0", "lat1", "lat2" }, dones)
    assert.is_true(run:wait(0))
    local results = run:results()
    for _, host in ipairs(dones) do assert.are.equal(0x80041032, results[host].hresult) end
    testwmi.idle(10000)
  end)

  it("a done handler that waits for its own run: the next host starts, no wait forever", function()
    local order, waited = {}, nil
    local run
    run = wmi.fanout({ "lat0", "lat1" }, "SELECT * FROM Win32_BIOS", {
      locator = testwmi.clsid, throttle = 1,
      done = function(host)
        order[#order + 1] = host
        if host == "lat0" then
          local n = 0
          for _ in run:each() do n = n + 1 end
          waited = run.done
        end
      end,
    })
    assert.is_true(run:wait(10000))
    assert.is_true(waited)
    assert.are.same({ "lat0", "lat1" }, order)
    testwmi.idle(10000)
  end)

  it("a done handler that yields raises instead of leaving the run half-way", function()
    local dones = 0
    local run = wmi.fanout({ "lat0", "lat1" }, "SELECT * FROM Win32_BIOS", {
      locator = testwmi.clsid, throttle = 1,
      done = function() dones = dones + 1; coroutine.yield() end,
    })
    local co = coroutine.create(function() run:cancel() end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("attempt to yield across a C%-call boundary"), tostring(err))
    assert.is_true(run.done)
    assert.are.equal(2, dones)
    testwmi.idle(10000)
  end)
end)
