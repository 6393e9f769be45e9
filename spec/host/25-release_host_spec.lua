-- issue 18, item 1: the release as a user gets it. make dist archives the committed
-- tree, make pack packs the versioned rockspec's source rock, LuaRocks (with the
-- cross-compiling config) installs it into an empty tree, its binary rock into
-- another, and the demo runs under Wine with only that last tree on Lua's paths.
local q = dofile("spec/host/terminal.lua").quote

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, status = p:close()
  return out, ok and 0 or status
end

local function must(cmd)
  local out, status = sh(cmd)
  assert(status == 0, ("%s\nexited %s:\n%s"):format(cmd, tostring(status), out))
  return out
end

local function read(name)
  local f = assert(io.open(name, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function tempdir()
  return (must("mktemp -d"):gsub("%s+$", ""))
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local top = os.getenv("PWD")
local version = read("lua/wmi/init.lua"):match('_VERSION = "luawmi ([^"]+)"')
local name = "luawmi-" .. version
local luarocks = ("LUAWMI_TOP=%s LUAROCKS_CONFIG=%s/scripts/luarocks-config.lua LUAROCKS_CROSS_COMPILING=1"
  .. " luarocks"):format(q(top), q(top))

describe("the release", function()
  local temps = {}
  local function temp() local d = tempdir(); temps[#temps + 1] = d; return d end
  teardown(function()
    for _, d in ipairs(temps) do os.execute("rm -rf " .. q(d)) end
  end)

  it("is version 0.1.0 everywhere: wmi._VERSION, the versioned rockspec, LICENSE, CHANGELOG", function()
    assert.equal("0.1.0", version)
    local spec = read("rockspec/" .. name .. "-1.rockspec")
    assert.truthy(spec:find('\nversion = "0.1.0%-1"\n'))
    assert.truthy(spec:find('url = "file://build/dist/luawmi%-0.1.0.tar.gz"'))
    assert.truthy(read("LICENSE"):find("^MIT License\n\nCopyright %(c%) %d+ the luawmi authors\n"))
    assert.truthy(read("CHANGELOG.md"):find("\n## 0.1.0 "))
    -- The versioned rockspec builds what the scm one builds (make rockspec after a change).
    assert.equal(must(("lua5.4 scripts/release-rockspec.lua %s < luawmi-scm-1.rockspec"):format(version)), spec,
      "rockspec/luawmi-0.1.0-1.rockspec is not what `make rockspec` writes from luawmi-scm-1.rockspec: run it")
  end)

  it("archives the committed tree under one top folder, packs it, installs it into an empty tree"
     .. " and runs the demo from there, under Wine", function()
    local archive = "build/dist/" .. name .. ".tar.gz"
    local rock = "build/dist/" .. name .. "-1.src.rock"
    os.remove(archive)
    os.remove(rock)
    must("make -s dist pack")

    -- The archive: exactly HEAD's files, under luawmi-0.1.0/.
    local listed = lines(must("tar tzf " .. archive))
    local files = {}
    for _, l in ipairs(listed) do
      assert.equal(name .. "/", l:sub(1, #name + 1))
      if not l:find("/$") then files[#files + 1] = l:sub(#name + 2) end
    end
    table.sort(files)
    local committed = lines(must("git ls-tree -r --name-only HEAD"))
    table.sort(committed)
    assert.same(committed, files)

    -- The source rock into an empty tree (LuaRocks cross-compiles wmi.core there).
    local tree = temp()
    assert.equal("", must("ls -A " .. q(tree)))
    must(("cd %s && %s install --deps-mode=none --tree=%s %s"):format(q(temp()), luarocks, q(tree),
      q(top .. "/" .. rock)))
    -- Every Lua module of the checkout, the C core and wmiq.
    local installed = { "lib/lua/5.4/wmi/core.dll", "bin/wmiq" }
    for module in must("ls " .. q(top .. "/lua/wmi")):gmatch("(%S+)%.lua") do
      installed[#installed + 1] = "share/lua/5.4/wmi/" .. module .. ".lua"
    end
    assert.is_true(#installed > 5)
    for _, f in ipairs(installed) do
      assert.truthy(io.open(tree .. "/" .. f), f .. " installed")
    end
    assert.equal("MZ", read(tree .. "/lib/lua/5.4/wmi/core.dll"):sub(1, 2))   -- a Windows DLL

    -- Its binary rock (no compiler needed to install it) into another empty tree.
    local packdir = temp()
    must(("cd %s && %s pack --tree=%s luawmi %s-1"):format(q(packdir), luarocks, q(tree), version))
    local binary = must("ls " .. q(packdir)):gsub("%s+$", "")
    assert.equal(name .. "-1.win32-x86_64.rock", binary)
    local user_tree = temp()
    must(("cd %s && %s install --deps-mode=none --tree=%s %s"):format(q(packdir), luarocks, q(user_tree),
      q(packdir .. "/" .. binary)))

    -- The demo, taken from the archive, in a folder of its own; Lua's paths name only
    -- the user's tree (no ';;': none of the defaults, none of the checkout).
    local run = temp()
    must(("tar xzf %s -C %s --strip-components=2 %s/examples/async_query.lua"):format(q(archive), q(run), name))
    local f = assert(io.open(run .. "/where.lua", "w"))
    f:write('print(require("wmi")._VERSION)\n'
      .. 'print(package.searchpath("wmi", package.path))\n'
      .. 'print(package.searchpath("wmi.core", package.cpath))\n')
    f:close()
    local win = "Z:" .. user_tree:gsub("/", "\\")
    local env = ("LUA_PATH_5_4=%s LUA_CPATH_5_4=%s"):format(
      q(win .. "\\share\\lua\\5.4\\?.lua;" .. win .. "\\share\\lua\\5.4\\?\\init.lua"),
      q(win .. "\\lib\\lua\\5.4\\?.dll"))
    local lua = q(top .. "/build/lua/bin/lua.exe")
    local function wine(script)
      return must(("cd %s && %s wine %s %s </dev/null | tr -d '\\r'"):format(q(run), env, lua, script))
    end

    assert.same({ "luawmi 0.1.0", win .. "\\share\\lua\\5.4\\wmi\\init.lua",
                  win .. "\\lib\\lua\\5.4\\wmi\\core.dll" }, lines(wine("where.lua")))

    local out = lines(wine("async_query.lua"))
    assert.equal("apartment: inproc, access unchecked", out[1])   -- Wine has no Unsecapp.exe
    local rows, names = {}, {}
    for i = 2, #out - 1 do
      local pid, pname = out[i]:match("^%s*(%d+)  (%S.*)$")
      assert.truthy(pid, "a process row: " .. out[i])
      rows[#rows + 1] = tonumber(pid)
      names[pname] = true
    end
    -- Every process of the prefix, the demo's own lua.exe among them, counted by the call.
    assert.equal(("done: %d processes"):format(#rows), out[#out])
    assert.is_true(#rows >= 3)
    assert.is_true(names["lua.exe"] and names["services.exe"] and true)
  end)
end)
