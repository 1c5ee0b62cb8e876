#!/usr/bin/env bash
# Benchmark: JSON Schema payload enforcement and the validator.
#  1. INSERT ... SELECT of 100,000 items under a realistic 10-property
#     item_schema, against the same insert into an automation without one
#     (target: at most 1.3 times the time).
#  2. jsonschema_is_valid calls per second on that schema and a valid
#     instance, with jsonb_typeof calls per second as the floor.
# Needs PGHOST/PGPORT/PGUSER/PGDATABASE of a database with the extension.
# Prints markdown table rows (medians of AC_BENCH_RUNS runs) on stdout,
# progress on stderr.
set -euo pipefail

RUNS=${AC_BENCH_RUNS:-3}
ITEMS=100000
CALLS=200000

log() { echo "50_jsonschema: $*" >&2; }
psqlq() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# milliseconds one statement takes, by psql's \timing
time_ms() {
	psqlq -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

SCHEMA='{
  "type": "object",
  "required": ["order_id", "sku", "qty", "price", "currency", "email", "created"],
  "properties": {
    "order_id": {"type": "string", "format": "uuid", "minLength": 36, "maxLength": 36},
    "sku": {"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"},
    "qty": {"type": "integer", "minimum": 1, "maximum": 1000},
    "price": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
    "currency": {"enum": ["USD", "EUR", "GBP"]},
    "email": {"type": "string", "format": "email", "maxLength": 254},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 10, "uniqueItems": true},
    "shipped": {"type": "boolean"},
    "created": {"type": "string", "format": "date-time"},
    "notes": {"type": ["string", "null"], "maxLength": 500}
  },
  "additionalProperties": false
}'

PAYLOAD="jsonb_build_object(
	'order_id', md5(g::text)::uuid::text,
	'sku', 'ABC-' || lpad((g % 10000)::text, 4, '0'),
	'qty', 1 + g % 1000,
	'price', round((1 + g % 5000) / 100.0, 2),
	'currency', (ARRAY['USD','EUR','GBP'])[1 + g % 3],
	'email', 'customer' || g || '@example.com',
	'tags', jsonb_build_array('t' || g % 7, 'u' || g % 11),
	'shipped', g % 2 = 0,
	'created', '2026-01-01T00:00:00Z',
	'notes', NULL)"

log "setting up"
psqlq <<SQL
SET client_min_messages = warning;
DELETE FROM automation_core.automation WHERE name IN ('bench_js_schema', 'bench_js_plain');
INSERT INTO automation_core.automation (name, item_schema) VALUES
	('bench_js_schema', \$js\$$SCHEMA\$js\$), ('bench_js_plain', NULL);
DROP TABLE IF EXISTS public.bench_js_one;
CREATE TABLE public.bench_js_one AS
	SELECT \$js\$$SCHEMA\$js\$::jsonb AS schema, $PAYLOAD AS payload FROM generate_series(1, 1) g;
SQL

insert_ms() {	# insert_ms AUTOMATION RUN
	local batch="bench_js_$2"
	psqlq -c "INSERT INTO automation_core.batch (automation_id, name)
		SELECT id, '$batch' FROM automation_core.automation WHERE name = '$1'" >/dev/null
	time_ms "INSERT INTO automation_core.item (batch_id, sequence_number, payload)
		SELECT b.id, g, $PAYLOAD
		FROM automation_core.batch b
		JOIN automation_core.automation a ON a.id = b.automation_id AND a.name = '$1',
			generate_series(1, $ITEMS) g
		WHERE b.name = '$batch'"
	psqlq -c "DELETE FROM automation_core.batch WHERE name = '$batch'" >/dev/null
	# the next run starts from a table without dead rows
	psqlq -c "VACUUM automation_core.item" -c "VACUUM automation_core.batch" >/dev/null
}

plain=()
schema=()
for r in $(seq 1 "$RUNS"); do
	log "insert run $r/$RUNS"
	plain+=("$(insert_ms bench_js_plain "plain_$r")")
	schema+=("$(insert_ms bench_js_schema "schema_$r")")
	log "  no schema ${plain[-1]} ms, item_schema ${schema[-1]} ms"
done
p=$(median "${plain[@]}")
s=$(median "${schema[@]}")
printf '| jsonschema: INSERT ... SELECT of %s items, 10-property item_schema | 1 client | %.0f ms (no schema) | %.0f ms | %.2f | <= 1.30 |\n' \
	"$ITEMS" "$p" "$s" "$(echo "$s / $p" | bc -l)"

typeof=()
valid=()
for r in $(seq 1 "$RUNS"); do
	log "calls run $r/$RUNS"
	typeof+=("$(time_ms "SELECT count(*) FROM generate_series(1, $CALLS) g, public.bench_js_one o WHERE jsonb_typeof(o.payload) = 'object'")")
	valid+=("$(time_ms "SELECT count(*) FROM generate_series(1, $CALLS) g, public.bench_js_one o WHERE automation_core.jsonschema_is_valid(o.schema, o.payload)")")
	log "  jsonb_typeof ${typeof[-1]} ms, jsonschema_is_valid ${valid[-1]} ms for $CALLS calls"
done
t=$(median "${typeof[@]}")
v=$(median "${valid[@]}")
tr=$(echo "$CALLS * 1000 / $t" | bc -l)
vr=$(echo "$CALLS * 1000 / $v" | bc -l)
printf '| jsonschema: jsonschema_is_valid calls/s, same schema and a valid item | 1 client | %.0f/s (jsonb_typeof) | %.0f/s | %.2f | report |\n' \
	"$tr" "$vr" "$(echo "$tr / $vr" | bc -l)"

psqlq -c "DELETE FROM automation_core.automation WHERE name IN ('bench_js_schema', 'bench_js_plain'); DROP TABLE public.bench_js_one" >/dev/null
log "done"
