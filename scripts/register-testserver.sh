#!/usr/bin/env bash
# Registers a test-only COM server of spec/support in the test prefix as an
# in-process server (Wine registers no proxy/stub for the WMI interfaces, so a
# test server must live in the client's process):
#   register-testserver.sh testapt   the unsecured apartment (TESTAPT_CLSID in testapt.c)
#   register-testserver.sh testwmi   the WMI locator (TESTWMI_CLSID in testwmi.h)
# Idempotent: skipped when the prefix already holds the same path and model.
set -euo pipefail
luawmi_top=$(cd "$(dirname "$0")/.." && pwd)
. "$luawmi_top/scripts/wine-env.sh"

name=${1:?usage: register-testserver.sh testapt|testwmi}
case $name in
  testapt) src=$luawmi_top/spec/support/testapt.c; macro=TESTAPT_CLSID ;;
  testwmi) src=$luawmi_top/spec/support/testwmi.h; macro=TESTWMI_CLSID ;;
  *) echo "register-testserver: unknown server '$name'" >&2; exit 2 ;;
esac
clsid=$(sed -n "s/^#define $macro \"\\({[0-9A-Fa-f-]*}\\)\"\$/\\1/p" "$src")
[ -n "$clsid" ] || { echo "register-testserver: no $macro in $src" >&2; exit 1; }
[ -d "$WINEPREFIX" ] || { echo "register-testserver: no prefix; run scripts/setup.sh first" >&2; exit 1; }

# The path Lua's require loads (LUA_CPATH in wine-env.sh): COM must load the same file.
dll=$(luawmi_winpath "$luawmi_top/build/test/$name.dll")
# HKLM, not HKCU: Wine 8's combase looks CLSIDs up in HKLM\Software\Classes only.
key="HKLM\\Software\\Classes\\CLSID\\$clsid\\InprocServer32"

# Read through a file, not a pipe: a Wine service started by this process would
# inherit a pipe and hang the reader.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
wine reg query "$key" </dev/null >"$out" 2>/dev/null || true
now=$(tr -d '\r' <"$out")
if grep -qixF "    (Default)    REG_SZ    $dll" <<<"$now" &&
   grep -qixF "    ThreadingModel    REG_SZ    Both" <<<"$now"; then
  exit 0
fi

wine reg add "$key" /ve /d "$dll" /f </dev/null >/dev/null 2>&1
wine reg add "$key" /v ThreadingModel /d Both /f </dev/null >/dev/null 2>&1
echo "register-testserver: $name $clsid -> $dll"
