-- What the host-side specs run: wmiq and Lua scripts under Wine, as a user starts
-- them from a shell, and Python's parsers over what they wrote.
local json = require "dkjson"
local quote = dofile("spec/host/terminal.lua").quote

local run = {}

-- The test WMI server's CLSID (wmiq --locator), as spec/support/testwmi.h defines it.
run.TESTWMI = io.open("spec/support/testwmi.h"):read("a"):match('#define TESTWMI_CLSID "({[%x-]+})"')

function run.slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Runs scripts/wmiq with ARGS (a list, quoted for the shell); returns stdout,
-- stderr (CRLF read as LF: compared as lines) and the exit status. ENV: a shell
-- prefix (e.g. "COLUMNS=40"); STDIN: a line typed in (else no input at all).
function run.wmiq(args, env, stdin)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = quote(a) end
  local errfile = os.tmpname()
  local cmd = ("%s LUAWMI_WINESERVER=1 scripts/wmiq %s 2>%s"):format(env or "", table.concat(quoted, " "), errfile)
  if stdin then cmd = ("printf '%%s\\n' %s | %s"):format(quote(stdin), cmd)
  else cmd = cmd .. " </dev/null" end
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  local _, _, status = f:close()
  local err = run.slurp(errfile):gsub("\r\n", "\n")
  os.remove(errfile)
  return out, err, status
end

-- Runs the Lua CODE in the Windows Lua under Wine (scripts/lua); returns its
-- output (stdout and stderr), raising when it fails.
function run.winlua(code)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen("LUAWMI_WINESERVER=1 scripts/lua " .. quote(path) .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  assert(ok, out)
  return out
end

-- Runs Python CODE on TEXT (given as the file sys.argv[1]); CODE prints JSON.
function run.python(code, text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  local p = assert(io.popen(("/usr/bin/python3 -c %s %s 2>&1"):format(quote(code), quote(path))))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  assert(ok, "python failed: " .. out)
  local value, _, err = json.decode(out)
  assert(err == nil, err)
  return value
end

-- Python programs for run.python: CSV rows, one JSON document.
run.CSV_ROWS = "import csv, json, sys\n"
  .. "print(json.dumps(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))))"
run.JSON_DOC = "import json, sys\nprint(json.dumps(json.load(open(sys.argv[1], encoding='utf-8'))))"

return run
