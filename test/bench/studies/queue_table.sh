#!/usr/bin/env bash
# A design study, not a measurement of automation_core: would the work
# queue go faster if item_execution's status were in none of its indexes?
#
# Every status change of an item execution is an UPDATE that cannot be HOT
# (heap-only): status is in the predicates of the ready, open and lease
# indexes, so each claim and each completion writes a new entry into every
# index of the table. The alternative studied here keeps status out of
# item_execution's indexes (fillfactor 50, room for HOT updates) and moves
# the queue into a narrow table of its own: claim marks a queue row taken,
# completion deletes it. Both designs are written by hand, with the history
# rows, and with no enforcement:
#
#   A  item_execution's own index set (as the throughput floor of 20_api)
#   B  item_execution with its primary key, unique and foreign-key indexes
#      only, plus the queue table (ready index, open-per-batch index)
#
# Each is measured one item per call and 100 items per call, at 1 and 8
# clients, on 100,000 items; medians of AC_BENCH_RUNS runs (default 3).
# Run only when named: test/bench/run studies/queue_table
set -euo pipefail

RUNS=${AC_BENCH_RUNS:-3}
DUR=${AC_BENCH_SECONDS:-10}

# log, q, median, ratio, fmt, row, pgbench_tps, scratch and the floor's statements
. "$(dirname "$0")/../common.sh"
scratch ac_bench_queue ac_bench_queue

log "== queue_table: set-up"
fresh_database ac_bench_queue
export PGDATABASE=ac_bench_queue
q <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION automation_core;
CREATE SCHEMA study;
CREATE TABLE study.a_item (LIKE automation_core.item_execution INCLUDING ALL);
CREATE TABLE study.a_history (LIKE automation_core.item_state_history INCLUDING ALL);
CREATE TABLE study.b_item (LIKE automation_core.item_execution INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
	WITH (fillfactor = 50);
ALTER TABLE study.b_item ADD PRIMARY KEY (id), ADD UNIQUE (run_id, item_id);
CREATE INDEX ON study.b_item (batch_execution_id);
CREATE INDEX ON study.b_item (item_id);
CREATE TABLE study.b_history (LIKE automation_core.item_state_history INCLUDING ALL);
CREATE TABLE study.b_queue (
	id uuid PRIMARY KEY,
	batch_execution_id uuid NOT NULL,
	queue_position bigint NOT NULL,
	next_attempt_at timestamptz,
	taken boolean NOT NULL DEFAULT false
);
CREATE INDEX ON study.b_queue (queue_position) WHERE NOT taken;
CREATE INDEX ON study.b_queue (batch_execution_id, queue_position);
SQL

cat >"$WORK/fill.sql" <<'SQL'
TRUNCATE study.a_item, study.a_history, study.b_item, study.b_history, study.b_queue;
INSERT INTO study.a_item (run_id, batch_execution_id, item_id, queue_position, created_by, updated_by)
SELECT r, ('00000000-0000-0000-0000-' || lpad((i / 1000)::text, 12, '0'))::uuid, gen_random_uuid(), i, 'bench', 'bench'
FROM gen_random_uuid() r, generate_series(1, 100000) i;
INSERT INTO study.b_item SELECT * FROM study.a_item;
INSERT INTO study.b_queue (id, batch_execution_id, queue_position)
SELECT id, batch_execution_id, queue_position FROM study.b_item;
INSERT INTO study.a_history (item_execution_id, previous_status, new_status, changed_at)
SELECT id, NULL, 'pending', now() FROM study.a_item;
INSERT INTO study.b_history (item_execution_id, previous_status, new_status, changed_at)
SELECT id, NULL, 'pending', now() FROM study.b_item;
VACUUM ANALYZE study.a_item, study.a_history, study.b_item, study.b_history, study.b_queue;
CHECKPOINT;
SQL

# A: the throughput benchmark's floor (test/bench/common.sh) on a copy of
# item_execution. B: the same writes, the queue row marked at claim and
# deleted at completion; one item per call in the same form as A's (a
# scalar subquery where A has one, arrays for many).
AT=study.a_item AH=study.a_history BT=study.b_item BH=study.b_history
ONE="id, attempt_count AS attempt"
MANY="array_agg(id)::text AS ids, array_agg(attempt_count)::text AS atts"
b_claim() {		# b_claim N OUTPUT
	local pick="SELECT id FROM study.b_queue WHERE NOT taken AND (next_attempt_at IS NULL OR next_attempt_at <= now()) ORDER BY queue_position LIMIT $1 FOR UPDATE SKIP LOCKED"
	local taken="= ANY (ARRAY(SELECT id FROM q))"
	if [ "$1" = 1 ]; then pick="= ($pick)" taken="= (SELECT id FROM q)"; else pick="= ANY (ARRAY($pick))"; fi
	echo "WITH q AS (UPDATE study.b_queue SET taken = true WHERE id $pick RETURNING id), c AS (UPDATE $BT ie SET $FLOOR_CLAIM_SET WHERE ie.id $taken RETURNING ie.id, ie.attempt_count), h AS ($(floor_history $BH pending processing)) SELECT $2 FROM c"
}
b_dequeue() { echo "d AS (DELETE FROM study.b_queue WHERE id = ANY (ARRAY(SELECT id FROM c)))"; }
{
	floor_claim $AT $AH 1 "$ONE"; echo '\gset'
	echo "$(floor_complete $AT $AH :id :attempt);"
} >"$WORK/a1.sql"
{
	floor_claim $AT $AH 100 "$MANY"; echo '\gset'
	echo "$(floor_complete_many $AT $AH ':ids::uuid[]' ':atts::integer[]');"
} >"$WORK/a100.sql"
{
	b_claim 1 "$ONE"; echo '\gset'
	echo "WITH c AS (UPDATE $BT ie SET $FLOOR_COMPLETE_SET WHERE ie.id = :id AND ie.status = 'processing' AND ie.attempt_count = :attempt RETURNING ie.id), $(b_dequeue) $(floor_history $BH processing completed);"
} >"$WORK/b1.sql"
{
	b_claim 100 "$MANY"; echo '\gset'
	echo "WITH u AS (SELECT * FROM unnest(:ids::uuid[], :atts::integer[]) AS u(id, attempt)), c AS (UPDATE $BT ie SET $FLOOR_COMPLETE_SET FROM u WHERE ie.id = u.id AND ie.status = 'processing' AND ie.attempt_count = u.attempt RETURNING ie.id), $(b_dequeue) $(floor_history $BH processing completed);"
} >"$WORK/b100.sql"

declare -A R
for r in $(seq "$RUNS"); do
	for d in a b; do
		q -f "$WORK/fill.sql"
		one1=$(pgbench_tps "$WORK/${d}1.sql" 1 -T "$DUR")
		one8=$(pgbench_tps "$WORK/${d}1.sql" 8 -T "$DUR")
		q -f "$WORK/fill.sql"
		many1=$(awk -v t="$(pgbench_tps "$WORK/${d}100.sql" 1 -t 300)" 'BEGIN { print t * 100 }')
		q -f "$WORK/fill.sql"
		many8=$(awk -v t="$(pgbench_tps "$WORK/${d}100.sql" 8 -t 100)" 'BEGIN { print t * 100 }')
		hot=$(q -c "SELECT round(100.0 * n_tup_hot_upd / greatest(n_tup_upd, 1)) FROM pg_stat_user_tables WHERE relid = 'study.${d}_item'::regclass")
		R[$d.one1]+="$one1 " R[$d.one8]+="$one8 " R[$d.many1]+="$many1 " R[$d.many8]+="$many8 "
		log "   design $d, run $r: 1 per call $one1 / $one8 items/s, 100 per call $many1 / $many8 items/s (1 / 8 clients), ${hot}% of the last run's updates HOT"
	done
done
med() { printf '%s\n' ${R[$1]} | median; }
for c in 1 8; do
	cl="$c client$([ "$c" = 1 ] || echo s)"
	row "study, claim + complete 1 per call (items/s): A item_execution's indexes, B queue table + HOT" "$cl" \
		"$(fmt "$(med a.one$c)")" "$(fmt "$(med b.one$c)")" "$(ratio "$(med b.one$c)" "$(med a.one$c)")" "report"
	row "study, claim 100 + complete 100 per call (items/s): A, B as above" "$cl" \
		"$(fmt "$(med a.many$c)")" "$(fmt "$(med b.many$c)")" "$(ratio "$(med b.many$c)" "$(med a.many$c)")" "report"
	row "study, 100 per call against 1 per call in the same design: A (floor column), B (measured)" "$cl" \
		"$(ratio "$(med a.many$c)" "$(med a.one$c)")" "$(ratio "$(med b.many$c)" "$(med b.one$c)")" "-" "report"
done
