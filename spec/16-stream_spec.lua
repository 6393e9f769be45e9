-- Streams: svc:stream(wql [, opts]) and call:objects(), a generic `for` over an
-- async call. Against Wine's real WMI (ExecQueryAsync; event queries fail there
-- with WBEM_E_INVALID_QUERY) and the test WMI server (latency, batches, events).
local wmi = require "wmi"
local testwmi = require "testwmi"
local helpers = require "spec.helpers"
local th = require "spec.support.testwmi_helpers"

local PROCESSES = "SELECT Handle, ProcessId FROM Win32_Process"
local SERVICES = "SELECT Name FROM Win32_Service"
local EVENTS = "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'"
local WBEM_E_INVALID_QUERY = 0x80041017
local WBEM_E_QUEUE_OVERFLOW = 0x80041061
local WBEM_E_CALL_CANCELLED = 0x80041032

-- Runs F, which must raise a wmi.Error; returns it.
local function stream_error(f)
  local ok, err = pcall(f)
  assert.is_false(ok)
  assert.equal("table", type(err))
  assert.equal(wmi.Error, getmetatable(err))
  assert.equal(err.message, tostring(err))
  return err
end

describe("svc:stream against Wine's WMI", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  it("yields what the synchronous query returns, then ends", function()
    local expected = helpers.settled_processes(svc)
    local keys = {}
    for p in svc:stream(PROCESSES) do keys[#keys + 1] = ("%d/%s"):format(p.ProcessId, p.Handle) end
    assert.same(expected, helpers.sorted(keys))
    assert.equal(0, wmi.pending())
    local names = {}
    for s in svc:stream(SERVICES, { queue_limit = false }) do names[#names + 1] = s.Name end
    assert.same(helpers.keys(svc:query(SERVICES), "Name"), helpers.sorted(names))
    assert.equal(23, #names)
  end)

  it("cancels and releases everything on break after 3 objects", function()
    local n = 0
    for _ in svc:stream(SERVICES) do
      n = n + 1
      if n == 3 then break end
    end
    assert.equal(3, n)
    -- Closed by the loop itself, before any garbage collection (the sink goes
    -- when Wine's worker lets it go).
    assert.equal(0, wmi.pending())
    assert.same({ 0, 0 }, { wmi.stats().calls, wmi.stats().queued })
    -- The connection goes on.
    n = 0
    for _ in svc:stream(SERVICES) do n = n + 1 end
    assert.equal(23, n)
  end)

  it("cancels and releases everything when the loop body raises", function()
    local n = 0
    local ok, err = pcall(function()
      for _ in svc:stream(SERVICES) do
        n = n + 1
        if n == 2 then error("boom in the body") end
      end
    end)
    assert.is_false(ok)
    assert.matches("boom in the body$", err)
    assert.equal(2, n)
    assert.equal(0, wmi.pending())
    assert.same({ 0, 0 }, { wmi.stats().calls, wmi.stats().queued })
  end)

  it("raises a failed query's WBEM name and HRESULT in a wmi.Error", function()
    local err = stream_error(function() for _ in svc:stream("SELEC nonsense") do end end)
    assert.equal(WBEM_E_INVALID_QUERY, err.hresult)
    assert.equal("WBEM_E_INVALID_QUERY (0x80041017): Invalid query", err.message)
    assert.equal(0, wmi.pending())
  end)

  it("streams an event query with subscribe = true: Wine fails it with WBEM_E_INVALID_QUERY", function()
    -- Wine has no event provider: ExecNotificationQueryAsync starts, then SetStatus fails.
    local err = stream_error(function() for _ in svc:stream(EVENTS, { subscribe = true }) do end end)
    assert.equal(WBEM_E_INVALID_QUERY, err.hresult)
    assert.matches("^WBEM_E_INVALID_QUERY %(0x80041017%): ", err.message)
  end)

  it("raises argument errors naming stream and the argument", function()
    assert.has_error(function() svc:stream() end, "bad argument #1 to 'stream' (string expected, got no value)")
    assert.has_error(function() svc:stream({}) end,
      "bad argument #1 to 'stream' (a query table needs from, event, associators_of or references_of)")
    assert.has_error(function() svc:stream(SERVICES, 5) end, "bad argument #2 to 'stream' (table expected, got number)")
    assert.has_error(function() svc.stream(42, SERVICES) end,
      "bad argument #1 to 'stream' (wmi.Services expected, got number)")
    assert.has_error(function() svc:stream(SERVICES, { queue_limit = 0 }) end,
      "bad option 'queue_limit' (positive integer or false expected)")
    local closed = assert(wmi.connect())
    closed:close()
    assert.has_error(function() closed:stream(SERVICES) end, "attempt to use a closed wmi.Services")
  end)
end)

describe("call:objects against Wine's WMI", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  it("iterates a call started with handlers that have no indicate, which still hear the status", function()
    local statuses = {}
    local call = assert(svc:query_async(SERVICES, {
      status = function(ok, _, hr) statuses[#statuses + 1] = { ok, hr } end,
    }))
    local names = {}
    for s in call:objects() do names[#names + 1] = s.Name end
    assert.same(helpers.keys(svc:query(SERVICES), "Name"), helpers.sorted(names))
    assert.same({ { true, 0 } }, statuses)
    -- A call that finished normally stays open: its result can still be read.
    assert.same({ true, 23 }, { call:result(), call.count })
    call:close()
  end)

  it("iterates a call whose objects were dispatched before, and one from a stub without indicate", function()
    local call = assert(svc:query_async(SERVICES, {}))
    assert.is_true(call:wait(10000))
    local n = 0
    for _ in call:objects() do n = n + 1 end
    assert.equal(23, n)
    local apt = assert(wmi.apartment())
    call = assert(svc:query_async(SERVICES, assert(apt:stub {})))
    n = 0
    for _ in call:objects() do n = n + 1 end
    assert.equal(23, n)
    apt:close()
  end)

  it("holds at most queue_limit objects: then raises WBEM_E_QUEUE_OVERFLOW after those", function()
    local statuses = {}
    local call = assert(svc:query_async(SERVICES, { status = function(ok, _, code)
      statuses[#statuses + 1] = { ok, code }
    end }, { queue_limit = 5 }))
    assert.is_true(call:wait(10000))     -- every object dispatched into the buffer, none consumed
    local n = 0
    local err = stream_error(function() for _ in call:objects() do n = n + 1 end end)
    assert.equal(5, n)
    assert.equal(WBEM_E_QUEUE_OVERFLOW, err.hresult)
    -- "5 objects waited in the stream's buffer", or the C queue's "5 callbacks ... waited".
    assert.matches("^WBEM_E_QUEUE_OVERFLOW %(0x80041061%): .*5 %a+.* waited", err.message)
    -- One status, whichever limit was reached first (the full buffer, or the C
    -- queue's own when 5 objects waited there before a dispatch): the status
    -- handler and call:result() say what the loop raised (they said cancelled).
    helpers.assert_fail(WBEM_E_QUEUE_OVERFLOW, "WBEM_E_QUEUE_OVERFLOW", call:result())
    assert.same({ { false, WBEM_E_QUEUE_OVERFLOW } }, statuses)
  end)

  it("refuses a call that has an indicate handler", function()
    local call = assert(svc:query_async(SERVICES, function() end))
    assert.has_error(function() call:objects() end,
      "calling 'objects' on bad self (wmi.Call started without an indicate handler expected, got "
      .. tostring(call) .. ")")
    assert.is_true(call:wait(10000))
    call:close()
  end)
end)

describe("streams against the test WMI server", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("yields the first object before the query has finished", function()
    -- One object per Indicate, 50 ms apart: the status is 22 batches (1.1 s) away.
    testwmi.configure { batch = 1, batch_delay = 50 }
    local done_at_first, n
    for _ in svc:stream(SERVICES) do
      n = (n or 0) + 1
      if n == 1 then done_at_first = testwmi.stats().statuses end
    end
    assert.equal(0, done_at_first)
    assert.equal(23, n)
    assert.equal(1, testwmi.stats().statuses)
    assert.is_true(testwmi.idle(5000))
  end)

  it("yields objects from a host with latency, in batches, as many as the synchronous query", function()
    local remote = assert(th.connect { host = "lat50" })
    testwmi.configure { batch = 4 }
    local expected = helpers.keys(assert(remote:query(SERVICES)), "Name")
    local names = {}
    for s in remote:stream(SERVICES) do names[#names + 1] = s.Name end
    assert.same(expected, helpers.sorted(names))
    remote:close()
  end)

  it("call:objects cancels and closes a running call on break", function()
    testwmi.configure { batch = 1, batch_delay = 50 }
    local call = assert(svc:query_async(SERVICES, { status = function() end }))
    for _ in call:objects() do break end   -- luacheck: ignore 512
    assert.equal(0, wmi.pending())
    assert.equal("wmi.Call (closed)", tostring(call))
    assert.is_true(testwmi.idle(5000))
    assert.same({ 1, 0 }, { testwmi.stats().cancels_matched, testwmi.stats().cancels_unmatched })
  end)

  it("streams events with subscribe = true and stops them on break", function()
    testwmi.configure { event_interval = 20 }
    local seq = {}
    for ev in svc:stream(EVENTS, { subscribe = true }) do
      seq[#seq + 1] = ev.Sequence
      if #seq == 3 then break end
    end
    assert.same({ 1, 2, 3 }, seq)
    assert.equal(0, wmi.pending())
    assert.same({ 0, 0 }, { wmi.stats().calls, wmi.stats().queued })
    -- The server's event call was cancelled by the stub that started it.
    assert.is_true(testwmi.idle(5000))
    assert.same({ 1, 0 }, { testwmi.stats().cancels_matched, testwmi.stats().cancels_unmatched })
  end)

  it("raises after the objects that did arrive when the services closes under the stream", function()
    testwmi.configure { batch = 1, batch_delay = 20 }
    local n = 0
    local err = stream_error(function()
      for _ in svc:stream(SERVICES) do
        n = n + 1
        if n == 2 then svc:close() end
      end
    end)
    assert.equal(WBEM_E_CALL_CANCELLED, err.hresult)
    assert.equal("WBEM_E_CALL_CANCELLED (0x80041032): Call cancelled", err.message)
    -- The two objects seen, and at most those already dispatched with them.
    assert.is_true(n >= 2 and n < 23, tostring(n))
    assert.is_true(testwmi.idle(5000))
  end)
end)

describe("wmiq's logic in-process (wmi.cli)", function()
  local cli = require "wmi.cli"

  local sink = helpers.output     -- an output that keeps what is written

  it("runs a query through a stream and releases everything; usage errors return 2", function()
    local out, err = sink(), sink()
    assert.equal(0, cli.main({ "-f", "csv", "SELECT Name FROM Win32_Service" }, out, err, { width = false }))
    assert.equal("", err:text())
    local n = select(2, out:text():gsub("\n", "\n"))
    assert.equal(24, n)                        -- the header and the 23 services of a default prefix
    out, err = sink(), sink()
    assert.equal(2, cli.main({ "-f", "xml", "SELECT Name FROM Win32_Service" }, out, err))
    assert.same({ "",
      "wmiq: unknown format in option '--format' (table, list, csv, json, jsonl or mof)\nTry 'wmiq --help'.\n" },
      { out:text(), err:text() })
    out, err = sink(), sink()
    assert.equal(1, cli.main({ "SELECT * FROM" }, out, err))
    assert.equal("wmiq: WBEM_E_INVALID_QUERY (0x80041017): Invalid query\n", err:text())
    assert.equal(0, wmi.pending())
    helpers.assert_all_released()
  end)

  it("hands the password read for -p - to ConnectServer, with the user given", function()
    -- The test server records whether a password came (never the password): the
    -- typed one does, an empty line does not; the user is the one given.
    testwmi.reset()
    local asked = {}
    local function run(secret)
      local out, err = sink(), sink()
      local status = cli.main({ "--locator", testwmi.clsid, "-H", "lat5", "-u", "DOM\\someone", "-p", "-",
        "-f", "csv", "SELECT Name FROM Win32_Service WHERE Name = 'Spooler'" }, out, err,
        { width = false, read_password = function(e) asked[#asked + 1] = e == err return secret end })
      return status, out:text(), err:text()
    end
    assert.same({ 0, "Name\r\nSpooler\r\n", "" }, { run("s3cr3t-typed") })
    assert.same({ 0, "Name\r\nSpooler\r\n", "" }, { run("") })
    assert.same({ true, true }, asked)
    local got = {}
    for i, c in ipairs(testwmi.connects()) do got[i] = { c.host, c.user, c.password } end
    assert.same({ { "lat5", "DOM\\someone", true }, { "lat5", "DOM\\someone", false } }, got)
    -- The services' blanket carries the same identity, password or none.
    got = {}
    for _, b in ipairs(testwmi.blankets()) do
      if b.kind == "services" then got[#got + 1] = { b.user, b.domain, b.password } end
    end
    assert.same({ { "someone", "DOM", true }, { "someone", "DOM", true }, { "someone", "DOM", false },
                  { "someone", "DOM", false } }, got)   -- the interface's and its IUnknown's
    assert.equal(0, wmi.pending())
    th.assert_server_idle()
    helpers.assert_all_released()
  end)
end)
