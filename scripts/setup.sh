#!/usr/bin/env bash
# Installs and builds everything the project needs on Debian 12, idempotently:
# Debian packages, a Windows Lua 5.4 (from Debian's lua5.4 source), busted's C
# dependencies cross-compiled for Windows, and the Wine prefix.
# Everything built lands in build/ (ignored). Safe to run again: done steps are skipped.
set -Eeuo pipefail  # -E: the ERR trap below also fires inside functions

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
lua_dir=$build/lua            # Windows Lua: bin/lua.exe, bin/lua54.dll, lib/, include/
src_dir=$build/src            # unpacked Debian sources
CC=x86_64-w64-mingw32-gcc

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
step="starting"
say() { step=$*; printf '[setup] %s\n' "$*"; }
trap 'echo "[setup] FAILED while: $step" >&2' ERR

packages=(wine64 wine gcc-mingw-w64-x86-64 make patch xz-utils dpkg-dev
          lua5.4 lua-busted luarocks lua-check lua-ldoc lua-markdown
          python3 tmux procps)  # python3: a CSV and JSON reader we did not write (wmiq specs); tmux: the REPL
                                # spec; procps: ps and pgrep (the host specs' process checks)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# deb-src entries are derived from the machine's own Debian sources, so no host
# name is ever written here. Both apt layouts of Debian 12 are read: deb822
# stanzas in sources.list.d/*.sources (the official image's only file) and
# one-line entries in sources.list and sources.list.d/*.list.
debian_src_stanzas() {  # deb822 stanzas of Debian archives, as deb-src
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    case $f in */zz-luawmi-*) continue ;; esac
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /(^|\n)URIs:[^\n]*\/debian/ && /(^|\n)Types:[^\n]*(^|[ \t])deb([ \t\n]|$)/ &&
         !/(^|\n)Enabled:[ \t]*no/ {
           sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print }' "$f"
  done
}
debian_src_lines() {  # one-line entries of Debian archives, as deb-src
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    case $f in */zz-luawmi-*) continue ;; esac
    sed -n -E 's/^[[:space:]]*deb([[:space:]]+\[[^]]*\])?[[:space:]]+([^[:space:]]+\/debian[^[:space:]]*[[:space:]].*)$/deb-src\1 \2/p' "$f"
  done
}
enable_sources() {
  local dir=/etc/apt/sources.list.d stanzas lines
  apt-cache showsrc lua5.4 2>/dev/null | grep -q '^Package:' && return
  say "enabling source packages"
  stanzas=$(debian_src_stanzas)
  # A source that both layouts name is taken once, from its deb822 stanza: apt
  # refuses the same source twice with different Signed-By values.
  lines=$(debian_src_lines | awk -v stanzas="$stanzas" '
    BEGIN { n = split(stanzas, l, "\n")
            for (i = 1; i <= n; i++) {
              if (l[i] ~ /^URIs:/) nu = split(substr(l[i], 6), u, /[ \t]+/)
              if (l[i] ~ /^Suites:/) { ns = split(substr(l[i], 8), s, /[ \t]+/)
                for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++) { x = u[a]; sub(/\/$/, "", x); seen[x " " s[b]] = 1 } } } }
    { rest = $0; sub(/^deb-src[ \t]+(\[[^]]*\][ \t]+)?/, "", rest); split(rest, f, /[ \t]+/)
      sub(/\/$/, "", f[1]); if (!((f[1] " " f[2]) in seen)) print }')
  if [ -z "$stanzas$lines" ]; then
    echo "[setup] no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d/;" >&2
    echo "[setup] add your Debian 12 mirror, e.g. a line 'deb <mirror>/debian bookworm main'" >&2
    echo "[setup] to /etc/apt/sources.list, then run this again" >&2
    exit 1
  fi
  sudo_if_needed rm -f "$dir/zz-luawmi-deb-src.sources" "$dir/zz-luawmi-deb-src.list"
  [ -z "$stanzas" ] || printf '%s\n' "$stanzas" | sudo_if_needed tee "$dir/zz-luawmi-deb-src.sources" >/dev/null
  [ -z "$lines" ] || printf '%s\n' "$lines" | sort -u | sudo_if_needed tee "$dir/zz-luawmi-deb-src.list" >/dev/null
  sudo_if_needed apt-get update -qq
  apt-cache showsrc lua5.4 2>/dev/null | grep -q '^Package:' || {
    echo "[setup] deb-src entries were added but apt still finds no source of lua5.4" >&2; exit 1; }
}

fetch_source() {  # fetch_source PKG: orig tarball (and debian tarball when published)
  mkdir -p "$src_dir/dl"
  ls "$src_dir/dl/$1"_*.orig.tar.* >/dev/null 2>&1 && return
  say "fetching source of $1"
  # Some Debian packages publish only part of their source here; the orig tarball is what we need.
  (cd "$src_dir/dl" && apt-get source --download-only "$1" >/dev/null 2>&1) || true
  ls "$src_dir/dl/$1"_*.orig.tar.* >/dev/null 2>&1 || { echo "cannot fetch source of $1" >&2; exit 1; }
}

build_lua() {
  [ "$lua_dir/bin/lua.exe" -nt "$top/scripts/lua_repl.h" ] && [ -f "$lua_dir/lib/liblua54.a" ] && return
  fetch_source lua5.4
  say "building Windows Lua 5.4"
  local work=$src_dir/lua5.4
  rm -rf "$work" && mkdir -p "$work"
  tar xzf "$src_dir"/dl/lua5.4_*.orig.tar.gz -C "$work" --strip-components=1
  tar xJf "$src_dir"/dl/lua5.4_*.debian.tar.xz -C "$work"
  # Debian's security fixes only; its build-system patches are for Debian's libtool build.
  for p in "$work"/debian/patches/*cve*.patch; do patch -s -d "$work" -p1 < "$p"; done
  local s=$work/src o=$work/obj
  mkdir -p "$o" "$lua_dir"/{bin,lib,include}
  for f in "$s"/*.c; do
    case $(basename "$f") in lua.c|luac.c) continue ;; esac
    $CC -O2 -Wall -std=gnu99 -DLUA_BUILD_AS_DLL -DLUA_COMPAT_5_3 -c "$f" -o "$o/$(basename "${f%.c}").o"
  done
  $CC -shared -o "$lua_dir/bin/lua54.dll" "$o"/*.o -Wl,--out-implib,"$lua_dir/lib/liblua54.a" -s
  # The REPL ends at Ctrl+D or Ctrl+Z typed in Wine's console; a handler's error shows one traceback (scripts/lua_repl.h).
  $CC -O2 -Wall -std=gnu99 -DLUA_COMPAT_5_3 -include "$top/scripts/lua_repl.h" -o "$lua_dir/bin/lua.exe" \
    "$s/lua.c" "$lua_dir/lib/liblua54.a" -s
  cp "$s"/{lua.h,luaconf.h,lualib.h,lauxlib.h,lua.hpp} "$lua_dir/include/"
  for f in bin/lua.exe bin/lua54.dll lib/liblua54.a include/lua.h; do
    [ -s "$lua_dir/$f" ] || { echo "Lua build did not produce $f" >&2; exit 1; }
  done
}

cmodule() {  # cmodule OUT.dll SRC.c...: a Lua C module for the Windows Lua
  mkdir -p "$(dirname "$1")"
  local out=$1; shift
  $CC -O2 -Wall -shared -I"$lua_dir/include" -o "$out" "$@" "$lua_dir/lib/liblua54.a" -s
}

build_busted_deps() {
  local bin=$lua_dir/bin
  if [ ! -f "$bin/lfs.dll" ]; then
    fetch_source lua-filesystem
    say "building lfs.dll"
    rm -rf "$src_dir/lfs" && mkdir -p "$src_dir/lfs"
    tar xzf "$src_dir"/dl/lua-filesystem_*.orig.tar.gz -C "$src_dir/lfs" --strip-components=1
    cmodule "$bin/lfs.dll" "$src_dir/lfs/src/lfs.c"
  fi
  if [ ! -f "$bin/term/core.dll" ]; then
    fetch_source lua-term
    say "building term/core.dll"
    rm -rf "$src_dir/term" && mkdir -p "$src_dir/term"
    tar xzf "$src_dir"/dl/lua-term_*.orig.tar.gz -C "$src_dir/term" --strip-components=1
    cmodule "$bin/term/core.dll" "$src_dir/term/core.c"
  fi
  if [ ! -f "$bin/system/core.dll" ]; then
    say "building system/core.dll (stand-in)"
    cmodule "$bin/system/core.dll" "$top/scripts/system_core.c"
  fi
}

make_prefix() {
  [ -f "$build/prefix/.luawmi-ready" ] && return
  say "creating the Wine prefix"
  mkdir -p "$build/prefix"
  (
    # shellcheck source=scripts/wine-env.sh
    . "$top/scripts/wine-env.sh"
    wineboot -i </dev/null >/dev/null 2>&1
    wine reg add 'HKCU\Software\Wine' /v Version /d win10 /f </dev/null >/dev/null 2>&1
    wineserver -w </dev/null >/dev/null 2>&1
  )
  touch "$build/prefix/.luawmi-ready"
}

install_packages
enable_sources
build_lua
build_busted_deps
make_prefix
say "ready"
