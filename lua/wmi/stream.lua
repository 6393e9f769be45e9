-- Streams: svc:stream(wql [, opts]) and call:objects(), a generic `for` over an
-- asynchronous call's objects. Async underneath: the call's indicate handler
-- appends to a buffer, and the iterator dispatches until an object or the final
-- status is there. Its fourth value is to-be-closed: `break` or an error in the
-- loop body cancels and closes the call.
--
-- A call started without an indicate handler (a table of handlers without one, or
-- a stub made from such a table) buffers its objects for call:objects(). The
-- buffer holds at most the call's queue_limit objects (default 100000, `false`:
-- none): one more cancels the call, and call:objects() then raises
-- WBEM_E_QUEUE_OVERFLOW after the objects it holds.
local core = require "wmi.core"

local Services, Call, Apartment = core.methods.Services, core.methods.Call, core.methods.Apartment
local dispatch, hresult, check_options = core.dispatch, core.hresult, core.check_options
local pack, unpack = table.pack, table.unpack

local QUEUE_LIMIT = 100000                -- the C core's default (CALL_QUEUE_LIMIT)
local WBEM_E_QUEUE_OVERFLOW = 0x80041061
local STREAM_OPTIONS = { "subscribe", "progress", "queue_limit", "queue_bytes" }
local SLICE = 1000                        -- ms per dispatch while waiting: re-checks the call

-- Errors raised by streams: err.message ("WBEM_E_... (0x...): text"), err.hresult.
local Error = { __name = "wmi.Error" }
Error.__index = Error
function Error.__tostring(e) return e.message end

local function raise(message, code)
  error(setmetatable({ message = message, hresult = code }, Error))
end

-- Buffers of the calls that have one, and the stubs that make such calls.
local buffers = setmetatable({}, { __mode = "k" })
local buffering_stubs = setmetatable({}, { __mode = "k" })

-- The indicate handler of every buffering call.
local function buffer_indicate(obj, call)
  local b = buffers[call]
  if not b or b.overflow or obj == nil then return end
  if b.limit and b.last - b.first + 1 >= b.limit then
    b.overflow = b.limit
    core.overflow(call)       -- its status says what the loop will raise
    return
  end
  b.last = b.last + 1
  b[b.last] = obj
end

-- queue_limit of an options table as the C core read it (it has checked it).
local function limit_of(opts)
  if type(opts) ~= "table" then return QUEUE_LIMIT end
  local limit = rawget(opts, "queue_limit")
  if limit == nil then return QUEUE_LIMIT end
  return limit or nil
end

-- A buffer is made before its call starts, and noted once it has: nothing but
-- the note allocates after the start, and if even that fails (out of memory) the
-- call is closed before the error goes on, so no call runs that its caller never got.
local function new_buffer(opts, owned)
  return { call = false, first = 1, last = 0, limit = limit_of(opts), owned = owned }
end

local function note_buffer(call, b)
  b.call = call
  local ok, err = pcall(rawset, buffers, call, b)
  if not ok then
    call:close()
    error(err, 0)
  end
end

-- Re-raises ERR from a C function called through pcall, naming it as luaL_argerror
-- would have for the call of NAME by the caller of the function calling rethrow.
local function rethrow(err, name)
  if type(err) == "string" then
    local n, msg = err:match("^bad argument #(%d+) to '[^']*' (%(.*%))$")
    if n then
      n = tonumber(n)
      local info = debug.getinfo(2, "n") or {}
      if info.namewhat == "method" then
        n = n - 1
        if n == 0 then error(("calling '%s' on bad self %s"):format(name, msg), 0) end
      end
      err = ("bad argument #%d to '%s' %s"):format(n, info.name or name, msg)
    end
  end
  error(err, 0)
end

-- Handlers for the C core: a table without indicate gets the buffering one (the
-- copy keeps every key: the C core refuses unknown ones).
local function buffering_handlers(handlers)
  if type(handlers) == "table" and handlers.indicate == nil then
    local copy = {}
    for k, v in next, handlers do copy[k] = v end
    copy.indicate = buffer_indicate
    return copy, true
  end
  return handlers, buffering_stubs[handlers] ~= nil
end

-- The *_async methods and subscribe: ARG is the position of their sink.
local original = {}
local async_methods = {
  query_async = 3, instances_async = 3, classes_async = 3, get_async = 3,
  put_async = 3, delete_async = 3, subscribe = 3, exec_async = 5,
}
for name, arg in pairs(async_methods) do
  local start = Services[name]
  original[name] = start
  Services[name] = function(...)
    local args = pack(...)
    local buffered
    args[arg], buffered = buffering_handlers(args[arg])
    local b = buffered and new_buffer(args[arg + 1], false)
    local ok, call, message, hr = pcall(start, unpack(args, 1, args.n))
    if not ok then rethrow(call, name) end
    if not call then return call, message, hr end
    if b then note_buffer(call, b) end
    return call
  end
end

do
  local make_stub = Apartment.stub
  function Apartment.stub(...)
    local args = pack(...)
    local buffered
    args[2], buffered = buffering_handlers(args[2])
    local r = pack(pcall(make_stub, unpack(args, 1, args.n)))
    if not r[1] then rethrow(r[2], "stub") end
    if buffered and r[2] then buffering_stubs[r[2]] = true end
    return unpack(r, 2, r.n)
  end
end

-- The iterator: the next buffered object, dispatching while there is none.
local function next_object(b)
  while true do
    if b.first <= b.last then
      local obj = b[b.first]
      b[b.first] = nil
      b.first = b.first + 1
      return obj
    end
    if b.overflow then
      local name, text = hresult(WBEM_E_QUEUE_OVERFLOW)
      raise(("%s (0x%08X): %s; %d objects waited in the stream's buffer; the call was cancelled")
        :format(name, WBEM_E_QUEUE_OVERFLOW, text, b.overflow), WBEM_E_QUEUE_OVERFLOW)
    end
    local call = b.call
    if call.done then
      local ok, message, code = call:result()
      if ok then return nil end
      raise(message, code)
    end
    dispatch(SLICE)
  end
end

-- The to-be-closed value: a call still running is cancelled and closed (so is a
-- stream's own call in any case); objects never handed out are released.
local Closer = {}
Closer.__index = Closer

-- Whether CALL is still running (reading call.done raises once it is closed).
local function running(call)
  local ok, done = pcall(function() return call.done end)
  return ok and done == false
end
function Closer.__close(b)
  for i = b.first, b.last do
    b[i]:close()
    b[i] = nil
  end
  b.first, b.last = 1, 0
  if b.owned or running(b.call) then b.call:close() end
end

-- for obj in call:objects() do ... end
function Call.objects(call)
  local b = buffers[call]
  if not b then
    error("calling 'objects' on bad self (wmi.Call started without an indicate handler expected, got "
      .. tostring(call) .. ")", 2)
  end
  return next_object, setmetatable(b, Closer), nil, b
end

-- for obj in svc:stream(wql [, opts]) do ... end
-- opts: subscribe = true (an event query: ExecNotificationQueryAsync), and the
-- async calls' progress and queue_limit. Raises when the call cannot start.
local query_async, subscribe = original.query_async, original.subscribe
function Services.stream(...)
  local svc, wql, opts = ...
  if type(wql) ~= "string" and type(wql) ~= "number" and type(wql) ~= "table" then
    local got = select("#", ...) < 2 and "no value" or type(wql)
    rethrow(("bad argument #2 to '?' (string expected, got %s)"):format(got), "stream")
  end
  if opts ~= nil and type(opts) ~= "table" then
    rethrow(("bad argument #3 to '?' (table expected, got %s)"):format(type(opts)), "stream")
  end
  local start, call_opts = query_async, opts
  if opts then
    check_options(opts, "stream", STREAM_OPTIONS)
    if rawget(opts, "subscribe") then start = subscribe end
    call_opts = {}
    for k, v in next, opts do if k ~= "subscribe" then call_opts[k] = v end end
  end
  local b = setmetatable(new_buffer(opts, true), Closer)
  local ok, call, message, code = pcall(start, svc, wql, { indicate = buffer_indicate }, call_opts)
  if not ok then rethrow(call, "stream") end
  if not call then raise(message, code) end
  note_buffer(call, b)
  return next_object, b, nil, b
end

return { Error = Error }
