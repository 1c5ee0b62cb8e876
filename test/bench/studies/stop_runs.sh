#!/usr/bin/env bash
# A study of lock order, not a measurement of speed: how often does stopping
# runs while workers claim their items end in a deadlock (40P01), for each
# way of stopping a run?
#
# One session starts a run of 20 batch executions of 20 items, waits 30 ms
# and stops it, over and over; four sessions claim one item at a time from
# any run meanwhile. The ways of stopping:
#
#   cancel_run                       locks the open items first, as workers do
#   UPDATE run SET status            locks the run first, then its batch
#                                    executions, then their items
#   UPDATE batch_execution SET status   the batch executions first
#   DELETE FROM run                  the run first; the cascade the rest
#
# A claim that takes the first item of a pending batch execution locks the
# item, then the batch execution (to move it to processing): the other
# order from the plain statements'. Counts over AC_BENCH_SECONDS (default
# 20) per way, medians of AC_BENCH_RUNS runs (default 3).
# Run only when named: test/bench/run studies/stop_runs
set -euo pipefail

RUNS=${AC_BENCH_RUNS:-3}
DUR=${AC_BENCH_SECONDS:-20}

. "$(dirname "$0")/../common.sh"
scratch ac_bench_stop ac_bench_stop

fill() {
	fresh_database ac_bench_stop
	q <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION automation_core;
INSERT INTO automation_core.automation (name) VALUES ('stop');
INSERT INTO automation_core.batch (automation_id, name)
	SELECT a.id, 'b' || g FROM automation_core.automation a, generate_series(1, 20) g ORDER BY g;
INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT b.id, g FROM automation_core.batch b, generate_series(0, 19) g;
SQL
}
export PGDATABASE=ac_bench_stop

start="SELECT quote_literal(id) AS rid FROM automation_core.start_run((SELECT id FROM automation_core.automation)) \\gset
\\sleep 30 ms"
declare -A STOP=(
	[cancel_run]="SELECT status FROM automation_core.cancel_run(:rid::uuid, 'stop');"
	[update_run]="UPDATE automation_core.run SET status = 'cancelled' WHERE id = :rid::uuid;"
	[update_batch_execution]="UPDATE automation_core.batch_execution SET status = 'cancelled' WHERE run_id = :rid::uuid AND status IN ('pending', 'processing');"
	[delete_run]="DELETE FROM automation_core.run WHERE id = :rid::uuid;"
)
WAYS="cancel_run update_run update_batch_execution delete_run"
echo "SELECT count(*) FROM automation_core.claim(NULL, 'w', 1);" >"$WORK/claim.sql"

# deadlocks_of: pgbench's count of deadlock failures (--failures-detailed)
deadlocks_of() { sed -n 's/^number of deadlock failures: \([0-9]*\).*/\1/p'; }
done_of() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p'; }

declare -A R
for r in $(seq "$RUNS"); do
	for w in $WAYS; do
		printf '%s\n%s\n' "$start" "${STOP[$w]}" >"$WORK/stop.sql"
		fill
		pgbench -n -f "$WORK/stop.sql" -c 1 -T "$DUR" --failures-detailed >"$WORK/stop.out" 2>"$WORK/stop.err" &
		pid=$!
		pgbench -n -f "$WORK/claim.sql" -c 4 -j 2 -T "$DUR" --failures-detailed >"$WORK/claim.out" 2>"$WORK/claim.err" ||
			{ cat "$WORK/claim.err" >&2; exit 1; }
		wait "$pid" || { cat "$WORK/stop.err" >&2; exit 1; }
		sd=$(deadlocks_of <"$WORK/stop.out") cd=$(deadlocks_of <"$WORK/claim.out")
		sn=$(done_of <"$WORK/stop.out")
		R[$w.stop]+="${sd:-nan} " R[$w.claim]+="${cd:-nan} " R[$w.runs]+="${sn:-nan} "
		log "   $w, run $r: $sn runs stopped; deadlocks: ${sd:-?} of the stopper, ${cd:-?} of the claimers"
	done
done
med() { printf '%s\n' ${R[$1]} | median; }
for w in $WAYS; do
	row "study, runs stopped while 4 sessions claim, ${DUR} s: runs stopped (floor column), deadlocks of the stopper + of the claimers (measured)" \
		"$w" "$(fmt "$(med "$w.runs")")" "$(fmt "$(med "$w.stop")") + $(fmt "$(med "$w.claim")")" "-" "report"
done
