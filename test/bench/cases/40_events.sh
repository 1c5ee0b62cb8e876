#!/usr/bin/env bash
# Cost of the event log on the hot path: item claim + complete at 8 clients
# with synchronous_commit = on, for
#   (a) item_events = none, notify = off      (the floor: no events at all)
#   (b) the defaults: item_events = failures, notify = commit
#   (c) item_events = all, notify = commit    (two events and a NOTIFY per item)
#   (d) item_events = all, notify = off       (the events alone, no NOTIFY)
# A claim and a complete are two transactions: automation_core.claim() and
# automation_core.complete() in autocommit.
# Runs against the server in PGHOST/PGPORT/PGUSER/PGDATABASE with the
# extension created; prints markdown rows, medians of AC_BENCH_RUNS runs.
# Env: AC_BENCH_RUNS (3), AC_BENCH_SECONDS (10), AC_BENCH_CLIENTS (8).
set -euo pipefail

runs=${AC_BENCH_RUNS:-3}
secs=${AC_BENCH_SECONDS:-10}
clients=${AC_BENCH_CLIENTS:-8}
work=$(mktemp -d "${TMPDIR:-/tmp}/ac_bench_events.XXXXXX")
trap 'rm -rf "$work"' EXIT

log() { printf '40_events: %s\n' "$*" >&2; }
sql() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

cat >"$work/claim_complete.sql" <<'SQL'
SELECT id AS claimed, attempt_count AS attempt
  FROM automation_core.claim(':run', 'bench') \gset
SELECT status FROM automation_core.complete(':claimed', '{"ok": true}', :attempt);
SQL

# One automation with one batch of enough items for a run at the highest
# rate this machine could plausibly reach; each measurement gets a new run.
items=${AC_BENCH_ITEMS:-40000}
log "setting up $items items"
sql <<SQL
SET automation_core.item_events = 'none';
DELETE FROM automation_core.automation WHERE name = 'bench events';
INSERT INTO automation_core.automation (name) VALUES ('bench events');
INSERT INTO automation_core.batch (automation_id, name)
	SELECT id, 'b' FROM automation_core.automation WHERE name = 'bench events';
INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT b.id, g FROM automation_core.batch b, generate_series(1, $items) g
	 WHERE b.name = 'b' AND b.automation_id =
		(SELECT id FROM automation_core.automation WHERE name = 'bench events');
SQL

new_run() {
	sql <<SQL
SET automation_core.item_events = 'none';
WITH r AS (
	INSERT INTO automation_core.run (automation_id)
	SELECT id FROM automation_core.automation WHERE name = 'bench events'
	RETURNING id, automation_id
), be AS (
	INSERT INTO automation_core.batch_execution (run_id, batch_id)
	SELECT r.id, b.id FROM r JOIN automation_core.batch b ON b.automation_id = r.automation_id
	RETURNING id, run_id, batch_id
), ie AS (
	INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id)
	SELECT be.run_id, be.id, i.id FROM be JOIN automation_core.item i ON i.batch_id = be.batch_id
	ORDER BY i.sequence_number
)
SELECT id FROM r;
SQL
}

# measure SETTINGS: prints the tps of one pgbench run on a fresh run
measure() {
	local opts=$1 run tps
	run=$(new_run | tail -1)
	sql -c "VACUUM ANALYZE automation_core.item_execution" >/dev/null
	# the previous round's DELETE left WAL behind: flush it now, not
	# during the measurement
	sql -c "CHECKPOINT" >/dev/null
	tps=$(PGOPTIONS="-c synchronous_commit=on $opts" \
		pgbench -n -c "$clients" -j 2 -T "$secs" -D run="$run" \
		-f "$work/claim_complete.sql" 2>"$work/pgbench.err" |
		sed -n 's/^tps = \([0-9]*\).*/\1/p')
	if [ -z "$tps" ] || grep -q "aborted" "$work/pgbench.err"; then
		cat "$work/pgbench.err" >&2
		exit 1
	fi
	# drop the run, so that every measurement starts from the same tables
	sql -c "DELETE FROM automation_core.run WHERE id = '$run'" >/dev/null
	sql -c "VACUUM automation_core.item_execution, automation_core.item_state_history" >/dev/null
	echo "$tps"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

declare -a A B C D
settings=(
	"-c automation_core.item_events=none -c automation_core.notify=off"
	""
	"-c automation_core.item_events=all -c automation_core.notify=commit"
	"-c automation_core.item_events=all -c automation_core.notify=off"
)
names=("none/off" "defaults" "all/commit" "all/off")
for i in $(seq 1 "$runs"); do
	# rotate the order from round to round, so that no setting always
	# runs first
	for k in 0 1 2 3; do
		j=$(((k + i - 1) % 4))
		t=$(measure "${settings[$j]}")
		log "round $i: ${names[$j]} $t tps"
		case $j in
		0) A+=("$t") ;;
		1) B+=("$t") ;;
		2) C+=("$t") ;;
		3) D+=("$t") ;;
		esac
	done
done

a=$(printf '%s\n' "${A[@]}" | median)
b=$(printf '%s\n' "${B[@]}" | median)
c=$(printf '%s\n' "${C[@]}" | median)
d=$(printf '%s\n' "${D[@]}" | median)
ratio() { awk -v x="$1" -v y="$2" 'BEGIN {printf "%.2f", x / y}'; }

# The machine's noise can exceed the differences measured: report the
# ratio within each round too (same minute, same neighbours).
for i in $(seq 0 $((runs - 1))); do
	log "round $((i + 1)) ratios to the floor: defaults $(ratio "${B[$i]}" "${A[$i]}"), all/commit $(ratio "${C[$i]}" "${A[$i]}"), all/off $(ratio "${D[$i]}" "${A[$i]}")"
done

echo "| item claim+complete (tps, sync commit) | $clients / item_events=none, notify=off | $a | $a | 1.00 | floor |"
echo "| item claim+complete (tps, sync commit) | $clients / defaults (failures, commit) | $a | $b | $(ratio "$b" "$a") | >= 0.95 |"
echo "| item claim+complete (tps, sync commit) | $clients / item_events=all, notify=commit | $a | $c | $(ratio "$c" "$a") | - |"
echo "| item claim+complete (tps, sync commit) | $clients / item_events=all, notify=off | $a | $d | $(ratio "$d" "$a") | - |"
