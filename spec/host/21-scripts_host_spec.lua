-- scripts/lua as a developer runs it from a shell, its output into pipes and files.
local terminal = dofile("spec/host/terminal.lua")
local q = terminal.quote

describe("scripts/lua", function()
  it("keeps stderr apart from stdout when stdout is not a terminal, each without '\\r'", function()
    local script = os.tmpname() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write('io.stdout:write("to stdout\\n") io.stdout:flush() io.stderr:write("to stderr\\n") os.exit(3)\n')
    f:close()
    local errfile = os.tmpname()
    local p = assert(io.popen(("LUAWMI_WINESERVER=1 scripts/lua %s 2>%s"):format(q(script), q(errfile))))
    local out = p:read("a")
    local _, _, status = p:close()
    local e = assert(io.open(errfile, "rb"))
    local err = e:read("a")
    e:close()
    os.remove(script)
    os.remove(errfile)
    assert.same({ "to stdout\n", "to stderr\n", 3 }, { out, err, status })
  end)
end)
