-- Instances the test WMI server hands out are self-contained, as Windows' are.
-- Wine's instances read their class's table, which the next query of that class
-- refills: an instance then reads another row (or freed strings: the fuzzer's
-- crashes, issue 23). The server snapshots each instance when it wraps it
-- (spec/support/testwmi_object.c). Each second query here runs after the first
-- has completed: never two queries of one class at once.
local testwmi = require "testwmi"
local th = require "spec.support.testwmi_helpers"

-- Wine fills Win32_Process with the rows a query's WHERE selects: a query for
-- another process puts that process in the row the first instance read.
local function process(svc, pid)
  return assert(svc:query("SELECT * FROM Win32_Process WHERE ProcessId = " .. pid))[1]
end

-- Everything the client reads of OBJ: pairs() in order, the system properties, the text.
local function reading(obj)
  local walked = {}
  for name, value in pairs(obj) do walked[#walked + 1] = name .. "=" .. tostring(value) end
  return { obj.ProcessId, obj.Name, obj.__RELPATH, obj:path(), obj:text(), walked }
end

describe("an instance of the test WMI server", function()
  local svc, a, b
  th.connection_per_test(function(s) svc = s end)

  before_each(function()
    -- Two processes of the prefix with different names.
    local all = assert(svc:query("SELECT ProcessId, Name FROM Win32_Process"))
    a = all[1]
    for i = #all, 2, -1 do
      if all[i].Name ~= a.Name then b = all[i] break end
    end
    assert(b, "the prefix runs one kind of process only")
    a, b = { pid = a.ProcessId, name = a.Name }, { pid = b.ProcessId, name = b.Name }
  end)

  it("keeps its values after a later query of its class", function()
    local first = process(svc, a.pid)
    local before = reading(first)
    assert.same({ a.pid, a.name }, { before[1], before[2] })
    assert.matches('Win32_Process.Handle="' .. a.pid .. '"', before[3], 1, true)
    assert.matches("\tProcessID = " .. a.pid .. ";", before[5], 1, true)

    local second = process(svc, b.pid)
    assert.same({ b.pid, b.name }, { second.ProcessId, second.Name })
    -- Read again, after the second query completed: still its own.
    assert.same(before, reading(first))
  end)

  it("keeps its values when got by path, after a later get of its class", function()
    local first = assert(svc:get(('Win32_Process.Handle="%d"'):format(a.pid)))
    local before = reading(first)
    assert.same({ a.pid, a.name }, { before[1], before[2] })
    local second = assert(svc:get(('Win32_Process.Handle="%d"'):format(b.pid)))
    assert.same({ b.pid, b.name }, { second.ProcessId, second.Name })
    assert.same(before, reading(first))
  end)

  it("keeps its values when delivered asynchronously", function()
    local got = {}
    local call = assert(svc:query_async("SELECT * FROM Win32_Process WHERE ProcessId = " .. a.pid,
      { indicate = function(obj) got[#got + 1] = obj end }))
    assert.is_true(call:wait(10000))
    assert.equal(1, #got)
    local before = reading(got[1])
    assert.same({ a.pid, a.name }, { before[1], before[2] })
    process(svc, b.pid)
    assert.same(before, reading(got[1]))
    assert.equal(0, testwmi.stats().in_flight)
  end)
end)
