-- Many machines at once: one query sent to every host of a list, at most `throttle`
-- hosts in flight, each host given `timeout` ms (connect included), each reported
-- once. Usage: scripts/lua examples/fanout.lua [host ...]   (default: this machine)
--
-- On a real fleet, give credentials (user/password/authority) and make sure WMI is
-- reachable (the README's "Many machines at once" says what Windows needs).
local wmi = require "wmi"

local hosts = { ... }
if #hosts == 0 then hosts = { "localhost" } end

local run = wmi.fanout(hosts, "SELECT Caption, Version, LastBootUpTime FROM Win32_OperatingSystem", {
  throttle = 32,
  timeout = 20000,
  indicate = function(os, host)
    local boot = wmi.datetime(os.LastBootUpTime or "")
    print(("%-20s %s %s, up since %s"):format(host, os.Caption, os.Version,
      boot and ("%04d-%02d-%02d"):format(boot.year, boot.month, boot.day) or "?"))
  end,
  done = function(host, ok, message)
    if not ok then io.stderr:write(("%-20s failed: %s\n"):format(host, message)) end
  end,
})
run:wait()

local total, failed = 0, 0
for _, r in pairs(run:results()) do
  total = total + 1
  if not r.ok then failed = failed + 1 end
end
print(("%d hosts, %d failed"):format(total, failed))
os.exit(failed == 0 and 0 or 1)
