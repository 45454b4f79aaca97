#!/bin/bash
# Where a durable delivery's CPU goes: runs B alone (`--only B`, unique 1 KiB
# deliveries, 10 s) and, over 5 s in the middle of it, reads the CPU time of the
# benchmark process (both its clients and its server) and of the database's
# processes (redis-server, or every postgres process), and the whole machine's
# busy time, each divided by the deliveries B answered in those 5 s.
#
#   crates/hookwise-bench/scripts/cpu-split.sh target/release/hookwise-bench redis
#   crates/hookwise-bench/scripts/cpu-split.sh target/release/hookwise-bench postgres
#
# The machine's line includes every other process's work: read it with the load
# average. Linux only (/proc).
set -euo pipefail
bin=${1:?the hookwise-bench binary}
backend=${2:-redis}
out=$(mktemp)
"$bin" --seconds 10 --rounds 1 --scenarios unique --only B \
  --store "$backend" --queue "$backend" >"$out" 2>&1 &
bench=$!
sleep 3
case $backend in
  redis) pattern='^redis-server' ;;
  postgres) pattern='(^|/)postgres( |:|$)' ;;
  *) echo "backend: redis or postgres" >&2; exit 2 ;;
esac
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
database() {
  local total=0
  for pid in $(pgrep "$pattern" -f); do total=$((total + $(ticks "$pid"))); done
  echo "$total"
}
machine() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
b0=$(ticks "$bench"); d0=$(database); m0=$(machine); t0=$(date +%s.%N)
sleep 5
b1=$(ticks "$bench"); d1=$(database); m1=$(machine); t1=$(date +%s.%N)
wait "$bench"
rate=$(awk -F'|' '/^\| B/ {gsub(/ /, "", $4); print $4; exit}' "$out")
rm -f "$out"
python3 - "$b0" "$b1" "$d0" "$d1" "$m0" "$m1" "$t0" "$t1" "$rate" "$(getconf CLK_TCK)" <<'PY'
import sys
b0, b1, d0, d1, m0, m1 = map(int, sys.argv[1:7])
t0, t1, rate, tick = float(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10])
n = rate * (t1 - t0)
per = lambda a, b: (b - a) / tick / n * 1e6
print(f"B: {rate:.0f} deliveries/s; CPU per delivery: benchmark process {per(b0, b1):.1f} us, "
      f"database {per(d0, d1):.1f} us, machine {per(m0, m1):.1f} us "
      f"({(m1 - m0) / tick / (t1 - t0):.2f} of the machine's cores busy)")
PY
