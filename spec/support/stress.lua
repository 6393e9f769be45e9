-- Seeded random lifecycle stress: random interleavings of starting async calls,
-- dropping references, collecting garbage, cancelling and closing calls, services
-- and apartments, handlers that throw, cancel, start calls or dispatch again.
-- Used by spec/07-reliability_spec.lua (100 iterations) and `make stress` (1,000).
--
-- Wine corrupts memory when two queries of one class run at once, so a class is
-- only ever queried by one call at a time; an object is read inside its handler,
-- before the next query of its class can refill Wine's table.
local wmi = require "wmi"

local CLASSES = { "Win32_Process", "Win32_Service", "Win32_OperatingSystem", "Win32_BIOS",
                  "Win32_ComputerSystem", "Win32_Processor" }

return function(seed, iterations, log)
  log = log or function() end
  local random = math.random
  math.randomseed(seed)

  local result = { started = 0, refused = 0, statuses = 0, indicated = 0, handler_errors = 0,
                   cancelled = 0, closed = 0 }
  local services, apartments, calls = {}, {}, {}   -- live ones (calls: records)
  local busy = {}                                   -- class -> record in flight

  local function pick(t)
    if #t > 0 then return t[random(#t)], #t end
  end
  local function remove(t, value)
    for i = #t, 1, -1 do if t[i] == value then table.remove(t, i) end end
  end
  local function free_class()
    local free = {}
    for _, c in ipairs(CLASSES) do if not busy[c] then free[#free + 1] = c end end
    return pick(free)
  end

  -- A record outlives its call object: it says how the call must end.
  local start_call
  local function finish(record, how)
    if record.ended then return end
    record.ended = how
    if busy[record.class] == record then busy[record.class] = nil end
  end

  local function handlers(record)
    return {
      indicate = function(obj, call)
        assert(not record.ended, "indicate after the call ended")
        assert(obj:class() == record.class, "an object of another call")
        record.count = record.count + 1
        result.indicated = result.indicated + 1
        local dice = random(100)
        if dice <= 3 then
          call:cancel()
        elseif dice <= 5 then
          result.handler_errors = result.handler_errors + 1
          error("handler error " .. record.id)
        elseif dice <= 7 then
          start_call()
        elseif dice <= 9 then
          wmi.dispatch(0)
        end
      end,
      status = function(ok, _, hresult, _, call)
        assert(not record.ended, "a status after the call ended")
        record.status_seen = true
        result.statuses = result.statuses + 1
        assert(call.count == record.count, "call.count differs from the indicated objects")
        if not ok then assert(hresult == 0x80041032 or hresult == 0x80041001, ("status 0x%08X"):format(hresult)) end
        finish(record, "status")
        if random(100) <= 5 then
          result.handler_errors = result.handler_errors + 1
          error("status handler error " .. record.id)
        end
      end,
    }
  end

  function start_call()
    local svc = pick(services)
    local class = free_class()
    if not svc or not class then return end
    local record = { id = result.started + result.refused + 1, class = class, count = 0 }
    local sink = handlers(record)
    local apt = pick(apartments)
    if apt and random(2) == 1 then
      local stub = apt:stub(sink)
      if not stub then return end
      sink, record.apt = stub, apt
    end
    local call = svc:query_async("SELECT * FROM " .. class, sink)
    if not call then
      -- Wine allows one call in flight per services: WBEM_E_FAILED is a fair answer.
      result.refused = result.refused + 1
      return
    end
    result.started = result.started + 1
    record.call, record.svc = call, svc
    busy[class] = record
    calls[#calls + 1] = record
    log(("start %d %s"):format(record.id, class))
  end

  local function end_silently(record, how)
    finish(record, how)
    result.closed = result.closed + 1
  end

  local actions = {
    start_call, start_call, start_call,
    function() -- drop a reference: the anchored call must still deliver
      local record = pick(calls)
      if record then record.call = nil end
    end,
    function() collectgarbage() end,
    function()
      local record = pick(calls)
      if record and record.call then
        record.call:cancel()
        result.cancelled = result.cancelled + 1
      end
    end,
    function()
      local record = pick(calls)
      if record and record.call and not record.ended then
        record.call:close()
        record.call = nil
        end_silently(record, "closed")
      end
    end,
    function() -- close a services: its calls end unheard
      local svc = pick(services)
      if not svc then return end
      for _, record in ipairs(calls) do
        if record.svc == svc and not record.ended and not record.status_seen then end_silently(record, "svc") end
      end
      svc:close()
      remove(services, svc)
    end,
    function()
      local apt = pick(apartments)
      if not apt then return end
      for _, record in ipairs(calls) do
        if record.apt == apt and not record.ended then end_silently(record, "apartment") end
      end
      apt:close()
      remove(apartments, apt)
    end,
    function()
      if #services < 3 then services[#services + 1] = assert(wmi.connect()) end
      if #apartments < 2 then apartments[#apartments + 1] = assert(wmi.apartment()) end
    end,
    function()
      local ok, err = pcall(wmi.dispatch, random(0, 20))
      if not ok then assert(tostring(err):find("handler error", 1, true), err) end
    end,
  }

  actions[#actions]()  -- some services and apartments to begin with
  for _ = 1, iterations do
    actions[random(#actions)]()
  end

  -- Drain: every call ends, handlers may still throw.
  for _ = 1, 1000 do
    local ok, err = pcall(wmi.run, 5000)
    if ok and err then break end
    if not ok then assert(tostring(err):find("handler error", 1, true), err) end
  end
  assert(wmi.pending() == 0, "calls still pending after the drain")
  for _, svc in ipairs(services) do svc:close() end
  for _, apt in ipairs(apartments) do apt:close() end
  for _, record in ipairs(calls) do
    assert(record.ended, ("call %d never ended"):format(record.id))
    if record.call then
      assert(record.call.done, ("call %d not done"):format(record.id))
      record.call:close()
    end
  end
  services, apartments, calls, busy = nil, nil, nil, nil
  collectgarbage()
  collectgarbage()
  return result
end
