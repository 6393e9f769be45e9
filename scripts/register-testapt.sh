#!/usr/bin/env bash
# Registers the test-only apartment server (spec/support/testapt.c) in the test
# prefix as an in-process COM server, so specs can name its CLSID in
# wmi.apartment{ mode = "unsecapp", clsid = ..., context = "inproc" }.
# Idempotent: skipped when the prefix already holds the same path and model.
set -euo pipefail
luawmi_top=$(cd "$(dirname "$0")/.." && pwd)
. "$luawmi_top/scripts/wine-env.sh"

src=$luawmi_top/spec/support/testapt.c
clsid=$(sed -n 's/^#define TESTAPT_CLSID "\({[0-9A-Fa-f-]*}\)"$/\1/p' "$src")
[ -n "$clsid" ] || { echo "register-testapt: no TESTAPT_CLSID in $src" >&2; exit 1; }
[ -d "$WINEPREFIX" ] || { echo "register-testapt: no prefix; run scripts/setup.sh first" >&2; exit 1; }

# The path Lua's require loads (LUA_CPATH in wine-env.sh): COM must load the same file.
dll=$(luawmi_winpath "$luawmi_top/build/test/testapt.dll")
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
echo "register-testapt: $clsid -> $dll"
