-- LuaRocks configuration that cross-compiles the rock for Windows with MinGW-w64.
-- Used with LUAROCKS_CROSS_COMPILING=1 (LuaRocks then keeps Unix file tools) and
-- LUAWMI_TOP set to the checkout; see the Makefile.
local top = os_getenv("LUAWMI_TOP")
local mingw = "x86_64-w64-mingw32-"
platforms = { "windows", "win32", "mingw32" }
lua_version = "5.4"
rocks_trees = { { name = "build", root = top .. "/build/rocks" } }
local_cache = top .. "/build/luarocks-cache"
-- A Windows script wrapper (wmiq.bat) needs the Windows Lua's path on the target;
-- the checkout runs bin/wmiq with scripts/wmiq instead.
wrap_bin_scripts = false
wrapper_suffix = ""
variables = {
  CC = mingw .. "gcc",
  LD = mingw .. "gcc",
  AR = mingw .. "ar",
  RANLIB = mingw .. "ranlib",
  LUA_INCDIR = top .. "/build/lua/include",
  LUA_LIBDIR = top .. "/build/lua/lib",
  LUA_BINDIR = top .. "/build/lua/bin",
  LUALIB = "liblua54.a",
  -- Warnings are errors in our own build; users' builds keep LuaRocks' defaults.
  CFLAGS = "-O2 -std=c99 -Wall -Wextra -Werror",
  LIBFLAG = "-shared -s",
}
