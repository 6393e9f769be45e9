-- Bounded memory: a call whose objects nobody dispatches stops at its queue
-- limit; and Wine's one async slot per connection does not block a second call
-- started before the first one's status was dispatched.
local wmi = require "wmi"
local helpers = require "spec.helpers"

-- Waits, without dispatching, for the queue to fill and then stop growing for
-- 300 ms (os.clock is wall time on Windows).
local function settle_queue()
  local start = os.clock()
  while wmi.stats().queued == 0 and os.clock() - start < 10 do end
  local last, since = -1, os.clock()
  while os.clock() - since < 0.3 do
    local now = wmi.stats().queued
    if now ~= last then last, since = now, os.clock() end
  end
  return last
end

describe("bounded memory", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  it("cancels a call at its queue limit and says why", function()
    local services = #svc:query("SELECT * FROM Win32_Service")
    assert.is_true(services > 5)
    local overflows = wmi.stats().overflows
    local seen, status = 0, nil
    local call = assert(svc:query_async("SELECT * FROM Win32_Service", {
      indicate = function() seen = seen + 1 end,
      status = function(...) status = { ... } end,
    }, { queue_limit = 5 }))
    assert.equal(6, settle_queue())              -- 5 objects and the overflow status
    assert.equal(overflows + 1, wmi.stats().overflows)
    assert.is_true(call:wait(10000))
    assert.equal(5, seen)
    assert.equal(5, call.count)
    assert.is_false(status[1])
    assert.equal(0x80041061, status[3])
    assert.matches("^WBEM_E_QUEUE_OVERFLOW %(0x80041061%): .*5 callbacks %(%d+ bytes%) waited for dispatch "
      .. "%(queue_limit 5, queue_bytes 67108864%)", status[2])
    helpers.assert_fail(0x80041061, "WBEM_E_QUEUE_OVERFLOW", call:result())
    -- The connection goes on.
    local again = assert(svc:query_async("SELECT * FROM Win32_Service", function() end, { queue_limit = false }))
    assert.is_true(again:wait(10000))
    assert.equal(services, again.count)
  end)

  it("checks the queue_limit option", function()
    for _, bad in ipairs { 0, -1, 1.5, "x", true } do
      assert.has_error(function()
        svc:query_async("SELECT * FROM Win32_BIOS", function() end, { queue_limit = bad })
      end, "bad option 'queue_limit' (positive integer or false expected)")
    end
  end)
end)

describe("Wine's one async slot per connection", function()
  it("lets a second call start before the first one's status was dispatched", function()
    local svc = assert(wmi.connect())
    local services = #svc:query("SELECT * FROM Win32_Service")
    local first = assert(svc:query_async("SELECT * FROM Win32_Service", function() end))
    assert.equal(services + 1, settle_queue())   -- the provider finished; nothing dispatched
    local second = assert(svc:query_async("SELECT * FROM Win32_BIOS", function() end))
    assert.is_true(wmi.run(10000))
    assert.equal(services, first.count)
    assert.is_true(first:result())
    assert.equal(1, second.count)
    assert.is_true(second:result())
    first:close()
    second:close()
    svc:close()
    helpers.assert_all_released()
  end)
end)
