-- Asynchronous WMI: ExecQueryAsync through a stub sink, delivered to Lua handlers.
local wmi = require "wmi"

local svc = assert(wmi.connect())
local apt = assert(wmi.apartment())        -- unsecapp where registered, else in-process
print(("apartment: %s, access %s"):format(apt.kind, apt.access))

local stub = assert(apt:stub {
  indicate = function(process)
    print(("%6d  %s"):format(process.ProcessId, process.Name))
  end,
  status = function(ok, message, hresult, _, call)
    print(ok and ("done: %d processes"):format(call.count)
             or ("failed: %s (0x%08X)"):format(message, hresult))
  end,
})
local call = assert(svc:query_async("SELECT ProcessId, Name FROM Win32_Process", stub))
call:wait()                                -- delivers the callbacks on this thread
assert(call:result())
svc:close()
apt:close()
