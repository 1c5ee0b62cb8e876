# Sourced by the benchmark cases of the execution API, its design studies
# and test/bench/instructions: helpers for printing rows, and the floor's
# statements, so that every measurement compares with the same writes.

log() { printf '%s\n' "$*" >&2; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f×", a / b }'; }
fmt() { awk -v x="$1" -v d="${2:-0}" 'BEGIN { if (x == "nan" || x == "") print "n/a"; else printf "%.*f", d, x }'; }
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }

# pgbench prints "tps = N (without initial connection time)"
tps_of() { sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p'; }

# pgbench_tps SCRIPT CLIENTS -t N | -T SECONDS: transactions per second of
# SCRIPT, prepared, or nan; pgbench's errors go to stderr ($WORK holds them)
pgbench_tps() {
	local out
	out=$(pgbench -n -M prepared -f "$1" -c "$2" -j "$(($2 < 2 ? 1 : 2))" "$3" "$4" 2>"$WORK/pgbench.err") ||
		{ cat "$WORK/pgbench.err" >&2; return 1; }
	out=$(echo "$out" | tps_of)
	echo "${out:-nan}"
}

###########################################################################
# The floor: what claim and complete write, by hand, with nothing enforced
# (the item execution's columns and a history row per change). TABLE and
# HISTORY are copies of item_execution and item_state_history.
###########################################################################
FLOOR_CLAIM_SET="status = 'processing', worker = 'bench', lease_expires_at = now() + interval '5 minutes', attempt_count = attempt_count + 1, started_at = now(), next_attempt_at = NULL, updated_at = now(), updated_by = current_user, version = version + 1"
FLOOR_COMPLETE_SET="status = 'completed', result_payload = NULL, finished_at = now(), lease_expires_at = NULL, updated_at = now(), updated_by = current_user, version = version + 1"

# floor_history HISTORY FROM TO: the history rows of the rows in c
floor_history() {
	echo "INSERT INTO $1 (item_execution_id, previous_status, new_status, changed_at, created_by) SELECT id, '$2', '$3', now(), current_user FROM c"
}

# floor_claim TABLE HISTORY N OUTPUT: claim N ready rows, FIFO, SKIP
# LOCKED, and select OUTPUT from c (the claimed rows' id, attempt_count)
floor_claim() {
	local pick="SELECT id FROM $1 WHERE status IN ('pending', 'retrying') AND is_active AND (next_attempt_at IS NULL OR next_attempt_at <= now()) ORDER BY queue_position LIMIT $3 FOR UPDATE SKIP LOCKED"
	if [ "$3" = 1 ]; then pick="= ($pick)"; else pick="= ANY (ARRAY($pick))"; fi
	echo "WITH c AS (UPDATE $1 ie SET $FLOOR_CLAIM_SET WHERE id $pick RETURNING ie.id, ie.attempt_count), h AS ($(floor_history "$2" pending processing)) SELECT $4 FROM c"
}

# floor_complete TABLE HISTORY ID ATTEMPT: complete one row (ID and ATTEMPT
# are SQL expressions)
floor_complete() {
	echo "WITH c AS (UPDATE $1 ie SET $FLOOR_COMPLETE_SET WHERE ie.id = $3 AND ie.status = 'processing' AND ie.attempt_count = $4 RETURNING ie.id) $(floor_history "$2" processing completed)"
}

# floor_complete_many TABLE HISTORY IDS ATTEMPTS: complete the rows of
# arrays IDS and ATTEMPTS (SQL expressions of uuid[] and integer[])
floor_complete_many() {
	echo "WITH u AS (SELECT * FROM unnest($3, $4) AS u(id, attempt)), c AS (UPDATE $1 ie SET $FLOOR_COMPLETE_SET FROM u WHERE ie.id = u.id AND ie.status = 'processing' AND ie.attempt_count = u.attempt RETURNING ie.id) $(floor_history "$2" processing completed)"
}

###########################################################################
# Scratch space of a case or study: scratch NAME [DATABASE ...] makes WORK,
# a temporary directory named after NAME, and drops it and the databases
# when the script exits; fresh_database DATABASE makes one empty again.
###########################################################################
scratch() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	shift
	SCRATCH_DATABASES="$*"
	trap scratch_cleanup EXIT
}
scratch_cleanup() {
	local db
	rm -rf "$WORK"
	for db in $SCRATCH_DATABASES; do
		psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
	done
}
fresh_database() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null 2>&1
}
