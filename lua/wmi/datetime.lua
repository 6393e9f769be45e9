-- CIM datetimes and intervals, both ways (DMTF's DateTime type as WMI writes it:
-- "yyyymmddHHMMSS.mmmmmmsUUU", sUUU the offset from UTC in minutes, and the
-- interval "ddddddddHHMMSS.mmmmmm:000"; '*' marks a field left out, as in WQL
-- comparisons and partial times).
--
-- wmi.datetime is this table, and calling it parses: wmi.datetime(s) is
-- wmi.datetime.parse(s). Everything a datetime is turned into or made from sits
-- beside it (wmi.datetime.from_epoch, .to_epoch, ...), under the one name a
-- user already knows.
--
-- Arithmetic is exact: every conversion goes through an integer count of
-- microseconds since 1970-01-01T00:00:00Z (Lua's 64-bit integers: year 1 is
-- -6.2e16, 99999999 days 8.6e18, both within 2^63). Seconds as a float are made
-- from it only at the end; each function that returns float seconds also
-- returns that exact integer as its second result.

--- CIM datetimes and intervals, both ways: `wmi.datetime(s)` parses (as
-- `datetime.parse`); `wmi.datetime.from_epoch`, `.to_epoch`, `.to_rfc3339`,
-- `.interval`, `.interval_seconds`, `.from_1601` ... convert. Exact to the
-- microsecond; offsets from -720 to +840 minutes.
-- @type datetime
local datetime = {}

local US = 1000000                         -- microseconds a second
local DAY = 86400
local MIN_OFFSET, MAX_OFFSET = -720, 840   -- UTC-12:00 .. UTC+14:00 (Kiribati)
local MAX_DAYS = 99999999                  -- an interval's eight digits

-- LEVEL: 3 (the default) from a function the user called (or one it tail-calls),
-- 4 from a helper of it.
local function argerror(n, fname, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), level or 3)
end

local function is_leap(y)
  return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
local function days_in(y, m)
  if m == 2 and (y == nil or is_leap(y)) then return 29 end   -- any year: 29 may be
  return MONTH_DAYS[m]
end

-- Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's
-- civil-day algorithms: 400-year eras of 146097 days, years starting in March).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (m > 2 and m - 3 or m + 9) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return yoe + era * 400 + (m <= 2 and 1 or 0), m, d
end

-- What is wrong with the fields of T (a datetime or, with T.interval, an
-- interval), or nil. Absent fields are wildcards and pass.
local DATETIME = { { "year", 0, 9999 }, { "month", 1, 12 }, { "day", 1, 31 }, { "hour", 0, 23 },
                   { "min", 0, 59 }, { "sec", 0, 59 }, { "usec", 0, US - 1 },
                   { "utc_offset", MIN_OFFSET, MAX_OFFSET } }
local INTERVAL = { { "days", 0, MAX_DAYS }, { "hour", 0, 23 }, { "min", 0, 59 }, { "sec", 0, 59 },
                   { "usec", 0, US - 1 } }
local function problem(t)
  for _, r in ipairs(t.interval and INTERVAL or DATETIME) do
    local name, lo, hi = r[1], r[2], r[3]
    local v = t[name]
    if v ~= nil then
      if type(v) ~= "number" or v ~= math.floor(v) or v ~= v or math.abs(v) > 2^53 then
        return ("%s is %s, not an integer"):format(name, type(v) == "number" and tostring(v) or type(v))
      end
      if v < lo or v > hi then return ("%s %d out of range (%d to %d)"):format(name, v, lo, hi) end
    end
  end
  local last = not t.interval and t.day and t.month and days_in(t.year, t.month)
  if last and t.day > last then
    return ("day %d out of range (%s%02d has %d days)"):format(t.day, t.year and ("%04d-"):format(t.year) or "",
      t.month, last)
  end
  return nil
end

-- A field of the text: nil when it is all '*' (left out).
local function field(s)
  if s:find("^%*+$") then return nil end
  return tonumber(s)
end

-- What the REPL shows of parse's fields: "2023-11-29 13:45:30.123456 +01:00", an
-- interval "3 days 04:05:06.000007"; a wildcard field as "*"s.
local function star(v, width)
  return v and ("%0" .. width .. "d"):format(v) or ("*"):rep(width)
end
local FIELDS = { __name = "wmi.datetime", __tostring = function(t)
  if t.interval then
    return ("%s day%s %s:%s:%s.%s"):format(t.days or "*", t.days == 1 and "" or "s", star(t.hour, 2),
      star(t.min, 2), star(t.sec, 2), star(t.usec, 6))
  end
  local off = t.utc_offset
  local offset = off and ("%s%02d:%02d"):format(off < 0 and "-" or "+", math.abs(off) // 60, math.abs(off) % 60) or "*"
  return ("%s-%s-%s %s:%s:%s.%s %s"):format(star(t.year, 4), star(t.month, 2), star(t.day, 2), star(t.hour, 2),
    star(t.min, 2), star(t.sec, 2), star(t.usec, 6), offset)
end }

--- Parses a CIM datetime or interval into its fields.
-- Also `wmi.datetime(s)`.
-- "20231129134530.123456+060" gives { year = 2023, month = 11, day = 29, hour = 13,
-- min = 45, sec = 30, usec = 123456, utc_offset = 60 } (minutes east of UTC); an
-- interval "ddddddddHHMMSS.mmmmmm:000" gives { days, hour, min, sec, usec, interval = true }.
-- A field written as '*' (a wildcard) is nil.
-- @tparam string s the CIM text
-- @treturn table the fields, or nil and a message for text that is no CIM datetime
-- or names an impossible time (month 13, 31 April, 29 February 2023, offset +900)
function datetime.parse(s)
  if type(s) ~= "string" then
    error(("bad argument #1 to 'datetime' (string expected, got %s)"):format(type(s)), 2)
  end
  local t
  local days, h, mi, sec, usec =
    s:match("^([%d*]+)([%d*][%d*])([%d*][%d*])([%d*][%d*])%.([%d*]+):000$")
  if days and #days == 8 and #usec == 6 then
    t = { days = field(days), hour = field(h), min = field(mi), sec = field(sec), usec = field(usec),
          interval = true }
  else
    local y, mo, d, hh, mm, ss, us, sign, off =
      s:match("^([%d*]+)([%d*][%d*])([%d*][%d*])([%d*][%d*])([%d*][%d*])([%d*][%d*])%.([%d*]+)([+-])([%d*]+)$")
    if not y or #y ~= 4 or #us ~= 6 or #off ~= 3 then
      return nil, ("not a CIM datetime: %q"):format(s)
    end
    local offset = field(off)
    t = { year = field(y), month = field(mo), day = field(d), hour = field(hh), min = field(mm),
          sec = field(ss), usec = field(us), utc_offset = offset and (sign == "-" and -offset or offset) }
  end
  local wrong = problem(t)
  if wrong then return nil, ("not a CIM datetime: %q (%s)"):format(s, wrong) end
  return setmetatable(t, FIELDS)
end

local function digits(v, width)
  if v == nil then return ("*"):rep(width) end
  return ("%0" .. width .. "d"):format(v)
end

--- Writes fields as a CIM datetime or interval (the other direction of `parse`).
-- A datetime's fields are those `parse` returns; a table with `interval = true`
-- (or with `days` and no `year`) is an interval. A field left nil is written as
-- '*' (a wildcard); utc_offset defaults to nothing ('+***'). Seconds run 0 to 59.
-- @tparam table t { year, month, day, hour, min, sec, usec, utc_offset } or
-- { days, hour, min, sec, usec, interval = true }
-- @treturn string "20240229235959.999999+330" or "99999999235959.999999:000"
function datetime.format(t)
  if type(t) ~= "table" then argerror(1, "format", ("table expected, got %s"):format(type(t))) end
  if t.interval == nil and t.days ~= nil and t.year == nil then
    t = setmetatable({ interval = true }, { __index = t })
  end
  local wrong = problem(t)
  if wrong then argerror(1, "format", wrong) end
  if t.interval then
    return digits(t.days, 8) .. digits(t.hour, 2) .. digits(t.min, 2) .. digits(t.sec, 2) .. "."
      .. digits(t.usec, 6) .. ":000"
  end
  local off = t.utc_offset
  return digits(t.year, 4) .. digits(t.month, 2) .. digits(t.day, 2) .. digits(t.hour, 2)
    .. digits(t.min, 2) .. digits(t.sec, 2) .. "." .. digits(t.usec, 6)
    .. (off and off < 0 and "-" or "+") .. digits(off and math.abs(off), 3)
end

-- Microseconds since the epoch (UTC) of the parsed datetime T, or nil, message.
local function epoch_usec(t, s)
  if t.interval then return nil, ("an interval, not a point in time: %q"):format(s) end
  for _, name in ipairs { "year", "month", "day", "hour", "min", "sec", "usec", "utc_offset" } do
    if t[name] == nil then return nil, ("%s left out ('*'): %q"):format(name, s) end
  end
  local secs = days_from_civil(t.year, t.month, t.day) * DAY + t.hour * 3600 + t.min * 60 + t.sec
    - t.utc_offset * 60
  return secs * US + t.usec
end

-- Integer microseconds as seconds: an integer when whole, else a float (the
-- whole seconds converted exactly, then the fraction added: one rounding).
local function seconds(us)
  local whole, frac = us // US, us % US
  if frac == 0 then return whole end
  return whole + frac / US
end

-- Float or integer seconds X as integer microseconds, rounded to the nearest.
-- x - floor(x) is exact in binary floating point; only that fraction is scaled.
-- Beyond 1e13 s (300000 years) is no datetime nor interval, and would overflow.
local function usec_of(x, n, fname)
  if type(x) ~= "number" then argerror(n, fname, ("number expected, got %s"):format(type(x)), 4) end
  if not (x >= -1e13 and x <= 1e13) then argerror(n, fname, "out of range", 4) end   -- NaN too
  if math.type(x) == "integer" then return x * US end
  local whole = math.floor(x)
  return whole * US + math.floor((x - whole) * US + 0.5)
end

local function check_offset(off, n, fname)
  if off == nil then return 0 end
  if math.type(off) ~= "integer" then
    argerror(n, fname, ("integer (minutes east of UTC) expected, got %s"):format(
      math.type(off) or type(off)), 4)
  end
  if off < MIN_OFFSET or off > MAX_OFFSET then
    argerror(n, fname, ("utc_offset %d out of range (%d to %d)"):format(off, MIN_OFFSET, MAX_OFFSET), 4)
  end
  return off
end

local FIRST = days_from_civil(1, 1, 1) * DAY * US            -- 0001-01-01T00:00:00Z
local LAST = days_from_civil(10000, 1, 1) * DAY * US - 1     -- 9999-12-31T23:59:59.999999Z

-- The CIM datetime of US microseconds since the epoch at OFF minutes east of UTC.
local function from_usec(us, off, n, fname)
  local localus = us + off * 60 * US
  if localus < FIRST or localus > LAST then
    argerror(n, fname, "out of range (years 1 to 9999)")
  end
  local secs, usec = localus // US, localus % US
  local y, m, d = civil_from_days(secs // DAY)
  local sod = secs % DAY
  return datetime.format { year = y, month = m, day = d, hour = sod // 3600, min = sod // 60 % 60,
                           sec = sod % 60, usec = usec, utc_offset = off }
end

--- The CIM datetime of a time in seconds since 1970-01-01T00:00:00Z (os.time()'s).
-- A float's fraction is kept to the nearest microsecond (a double holds a 2026
-- time to a quarter of a microsecond; for exactness far from 1970, use
-- `from_epoch_usec`).
-- @tparam number seconds seconds since the epoch, UTC
-- @tparam[opt=0] integer utc_offset the offset of the text, in minutes east of UTC
-- (-720 to 840); the time is the same, written as local time there
-- @treturn string e.g. from_epoch(0, 330) --> "19700101053000.000000+330"
function datetime.from_epoch(seconds_, utc_offset)
  local off = check_offset(utc_offset, 2, "from_epoch")
  return from_usec(usec_of(seconds_, 1, "from_epoch"), off, 1, "from_epoch")
end

--- The CIM datetime of an exact integer count of microseconds since the epoch.
-- @tparam integer usec microseconds since 1970-01-01T00:00:00Z
-- @tparam[opt=0] integer utc_offset minutes east of UTC (-720 to 840)
-- @treturn string the CIM datetime
function datetime.from_epoch_usec(usec, utc_offset)
  if math.type(usec) ~= "integer" then
    argerror(1, "from_epoch_usec", ("integer expected, got %s"):format(math.type(usec) or type(usec)))
  end
  return from_usec(usec, check_offset(utc_offset, 2, "from_epoch_usec"), 1, "from_epoch_usec")
end

local function parsed(s, fname)
  if type(s) ~= "string" then argerror(1, fname, ("string expected, got %s"):format(type(s)), 4) end
  return datetime.parse(s)
end

--- Seconds since the epoch (UTC, the text's offset applied) of a CIM datetime.
-- @tparam string s a CIM datetime without wildcards
-- @treturn number seconds: an integer when whole, else a float with the microseconds
-- @treturn integer the same time exactly, in microseconds since the epoch
-- @return or nil and a message for an interval, a wildcard or text that is no datetime
function datetime.to_epoch(s)
  local t, msg = parsed(s, "to_epoch")
  if not t then return nil, msg end
  local us, why = epoch_usec(t, s)
  if not us then return nil, why end
  return seconds(us), us
end

--- A CIM datetime as RFC 3339 text, in the text's own offset.
-- Always six fractional digits (WMI's precision, nothing lost); offset 0 is "Z".
-- @tparam string s a CIM datetime without wildcards
-- @treturn string e.g. "20240229235959.000001-150" --> "2024-02-29T23:59:59.000001-02:30"
-- @return or nil and a message for an interval, a wildcard or text that is no datetime
function datetime.to_rfc3339(s)
  local t, msg = parsed(s, "to_rfc3339")
  if not t then return nil, msg end
  local ok, why = epoch_usec(t, s)
  if not ok then return nil, why end
  local off = t.utc_offset
  local zone = off == 0 and "Z" or ("%s%02d:%02d"):format(off < 0 and "-" or "+", math.abs(off) // 60,
    math.abs(off) % 60)
  return ("%04d-%02d-%02dT%02d:%02d:%02d.%06d%s"):format(t.year, t.month, t.day, t.hour, t.min, t.sec,
    t.usec, zone)
end

local MAX_INTERVAL = (MAX_DAYS + 1) * DAY * US - 1

local function interval_of(us, n, fname)
  if us < 0 then argerror(n, fname, "negative interval") end
  if us > MAX_INTERVAL then argerror(n, fname, "interval beyond 99999999 days") end
  local secs = us // US
  return datetime.format { days = secs // DAY, hour = secs // 3600 % 24, min = secs // 60 % 60,
                           sec = secs % 60, usec = us % US, interval = true }
end

--- The CIM interval of a duration in seconds.
-- A float's fraction is kept to the nearest microsecond (beyond about 100 days a
-- double holds less: use `interval_usec` for exactness).
-- @tparam number seconds the duration, 0 or more (up to 99999999 days)
-- @treturn string e.g. interval(93784.000005) --> "00000001022304.000005:000"
function datetime.interval(seconds_)
  return interval_of(usec_of(seconds_, 1, "interval"), 1, "interval")
end

--- The CIM interval of an exact integer count of microseconds.
-- @tparam integer usec the duration, 0 or more
-- @treturn string the CIM interval
function datetime.interval_usec(usec)
  if math.type(usec) ~= "integer" then
    argerror(1, "interval_usec", ("integer expected, got %s"):format(math.type(usec) or type(usec)))
  end
  return interval_of(usec, 1, "interval_usec")
end

--- The length of a CIM interval in seconds.
-- @tparam string s a CIM interval without wildcards ("ddddddddHHMMSS.mmmmmm:000")
-- @treturn number seconds: an integer when whole, else a float
-- @treturn integer the same length exactly, in microseconds
-- @return or nil and a message for a datetime, a wildcard or text that is no interval
function datetime.interval_seconds(s)
  local t, msg = parsed(s, "interval_seconds")
  if not t then return nil, msg end
  if not t.interval then return nil, ("a point in time, not an interval: %q"):format(s) end
  for _, name in ipairs { "days", "hour", "min", "sec", "usec" } do
    if t[name] == nil then return nil, ("%s left out ('*'): %q"):format(name, s) end
  end
  local us = (((t.days * 24 + t.hour) * 60 + t.min) * 60 + t.sec) * US + t.usec
  return seconds(us), us
end

local EPOCH_1601 = 116444736000000000   -- 100 ns intervals from 1601-01-01 to 1970-01-01

--- Seconds since the epoch of a count of 100 ns intervals since 1601-01-01 UTC.
-- Windows' FILETIME, as many classes and events carry it (TIME_CREATED,
-- Win32_NTLogEvent's counters). WMI hands a uint64 over as its decimal text:
-- both the text and an integer are taken.
-- @tparam integer|string counter the count (0 or more)
-- @treturn number seconds since 1970-01-01T00:00:00Z (float when not whole)
-- @treturn integer the same time in microseconds (the 100 ns digit dropped, rounded down)
function datetime.from_1601(counter)
  local n = counter
  if type(counter) == "string" then
    n = counter:find("^%d+$") and math.tointeger(tonumber(counter))
    if not n then argerror(1, "from_1601", "not a count of 100 ns (decimal digits up to 2^63-1)") end
  elseif math.type(counter) ~= "integer" then
    argerror(1, "from_1601", ("integer or string expected, got %s"):format(math.type(counter) or type(counter)))
  end
  if n < 0 then argerror(1, "from_1601", "negative count") end
  local ticks = n - EPOCH_1601
  local whole, frac = ticks // 10000000, ticks % 10000000
  return frac == 0 and whole or whole + frac / 10000000, ticks // 10
end

return setmetatable(datetime, { __call = function(_, s) return datetime.parse(s) end })
