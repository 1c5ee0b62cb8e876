#!/usr/bin/env bash
# Benchmarks of the execution API (claim, complete, start_run), each against
# a floor: the same writes done by hand on copies of the tables without the
# extension's triggers, or Graphile Worker on the same server.
#
# Run by test/bench/run, which starts a server and exports PGHOST, PGPORT and
# PGUSER (a superuser). Works in databases of its own, dropped at the end. Prints
# markdown table rows on stdout, progress on stderr. Medians of
# AC_BENCH_RUNS runs (default 3); the one-item, lock-wait and heartbeat
# measurements last AC_BENCH_SECONDS each (default 10). AC_BENCH_ONLY picks
# sections (one waits graphile batch start heartbeat latency retries), all
# by default.
set -euo pipefail

RUNS=${AC_BENCH_RUNS:-3}
ONLY=${AC_BENCH_ONLY:-one waits graphile batch start heartbeat latency retries}
DUR=${AC_BENCH_SECONDS:-10}		# seconds per one-item-per-call measurement
LAT_CALLS=${AC_BENCH_LATENCY_CALLS:-2400}	# calls per latency measurement, at least 800
[ "$LAT_CALLS" -ge 800 ] || { echo "AC_BENCH_LATENCY_CALLS must be at least 800" >&2; exit 1; }
GW_VERSION=0.16.6
GW_JOBS=${AC_BENCH_GW_JOBS:-2000}	# jobs per Graphile Worker measurement

# log, q, median, ratio, fmt, row, pgbench_tps, scratch and the floor's statements
. "$(dirname "$0")/../common.sh"
scratch ac_bench_api ac_bench_api ac_bench_graphile
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
now_ms() { date +%s%3N; }

###########################################################################
# Set-up: automations with their items, and the floor's trigger-less copies
# of item_execution and item_state_history with the same indexes.
###########################################################################
log "== set-up"
# A database of its own, so that emptying the tables between measurements
# touches nothing of the other cases.
fresh_database ac_bench_api
export PGDATABASE=ac_bench_api
q -c "SET client_min_messages = warning" -c "CREATE EXTENSION automation_core"
q <<'SQL'
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench_floor CASCADE;
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.item_execution (LIKE automation_core.item_execution INCLUDING ALL);
CREATE TABLE bench_floor.item_state_history (LIKE automation_core.item_state_history INCLUDING ALL);
-- the same, keeping item_execution's foreign keys: what any table of these
-- rows costs before automation_core adds its triggers and history
CREATE TABLE bench_floor.item_execution_fk (LIKE automation_core.item_execution INCLUDING ALL);
ALTER TABLE bench_floor.item_execution_fk
	ADD FOREIGN KEY (batch_execution_id, run_id) REFERENCES automation_core.batch_execution (id, run_id),
	ADD FOREIGN KEY (item_id) REFERENCES automation_core.item (id);

-- bench_q: 30 batches of 800 items, runs of it feed the latency, retry
-- and heartbeat benchmarks (24,000 items)
-- bench_one: 80 batches of 800 items, for the throughput of one item per
-- call (64,000 items: more than 10 seconds at 6,000 items/s)
-- bench_big: 10 batches of 10,000 items, for start_run
INSERT INTO automation_core.automation (name) VALUES ('bench_q'), ('bench_one'), ('bench_big');
INSERT INTO automation_core.batch (automation_id, name)
SELECT a.id, 'batch-' || lpad(b::text, 2, '0')
FROM automation_core.automation a,
	 generate_series(1, CASE a.name WHEN 'bench_q' THEN 30 WHEN 'bench_one' THEN 80 ELSE 10 END) b
ORDER BY a.name, b;
INSERT INTO automation_core.item (batch_id, sequence_number, payload)
SELECT b.id, i, jsonb_build_object('n', i)
FROM automation_core.batch b JOIN automation_core.automation a ON a.id = b.automation_id,
	 generate_series(0, CASE a.name WHEN 'bench_big' THEN 9999 ELSE 799 END) i;
ANALYZE;
SQL
AUTO_Q=$(q -c "SELECT id FROM automation_core.automation WHERE name = 'bench_q'")
AUTO_ONE=$(q -c "SELECT id FROM automation_core.automation WHERE name = 'bench_one'")
AUTO_BIG=$(q -c "SELECT id FROM automation_core.automation WHERE name = 'bench_big'")

# Empty every run, item execution and history row (replica mode silences
# the triggers that guard history), and the floor's tables.
reset_queue() {
	q <<'SQL'
SET client_min_messages = warning;
SET session_replication_role = replica;
TRUNCATE automation_core.run CASCADE;
TRUNCATE bench_floor.item_execution, bench_floor.item_execution_fk, bench_floor.item_state_history;
RESET session_replication_role;
SQL
}

# A run of bench_q (24,000 pending items), or of the automation given, or
# the same rows as pending in the floor's copy.
ac_run() {
	q -c "SELECT id FROM automation_core.start_run('${1:-$AUTO_Q}')" >/dev/null
	q -c "VACUUM ANALYZE automation_core.item_execution" >/dev/null
}
floor_run() {
	local auto=${1:-$AUTO_Q}
	q <<SQL
INSERT INTO bench_floor.item_execution (id, run_id, batch_execution_id, item_id, queue_position, created_by, updated_by)
SELECT automation_core.uuid_v7(), r, b.id, i.id, nextval('automation_core.item_execution_queue_seq'), current_user, current_user
FROM gen_random_uuid() r, automation_core.batch b JOIN automation_core.item i ON i.batch_id = b.id
WHERE b.automation_id = '$auto' ORDER BY b.created_at, b.name, i.sequence_number;
INSERT INTO bench_floor.item_state_history (item_execution_id, previous_status, new_status, changed_at, created_by)
SELECT id, NULL, 'pending', now(), current_user FROM bench_floor.item_execution WHERE status = 'pending';
VACUUM ANALYZE bench_floor.item_execution;
SQL
}

# Each side fetches what a worker needs: the id and attempt of the item it
# claimed, and no more than its status after completing it (the floor's
# complete returns nothing; turning the whole returned row into text would
# measure the client protocol, not the enforcement).
cat >"$WORK/ac1.sql" <<'SQL'
SELECT id, attempt_count AS attempt FROM automation_core.claim(NULL, 'bench', 1)
\gset
SELECT status FROM automation_core.complete(:id, NULL, :attempt);
SQL

# The floor: the same two transactions by hand, with the history rows the
# triggers would write, and nothing enforced (test/bench/common.sh).
FT=bench_floor.item_execution FH=bench_floor.item_state_history
{
	floor_claim $FT $FH 1 "id, attempt_count AS attempt"
	echo '\gset'
	echo "$(floor_complete $FT $FH :id :attempt);"
} >"$WORK/floor1.sql"

# Many items per call, and the same by hand. 10,000 in one call shows
# whether any step of a claim or a completion grows faster than the number
# of items.
for n in 100 10000; do
	cat >"$WORK/ac$n.sql" <<SQL
SELECT array_agg(id)::text AS ids, array_agg(attempt_count)::text AS atts FROM automation_core.claim(NULL, 'bench', $n) \gset
SELECT count(*) FROM automation_core.complete_many(:ids::uuid[], NULL, :atts::integer[]);
SQL
	{
		floor_claim $FT $FH "$n" "array_agg(id)::text AS ids, array_agg(attempt_count)::text AS atts"
		echo '\gset'
		echo "$(floor_complete_many $FT $FH ':ids::uuid[]' ':atts::integer[]');"
	} >"$WORK/floor$n.sql"
done

###########################################################################
# claim + complete, one item per call, against the floor
###########################################################################
declare -A AC_ONE
one_clients=()
if want one; then one_clients=(1 8 32)
elif want graphile; then one_clients=(8 32)
elif want batch; then one_clients=(1 8)
fi
# Each measurement starts from a fresh run of bench_one; the two sides take
# turns at going first, since the machine's speed drifts.
# one_item SIDE CLIENTS: items/s of SIDE (ac or floor), one item per call
one_item() {
	reset_queue
	if [ "$1" = ac ]; then ac_run "$AUTO_ONE"; else floor_run "$AUTO_ONE"; fi
	pgbench_tps "$WORK/${1}1.sql" "$2" -T "$DUR"
}
for clients in "${one_clients[@]}"; do
	ac=() fl=()
	for r in $(seq "$RUNS"); do
		if want one && [ $((r % 2)) = 0 ]; then
			fl+=("$(one_item floor "$clients")")
			ac+=("$(one_item ac "$clients")")
		else
			ac+=("$(one_item ac "$clients")")
			want one && fl+=("$(one_item floor "$clients")")
		fi
		msg="one item per call, $clients clients, run $r: automation_core ${ac[-1]}/s"
		want one && msg="$msg, floor ${fl[-1]}/s"
		log "$msg"
	done
	AC_ONE[$clients]=$(printf '%s\n' "${ac[@]}" | median)
	if want one; then
		f=$(printf '%s\n' "${fl[@]}" | median)
		row "claim + complete, 1 item per call (items/s)" "$clients client$([ "$clients" = 1 ] || echo s)" \
			"$(fmt "$f")" "$(fmt "${AC_ONE[$clients]}")" "$(ratio "${AC_ONE[$clients]}" "$f")" "≥ 0.9× floor"
	fi
done

###########################################################################
# Lock waits of the one-item benchmark at 32 clients
###########################################################################
# Every wait for a heavyweight lock longer than 2 ms is logged
# (log_lock_waits with deadlock_timeout = 2ms) while DUR seconds of claims
# and completions run, on each side; counted per 1,000 items, since the two
# sides process different numbers. test/bench/run names the server's log.
if want waits && [ -n "${AC_SERVER_LOG:-}" ] && [ -r "$AC_SERVER_LOG" ]; then
	q -c "ALTER SYSTEM SET log_lock_waits = on" -c "ALTER SYSTEM SET deadlock_timeout = '2ms'" \
		-c "SELECT pg_reload_conf()" >/dev/null
	# waits_per_1000 SCRIPT: waits over 2 ms per 1,000 items
	waits_per_1000() {
		local l0 t
		l0=$(wc -l <"$AC_SERVER_LOG")
		t=$(pgbench_tps "$1" 32 -T "$DUR")
		# (awk counts: grep -c fails when there is nothing to count)
		tail -n +"$((l0 + 1))" "$AC_SERVER_LOG" |
			awk -v t="$t" -v d="$DUR" '/still waiting for/ { n++ } END { print (n + 0) * 1000 / (t * d) }'
	}
	wa=() wf=()
	for r in $(seq "$RUNS"); do
		reset_queue; ac_run "$AUTO_ONE"
		wa+=("$(waits_per_1000 "$WORK/ac1.sql")")
		reset_queue; floor_run "$AUTO_ONE"
		wf+=("$(waits_per_1000 "$WORK/floor1.sql")")
		log "lock waits over 2 ms per 1,000 items, 32 clients, run $r: automation_core ${wa[-1]}, floor ${wf[-1]}"
	done
	q -c "ALTER SYSTEM RESET log_lock_waits" -c "ALTER SYSTEM RESET deadlock_timeout" \
		-c "SELECT pg_reload_conf()" >/dev/null
	m=$(printf '%s\n' "${wa[@]}" | median)
	mf=$(printf '%s\n' "${wf[@]}" | median)
	row "lock waits over 2 ms per 1,000 items, 1 item per call" "32 clients" \
		"$(fmt "$mf" 1)" "$(fmt "$m" 1)" "$(ratio "$m" "$mf")" "report"
elif want waits; then
	log "skipping lock waits: the server's log is not readable here"
fi

###########################################################################
# Graphile Worker at 8 and 32 workers, no-op task
###########################################################################
graphile_setup() {
	command -v npm >/dev/null && command -v node >/dev/null || { log "npm or node missing"; return 1; }
	log "== installing graphile-worker@$GW_VERSION"
	(cd "$WORK" && npm init -y >/dev/null 2>&1 &&
		timeout 180 npm install --no-audit --no-fund --loglevel=error "graphile-worker@$GW_VERSION" >"$WORK/npm.log" 2>&1) ||
		{ tail -5 "$WORK/npm.log" >&2; return 1; }
	cat >"$WORK/gw.js" <<'JS'
// Runs Graphile Worker until the queue is empty with a no-op task and a
// silent logger; prints jobs per second from the first job to the end.
const { runOnce, runMigrations, Logger } = require("graphile-worker");
const logger = new Logger(() => () => {});
const mode = process.argv[2];
const concurrency = Number(process.argv[3] || 1);
let first = null;
let n = 0;
(async () => {
	if (mode === "migrate") {
		await runMigrations({ logger });
		return;
	}
	await runOnce({
		concurrency,
		maxPoolSize: concurrency + 2,
		logger,
		taskList: {
			noop: async () => {
				if (first === null) first = process.hrtime.bigint();
				n++;
			},
		},
	});
	const secs = Number(process.hrtime.bigint() - first) / 1e9;
	console.log((n / secs).toFixed(1));
})().catch((e) => {
	console.error(e);
	process.exit(1);
});
JS
	fresh_database ac_bench_graphile
	(cd "$WORK" && PGDATABASE=ac_bench_graphile node gw.js migrate)
}

if want graphile; then
	if graphile_setup; then
		for clients in 8 32; do
			gw=()
			for r in $(seq "$RUNS"); do
				q -d ac_bench_graphile -c "SELECT count(graphile_worker.add_job('noop')) FROM generate_series(1, $GW_JOBS)" >/dev/null
				q -d ac_bench_graphile -c "VACUUM ANALYZE" >/dev/null
				gw+=("$(cd "$WORK" && PGDATABASE=ac_bench_graphile node gw.js run "$clients")")
				log "graphile-worker $clients workers, run $r: ${gw[-1]} jobs/s"
			done
			g=$(printf '%s\n' "${gw[@]}" | median)
			row "claim + complete vs Graphile Worker $GW_VERSION, no-op job (items/s)" "$clients client$([ "$clients" = 1 ] || echo s)" \
				"$(fmt "$g")" "$(fmt "${AC_ONE[$clients]}")" "$(ratio "${AC_ONE[$clients]}" "$g")" "≥ 1.0× Graphile Worker"
		done
	else
		log "skipping Graphile Worker: npm, node or the npm registry is out of reach"
	fi
fi

###########################################################################
# claim 100 + complete 100 in one call, 1 and 8 clients
###########################################################################
# On a run of bench_big (100,000 items): 300 calls at 1 client (30,000
# items), 100 calls per client at 8 (80,000), enough calls for the
# measurement to reach a steady state. Each against the one-item rate at
# the same number of clients, and against the same statements by hand.
# many_per_call ITEMS CLIENTS CALLS: RUNS rounds of claim ITEMS + complete
# ITEMS per call on a run of bench_big, each followed by the same by hand;
# sets M and MF, the medians in items/s
many_per_call() {
	local items=$1 clients=$2 calls=$3 r t b=() bf=()
	for r in $(seq "$RUNS"); do
		reset_queue
		q -c "SELECT id FROM automation_core.start_run('$AUTO_BIG')" >/dev/null
		q -c "VACUUM ANALYZE automation_core.item_execution" >/dev/null
		t=$(pgbench_tps "$WORK/ac$items.sql" "$clients" -t "$calls")
		b+=("$(awk -v t="$t" -v n="$items" 'BEGIN { print t * n }')")
		reset_queue; floor_run "$AUTO_BIG"
		t=$(pgbench_tps "$WORK/floor$items.sql" "$clients" -t "$calls")
		bf+=("$(awk -v t="$t" -v n="$items" 'BEGIN { print t * n }')")
		log "$items items per call, $clients clients, run $r: ${b[-1]} items/s, floor ${bf[-1]} items/s"
	done
	M=$(printf '%s\n' "${b[@]}" | median)
	MF=$(printf '%s\n' "${bf[@]}" | median)
}

if want batch; then
	for clients in 1 8; do
		many_per_call 100 "$clients" "$([ "$clients" = 1 ] && echo 300 || echo 100)"
		cl="$clients client$([ "$clients" = 1 ] || echo s)"
		row "claim 100 + complete 100 per call (items/s)" "$cl" \
			"$(fmt "${AC_ONE[$clients]}") (1 per call)" "$(fmt "$M")" "$(ratio "$M" "${AC_ONE[$clients]}")" "≥ 10× 1 per call"
		row "claim 100 + complete 100 per call (items/s)" "$cl, against the same by hand" \
			"$(fmt "$MF")" "$(fmt "$M")" "$(ratio "$M" "$MF")" "report"
	done
	many_per_call 10000 1 1
	row "claim 10,000 + complete 10,000 in one call (items/s)" "1 client, against the same by hand" \
		"$(fmt "$MF")" "$(fmt "$M")" "$(ratio "$M" "$MF")" "report"
fi

###########################################################################
# start_run of 100,000 items against INSERT ... SELECT into the floor copy
###########################################################################
# fk_insert RUN: the INSERT ... SELECT of RUN's item executions into the
# floor's copy that keeps the foreign keys
fk_insert() {
	cat <<SQL
INSERT INTO bench_floor.item_execution_fk (id, run_id, batch_execution_id, item_id, queue_position, created_by, updated_by)
SELECT automation_core.uuid_v7(), be.run_id, be.id, i.id, nextval('automation_core.item_execution_queue_seq'), current_user, current_user
FROM automation_core.batch_execution be JOIN automation_core.batch b ON b.id = be.batch_id
JOIN automation_core.item i ON i.batch_id = b.id AND i.is_active
WHERE be.run_id = '$1' ORDER BY b.created_at, b.name, i.sequence_number;
SQL
}
secs() { fmt "$(awk -v x="$1" 'BEGIN { print x / 1000 }')" 2; }

if want start; then
	s=() f=() f4=() k=() kh=()
	for r in $(seq "$RUNS"); do
		reset_queue
		q -c "CHECKPOINT" >/dev/null
		t0=$(now_ms)
		run=$(q -At -c "SELECT id FROM automation_core.start_run('$AUTO_BIG')")
		s+=($(($(now_ms) - t0)))
		# the bare floor: the same rows with the same kind of ids, and with
		# the table's default ids (random, version 4)
		for ids in v7 v4; do
			q -c "TRUNCATE bench_floor.item_execution" -c "CHECKPOINT" >/dev/null
			t0=$(now_ms)
			q <<SQL
INSERT INTO bench_floor.item_execution (id, run_id, batch_execution_id, item_id, queue_position, created_by, updated_by)
SELECT $([ $ids = v7 ] && echo "automation_core.uuid_v7()" || echo "gen_random_uuid()"), r, b.id, i.id, nextval('automation_core.item_execution_queue_seq'), current_user, current_user
FROM gen_random_uuid() r, automation_core.batch b JOIN automation_core.item i ON i.batch_id = b.id AND i.is_active
WHERE b.automation_id = '$AUTO_BIG' AND b.is_active ORDER BY b.created_at, b.name, i.sequence_number;
SQL
			if [ $ids = v7 ]; then f+=($(($(now_ms) - t0))); else f4+=($(($(now_ms) - t0))); fi
		done
		q -c "CHECKPOINT" >/dev/null
		t0=$(now_ms)
		fk_insert "$run" | q
		k+=($(($(now_ms) - t0)))
		# and the history rows the contract asks for, by hand
		q -c "TRUNCATE bench_floor.item_execution_fk" -c "CHECKPOINT" >/dev/null
		t0=$(now_ms)
		q <<SQL
BEGIN;
$(fk_insert "$run")
INSERT INTO bench_floor.item_state_history (item_execution_id, previous_status, new_status, changed_at, created_by)
SELECT id, NULL, 'pending', now(), current_user FROM bench_floor.item_execution_fk;
COMMIT;
SQL
		kh+=($(($(now_ms) - t0)))
		log "start_run 100,000 items, run $r: ${s[-1]} ms, floor ${f[-1]} ms (random ids ${f4[-1]} ms), floor with foreign keys ${k[-1]} ms, and history ${kh[-1]} ms"
	done
	sm=$(printf '%s\n' "${s[@]}" | median)
	fm=$(printf '%s\n' "${f[@]}" | median)
	f4m=$(printf '%s\n' "${f4[@]}" | median)
	km=$(printf '%s\n' "${k[@]}" | median)
	khm=$(printf '%s\n' "${kh[@]}" | median)
	row "start_run, 100,000 items (s)" "1 client, bare INSERT" "$(secs "$fm")" "$(secs "$sm")" \
		"$(ratio "$sm" "$fm")" "≤ 1.5× floor"
	# the same pairs round by round: each start_run against the bare INSERT
	# measured right after it, which moments of a slow machine hit together
	paired=$(for i in "${!s[@]}"; do awk -v a="${s[$i]}" -v b="${f[$i]}" 'BEGIN { print a / b }'; done | median)
	row "start_run, 100,000 items, median of the rounds' ratios" "1 client, bare INSERT" "-" "-" \
		"$(fmt "$paired" 2)×" "report"
	row "start_run, 100,000 items (s)" "1 client, bare INSERT with random ids (the table's default)" "$(secs "$f4m")" "$(secs "$sm")" \
		"$(ratio "$sm" "$f4m")" "report"
	row "start_run, 100,000 items (s)" "1 client, INSERT with the foreign keys" "$(secs "$km")" "$(secs "$sm")" \
		"$(ratio "$sm" "$km")" "report"
	row "start_run, 100,000 items (s)" "1 client, INSERT with the foreign keys and the history rows" \
		"$(secs "$khm")" "$(secs "$sm")" "$(ratio "$sm" "$khm")" "report"
fi

###########################################################################
# heartbeat: 8 clients extending the leases of 1,000 processing items
###########################################################################
# Against the same UPDATE by hand on the floor's copy (same indexes, no
# triggers). With synchronous_commit off, so that the update, not the flush,
# is measured; the write-ahead log per heartbeat is reported as well (the
# index of leased items is keyed so that a heartbeat can be a HOT update).
if want heartbeat; then
	cat >"$WORK/hb.sql" <<'SQL'
\set n random(1, 1000)
SELECT h.status FROM bench_hb x, LATERAL automation_core.heartbeat(x.id, x.attempt_count) h WHERE x.n = :n;
SQL
	cat >"$WORK/hb_floor.sql" <<'SQL'
\set n random(1, 1000)
UPDATE bench_floor.item_execution ie SET lease_expires_at = now() + interval '5 minutes', updated_at = now(), updated_by = current_user, version = version + 1 FROM bench_hb x WHERE x.n = :n AND ie.id = x.id AND ie.status = 'processing' AND ie.attempt_count = x.attempt_count;
SQL
	# hb_tps SCRIPT: "heartbeats/s WAL-bytes-per-heartbeat"
	hb_tps() {
		local l0 t
		q -c "CHECKPOINT" >/dev/null
		l0=$(q -c "SELECT pg_current_wal_lsn()")
		t=$(PGOPTIONS="-c synchronous_commit=off" pgbench_tps "$1" 8 -T "$DUR")
		echo "$t $(q -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$l0') / ($t * $DUR))")"
	}
	# hb_side TABLE SCRIPT QUERY: the 1,000 processing items QUERY returns
	# (n, id, attempt_count) become bench_hb; TABLE is analyzed with them
	# processing; prints what hb_tps prints for SCRIPT
	hb_side() {
		q -c "DROP TABLE IF EXISTS bench_hb" -c "CREATE TABLE bench_hb AS $3" \
			-c "CREATE UNIQUE INDEX ON bench_hb (n)" -c "ANALYZE bench_hb" -c "ANALYZE $1" >/dev/null
		hb_tps "$2"
	}
	h=() hw=() hf=() hfw=()
	for r in $(seq "$RUNS"); do
		reset_queue; ac_run
		read -r t w <<<"$(hb_side automation_core.item_execution "$WORK/hb.sql" \
			"SELECT row_number() OVER (ORDER BY queue_position) AS n, id, attempt_count FROM automation_core.claim(NULL, 'bench', 1000)")"
		h+=("$t") hw+=("$w")
		reset_queue; floor_run
		read -r t w <<<"$(hb_side bench_floor.item_execution "$WORK/hb_floor.sql" \
			"WITH c AS (UPDATE bench_floor.item_execution SET status = 'processing', worker = 'bench', attempt_count = 1, lease_expires_at = now() + interval '5 minutes', started_at = now() WHERE id IN (SELECT id FROM bench_floor.item_execution ORDER BY queue_position LIMIT 1000) RETURNING id, attempt_count, queue_position) SELECT row_number() OVER (ORDER BY queue_position) AS n, id, attempt_count FROM c")"
		hf+=("$t") hfw+=("$w")
		log "heartbeat, 8 clients, run $r: ${h[-1]}/s (${hw[-1]} WAL bytes each), floor ${hf[-1]}/s (${hfw[-1]} bytes)"
	done
	q -c "DROP TABLE bench_hb" >/dev/null
	m=$(printf '%s\n' "${h[@]}" | median)
	mf=$(printf '%s\n' "${hf[@]}" | median)
	mw=$(printf '%s\n' "${hw[@]}" | median)
	mfw=$(printf '%s\n' "${hfw[@]}" | median)
	row "heartbeat of 1 of 1,000 processing items (calls/s)" "8 clients, synchronous_commit = off" \
		"$(fmt "$mf")" "$(fmt "$m")" "$(ratio "$m" "$mf")" "report"
	row "write-ahead log per heartbeat (bytes)" "8 clients, synchronous_commit = off" \
		"$(fmt "$mfw")" "$(fmt "$mw")" "$(ratio "$mw" "$mfw")" "report"
fi

###########################################################################
# claim + complete latency with 1,000,000 finished item executions
###########################################################################
# latency_ms SCRIPT: the median latency in ms of LAT_CALLS one-item claim +
# complete calls, 1 client, then the median latency of calls number 800,
# 1600, ...: on a fresh run of bench_q (800 items per batch, claimed in
# order) those are the calls that finish a batch execution and roll it up.
# With synchronous_commit off: the commit's flush does not depend on the
# table's size, and on this kind of machine its time varies more from minute
# to minute than the work being measured.
latency_ms() {
	rm -f "$WORK"/lat*
	PGOPTIONS="-c synchronous_commit=off" pgbench -n -M prepared -f "$1" -c 1 -t "$LAT_CALLS" -l --log-prefix="$WORK/lat" >/dev/null 2>"$WORK/pgbench.err" ||
		{ cat "$WORK/pgbench.err" >&2; return 1; }
	echo "$(cat "$WORK"/lat* | awk '{ print $3 / 1000 }' | median)" \
		"$(cat "$WORK"/lat* | awk 'NR % 800 == 0 { print $3 / 1000 }' | median)"
}

# quiesce: wait (up to a minute) until no autovacuum worker is busy in this
# database, then checkpoint, so that neither side is measured while the
# writes before it are being vacuumed or flushed
quiesce() {
	local i
	for i in $(seq 60); do
		[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND datname = current_database()")" = 0 ] && break
		sleep 1
	done
	q -c "CHECKPOINT" >/dev/null
}

# latency_runs LABEL: RUNS lines "automation_core floor batch-end", the
# median ms of each side and automation_core's call that ends a batch
latency_runs() {
	local r a e f
	for r in $(seq "$RUNS"); do
		quiesce
		read -r a e <<<"$(latency_ms "$WORK/ac1.sql")"
		quiesce
		read -r f _ <<<"$(latency_ms "$WORK/floor1.sql")"
		log "latency, $1, run $r: $a ms, floor $f ms; the call ending a batch execution $e ms"
		echo "$a $f $e"
	done
}

if want latency; then
	reset_queue; ac_run
	q -c "VACUUM ANALYZE automation_core.item_execution" >/dev/null
	floor_run
	latency_runs "empty table" >"$WORK/runs_empty"
	reset_queue
	# What ten finished runs of bench_big leave behind: 1,000,000 completed
	# item executions, each with its last history row (a real run writes
	# three; claim and complete never read the history), with the kind of ids
	# start_run gives. Written in replica mode, as a restore would, because
	# making them with start_run and two UPDATEs takes minutes on a small
	# machine.
	log "== 1,000,000 finished item executions"
	t0=$(now_ms)
	q <<SQL
SET session_replication_role = replica;
CREATE TEMP TABLE old_runs AS
	SELECT automation_core.uuid_v7() AS run_id, r FROM generate_series(1, 10) r;
INSERT INTO automation_core.run (id, automation_id, status, started_at, finished_at, created_by, updated_by, version)
SELECT run_id, '$AUTO_BIG', 'completed', now(), now(), current_user, current_user, 3 FROM old_runs;
INSERT INTO automation_core.batch_execution (id, run_id, batch_id, status, started_at, finished_at, created_by, updated_by, version)
SELECT automation_core.uuid_v7(), o.run_id, b.id, 'completed', now(), now(), current_user, current_user, 3
FROM old_runs o, automation_core.batch b WHERE b.automation_id = '$AUTO_BIG' ORDER BY o.r, b.name;
INSERT INTO automation_core.item_execution (id, run_id, batch_execution_id, item_id, status, attempt_count,
	started_at, finished_at, queue_position, created_by, updated_by, version)
SELECT automation_core.uuid_v7(), be.run_id, be.id, i.id, 'completed', 1, now(), now(),
	   nextval('automation_core.item_execution_queue_seq'), current_user, current_user, 3
FROM old_runs o JOIN automation_core.batch_execution be ON be.run_id = o.run_id
JOIN automation_core.batch b ON b.id = be.batch_id
JOIN automation_core.item i ON i.batch_id = be.batch_id
ORDER BY o.r, b.name, i.sequence_number;
INSERT INTO automation_core.item_state_history (item_execution_id, previous_status, new_status, changed_at, created_by)
SELECT ie.id, 'processing', 'completed', now(), current_user
FROM automation_core.item_execution ie
WHERE ie.status = 'completed';
SQL
	# the same rows in the floor's tables
	q <<'SQL'
INSERT INTO bench_floor.item_execution SELECT * FROM automation_core.item_execution;
INSERT INTO bench_floor.item_state_history (item_execution_id, previous_status, new_status, changed_at, created_at, created_by)
SELECT item_execution_id, previous_status, new_status, changed_at, created_at, created_by
FROM automation_core.item_state_history;
SQL
	q -c "VACUUM ANALYZE automation_core.item_execution" -c "VACUUM ANALYZE automation_core.item_state_history" \
		-c "VACUUM ANALYZE bench_floor.item_execution" -c "VACUUM ANALYZE bench_floor.item_state_history" >/dev/null
	log "   generated in $(($(now_ms) - t0)) ms; $(q -c "SELECT count(*) FROM automation_core.item_execution WHERE status = 'completed'") completed"
	ac_run
	floor_run
	latency_runs "1,000,000 finished rows" >"$WORK/runs_full"
	em=$(cut -d' ' -f1 "$WORK/runs_empty" | median)
	fem=$(cut -d' ' -f2 "$WORK/runs_empty" | median)
	lm=$(cut -d' ' -f1 "$WORK/runs_full" | median)
	flm=$(cut -d' ' -f2 "$WORK/runs_full" | median)
	row "claim + complete latency, 1 item (ms)" "1 client, synchronous_commit = off, 1,000,000 finished rows" \
		"$(fmt "$em" 3) (empty)" "$(fmt "$lm" 3)" "$(ratio "$lm" "$em")" "≤ 2× empty"
	row "the floor's claim + complete latency, 1 item (ms)" "1 client, synchronous_commit = off, 1,000,000 finished rows" \
		"$(fmt "$fem" 3) (empty)" "$(fmt "$flm" 3)" "$(ratio "$flm" "$fem")" "report"
	eem=$(cut -d' ' -f3 "$WORK/runs_empty" | median)
	elm=$(cut -d' ' -f3 "$WORK/runs_full" | median)
	row "claim + complete of the item that ends a batch execution of 800 (ms)" "1 client, synchronous_commit = off, 1,000,000 finished rows" \
		"$(fmt "$eem" 3) (empty)" "$(fmt "$elm" 3)" "$(ratio "$elm" "$eem")" "report"
	reset_queue
fi

###########################################################################
# claim behind retries that are not due: after an outage, every item of a
# run has failed and waits an hour for its next attempt, at the head of the
# queue; a later run's pending items are what claim must find.
###########################################################################
if want retries; then
	reset_queue
	log "== 24,000 retries waiting an hour"
	q <<SQL >/dev/null
SELECT id FROM automation_core.start_run('$AUTO_Q', 'outage', 3);
UPDATE automation_core.item_execution SET status = 'processing';
UPDATE automation_core.item_execution SET status = 'retrying', next_attempt_at = now() + interval '1 hour';
SQL
	ac_run
	# RUNS measurements of automation_core's latency, their median
	median_latency() {
		local r a
		for r in $(seq "$RUNS"); do
			quiesce
			read -r a _ <<<"$(latency_ms "$WORK/ac1.sql")"
			log "latency $1, run $r: $a ms"
			echo "$a"
		done | median
	}
	wm=$(median_latency "behind waiting retries")
	reset_queue; ac_run
	nm=$(median_latency "without them")
	row "claim + complete latency, 1 item (ms)" "1 client, synchronous_commit = off, 24,000 retries not due ahead in the queue" \
		"$(fmt "$nm" 3) (none)" "$(fmt "$wm" 3)" "$(ratio "$wm" "$nm")" "report"
	reset_queue
fi
