# Sourced by the project's scripts: the Wine and Lua environment of the test prefix.
# shellcheck shell=bash
luawmi_top=${luawmi_top:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export WINEPREFIX=$luawmi_top/build/prefix
export WINEDEBUG=${WINEDEBUG:--all}
export WINEARCH=win64
# No Mono or Gecko installers (no network here, and WMI needs neither).
export WINEDLLOVERRIDES="mscoree,mshtml=${WINEDLLOVERRIDES:+;$WINEDLLOVERRIDES}"

# Windows paths for the Windows Lua: the module (as LuaRocks installed it), the
# repo's Lua sources and specs, and busted's Lua files from Debian.
luawmi_winpath() { printf 'Z:%s' "${1//\//\\}"; }
_rocks=$(luawmi_winpath "$luawmi_top/build/rocks")
_bin=$(luawmi_winpath "$luawmi_top/build/lua/bin")
_test=$(luawmi_winpath "$luawmi_top/build/test")
_top=$(luawmi_winpath "$luawmi_top")
_deb='Z:\usr\share\lua\5.4'
export LUA_PATH_5_4="$_rocks\\share\\lua\\5.4\\?.lua;$_rocks\\share\\lua\\5.4\\?\\init.lua;$_top\\?.lua;$_deb\\?.lua;$_deb\\?\\init.lua"
export LUA_CPATH_5_4="$_rocks\\lib\\lua\\5.4\\?.dll;$_test\\?.dll;$_bin\\?.dll"
unset _rocks _bin _test _top _deb
