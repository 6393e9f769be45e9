-- Regression specs of the C core's review (issue 10): one block per item, each
-- failing on the code before its fix. Against Wine's real WMI; the items only
-- Windows shows are in the blocks that use the test WMI server.
local wmi = require "wmi"
local helpers = require "spec.helpers"

local PROCESS_PATH = 'Win32_Process.Handle="1:2"'   -- a key value holding a ':'

describe("core review", function()
  local svc
  helpers.connection_per_test(function(s) svc = s end)

  -- item 2
  it("reads connect's options raw: no __index runs", function()
    local opts = setmetatable({}, { __index = function() error("user code ran") end })
    local s = assert(wmi.connect(opts))
    assert.equal("wmi.Services (root\\cimv2)", tostring(s))
    s:close()
    -- An __index that makes a new string each time is never asked either.
    local made = 0
    s = assert(wmi.connect(setmetatable({}, { __index = function(_, k)
      made = made + 1
      return k == "namespace" and ("root\\" .. "nope") or nil
    end })))
    assert.equal(0, made)
    s:close()
  end)

  -- item 3
  it("finds the class of a path whose key holds a ':'", function()
    -- The class is Win32_Process, so the parameter is checked against Create's.
    for _, ns in ipairs { "", "\\\\.\\root\\cimv2:", "//srv.example/root/cimv2:", "root\\cimv2:" } do
      local path = ns .. PROCESS_PATH
      assert.has_error(function() svc:exec(path, "Create", { Nope = 1 }) end,
        "bad argument #3 to 'exec' (no parameter 'Nope')")
    end
  end)

  -- item 4
  it("raises argument errors for text that is not UTF-8, never E_OUTOFMEMORY", function()
    for _, field in ipairs { "user", "password", "authority", "locale", "namespace", "host" } do
      assert.has_error(function() wmi.connect { host = "x", [field] = "\xff" } end,
        ("bad option '%s' to 'connect' (invalid UTF-8)"):format(field))
    end
    assert.has_error(function() wmi.connect("root\\\xff") end, "bad argument #1 to 'connect' (invalid UTF-8)")
    local me = svc:query("SELECT * FROM Win32_Process WHERE Name = 'services.exe'")[1]
    assert.has_error(function() svc:exec("Win32_Process", "Create", { ["\xff"] = 1 }) end,
      "bad argument #3 to 'exec' (parameter names must be valid UTF-8)")
    assert.has_error(function() svc:exec(me:path(), "Get\xffOwner") end,
      "bad argument #2 to 'exec' (invalid UTF-8)")
    assert.has_error(function() svc:query("SELECT \xff FROM Win32_Process") end,
      "bad argument #1 to 'query' (invalid UTF-8)")
  end)

  -- item 5
  it("takes {} as no parameters", function()
    local me = svc:query("SELECT * FROM Win32_Process WHERE Name = 'services.exe'")[1]
    local with_nil = assert(svc:exec(me:path(), "GetOwner"))
    local with_empty = assert(svc:exec(me:path(), "GetOwner", {}))
    assert.equal(0, with_empty.ReturnValue)
    assert.equal(with_nil.User, with_empty.User)
  end)
end)
