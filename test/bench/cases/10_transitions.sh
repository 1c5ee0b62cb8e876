#!/usr/bin/env bash
# Status transitions of item executions (pending -> processing ->
# completed, one history row per change) through the extension's C
# triggers, against the floor: the same writes by hand on copies of the
# tables without triggers. 1 and 8 clients, synchronous_commit on and
# off, AC_BENCH_RUNS paired pgbench runs of AC_BENCH_SECONDS each: medians
# of each side's rate, and the median of the pairs' time ratios.
# Prints markdown table rows on stdout, progress on stderr.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${AC_BENCH_RUNS:-3}
SECS=${AC_BENCH_SECONDS:-8}
POOL=${AC_BENCH_POOL:-120000}	# items per side; a run must not use them all
TARGET=1.15

log() { printf '   %s\n' "$*" >&2; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@" >/dev/null; }

# pgbench transactions per second of one script; each runs 2 transitions
tps() {	# tps SCRIPT CLIENTS SYNC
	local out
	out=$(PGOPTIONS="-c synchronous_commit=$3 -c automation_core.actor=bench" \
		pgbench -n -M prepared -T "$SECS" -c "$2" -j "$2" -f "$1" 2>&1) ||
		{ echo "$out" >&2; return 1; }
	echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

log "fixture: $POOL items"
psql_q -v pool="$POOL" -f "$HERE/sql/10_setup.sql"

for sync in off on; do
	for clients in 1 8; do
		floor=()
		trig=()
		ratios=()
		for ((r = 1; r <= RUNS; r++)); do
			# a fresh pool for each pair: on a fast minute one run at 8
			# clients takes more than half of it
			psql_q -f "$HERE/sql/10_refill.sql"
			# back to back, in alternating order, so that both sides of a
			# pair see the same machine
			if ((r % 2)); then
				f=$(tps "$HERE/sql/10_floor.sql" "$clients" "$sync")
				t=$(tps "$HERE/sql/10_triggered.sql" "$clients" "$sync")
			else
				t=$(tps "$HERE/sql/10_triggered.sql" "$clients" "$sync")
				f=$(tps "$HERE/sql/10_floor.sql" "$clients" "$sync")
			fi
			log "synchronous_commit=$sync clients=$clients run $r: floor $f tps, triggered $t tps"
			floor+=("$f")
			trig+=("$t")
			ratios+=("$(awk -v f="$f" -v t="$t" 'BEGIN { print f / t }')")
		done
		fm=$(printf '%s\n' "${floor[@]}" | median)
		tm=$(printf '%s\n' "${trig[@]}" | median)
		rm=$(printf '%s\n' "${ratios[@]}" | median)
		# transitions/s = 2 per script; ratio = time per transition,
		# triggered over floor: the median of the paired runs' ratios
		awk -v f="$fm" -v t="$tm" -v ratio="$rm" -v c="$clients" -v s="$sync" -v target="$TARGET" 'BEGIN {
			if (s == "off")
				tgt = sprintf("<= %.2fx (%s)", target, ratio <= target ? "met" : "missed");
			else
				tgt = "report only (commit-bound)";
			printf "| item_execution transitions/s, pending>processing>completed | %d client%s, synchronous_commit = %s | %.0f | %.0f | %.2fx | %s |\n",
				c, c == 1 ? "" : "s", s, 2 * f, 2 * t, ratio, tgt
		}'
	done
done
