-- `make stress`: the long reliability runs, bounded in time, stopping by themselves.
--   1. 10,000 sequential async calls on one connection: wmi.stats() all zero after,
--      private bytes within 10% of the value after the first 1,000.
--   2. The seeded lifecycle stress, 1,000 iterations (LUAWMI_SEED=N to reproduce).
local wmi = require "wmi"
local helpers = require "spec.helpers"
local stress = require "spec.support.stress"

local svc = assert(wmi.connect())
local delivered, baseline = 0, nil
local started = os.clock()
for i = 1, 10000 do
  local call = assert(svc:query_async("SELECT * FROM Win32_BIOS", function() delivered = delivered + 1 end))
  assert(call:wait(10000), "a call did not finish")
  assert(call:result())
  if i == 1000 then
    collectgarbage()
    collectgarbage()
    baseline = wmi.stats().private_bytes
  end
end
svc:close()
helpers.assert_all_released()
local final = wmi.stats().private_bytes
local growth = (final - baseline) / baseline
print(("10000 sequential async calls: %d objects, %.1f s, private bytes %d after 1,000 and %d after 10,000 (%+.1f%%)")
  :format(delivered, os.clock() - started, baseline, final, growth * 100))
assert(delivered == 10000, "every call delivers Wine's one BIOS")
assert(growth <= 0.10, "private bytes grew by more than 10%")

local seed = tonumber(os.getenv("LUAWMI_SEED")) or os.time()
print(("lifecycle stress: seed %d, 1000 iterations"):format(seed))
local result = stress(seed, 1000)
helpers.assert_all_released()
print(("lifecycle stress: %d started, %d refused by Wine's one-call slot, %d objects, %d statuses, "
  .. "%d cancelled, %d closed, %d handler errors"):format(result.started, result.refused, result.indicated,
  result.statuses, result.cancelled, result.closed, result.handler_errors))
print("stress: ok")
