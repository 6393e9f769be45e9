#!/usr/bin/env bash
# `make stress`: every kind of bench/stress.lua in a process of its own (a fresh heap
# per kind: free blocks left by one kind would hide the growth of the next), then the
# lifecycle stress. One wineserver serves them all. Exits 1 if any kind failed.
# LEAK=BYTES (make stress LEAK=64) is the calibration run: every judged kind must fail.
set -uo pipefail
luawmi_top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/wine-env.sh
. "$luawmi_top/scripts/wine-env.sh"
if wineserver -p </dev/null >/dev/null 2>&1; then
  trap 'wineserver -k </dev/null >/dev/null 2>&1' EXIT
fi
export LUAWMI_WINESERVER=1
[ -n "${LEAK:-}" ] && export LUAWMI_LEAK=$LEAK

started=$SECONDS
failed=0 failures=0
mapfile -t kinds < <("$luawmi_top/scripts/lua" bench/stress.lua --list)
for kind in "${kinds[@]}"; do
  "$luawmi_top/scripts/lua" bench/stress.lua "$kind" || { echo "stress: $kind FAILED"; failed=1; failures=$((failures + 1)); }
done
echo "stress: total $((SECONDS - started)) s"
[ -n "${LEAK:-}" ] && echo "stress: calibration, $LEAK bytes leaked per operation: $failures kinds failed"
if [ "$failed" = 0 ]; then echo "stress: ok"; else echo "stress: FAILED"; fi
exit "$failed"
