# automation_core: PGXS build
EXTENSION = automation_core
MODULE_big = automation_core
OBJS = \
	src/automation_core.o \
	src/catalog.o \
	src/status.o \
	src/direct_insert.o \
	src/bulk_insert.o \
	src/uuid_v7.o \
	src/guard.o \
	src/history.o \
	src/rollup.o \
	src/spi_util.o \
	src/trigger_call.o \
	src/events.o \
	src/claim.o \
	src/api.o \
	src/jsregex.o \
	src/jsregex_exec.o \
	src/unicode_props.o \
	src/jsonschema_compile.o \
	src/jsonschema_cache.o \
	src/jsonschema_validate.o \
	src/jsonschema_sql.o \
	src/payload.o \
	src/consumer.o

DATA = automation_core--1.0.sql
PGFILEDESC = "automation_core - automation state machine, work queue and events"

REGRESS = install api hostile_search_path status audit transitions retry history privileges orchestration rollup copy_replica jsonschema payload_schema events
REGRESS_OPTS = --inputdir=. --outputdir=test/results
ISOLATION = concurrent_finish concurrent_version concurrent_rollup cancel_vs_complete claim_concurrent last_items cancel_complete expire_complete claim_cancel schema_change proof_unclaimed events_notify events_order add_to_ended cancel_complete_many delete_complete expire_heartbeat cancel_fail end_by_hand restored_batch known_proof start_run_delete_item claim_passed_over start_run_deactivate move_with_executions repeatable_read lower_max_attempts claim_locked_batch
ISOLATION_OPTS = --inputdir=test --outputdir=output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Used by test/run to read the test lists above.
print-%:
	@echo '$($*)'
