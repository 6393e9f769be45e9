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

# A wineserver shared by the checkout's runs (unless the caller keeps one:
# LUAWMI_WINESERVER=1): persistent, so each program starts in tens of ms, and its
# stdio on /dev/null (a server holding our pipe open would hang the reader).
# Every run holds a shared lock on build/wineserver.users while it lives; the
# run that ends last (it alone then gets the lock exclusively) stops the server,
# if a run of ours started it (build/wineserver.ours; a server someone else
# started is left alone). Starting and stopping take build/wineserver.lock first,
# so a run never meets a server still dying (it would kill that run: -w waits).
# A killed script (SIGTERM, SIGHUP, even SIGKILL, which no trap sees) leaves a
# watcher, deaf to the terminal's signals, that ends the run for it. A server
# starts only in an existing folder: a fresh prefix's first run makes it first
# (Wine fills an empty one).
luawmi_own_wineserver() {
  [ -z "${LUAWMI_WINESERVER:-}" ] && mkdir -p "$WINEPREFIX" || return 0
  local build=${WINEPREFIX%/*}
  exec {luawmi_lock}>"$build/wineserver.lock" {luawmi_users}>"$build/wineserver.users"
  flock -x "$luawmi_lock"
  flock -s "$luawmi_users"
  if wineserver -p {luawmi_lock}>&- {luawmi_users}>&- </dev/null >/dev/null 2>&1; then
    : >"$build/wineserver.ours"
  fi
  flock -u "$luawmi_lock"
  local script=$$
  (
    trap '' HUP INT TERM
    while kill -0 "$script" 2>/dev/null; do sleep 0.5; done
    luawmi_end_run
  ) </dev/null >/dev/null 2>&1 &
  luawmi_watcher=$!
  disown "$luawmi_watcher"    # its end, by the trap's SIGKILL, is no news to print
  trap 'kill -KILL "$luawmi_watcher" 2>/dev/null; luawmi_end_run </dev/null >/dev/null 2>&1' EXIT
}

# This run is over: the last one stops the server ours started, and waits for it.
luawmi_end_run() {
  local build=${WINEPREFIX%/*}
  flock -x "$luawmi_lock"
  flock -u "$luawmi_users"
  if flock -xn "$luawmi_users" && [ -e "$build/wineserver.ours" ]; then
    wineserver -k {luawmi_lock}>&- {luawmi_users}>&-
    wineserver -w {luawmi_lock}>&- {luawmi_users}>&-
    rm -f "$build/wineserver.ours"
  fi
  flock -u "$luawmi_users"
  flock -u "$luawmi_lock"
}
