#!/usr/bin/env bash
# make fuzz SEEDS=... ITER=...: each seed of spec/fuzz/fuzz.lua in its own process
# under a time limit, JOBS at once; one line per seed (ok / FAIL / CRASH / HANG),
# a summary, and for each failing seed the command that reproduces it.
#   SEEDS: "1-500", "7", "3 9 12" or a mix;  ITER: calls per seed (default 2000)
#   TIMEOUT: seconds per seed (default 120);  JOBS: processes at once (default 2)
# Exit status 1 when any seed did not end ok.
set -uo pipefail
luawmi_top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$luawmi_top"
. scripts/wine-env.sh
seeds_spec=${1:-1-20}
iter=${2:-2000}
timeout_s=${TIMEOUT:-120}
jobs=${JOBS:-2}
logdir=build/fuzz
mkdir -p "$logdir"

seeds=()
for part in $seeds_spec; do
  if [[ $part == *-* ]]; then
    for ((s = ${part%-*}; s <= ${part#*-}; s++)); do seeds+=("$s"); done
  else
    seeds+=("$part")
  fi
done

# One wineserver for every seed (a server per process would be slow to start
# and could still be dying when the next seed starts).
if wineserver -p </dev/null >/dev/null 2>&1; then
  trap 'wineserver -k </dev/null >/dev/null 2>&1; wineserver -w </dev/null >/dev/null 2>&1 || true' EXIT
fi
wine wineboot </dev/null >/dev/null 2>&1

# Runs one seed; prints "SEED VERDICT".
one() {
  local seed=$1 log="$logdir/seed-$1.log" rc verdict
  timeout -k 5 "$timeout_s" wine build/lua/bin/lua.exe spec/fuzz/fuzz.lua "$seed" "$iter" >"$log" 2>&1 </dev/null
  rc=$?
  # A crash first: Wine's debugger, started on a page fault, may itself hang.
  if grep -aq 'Unhandled' "$log"; then verdict=CRASH
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then verdict=HANG
  elif grep -aq 'FUZZ-LEAK' "$log"; then verdict=FAIL
  elif [ $rc -eq 0 ] && grep -aq 'FUZZ-\(OK\|EXIT\)' "$log"; then verdict=ok
  elif [ $rc -ge 128 ] || [ $rc -eq 5 ]; then verdict=CRASH
  else verdict=FAIL
  fi
  echo "$seed $verdict rc=$rc"
}
export -f one
export logdir iter timeout_s

start=$(date +%s)
# One line per seed as it ends (tee to a file: reopening /dev/stderr would
# truncate a log that stdout and stderr share).
printf '%s\n' "${seeds[@]}" | xargs -P "$jobs" -I{} bash -c 'one {}' | tee "$logdir/results.txt"
results=$(cat "$logdir/results.txt")
elapsed=$(( $(date +%s) - start ))
count() { grep -c " $1 " <<<"$results" || true; }
ok=$(count ok); fail=$(count FAIL); crash=$(count CRASH); hang=$(count HANG)
echo "fuzz: ${#seeds[@]} seeds x $iter calls in ${elapsed}s: $ok ok, $fail FAIL, $crash CRASH, $hang HANG"
status=0
while read -r seed verdict _; do
  [ "$verdict" = ok ] && continue
  status=1
  echo "  seed $seed $verdict (log $logdir/seed-$seed.log): make fuzz SEEDS=$seed ITER=$iter"
done < <(sort -n <<<"$results")
exit $status
