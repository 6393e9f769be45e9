-- issue 21, item 1: CIM datetimes and intervals both ways (lua/wmi/datetime.lua),
-- checked against hand-computed values, then against Wine's real ones and the
-- test WMI server's 1601-based TIME_CREATED.
local wmi = require "wmi"
local testwmi = require "testwmi"
local th = require "spec.support.testwmi_helpers"
local dt = wmi.datetime

describe("wmi.datetime", function()
  it("stays callable: wmi.datetime(s) is wmi.datetime.parse(s)", function()
    local s = "20231129134530.123456-300"
    assert.same(dt.parse(s), dt(s))
    assert.same({ year = 2023, month = 11, day = 29, hour = 13, min = 45, sec = 30, usec = 123456,
                  utc_offset = -300 }, dt(s))
    assert.has_error(function() dt(1) end, "bad argument #1 to 'datetime' (string expected, got number)")
  end)

  it("formats what it parses, wildcards and intervals too", function()
    for _, s in ipairs { "00010101000000.000000+000", "99991231235959.999999-720",
                         "20240229120000.000001+330", "20240229120000.000001-150",
                         "2023****134530.******+000", "**************.******+***",
                         "99999999235959.999999:000", "00000000000000.000000:000",
                         "00000001******.******:000" } do
      assert.equal(s, dt.format(assert(dt.parse(s))))
    end
    assert.equal("2023**********.******+***", dt.format { year = 2023 })
    assert.equal("0000000102****.******:000", dt.format { days = 1, hour = 2 })
    assert.same({ days = 99999999, hour = 23, min = 59, sec = 59, usec = 999999, interval = true },
      dt.parse("99999999235959.999999:000"))
  end)

  it("converts to and from epoch seconds, offsets applied, microseconds kept", function()
    -- 2023-11-14T22:13:20Z is 1700000000.
    assert.equal("20231114221320.000000+000", dt.from_epoch(1700000000))
    assert.equal("20231115034320.123456+330", dt.from_epoch(1700000000.123456, 330))
    assert.equal("20231114194320.123456-150", dt.from_epoch(1700000000.123456, -150))
    assert.same({ 1700000000, 1700000000000000 }, { dt.to_epoch("20231115034320.000000+330") })
    local secs, usec = dt.to_epoch("20231114194320.123456-150")
    assert.same({ 1700000000123456, 1700000000.123456 }, { usec, secs })
    assert.equal("19700101053000.000000+330", dt.from_epoch(0, 330))
    assert.equal("19691231213000.000000-150", dt.from_epoch(0, -150))
    -- A microsecond just before an epoch second, negative times too.
    assert.equal("19691231235959.999999+000", dt.from_epoch(-0.000001))
    assert.equal(-1, select(2, dt.to_epoch("19691231235959.999999+000")))
  end)

  it("reaches year 1 and year 9999 exactly through integer microseconds", function()
    assert.same({ -62135596800, -62135596800000000 }, { dt.to_epoch("00010101000000.000000+000") })
    local _, last = dt.to_epoch("99991231235959.999999+000")
    assert.equal(253402300799999999, last)
    assert.equal("99991231235959.999999+000", dt.from_epoch_usec(last))
    assert.equal("00010101000000.000000+000", dt.from_epoch_usec(-62135596800000000))
    -- The same instants written at the edge of another offset.
    assert.equal("00010101023000.000000+150", dt.from_epoch_usec(-62135596800000000, 150))
    assert.has_error(function() dt.from_epoch_usec(-62135596800000000, -1) end,
      "bad argument #1 to 'from_epoch_usec' (out of range (years 1 to 9999))")
    assert.has_error(function() dt.from_epoch_usec(last + 1) end,
      "bad argument #1 to 'from_epoch_usec' (out of range (years 1 to 9999))")
  end)

  it("knows 29 February: in leap years only (2000 yes, 1900 and 2023 no)", function()
    assert.equal("20240229000000.000000+000", dt.from_epoch(1709164800))
    assert.equal("20240301000000.000000+000", dt.from_epoch(1709164800 + 86400))
    assert.equal(951782400, dt.to_epoch("20000229000000.000000+000"))
    assert.equal("20000229000000.000000+000", dt.format { year = 2000, month = 2, day = 29, hour = 0, min = 0,
      sec = 0, usec = 0, utc_offset = 0 })
    for _, y in ipairs { 1900, 2023 } do
      assert.has_error(function() dt.format { year = y, month = 2, day = 29 } end,
        ("bad argument #1 to 'format' (day 29 out of range (%d-02 has 28 days))"):format(y))
      local s = ("%d0229000000.000000+000"):format(y)
      assert.same({ nil, ('not a CIM datetime: "%s" (day 29 out of range (%d-02 has 28 days))'):format(s, y) },
        { dt.parse(s) })
    end
    -- Without a year, 29 February may be.
    assert.equal("****0229******.******+***", dt.format { month = 2, day = 29 })
  end)

  it("refuses impossible values: argument errors building, nil and a message parsing", function()
    local bad = {
      { { year = 2024, month = 13 }, "month 13 out of range (1 to 12)" },
      { { year = 2024, month = 4, day = 31 }, "day 31 out of range (2024-04 has 30 days)" },
      { { utc_offset = -721 }, "utc_offset -721 out of range (-720 to 840)" },
      { { utc_offset = 841 }, "utc_offset 841 out of range (-720 to 840)" },
      { { hour = 24 }, "hour 24 out of range (0 to 23)" },
      { { sec = 60 }, "sec 60 out of range (0 to 59)" },
      { { usec = 1000000 }, "usec 1000000 out of range (0 to 999999)" },
      { { year = 10000 }, "year 10000 out of range (0 to 9999)" },
      { { month = 1.5 }, "month is 1.5, not an integer" },
      { { day = "3" }, "day is string, not an integer" },
      { { days = 100000000 }, "days 100000000 out of range (0 to 99999999)" },
    }
    for _, case in ipairs(bad) do
      assert.has_error(function() dt.format(case[1]) end, "bad argument #1 to 'format' (" .. case[2] .. ")")
    end
    assert.same({ nil, 'not a CIM datetime: "20241301000000.000000+000" (month 13 out of range (1 to 12))' },
      { dt.parse("20241301000000.000000+000") })
    assert.same({ nil, 'not a CIM datetime: "20240101000000.000000+900" (utc_offset 900 out of range (-720 to 840))' },
      { dt.parse("20240101000000.000000+900") })
    assert.has_error(function() dt.from_epoch(0, 841) end,
      "bad argument #2 to 'from_epoch' (utc_offset 841 out of range (-720 to 840))")
    assert.has_error(function() dt.from_epoch(0, 1.5) end,
      "bad argument #2 to 'from_epoch' (integer (minutes east of UTC) expected, got float)")
    assert.has_error(function() dt.from_epoch("0") end, "bad argument #1 to 'from_epoch' (number expected, got string)")
    assert.has_error(function() dt.from_epoch(0 / 0) end, "bad argument #1 to 'from_epoch' (out of range)")
    assert.has_error(function() dt.interval(-0.000001) end, "bad argument #1 to 'interval' (negative interval)")
    assert.has_error(function() dt.interval_usec(-1) end, "bad argument #1 to 'interval_usec' (negative interval)")
    assert.has_error(function() dt.interval_usec(8640000000000000000) end,
      "bad argument #1 to 'interval_usec' (interval beyond 99999999 days)")
    assert.has_error(function() dt.format(nil) end, "bad argument #1 to 'format' (table expected, got nil)")
    assert.has_error(function() dt.to_epoch(42) end, "bad argument #1 to 'to_epoch' (string expected, got number)")
    assert.has_error(function() dt.from_1601(-1) end, "bad argument #1 to 'from_1601' (negative count)")
    assert.has_error(function() dt.from_1601(1.5) end,
      "bad argument #1 to 'from_1601' (integer or string expected, got float)")
    assert.has_error(function() dt.from_1601("12a") end,
      "bad argument #1 to 'from_1601' (not a count of 100 ns (decimal digits up to 2^63-1))")
  end)

  it("writes RFC 3339 in the datetime's own offset", function()
    assert.equal("2024-02-29T23:59:59.000001-02:30", dt.to_rfc3339("20240229235959.000001-150"))
    assert.equal("2024-02-29T05:30:00.000000+05:30", dt.to_rfc3339("20240229053000.000000+330"))
    assert.equal("0001-01-01T00:00:00.000000Z", dt.to_rfc3339("00010101000000.000000+000"))
    assert.equal("9999-12-31T23:59:59.999999+14:00", dt.to_rfc3339("99991231235959.999999+840"))
    assert.same({ nil, 'month left out (\'*\'): "2023**********.******+***"' },
      { dt.to_rfc3339("2023**********.******+***") })
    assert.same({ nil, 'an interval, not a point in time: "00000001000000.000000:000"' },
      { dt.to_rfc3339("00000001000000.000000:000") })
    assert.same({ nil, 'not a CIM datetime: "yesterday"' }, { dt.to_epoch("yesterday") })
  end)

  it("converts intervals: seconds both ways, 99999999 days exactly", function()
    assert.equal("00000001020304.000005:000", dt.interval(93784.000005))
    assert.equal("00000000000000.000000:000", dt.interval(0))
    assert.same({ 93784.000005, 93784000005 }, { dt.interval_seconds("00000001020304.000005:000") })
    assert.same({ 86400, 86400000000 }, { dt.interval_seconds("00000001000000.000000:000") })
    local longest = 99999999 * 86400 * 1000000 + 86399999999
    assert.equal("99999999235959.999999:000", dt.interval_usec(longest))
    assert.equal(longest, select(2, dt.interval_seconds("99999999235959.999999:000")))
    assert.equal("99999999000000.000000:000", dt.interval(99999999 * 86400))
    assert.same({ nil, 'a point in time, not an interval: "20240229000000.000000+000"' },
      { dt.interval_seconds("20240229000000.000000+000") })
    assert.same({ nil, 'usec left out (\'*\'): "00000001000000.******:000"' },
      { dt.interval_seconds("00000001000000.******:000") })
  end)

  it("converts 100 ns counters since 1601 (FILETIME), text or integer", function()
    assert.same({ 0, 0 }, { dt.from_1601("116444736000000000") })
    -- 1601-01-01 itself, and a tenth of a microsecond dropped, not rounded.
    assert.same({ -11644473600, -11644473600000000 }, { dt.from_1601(0) })
    local secs, usec = dt.from_1601(133444736001234567)
    assert.equal(1700000000123456, usec)
    assert.is_true(math.abs(secs - 1700000000.1234567) < 1e-6)
    assert.equal("20231114221320.123456+000", dt.from_epoch_usec(usec))
  end)
end)

describe("wmi.datetime against real values", function()
  local svc
  setup(function() svc = assert(wmi.connect()) end)
  teardown(function() svc:close() end)

  it("round-trips Win32_OperatingSystem's LastBootUpTime, a time before now", function()
    local os_info = svc:query("SELECT LastBootUpTime, InstallDate FROM Win32_OperatingSystem")[1]
    local boot = os_info.LastBootUpTime
    local t = assert(dt(boot))
    assert.equal(boot, dt.format(t))
    local secs, usec = dt.to_epoch(boot)
    assert.equal(boot, dt.from_epoch_usec(usec, t.utc_offset))
    assert.equal(boot, dt.from_epoch(secs, t.utc_offset))
    -- Booted (the prefix's wineserver started) before now, and today.
    assert.is_true(secs <= os.time() + 1 and secs > os.time() - 86400, ("boot %s, now %d"):format(boot, os.time()))
    -- Wine's fixed InstallDate: 2014-01-01.
    assert.equal("2014-01-01T00:00:00.000000Z", dt.to_rfc3339(os_info.InstallDate))
  end)

  it("reads LocalDateTime, whose offset Wine writes in two digits (a Wine limitation)", function()
    local now = svc:query("SELECT LocalDateTime FROM Win32_OperatingSystem")[1].LocalDateTime
    -- Wine's wbemprox formats the offset with %+03d ("+00"); WMI writes "+000".
    local text, sign, off = now:match("^(%d+%.%d+)([+-])(%d+)$")
    assert.equal(2, #off)
    assert.is_nil(dt(now))
    local fixed = ("%s%s%03d"):format(text, sign, tonumber(off))
    local secs = assert(dt.to_epoch(fixed))
    assert.is_true(math.abs(secs - os.time()) <= 2, ("%s is %s, os.time() %d"):format(fixed, secs, os.time()))
    assert.equal(fixed, dt.from_epoch(secs, dt(fixed).utc_offset))
  end)

  it("has no Win32_Process.CreationDate to compare (a Wine limitation)", function()
    local process = svc:query("SELECT * FROM Win32_Process")[1]
    assert.is_nil(process:cimtype("CreationDate"))
    assert.equal("datetime", svc:get("Win32_OperatingSystem"):cimtype("LastBootUpTime"))
  end)
end)

describe("wmiq --rfc3339 (wmi.cli in-process)", function()
  local cli = require "wmi.cli"
  local helpers = require "spec.helpers"

  local function json(...)
    local out, err = helpers.output(), helpers.output()
    local status = cli.main({ "-f", "json", ... }, out, err, { width = false })
    assert.same({ 0, "" }, { status, err:text() })
    return out:text()
  end

  it("writes datetimes as RFC 3339 when asked, as WMI's text by default", function()
    local wql = "SELECT InstallDate, LastBootUpTime, Version FROM Win32_OperatingSystem"
    local svc = assert(wmi.connect())
    local row = svc:query(wql)[1]
    svc:close()
    local plain, rfc = json(wql), json("--rfc3339", wql)
    assert.truthy(plain:find('"InstallDate":"20140101000000.000000+000"', 1, true), plain)
    assert.truthy(rfc:find('"InstallDate":"2014-01-01T00:00:00.000000Z"', 1, true), rfc)
    assert.truthy(rfc:find(('"LastBootUpTime":"%s"'):format(dt.to_rfc3339(row.LastBootUpTime)), 1, true), rfc)
    -- Other strings as they are.
    assert.truthy(rfc:find(('"Version":"%s"'):format(row.Version), 1, true), rfc)
  end)
end)

describe("wmi.datetime.from_1601 against the test WMI server's events", function()
  local svc
  th.connection_per_test(function(s) svc = s end)

  it("turns an event's TIME_CREATED into the time it was made", function()
    testwmi.configure { event_interval = 10 }
    local before = os.time()
    local created
    local call = assert(svc:subscribe(
      "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'",
      function(ev) created = created or ev.TIME_CREATED end))
    assert.is_true(th.until_true(function() return created ~= nil end, 10000))
    call:cancel()
    assert.is_true(call:wait(10000))
    local after = os.time()
    assert.equal("integer", math.type(created))
    local secs, usec = dt.from_1601(created)
    -- os.time() counts whole seconds: the event lies within [before, after + 1).
    assert.is_true(secs >= before and secs < after + 1, ("%s not in [%d, %d]"):format(secs, before, after + 1))
    assert.equal((created - 116444736000000000) // 10, usec)
  end)
end)
