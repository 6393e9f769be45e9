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

# A wineserver of the script's own (unless one runs, or the caller keeps one:
# LUAWMI_WINESERVER=1): persistent, so each program starts in tens of ms, and its
# stdio on /dev/null (a server holding our pipe open would hang the reader). It
# ends with the script however the script ends: at exit the trap stops it (-w: the
# next program must not meet it still dying, it would kill that one); a killed
# script (SIGTERM, SIGHUP, even SIGKILL, which no trap sees) leaves a watcher,
# deaf to the terminal's signals, that stops it and the prefix's programs. A server
# starts only in an existing folder: a fresh prefix's first run makes it first
# (Wine fills an empty one).
luawmi_own_wineserver() {
  [ -z "${LUAWMI_WINESERVER:-}" ] && mkdir -p "$WINEPREFIX" && wineserver -p </dev/null >/dev/null 2>&1 || return 0
  local script=$$
  (
    trap '' HUP INT TERM
    while kill -0 "$script" 2>/dev/null; do sleep 0.5; done
    wineserver -k
  ) </dev/null >/dev/null 2>&1 &
  luawmi_watcher=$!
  disown "$luawmi_watcher"    # its end, by the trap's SIGKILL, is no news to print
  trap 'kill -KILL "$luawmi_watcher" 2>/dev/null; wineserver -k </dev/null >/dev/null 2>&1; wineserver -w </dev/null >/dev/null 2>&1' EXIT
}
