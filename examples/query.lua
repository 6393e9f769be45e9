-- Synchronous WMI: the operating system and the running processes.
local wmi = require "wmi"

local svc = assert(wmi.connect())          -- root\cimv2 on this machine
local os_info = assert(svc:query("SELECT Caption, Version FROM Win32_OperatingSystem"))[1]
print(("%s (%s)"):format(os_info.Caption, os_info.Version))

for process in svc:each("SELECT ProcessId, Name FROM Win32_Process") do
  print(("%6d  %s"):format(process.ProcessId, process.Name))
end
svc:close()
