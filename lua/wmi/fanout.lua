-- wmi.fanout(hosts, request, opts): one request to many hosts at once, on the Lua
-- thread. Each host goes connect_async -> request (an async call) -> done, under a
-- timer covering both; at most `throttle` hosts are in flight. All of it happens in
-- handlers run by wmi.dispatch (or wmi.run, run:wait, run:each, any call:wait): a
-- finishing host starts the next one, so a slow or dead host delays nobody beyond
-- its timeout. Nothing here waits on a host: the C core runs a host's connect, its
-- call's start and cancel, and the release of its Services on the thread pool (in
-- an STA the Services' last release stays on the Lua thread). REQUEST: a WQL
-- string or a query table (query_async), or function(svc, handlers, host) --> call, as an async
-- method returns it.
local core = require "wmi.core"
local wql = require "wmi.wql"

local TIMED_OUT = 0x80041069        -- WBEM_E_TIMED_OUT
local CANCELLED = 0x80041032        -- WBEM_E_CALL_CANCELLED
local FAILED = 0x80041001           -- WBEM_E_FAILED
local CALL_META = debug.getregistry()["wmi.Call"]

-- Options passed on to connect_async for every host (context: ConnectServer's, and
-- a WQL request's query_async's too).
local CONNECT_OPTIONS = { "namespace", "user", "password", "authority", "locale", "authentication",
                          "impersonation", "apartment", "locator", "insecure", "context", "privileges" }

local FANOUT_OPTIONS = { "throttle", "timeout", "indicate", "done", table.unpack(CONNECT_OPTIONS) }

local function argerror(n, func, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, func, msg), 3)
end

local function opterror(name, msg)
  error(("bad option '%s' to 'fanout' (%s)"):format(name, msg), 3)
end

-- "WBEM_E_TIMED_OUT (0x80041069): Operation timed out (...)", as the C core words it.
local function failure(hresult, detail)
  local name, text = core.hresult(hresult)
  return ("%s (0x%08X): %s (%s)"):format(name, hresult, text, detail)
end

local function milliseconds(opts, name, default)
  local v = rawget(opts, name)
  if v == nil then return default end
  if math.type(v) ~= "integer" or v <= 0 or v >= 2^31 then
    opterror(name, "positive integer of milliseconds expected, got " .. tostring(v))
  end
  return v
end

local Run = {}
Run.__index = Run
local PRIVATE = setmetatable({}, { __mode = "k" })    -- run -> its state

local function state_of(run, func)
  local s = PRIVATE[run]
  if not s then error(("bad argument #1 to '%s' (fan-out run expected)"):format(func), 3) end
  return s
end

-- Closes what a host holds (its timer, connection attempt, call and services).
local function release(h)
  for _, key in ipairs { "timer", "conn", "call", "svc" } do
    local obj = h[key]
    h[key] = nil
    if obj then obj:close() end
  end
end

-- Starts queued hosts while fewer than `throttle` are in flight.
local start_host, finish

-- A start that raises mid-run (an apartment option closed meanwhile; names and
-- options were checked by wmi.fanout) ends that host with WBEM_E_FAILED and the
-- error text; the others still start, then the first such error reaches the
-- caller of the wait. The flag is reset however this ends.
local function pump(s)
  if s.pumping then return end
  s.pumping = true
  local _ <close> = s.unpump
  local raised
  while not s.cancelled and s.active < s.throttle and s.next <= #s.hosts do
    local h = s.hosts[s.next]
    s.next = s.next + 1
    local ok, err = pcall(start_host, s, h)
    if not ok then
      raised = raised or err
      finish(s, h, false, failure(FAILED, tostring(err)), FAILED)
    end
  end
  if raised then error(raised, 0) end
end

-- The one end of a host, whatever ended it: reported once, then the next starts
-- (even when done raises: s.pumper's close). Handlers run through core.call: one
-- that yields raises, as from the C core (run:cancel runs them in the caller's coroutine).
function finish(s, h, ok, message, hresult)
  if h.state == "done" then return end
  local was_active = h.state ~= "queued"
  h.state = "done"
  release(h)
  h.ok, h.message, h.hresult = ok and true or false, message, hresult
  if was_active then s.active = s.active - 1 end
  s.finished = s.finished + 1
  if s.finished == #s.hosts then s.run.done = true end
  local _ <close> = s.pumper
  if s.done then core.call(s.done, h.name, h.ok, message, hresult, h.count) end
end

local function on_object(s, h, obj)
  h.count = h.count + 1
  if s.indicate then core.call(s.indicate, obj, h.name) end
  if s.buffer then
    local b = s.buffer
    b.last = b.last + 1
    b[b.last] = { h.name, obj }
  end
end

local function on_connected(s, h, svc, message, hresult)
  if h.state ~= "connecting" then return end
  h.conn:close()                        -- done: its copies of the options (a password) go now
  h.conn = nil
  if not svc then return finish(s, h, false, message, hresult) end
  h.svc, h.state = svc, "calling"
  local handlers = {
    indicate = function(obj) on_object(s, h, obj) end,
    status = function(ok, msg, code) finish(s, h, ok, msg, code) end,
  }
  local call, msg, code
  if type(s.request) == "string" then
    call, msg, code = svc:query_async(s.request, handlers, { context = s.connect.context })
  else
    -- A request function that raises (a bug, a misuse) ends its host with
    -- WBEM_E_FAILED and the error text, and then the error goes on out of the wait,
    -- as any handler's does: the run stays whole, and goes on at the next wait.
    local ran
    ran, call, msg, code = pcall(core.call, s.request, svc, handlers, h.name)
    if not ran then
      finish(s, h, false, failure(FAILED, tostring(call)), FAILED)
      error(call, 0)
    end
  end
  -- Only a wmi.Call is the host's to close and wait for: anything else ends the
  -- host now, with a message and an HRESULT (a nil's own when it gave them).
  local is_call = getmetatable(call) == CALL_META
  if h.state ~= "calling" then          -- finished meanwhile (the request function ran the call)
    if is_call then call:close() end
    return
  end
  if is_call then
    h.call = call
  elseif call == nil and msg ~= nil and math.type(code) == "integer" then
    finish(s, h, false, msg, code)
  else
    finish(s, h, false, failure(FAILED, ("the request returned %s, not a wmi.Call"):format(
      call == nil and "nil" or type(call))), FAILED)
  end
end

-- Misuse in the connect options raises from the first host's connect_async, inside
-- wmi.fanout itself, before anything is held.
function start_host(s, h)
  local o = {}
  for k, v in pairs(s.connect) do o[k] = v end
  o.host = h.name
  local conn, msg, code = core.connect_async(o, function(svc, m, c) on_connected(s, h, svc, m, c) end)
  h.state = "connecting"
  s.active = s.active + 1
  if not conn then return finish(s, h, false, msg, code) end
  h.conn = conn
  -- A host without its time limit would be a promise broken: a timer that cannot
  -- be made ends the host.
  local timer
  timer, msg, code = core.timer(s.timeout, function()
    h.timer = nil
    finish(s, h, false, failure(TIMED_OUT, ("no result within %d ms"):format(s.timeout)), TIMED_OUT)
  end)
  if not timer then return finish(s, h, false, msg, code) end
  h.timer = timer
end

-- A wait with nothing of the run in flight can only be one from the run's own
-- done handler, before the next host starts: that start happens here, or the
-- wait raises (inside a start) rather than waiting forever.
local function progress(s, func)
  if s.active > 0 or s.run.done then return end
  pump(s)
  if s.active == 0 and not s.run.done then
    error(("bad call to '%s' (nothing of the run is in flight: called from inside its start)"):format(func), 3)
  end
end

--- Waits until every host is done, dispatching meanwhile.
-- Each dispatch gets the time left, so the limit holds however fast objects arrive.
-- @tparam[opt] number ms at most this long
-- @treturn boolean true when every host is done, false on timeout
function Run:wait(ms)
  state_of(self, "wait")
  if ms ~= nil and type(ms) ~= "number" then argerror(1, "wait", "number expected, got " .. type(ms)) end
  if ms and (ms < 0 or ms ~= ms) then argerror(1, "wait", "non-negative milliseconds expected") end
  local deadline = ms and core.ticks() + ms
  while not self.done do
    local left = deadline and deadline - core.ticks()
    if left and left <= 0 then break end
    progress(PRIVATE[self], "wait")
    if not self.done then core.dispatch(left and math.ceil(left) or math.huge) end
  end
  return self.done
end

--- Cancels the run: every host not yet done ends with WBEM_E_CALL_CANCELLED (reported
-- through done), and everything the run holds is released. Idempotent.
function Run:cancel()
  local s = state_of(self, "cancel")
  if s.cancelled then return end
  s.cancelled = true
  local message = failure(CANCELLED, "the fan-out was cancelled")
  -- Every host ends, even when done raises: the first error goes on afterwards.
  local raised
  for _, h in ipairs(s.hosts) do
    if h.state ~= "done" then
      local ok, err = pcall(finish, s, h, false, message, CANCELLED)
      if not ok then raised = raised or err end
    end
  end
  if raised then error(raised, 0) end
end

--- The results of the hosts done so far.
-- @treturn table `{ [host] = { ok =, message =, hresult =, count = } }`
function Run:results()
  local s = state_of(self, "results")
  local out = {}
  for _, h in ipairs(s.hosts) do
    if h.state == "done" then
      out[h.name] = { ok = h.ok, message = h.message, hresult = h.hresult, count = h.count }
    end
  end
  return out
end

--- The objects with their host, as they come: `for host, obj in run:each() do ... end`.
-- A run without an indicate handler keeps them for this. Leaving the loop early
-- (break, error) cancels the run: its fourth value is to-be-closed, as io.lines'.
-- @return iterator, nil, nil, closer
function Run:each()
  local s = state_of(self, "each")
  if not s.buffer then error("bad call to 'each' (the run has an indicate handler)", 2) end
  local b = s.buffer
  local function next_object()
    while true do
      if b.first <= b.last then
        local item = b[b.first]
        b[b.first] = nil
        b.first = b.first + 1
        return item[1], item[2]
      end
      if self.done then return nil end
      progress(s, "each")
      if not self.done then core.dispatch(math.huge) end
    end
  end
  local closer = setmetatable({}, { __close = function() if not self.done then self:cancel() end end })
  return next_object, nil, nil, closer
end

function Run:__tostring()
  local s = PRIVATE[self]
  return ("wmi.Fanout (%d hosts: %d done, %d in flight)"):format(#s.hosts, s.finished, s.active)
end

--- A fan-out run: one request to many hosts, from `fanout`.
-- `run.done` is true once every host has been reported.
-- @type Run

--- Whether every host has been reported.
-- @field Run.done

--- Sends one request to many hosts at once, on the Lua thread.
-- Each host goes connect_async -> request -> done under a timer covering both; at
-- most `throttle` hosts are in flight. Handlers run in `dispatch`, `run`,
-- `Run:wait` or `Run:each`. Each host is reported once through `done`.
-- @function fanout
-- @tparam {string,...} hosts host names (duplicates, compared case-insensitively, are one host)
-- @tparam string|function request a WQL query, or
-- `function(svc, handlers, host) return svc:xxx_async(..., handlers) end`
-- @tparam[opt] table opts and every option of `connect` (for every host)
-- @tparam[opt=32] integer opts.throttle hosts in flight at once
-- @tparam[opt=30000] integer opts.timeout milliseconds per host, connect included; then WBEM_E_TIMED_OUT
-- @tparam[opt] function opts.indicate `indicate(obj, host)`; without it the objects wait for `Run:each`
-- @tparam[opt] function opts.done `done(host, ok, message, hresult, count)`
-- @treturn Run
local function fanout(hosts, request, opts)
  if type(hosts) ~= "table" then argerror(1, "fanout", "table of host names expected, got " .. type(hosts)) end
  local rt = type(request)
  if rt == "table" then              -- a query table: its text, checked now
    local why
    request, why = wql.build(request)
    if not request then argerror(2, "fanout", why) end
    rt = "string"
  end
  if rt ~= "string" and rt ~= "number" and rt ~= "function" then
    argerror(2, "fanout", "WQL string, query table or function expected, got " .. rt)
  end
  -- Now: at each host's start it would raise in a handler, and every host time out.
  if rt == "string" and not utf8.len(request) then argerror(2, "fanout", "invalid UTF-8") end
  if opts ~= nil and type(opts) ~= "table" then argerror(3, "fanout", "table expected, got " .. type(opts)) end
  opts = opts or {}
  local ok, err = pcall(core.check_options, opts, "fanout", FANOUT_OPTIONS)
  if not ok then error(err, 2) end
  local throttle = rawget(opts, "throttle")
  if throttle == nil then throttle = 32 end
  if math.type(throttle) ~= "integer" or throttle < 1 then
    opterror("throttle", "positive integer expected, got " .. tostring(throttle))
  end
  local indicate, done = rawget(opts, "indicate"), rawget(opts, "done")
  if indicate ~= nil and type(indicate) ~= "function" then opterror("indicate", "function expected") end
  if done ~= nil and type(done) ~= "function" then opterror("done", "function expected") end

  local s = {
    hosts = {}, next = 1, active = 0, finished = 0, throttle = throttle,
    timeout = milliseconds(opts, "timeout", 30000),
    request = rt == "number" and tostring(request) or request,
    indicate = indicate, done = done, connect = {},
    buffer = not indicate and { first = 1, last = 0 } or nil,
  }
  for _, name in ipairs(CONNECT_OPTIONS) do s.connect[name] = rawget(opts, name) end
  -- Duplicates are one host: names compare as Windows compares host names.
  local seen = {}
  for i, name in ipairs(hosts) do
    if type(name) == "number" then name = tostring(name) end
    if type(name) ~= "string" or name == "" then
      argerror(1, "fanout", ("host #%d: non-empty string expected, got %s"):format(i, tostring(name)))
    end
    -- As connect_async would refuse it, but now: mid-run it would raise in a handler.
    if not utf8.len(name) then argerror(1, "fanout", ("host #%d: invalid UTF-8"):format(i)) end
    local valid, why = core.valid_host(name)
    if not valid then argerror(1, "fanout", ("host #%d: %s"):format(i, why)) end
    local key = name:lower()
    if not seen[key] then
      seen[key] = true
      s.hosts[#s.hosts + 1] = { name = name, state = "queued", count = 0 }
    end
  end

  local run = setmetatable({ done = #s.hosts == 0 }, Run)
  s.run = run
  s.unpump = setmetatable({}, { __close = function() s.pumping = false end })
  s.pumper = setmetatable({}, { __close = function() pump(s) end })
  -- The first start, outside pump's guard: misuse of the connect options (the same
  -- for every host) raises from here, with nothing started.
  if s.hosts[1] then
    s.next = 2
    start_host(s, s.hosts[1])
  end
  PRIVATE[run] = s
  pump(s)
  return run
end

return fanout
