rockspec_format = "3.0"
package = "luawmi"
version = "scm-1"
source = {
  -- A local checkout is built with `luarocks make`; this names where the source lives.
  url = "git+https://example.invalid/luawmi.git",
}
description = {
  summary = "Windows Management Instrumentation for Lua 5.4, synchronous and asynchronous",
  detailed = [[
luawmi gives Lua scripts WMI: connections, queries, objects, method calls, and
asynchronous calls whose sinks are wrapped by the unsecured apartment
(unsecapp), with WMI's callbacks delivered to Lua functions on the Lua thread.]],
  license = "MIT",
}
supported_platforms = { "windows", "mingw32", "win32" }
dependencies = { "lua >= 5.4, < 5.5" }
-- The Windows system libraries below come with every Windows toolchain (MSVC's SDK,
-- MinGW): an empty table stops LuaRocks searching for them as external packages.
external_dependencies = {}
build = {
  type = "builtin",
  modules = {
    ["wmi"] = "lua/wmi/init.lua",
    ["wmi.fanout"] = "lua/wmi/fanout.lua",
    ["wmi.cli"] = "lua/wmi/cli.lua",
    ["wmi.datetime"] = "lua/wmi/datetime.lua",
    ["wmi.format"] = "lua/wmi/format.lua",
    ["wmi.wmic"] = "lua/wmi/wmic.lua",
    ["wmi.wql"] = "lua/wmi/wql.lua",
  },
  install = {
    bin = { wmiq = "bin/wmiq" },
  },
  platforms = {
    windows = {
      modules = {
        ["wmi.core"] = {
          sources = {
            "src/core.c", "src/hresult.c", "src/strings.c", "src/variant.c",
            "src/object.c", "src/services.c", "src/queue.c", "src/sink.c",
            "src/apartment.c", "src/stub.c", "src/call.c", "src/connect.c",
            "src/pool.c", "src/console.c", "src/stream.c", "src/support.c",
            "src/context.c", "src/privilege.c", "src/equality.c", "src/classdef.c",
            "src/schema.c", "src/query.c",
          },
          defines = { "COBJMACROS", "UNICODE", "_UNICODE", "_WIN32_WINNT=0x0601" },
          libraries = { "ole32", "oleaut32", "uuid", "wbemuuid", "advapi32", "shell32" },
        },
      },
    },
  },
}
