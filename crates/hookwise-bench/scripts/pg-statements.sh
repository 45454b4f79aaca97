#!/bin/bash
# What Postgres spends on each statement of a durable delivery: runs B alone
# (`--only B`, unique 1 KiB deliveries, 12 s) on a throwaway cluster started with
# pg_stat_statements, and over 5 s in the middle of it prints the enqueue, take and
# delete statements' calls, mean execution time (µs), shared buffers and rows per
# call, then how many times each was planned and the mean planning time (µs),
# which pg_stat_statements keeps apart from the execution's; then B's req/s.
#
#   crates/hookwise-bench/scripts/pg-statements.sh target/release/hookwise-bench
#
# Needs Postgres's contrib (pg_stat_statements ships with Debian's postgresql).
set -euo pipefail
bin=${1:?the hookwise-bench binary}
out=$(mktemp)
HOOKWISE_PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c pg_stat_statements.track_planning=on" \
  "$bin" --seconds 12 --rounds 1 --scenarios unique --baseline layer \
  --store postgres --queue postgres --only B >"$out" 2>&1 &
bench=$!
sleep 3
port=$(grep -o '127.0.0.1:[0-9]*' "$out" | head -1 | cut -d: -f2)
psql=(psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -tA)
"${psql[@]}" -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null
"${psql[@]}" -c 'SELECT pg_stat_statements_reset()' >/dev/null
sleep 5
"${psql[@]}" -F ' | ' -c "SELECT left(query, 12), calls,
    round((total_exec_time / calls)::numeric * 1000) AS us_per_call,
    shared_blks_hit / greatest(calls, 1) AS buffers_per_call,
    round(rows::numeric / calls, 1) AS rows_per_call,
    plans,
    round((total_plan_time / greatest(plans, 1))::numeric * 1000) AS plan_us
  FROM pg_stat_statements
  WHERE query LIKE 'WITH input%' OR query LIKE 'DELETE%' OR query LIKE 'UPDATE%'
  ORDER BY total_exec_time DESC"
wait "$bench"
awk -F'|' '/^\| B/ {gsub(/ /, "", $4); print "B: " $4 " req/s"; exit}' "$out"
rm -f "$out"
