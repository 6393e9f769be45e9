#!/usr/bin/env bash
# bench/run.sh (run by `make bench`, which builds what it needs first): runs the
# benchmarks under Wine in a prefix of their own, build/bench-prefix, and prints the
# results table and `bench: NAME VALUE` lines at the end.
#
# The prefix has an empty HOME and no Z: drive, so Wine's CIM_DataFile walk of every
# fixed drive ends (with Z: mapped to / it never does). Without Z:, Lua, the module
# and the benchmarks are copied to C:\luawmi-bench and run from there, with
# LUA_PATH/LUA_CPATH naming C:\ paths. Its own wineserver also keeps the benchmarks'
# processes out of the test prefix's Win32_Process, and the specs' out of ours.
#
# Knobs (environment): LUAWMI_BENCH_RUNS (7), LUAWMI_BENCH_SLEEPERS (200),
# LUAWMI_BENCH_FILES (3000), LUAWMI_BENCH_OBJECTS (200000), LUAWMI_BENCH_DISPATCH_RUNS (7),
# LUAWMI_BENCH_QUEUED (100000), LUAWMI_BENCH_E2E_CPU (0; empty: not pinned),
# LUAWMI_BENCH_FANOUT_RUNS (5), LUAWMI_BENCH_FANOUT_HOSTS (1000), LUAWMI_BENCH_FANOUT_THROTTLE (100),
# LUAWMI_BENCH_FANOUT_HELD (1000), LUAWMI_BENCH_ONLY (e2e|dispatch|memory|fanout: one script).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
out=$build/bench                      # bench_raw.dll, sleeper.exe (make), results.log
prefix=$build/bench-prefix
files=${LUAWMI_BENCH_FILES:-3000}
export LUAWMI_BENCH_FILES=$files

for f in "$build/lua/bin/lua.exe" "$build/lua/bin/lua54.dll" "$build/rocks/lib/lua/5.4/wmi/core.dll" \
         "$build/rocks/share/lua/5.4/wmi/init.lua" "$build/test/testapt.dll" "$out/bench_raw.dll" "$out/sleeper.exe" \
         "$build/test/testwmi.dll"; do
  [ -f "$f" ] || { echo "bench/run.sh: $f is missing (run make bench)" >&2; exit 1; }
done

export WINEPREFIX=$prefix
export HOME=$build/bench-home          # empty: the user folders Wine links to it hold nothing
export WINEDEBUG=${WINEDEBUG:--all}
export WINEARCH=win64
export WINEDLLOVERRIDES="mscoree,mshtml=${WINEDLLOVERRIDES:+;$WINEDLLOVERRIDES}"
say() { printf '[bench] %s\n' "$*"; }

# Runs a Wine command quietly with stdio away from our pipes (a Wine service
# started by it would inherit them and hang their reader).
quiet() { "$@" </dev/null >/dev/null 2>&1; }

if [ ! -f "$prefix/.luawmi-bench-ready" ]; then
  say "creating the benchmark prefix build/bench-prefix (empty HOME, no Z:)"
  rm -rf "$prefix" "$HOME"
  mkdir -p "$prefix" "$HOME"
  quiet wineboot -i
  quiet wine reg add 'HKCU\Software\Wine' /v Version /d win10 /f
  quiet wineserver -w
  touch "$prefix/.luawmi-bench-ready"
fi
# Only C: stays: Wine made Z: -> / when it created the prefix.
for d in "$prefix"/dosdevices/?:; do
  [ -e "$d" ] || [ -L "$d" ] || continue
  [ "$(basename "$d")" = "c:" ] || rm -f "$d"
done
# Wine leaves only empty folders in HOME; C:\users\<user>\Desktop and friends link to it.
[ -z "$(find "$HOME" -type f -print -quit)" ] || say "note: $HOME holds files: the CIM_DataFile walk sees them"

# The payload, under C:\luawmi-bench.
drive_c=$prefix/drive_c
pay=$drive_c/luawmi-bench
rm -rf "$pay"
mkdir -p "$pay/lib/wmi" "$pay/lua/wmi" "$pay/bench"
cp "$build/lua/bin/lua.exe" "$build/lua/bin/lua54.dll" "$out/sleeper.exe" "$pay/"
cp "$build/rocks/lib/lua/5.4/wmi/core.dll" "$pay/lib/wmi/core.dll"
cp "$build/rocks/share/lua/5.4/wmi/"*.lua "$pay/lua/wmi/"
cp "$build/test/testapt.dll" "$build/test/testwmi.dll" "$out/bench_raw.dll" "$pay/lib/"
cp "$top"/bench/*.lua "$pay/bench/"

# C:\bench\files: the large query's files (empty: Wine reads no version from them).
fdir=$drive_c/bench/files
if [ "$(find "$fdir" -maxdepth 1 -type f 2>/dev/null | wc -l)" != "$files" ]; then
  say "making $files files in C:\\bench\\files"
  rm -rf "$fdir"
  mkdir -p "$fdir"
  (cd "$fdir" && seq -f 'f%05g.txt' 1 "$files" | xargs touch)
fi

export LUAWMI_BENCH_DIR='C:\luawmi-bench'
export LUA_PATH_5_4='C:\luawmi-bench\lua\?.lua;C:\luawmi-bench\lua\?\init.lua;C:\luawmi-bench\?.lua'
export LUA_CPATH_5_4='C:\luawmi-bench\lib\?.dll'

# The test apartment server, registered in this prefix at its C:\ path (the path
# require loads it from: COM and Lua must share the one image).
clsid=$(sed -n 's/^#define TESTAPT_CLSID "\({[0-9A-Fa-f-]*}\)"$/\1/p' "$top/spec/support/testapt.c")
key="HKLM\\Software\\Classes\\CLSID\\$clsid\\InprocServer32"
quiet wine reg add "$key" /ve /d 'C:\luawmi-bench\lib\testapt.dll' /f
quiet wine reg add "$key" /v ThreadingModel /d Both /f
# The test WMI server (the fan-out's simulated hosts), the same way.
clsid=$(sed -n 's/^#define TESTWMI_CLSID "\({[0-9A-Fa-f-]*}\)"$/\1/p' "$top/spec/support/testwmi.h")
key="HKLM\\Software\\Classes\\CLSID\\$clsid\\InprocServer32"
quiet wine reg add "$key" /ve /d 'C:\luawmi-bench\lib\testwmi.dll' /f
quiet wine reg add "$key" /v ThreadingModel /d Both /f
quiet wineserver -k || true
quiet wineserver -w || true
trap 'quiet wineserver -k || true' EXIT

log=$out/results.log
: >"$log"
# run SCRIPT [CPUS]: one Lua process in the prefix, with a wineserver of its own
# (persistent, so processes start in tens of milliseconds) stopped after it; the
# output is kept in the log. CPUS pins the wineserver and every Wine process to
# those CPUs (taskset).
#
# The end-to-end queries run pinned to one CPU: Wine's WMI is bound by round trips
# to the wineserver, and on this 2-vCPU VM their cost flips between two modes as
# the scheduler places the two processes on one core or on two (the same query
# took 1.0 s or 4.1 s, and 35 or 80 ms), which buried the luawmi/raw C ratios in
# noise. The dispatch benchmark runs on every CPU: its producers and consumer are
# meant to run in parallel.
run() {
  local status pin=()
  [ -z "${2:-}" ] || pin=(taskset -c "$2")
  say "running bench/$1.lua${2:+ (pinned to CPU $2)}"
  "${pin[@]}" wineserver -p </dev/null >/dev/null 2>&1 || true
  "${pin[@]}" wine wineboot </dev/null >/dev/null 2>&1
  set +e
  (cd "$pay" && "${pin[@]}" wine 'C:\luawmi-bench\lua.exe' "C:\\luawmi-bench\\bench\\$1.lua" 2>&1 </dev/null) |
    tr -d '\r' | tee -a "$log" | grep -v '^table: '
  status=${PIPESTATUS[0]}
  set -e
  quiet wineserver -k || true
  quiet wineserver -w || true
  [ "$status" = 0 ] || { echo "bench/run.sh: bench/$1.lua failed ($status)" >&2; exit 1; }
}
e2e_cpu=${LUAWMI_BENCH_E2E_CPU-0}
started=$(date +%s)
if [ -n "${LUAWMI_BENCH_ONLY:-}" ]; then
  run "$LUAWMI_BENCH_ONLY" "$([ "$LUAWMI_BENCH_ONLY" = e2e ] && echo "$e2e_cpu")"
else
  run e2e "$e2e_cpu"
  run dispatch
  run memory      # a process of its own: its heap starts clean
  run fanout      # the same: its private bytes are measured
fi

cat <<EOF

## Benchmarks

Wine $(wine --version | sed 's/^wine-//'), $(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release), $(nproc) cores, $(date -u +%Y-%m-%d); \`make bench\` ($(( $(date +%s) - started )) s).
End to end: ${LUAWMI_BENCH_RUNS:-7} runs per variant in one process, order rotating, pinned to CPU ${e2e_cpu:-none} with its wineserver;
the raw C client is bench/bench_raw.c. Dispatch: spec/support/testapt.c's flood, ${LUAWMI_BENCH_DISPATCH_RUNS:-7} runs, both CPUs.

| query | objects | variant | median ms | min - max ms | luawmi / raw C |
| --- | --- | --- | --- | --- | --- |
EOF
sed -n 's/^table: //p' "$log" | grep -v '^| dispatch\|^| memory\|^| fanout' || true
echo
echo "| dispatch measurement | value |"
echo "| --- | --- |"
sed -n 's/^table: | \(dispatch\|memory\) | /| /p' "$log" || true
echo
echo "| fan-out measurement (test WMI server's simulated hosts) | value |"
echo "| --- | --- |"
sed -n 's/^table: | fanout | /| /p' "$log" || true
echo
grep '^bench: ' "$log"
