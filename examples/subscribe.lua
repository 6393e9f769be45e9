-- Event subscription: ExecNotificationQueryAsync. Prints process starts for
-- ten seconds (on Windows; Wine's WMI has no event provider and fails the query).
local wmi = require "wmi"

local svc = assert(wmi.connect())
local call = assert(svc:subscribe(
  "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'", {
    indicate = function(event)
      local process = event.TargetInstance
      print(("started: %6d  %s"):format(process.ProcessId, process.Name))
    end,
    status = function(ok, message)
      if not ok then print("subscription ended: " .. message) end
    end,
  }))
call:wait(10000)
call:close()                               -- cancels the subscription
svc:close()
