\echo Use "CREATE EXTENSION automation_core" to load this file. \quit

-- automation_core 1.0: the state machine, tables, rules and API.
-- Every object lives in schema automation_core; every name used at run time
-- is schema-qualified, so a hostile search_path changes nothing.

--------------------------------------------------------------------------
-- ExecutionStatus
--------------------------------------------------------------------------

CREATE TYPE automation_core.execution_status AS ENUM
	('pending', 'processing', 'retrying', 'completed', 'failed', 'cancelled');
COMMENT ON TYPE automation_core.execution_status IS
	'status of a run, batch execution, item execution or orchestration instance';

CREATE FUNCTION automation_core.can_transition(automation_core.execution_status,
											   automation_core.execution_status)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ac_can_transition'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION automation_core.can_transition(automation_core.execution_status, automation_core.execution_status) IS
	'true when the state machine allows a change from the first status to the second';

CREATE FUNCTION automation_core.is_terminal(automation_core.execution_status)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ac_is_terminal'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION automation_core.is_terminal(automation_core.execution_status) IS
	'true for completed, failed and cancelled';

--------------------------------------------------------------------------
-- Trigger functions (C). They are attached below, after the tables.
--------------------------------------------------------------------------

CREATE FUNCTION automation_core.guard_row() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_guard_row' LANGUAGE C;
COMMENT ON FUNCTION automation_core.guard_row() IS
	'BEFORE ROW trigger: audit fields, version, names, state machine, retry limits, history';

CREATE FUNCTION automation_core.after_insert_statement() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_after_insert_statement' LANGUAGE C;
COMMENT ON FUNCTION automation_core.after_insert_statement() IS
	'AFTER INSERT STATEMENT trigger: new executions only join a batch execution or run that has not ended; the first history row of every inserted item execution';

CREATE FUNCTION automation_core.after_update_row() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_after_update_row' LANGUAGE C;
COMMENT ON FUNCTION automation_core.after_update_row() IS
	'AFTER UPDATE ROW trigger: cancellation cascades';

CREATE FUNCTION automation_core.after_delete_row() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_after_delete_row' LANGUAGE C;
COMMENT ON FUNCTION automation_core.after_delete_row() IS
	'AFTER DELETE ROW trigger: an open item or batch execution deleted may leave its batch execution or run with nothing open';

CREATE FUNCTION automation_core.forget_started() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_forget_started' LANGUAGE C;
COMMENT ON FUNCTION automation_core.forget_started() IS
	'BEFORE DELETE ROW trigger: sessions forget the batch executions they saw start, which may come back with the same id';

CREATE FUNCTION automation_core.after_statement() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_after_statement' LANGUAGE C;
COMMENT ON FUNCTION automation_core.after_statement() IS
	'AFTER STATEMENT trigger: rolls batch executions and runs up once their items end';

CREATE FUNCTION automation_core.history_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_history_guard' LANGUAGE C;
COMMENT ON FUNCTION automation_core.history_guard() IS
	'refuses every client write to item_state_history';

--------------------------------------------------------------------------
-- Tables
--------------------------------------------------------------------------

CREATE TABLE automation_core.automation (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	name varchar(200) NOT NULL,
	description text,
	batch_schema jsonb,
	item_schema jsonb,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100),
	updated_by varchar(100),
	version integer NOT NULL DEFAULT 1,
	is_active boolean NOT NULL DEFAULT true,
	CONSTRAINT automation_name_not_empty CHECK (name <> '')
);
CREATE UNIQUE INDEX ix_automation_name_active ON automation_core.automation (name)
	WHERE is_active;
COMMENT ON TABLE automation_core.automation IS
	'an automation: a kind of work, with JSON Schemas for its batch and item payloads';
COMMENT ON COLUMN automation_core.automation.name IS
	'trimmed, non-empty, unique among active automations';
COMMENT ON COLUMN automation_core.automation.batch_schema IS
	'JSON Schema (draft 2020-12) every active batch payload must satisfy; NULL accepts anything';
COMMENT ON COLUMN automation_core.automation.item_schema IS
	'JSON Schema (draft 2020-12) every active item payload must satisfy; NULL accepts anything';

CREATE TABLE automation_core.batch (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	automation_id uuid NOT NULL REFERENCES automation_core.automation (id) ON DELETE CASCADE,
	name varchar(200) NOT NULL,
	payload jsonb,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100),
	updated_by varchar(100),
	version integer NOT NULL DEFAULT 1,
	is_active boolean NOT NULL DEFAULT true,
	CONSTRAINT batch_name_not_empty CHECK (name <> ''),
	CONSTRAINT batch_automation_id_name_key UNIQUE (automation_id, name)
);
COMMENT ON TABLE automation_core.batch IS
	'a named group of items of one automation; new runs take its active items';
COMMENT ON COLUMN automation_core.batch.payload IS
	'data for the whole batch, valid against the automation''s batch_schema';

CREATE TABLE automation_core.item (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	batch_id uuid NOT NULL REFERENCES automation_core.batch (id) ON DELETE CASCADE,
	sequence_number integer NOT NULL,
	payload jsonb,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100),
	updated_by varchar(100),
	version integer NOT NULL DEFAULT 1,
	is_active boolean NOT NULL DEFAULT true,
	CONSTRAINT item_sequence_number_check CHECK (sequence_number >= 0),
	CONSTRAINT item_batch_id_sequence_number_key UNIQUE (batch_id, sequence_number)
);
COMMENT ON TABLE automation_core.item IS
	'one unit of work in a batch; runs process items in sequence_number order';
COMMENT ON COLUMN automation_core.item.payload IS
	'the work item''s data, valid against the automation''s item_schema';

CREATE TABLE automation_core.run (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	automation_id uuid NOT NULL REFERENCES automation_core.automation (id) ON DELETE CASCADE,
	correlation_id varchar(100),
	status automation_core.execution_status NOT NULL DEFAULT 'pending',
	cancellation_reason text,
	error_summary text,
	started_at timestamptz,
	finished_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100),
	updated_by varchar(100),
	version integer NOT NULL DEFAULT 1,
	is_active boolean NOT NULL DEFAULT true
);
CREATE INDEX run_automation_id_idx ON automation_core.run (automation_id);
CREATE INDEX run_started_at_status_idx ON automation_core.run (started_at, status);
CREATE INDEX run_correlation_id_idx ON automation_core.run (correlation_id);
COMMENT ON TABLE automation_core.run IS
	'one execution of an automation over its active batches and items';
COMMENT ON COLUMN automation_core.run.correlation_id IS
	'the caller''s own identifier for this run (a request id, a ticket)';
COMMENT ON COLUMN automation_core.run.error_summary IS
	'set when the run fails: how many item executions failed';

CREATE TABLE automation_core.batch_execution (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	run_id uuid NOT NULL REFERENCES automation_core.run (id) ON DELETE CASCADE,
	batch_id uuid NOT NULL REFERENCES automation_core.batch (id) ON DELETE CASCADE,
	status automation_core.execution_status NOT NULL DEFAULT 'pending',
	started_at timestamptz,
	finished_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100),
	updated_by varchar(100),
	version integer NOT NULL DEFAULT 1,
	is_active boolean NOT NULL DEFAULT true,
	CONSTRAINT batch_execution_run_id_batch_id_key UNIQUE (run_id, batch_id),
	CONSTRAINT batch_execution_id_run_id_key UNIQUE (id, run_id)
);
CREATE INDEX batch_execution_batch_id_idx ON automation_core.batch_execution (batch_id);
COMMENT ON TABLE automation_core.batch_execution IS
	'one batch within one run; ends when all its item executions have ended';

CREATE SEQUENCE automation_core.item_execution_queue_seq;
COMMENT ON SEQUENCE automation_core.item_execution_queue_seq IS
	'first-in-first-out order of item executions';

CREATE TABLE automation_core.item_execution (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	run_id uuid NOT NULL,
	batch_execution_id uuid NOT NULL,
	item_id uuid NOT NULL REFERENCES automation_core.item (id) ON DELETE CASCADE,
	status automation_core.execution_status NOT NULL DEFAULT 'pending',
	result_payload jsonb,
	error_message text,
	attempt_count integer NOT NULL DEFAULT 0,
	max_attempts integer,
	started_at timestamptz,
	finished_at timestamptz,
	worker varchar(200),
	lease_expires_at timestamptz,
	next_attempt_at timestamptz,
	queue_position bigint NOT NULL
		DEFAULT pg_catalog.nextval('automation_core.item_execution_queue_seq'::pg_catalog.regclass),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100),
	updated_by varchar(100),
	version integer NOT NULL DEFAULT 1,
	is_active boolean NOT NULL DEFAULT true,
	CONSTRAINT item_execution_retry_limit CHECK ((max_attempts IS NULL OR max_attempts >= 1) AND attempt_count >= 0),
	CONSTRAINT item_execution_run_id_item_id_key UNIQUE (run_id, item_id),
	-- one reference covers both the batch execution and its run, so an item
	-- execution can never belong to another run than its batch execution
	CONSTRAINT item_execution_batch_execution_fkey FOREIGN KEY (batch_execution_id, run_id)
		REFERENCES automation_core.batch_execution (id, run_id) ON DELETE CASCADE
);
ALTER SEQUENCE automation_core.item_execution_queue_seq
	OWNED BY automation_core.item_execution.queue_position;
CREATE INDEX item_execution_batch_execution_id_idx ON automation_core.item_execution (batch_execution_id);
CREATE INDEX item_execution_item_id_idx ON automation_core.item_execution (item_id);
-- The work queue: only ready-or-waiting rows are in these, so finished and
-- paused rows cost claim nothing. The time a retry waits for is in the key
-- after the queue position, so that claim skips retries not yet due inside
-- the index, without reading their rows (after an outage, thousands of
-- them may wait at the head of the queue).
CREATE INDEX item_execution_ready_idx ON automation_core.item_execution
	(queue_position, (COALESCE(next_attempt_at, '-infinity'::timestamptz)))
	WHERE status IN ('pending', 'retrying') AND is_active;
CREATE INDEX item_execution_run_ready_idx ON automation_core.item_execution
	(run_id, queue_position, (COALESCE(next_attempt_at, '-infinity'::timestamptz)))
	WHERE status IN ('pending', 'retrying') AND is_active;
-- Open items per batch execution, for the roll-up.
CREATE INDEX item_execution_open_idx ON automation_core.item_execution (batch_execution_id, queue_position)
	WHERE status IN ('pending', 'processing', 'retrying');
-- Items holding a lease, for expire_leases. Keyed by a column a heartbeat
-- does not change, so that extending a lease can be a HOT update that
-- writes no index entry; expire_leases reads every processing row, which
-- the workers' number bounds.
CREATE INDEX item_execution_lease_idx ON automation_core.item_execution (queue_position)
	WHERE status = 'processing';
COMMENT ON COLUMN automation_core.item_execution.run_id IS
	'the run; must be the run of batch_execution_id (checked by the foreign key on both)';
COMMENT ON TABLE automation_core.item_execution IS
	'one item within one run: the unit workers claim, complete, fail and retry';
COMMENT ON COLUMN automation_core.item_execution.attempt_count IS
	'attempts started so far; set by automation_core, and the fencing token of the worker holding the item';
COMMENT ON COLUMN automation_core.item_execution.max_attempts IS
	'attempts allowed; NULL means one attempt: a failure is final, never retried';
COMMENT ON COLUMN automation_core.item_execution.worker IS
	'name given by the worker that claimed the item';
COMMENT ON COLUMN automation_core.item_execution.lease_expires_at IS
	'while processing: when expire_leases may take the item back';
COMMENT ON COLUMN automation_core.item_execution.next_attempt_at IS
	'while retrying: when the item may be claimed again';
COMMENT ON COLUMN automation_core.item_execution.queue_position IS
	'claim order: earlier runs first, then batches in creation order, then sequence_number';

CREATE TABLE automation_core.item_state_history (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	item_execution_id uuid NOT NULL REFERENCES automation_core.item_execution (id) ON DELETE CASCADE,
	previous_status automation_core.execution_status,
	new_status automation_core.execution_status NOT NULL,
	changed_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100)
);
CREATE INDEX item_state_history_item_execution_id_idx
	ON automation_core.item_state_history (item_execution_id, id);
COMMENT ON TABLE automation_core.item_state_history IS
	'append-only record of every item execution status change, written only by automation_core';
COMMENT ON COLUMN automation_core.item_state_history.previous_status IS
	'NULL for the row written when the item execution was inserted';

CREATE TABLE automation_core.engine (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	name varchar(100) NOT NULL,
	type varchar(50) NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100),
	updated_by varchar(100),
	version integer NOT NULL DEFAULT 1,
	is_active boolean NOT NULL DEFAULT true,
	CONSTRAINT engine_name_not_empty CHECK (name <> ''),
	CONSTRAINT engine_type_not_empty CHECK (type <> ''),
	CONSTRAINT engine_name_key UNIQUE (name)
);
COMMENT ON TABLE automation_core.engine IS
	'an external orchestration engine (a workflow system, a scheduler)';

CREATE TABLE automation_core.orchestration_instance (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	engine_id uuid NOT NULL REFERENCES automation_core.engine (id) ON DELETE CASCADE,
	external_id varchar(200) NOT NULL,
	status automation_core.execution_status NOT NULL DEFAULT 'pending',
	duration_seconds integer,
	instance_metadata jsonb,
	started_at timestamptz,
	finished_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100),
	updated_by varchar(100),
	version integer NOT NULL DEFAULT 1,
	is_active boolean NOT NULL DEFAULT true,
	CONSTRAINT orchestration_instance_engine_id_external_id_key UNIQUE (engine_id, external_id)
);
CREATE INDEX orchestration_instance_status_started_at_idx
	ON automation_core.orchestration_instance (status, started_at);
COMMENT ON TABLE automation_core.orchestration_instance IS
	'one execution inside an external engine, tracked with the same state machine';
COMMENT ON COLUMN automation_core.orchestration_instance.external_id IS
	'the engine''s own identifier of the instance';
COMMENT ON COLUMN automation_core.orchestration_instance.duration_seconds IS
	'set on reaching a terminal status from started_at and finished_at, unless the statement sets it';

CREATE TABLE automation_core.run_orchestration (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	run_id uuid NOT NULL REFERENCES automation_core.run (id) ON DELETE CASCADE,
	orchestration_instance_id uuid NOT NULL
		REFERENCES automation_core.orchestration_instance (id) ON DELETE CASCADE,
	attached_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by varchar(100),
	updated_by varchar(100),
	version integer NOT NULL DEFAULT 1,
	is_active boolean NOT NULL DEFAULT true,
	CONSTRAINT run_orchestration_run_id_orchestration_instance_id_key
		UNIQUE (run_id, orchestration_instance_id)
);
CREATE INDEX run_orchestration_orchestration_instance_id_idx
	ON automation_core.run_orchestration (orchestration_instance_id);
COMMENT ON TABLE automation_core.run_orchestration IS
	'links a run to the orchestration instances that drive it';

--------------------------------------------------------------------------
-- Triggers
--------------------------------------------------------------------------

CREATE TRIGGER guard_row BEFORE INSERT OR UPDATE ON automation_core.automation
	FOR EACH ROW EXECUTE FUNCTION automation_core.guard_row();
CREATE TRIGGER guard_row BEFORE INSERT OR UPDATE ON automation_core.batch
	FOR EACH ROW EXECUTE FUNCTION automation_core.guard_row();
CREATE TRIGGER guard_row BEFORE INSERT OR UPDATE ON automation_core.item
	FOR EACH ROW EXECUTE FUNCTION automation_core.guard_row();
CREATE TRIGGER guard_row BEFORE INSERT OR UPDATE ON automation_core.run
	FOR EACH ROW EXECUTE FUNCTION automation_core.guard_row();
CREATE TRIGGER guard_row BEFORE INSERT OR UPDATE ON automation_core.batch_execution
	FOR EACH ROW EXECUTE FUNCTION automation_core.guard_row();
CREATE TRIGGER guard_row BEFORE INSERT OR UPDATE ON automation_core.item_execution
	FOR EACH ROW EXECUTE FUNCTION automation_core.guard_row();
CREATE TRIGGER guard_row BEFORE INSERT OR UPDATE ON automation_core.engine
	FOR EACH ROW EXECUTE FUNCTION automation_core.guard_row();
CREATE TRIGGER guard_row BEFORE INSERT OR UPDATE ON automation_core.orchestration_instance
	FOR EACH ROW EXECUTE FUNCTION automation_core.guard_row();
CREATE TRIGGER guard_row BEFORE INSERT OR UPDATE ON automation_core.run_orchestration
	FOR EACH ROW EXECUTE FUNCTION automation_core.guard_row();

CREATE TRIGGER after_insert_statement AFTER INSERT ON automation_core.item_execution
	REFERENCING NEW TABLE AS inserted
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.after_insert_statement();
CREATE TRIGGER after_insert_statement AFTER INSERT ON automation_core.batch_execution
	REFERENCING NEW TABLE AS inserted
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.after_insert_statement();

CREATE TRIGGER after_update_row AFTER UPDATE OF status ON automation_core.run
	FOR EACH ROW EXECUTE FUNCTION automation_core.after_update_row();
CREATE TRIGGER after_update_row AFTER UPDATE OF status ON automation_core.batch_execution
	FOR EACH ROW EXECUTE FUNCTION automation_core.after_update_row();

CREATE TRIGGER after_delete_row AFTER DELETE ON automation_core.item_execution
	FOR EACH ROW WHEN (OLD.status IN ('pending', 'processing', 'retrying'))
	EXECUTE FUNCTION automation_core.after_delete_row();
CREATE TRIGGER after_delete_row AFTER DELETE ON automation_core.batch_execution
	FOR EACH ROW WHEN (OLD.status IN ('pending', 'processing'))
	EXECUTE FUNCTION automation_core.after_delete_row();

-- Fires in replica mode too: a restore or logical replication deleting a
-- batch execution that comes back with the same id.
CREATE TRIGGER forget_started BEFORE DELETE ON automation_core.batch_execution
	FOR EACH ROW EXECUTE FUNCTION automation_core.forget_started();
ALTER TABLE automation_core.batch_execution ENABLE ALWAYS TRIGGER forget_started;

CREATE TRIGGER after_statement AFTER INSERT OR UPDATE OR DELETE ON automation_core.item_execution
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.after_statement();
CREATE TRIGGER after_statement AFTER INSERT OR UPDATE OR DELETE ON automation_core.batch_execution
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.after_statement();

CREATE TRIGGER history_guard BEFORE INSERT OR UPDATE OR DELETE ON automation_core.item_state_history
	FOR EACH ROW EXECUTE FUNCTION automation_core.history_guard();
CREATE TRIGGER history_guard_truncate BEFORE TRUNCATE ON automation_core.item_state_history
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.history_guard();

--------------------------------------------------------------------------
-- Execution API
--------------------------------------------------------------------------

CREATE FUNCTION automation_core.uuid_v7() RETURNS uuid
	AS 'MODULE_PATHNAME', 'ac_uuid_v7' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION automation_core.uuid_v7() IS
	'a time-ordered UUID (RFC 9562 version 7), increasing within a session; start_run gives these ids to the rows it creates';

CREATE FUNCTION automation_core.start_run(automation_id uuid,
										  correlation_id text DEFAULT NULL,
										  max_attempts integer DEFAULT NULL)
	RETURNS automation_core.run
	AS 'MODULE_PATHNAME', 'ac_start_run' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION automation_core.start_run(uuid, text, integer) IS
	'creates a run with one batch execution per active batch and one item execution per active item, and starts it';

CREATE FUNCTION automation_core.claim(run_id uuid DEFAULT NULL,
									  worker text DEFAULT NULL,
									  max_items integer DEFAULT 1,
									  lease interval DEFAULT '5 minutes')
	RETURNS SETOF automation_core.item_execution
	AS 'MODULE_PATHNAME', 'ac_claim' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION automation_core.claim(uuid, text, integer, interval) IS
	'moves up to max_items ready item executions to processing, oldest first, each to one worker only; attempt_count is the fencing token';

CREATE FUNCTION automation_core.heartbeat(item_execution_id uuid, attempt integer,
										  lease interval DEFAULT '5 minutes')
	RETURNS automation_core.item_execution
	AS 'MODULE_PATHNAME', 'ac_heartbeat' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION automation_core.heartbeat(uuid, integer, interval) IS
	'extends the lease of a processing item execution held with this attempt';

CREATE FUNCTION automation_core.complete(item_execution_id uuid, result jsonb DEFAULT NULL,
										 attempt integer DEFAULT NULL)
	RETURNS automation_core.item_execution
	AS 'MODULE_PATHNAME', 'ac_complete' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION automation_core.complete(uuid, jsonb, integer) IS
	'completes a processing item execution with its result';

CREATE FUNCTION automation_core.complete_many(item_execution_ids uuid[],
											  results jsonb[] DEFAULT NULL,
											  attempts integer[] DEFAULT NULL)
	RETURNS SETOF automation_core.item_execution
	AS 'MODULE_PATHNAME', 'ac_complete_many' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION automation_core.complete_many(uuid[], jsonb[], integer[]) IS
	'completes many processing item executions in one statement, all or nothing; results and attempts match the ids by position';

CREATE FUNCTION automation_core.fail(item_execution_id uuid, error text,
									 retryable boolean DEFAULT true,
									 retry_delay interval DEFAULT NULL,
									 attempt integer DEFAULT NULL)
	RETURNS automation_core.item_execution
	AS 'MODULE_PATHNAME', 'ac_fail' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION automation_core.fail(uuid, text, boolean, interval, integer) IS
	'fails a processing item execution: retrying when retryable and attempts remain, else failed';

CREATE FUNCTION automation_core.cancel_run(run_id uuid, reason text,
										   expected_version integer DEFAULT NULL)
	RETURNS automation_core.run
	AS 'MODULE_PATHNAME', 'ac_cancel_run' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION automation_core.cancel_run(uuid, text, integer) IS
	'cancels a run with its open batch and item executions';

CREATE FUNCTION automation_core.expire_leases()
	RETURNS integer
	AS 'MODULE_PATHNAME', 'ac_expire_leases' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION automation_core.expire_leases() IS
	'fails every processing item execution whose lease expired, under the retry rule; returns how many';

CREATE VIEW automation_core.run_progress AS
SELECT r.id AS run_id,
	   r.automation_id,
	   r.correlation_id,
	   r.status,
	   pg_catalog.count(ie.id) AS total,
	   pg_catalog.count(ie.id) FILTER (WHERE ie.status = 'pending') AS pending,
	   pg_catalog.count(ie.id) FILTER (WHERE ie.status = 'processing') AS processing,
	   pg_catalog.count(ie.id) FILTER (WHERE ie.status = 'retrying') AS retrying,
	   pg_catalog.count(ie.id) FILTER (WHERE ie.status = 'completed') AS completed,
	   pg_catalog.count(ie.id) FILTER (WHERE ie.status = 'failed') AS failed,
	   pg_catalog.count(ie.id) FILTER (WHERE ie.status = 'cancelled') AS cancelled,
	   CASE WHEN pg_catalog.count(ie.id) OPERATOR(pg_catalog.=) 0
			THEN (CASE WHEN r.status IN ('completed', 'failed', 'cancelled') THEN 100.0 ELSE 0.0 END)::numeric(5,1)
			ELSE (100.0 OPERATOR(pg_catalog.*) pg_catalog.count(ie.id) FILTER (WHERE ie.status IN ('completed', 'failed', 'cancelled'))
				  OPERATOR(pg_catalog./) pg_catalog.count(ie.id))::numeric(5,1)
	   END AS percent_done,
	   r.started_at,
	   r.finished_at
FROM automation_core.run r
LEFT JOIN automation_core.item_execution ie ON ie.run_id OPERATOR(pg_catalog.=) r.id
GROUP BY r.id;
COMMENT ON VIEW automation_core.run_progress IS
	'per run: item executions per status, percent done, start and finish';

--------------------------------------------------------------------------
-- pg_dump keeps the rows of every table holding user data.
--------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('automation_core.automation', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.batch', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.item', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.run', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.batch_execution', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.item_execution', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.item_state_history', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.engine', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.orchestration_instance', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.run_orchestration', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.item_execution_queue_seq', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.item_state_history_id_seq', '');

--------------------------------------------------------------------------
-- JSON Schema (draft 2020-12): validator functions and payload enforcement
--------------------------------------------------------------------------

CREATE FUNCTION automation_core.jsonschema_is_valid(schema jsonb, instance jsonb)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ac_jsonschema_is_valid'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION automation_core.jsonschema_is_valid(jsonb, jsonb) IS
	'true when instance is valid against the JSON Schema (draft 2020-12); an invalid schema raises 22023';

CREATE FUNCTION automation_core.jsonschema_errors(schema jsonb, instance jsonb,
		OUT instance_path text, OUT schema_path text, OUT message text)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'ac_jsonschema_errors'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION automation_core.jsonschema_errors(jsonb, jsonb) IS
	'every way instance fails the JSON Schema, with JSON pointers to the instance location and the schema keyword; no rows when valid';

CREATE FUNCTION automation_core.jsonschema_check(schema jsonb)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ac_jsonschema_check'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION automation_core.jsonschema_check(jsonb) IS
	'true when schema is a valid JSON Schema (draft 2020-12) this validator can use; false otherwise, never an error';

CREATE FUNCTION automation_core.payload_check() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_payload_check' LANGUAGE C;
COMMENT ON FUNCTION automation_core.payload_check() IS
	'BEFORE ROW trigger on batch and item: the payload must satisfy the automation''s batch_schema or item_schema (23514, constraint batch_payload_schema / item_payload_schema)';

CREATE FUNCTION automation_core.schema_check() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_schema_check' LANGUAGE C;
COMMENT ON FUNCTION automation_core.schema_check() IS
	'BEFORE ROW trigger on automation: batch_schema and item_schema must be valid JSON Schemas (22023) that every active payload satisfies (23514)';

CREATE TRIGGER payload_check BEFORE INSERT OR UPDATE ON automation_core.batch
	FOR EACH ROW EXECUTE FUNCTION automation_core.payload_check();
CREATE TRIGGER payload_check BEFORE INSERT OR UPDATE ON automation_core.item
	FOR EACH ROW EXECUTE FUNCTION automation_core.payload_check();
CREATE TRIGGER schema_check BEFORE INSERT OR UPDATE ON automation_core.automation
	FOR EACH ROW EXECUTE FUNCTION automation_core.schema_check();

--------------------------------------------------------------------------
-- Events
--
-- The durable event log written by status changes, the consumers reading
-- it gap-free, and the clusters (epochs) whose transaction ids order it.
-- Written only by automation_core (events.c); the NOTIFY sent at commit is
-- a doorbell, the log is the source of truth.
--------------------------------------------------------------------------

CREATE TABLE automation_core.event_epoch (
	epoch integer PRIMARY KEY,
	system_identifier bigint NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE automation_core.event_epoch IS
	'one row per database cluster that has written events here; events are ordered by epoch first, so a restore into a cluster with lower transaction ids keeps the order';
COMMENT ON COLUMN automation_core.event_epoch.system_identifier IS
	'the cluster''s system identifier (pg_control_system()), as a signed bigint';

CREATE TABLE automation_core.event (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	epoch integer NOT NULL,
	txid xid8 NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	event_type text NOT NULL,
	automation_id uuid,
	run_id uuid,
	entity_id uuid,
	payload jsonb
);
CREATE INDEX event_order_idx ON automation_core.event (epoch, txid, id);
COMMENT ON TABLE automation_core.event IS
	'append-only log of status changes, written by automation_core in the transaction that made them; read it with next_events';
COMMENT ON COLUMN automation_core.event.epoch IS
	'the event_epoch of the cluster that wrote the event';
COMMENT ON COLUMN automation_core.event.txid IS
	'the writer''s top-level transaction id; consumers read an event only once no older transaction is running';
COMMENT ON COLUMN automation_core.event.event_type IS
	'RunStarted, RunCompleted, BatchExecutionFailed, ItemExecutionFailed, OrchestrationInstanceCancelled, ...';
COMMENT ON COLUMN automation_core.event.entity_id IS
	'the run, batch execution, item execution or orchestration instance that changed';
COMMENT ON COLUMN automation_core.event.payload IS
	'previous_status, new_status; for item executions attempt, will_retry and the error text (cut to 500 characters)';

CREATE TABLE automation_core.consumer (
	name text PRIMARY KEY,
	epoch integer NOT NULL DEFAULT 0,
	txid xid8 NOT NULL DEFAULT '0',
	last_event_id bigint NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	acked_at timestamptz,
	CONSTRAINT consumer_name_not_empty CHECK (name <> ''),
	-- a name the primary key's btree can always hold (4 bytes a character)
	CONSTRAINT consumer_name_length CHECK (pg_catalog.char_length(name) <= 200)
);
COMMENT ON TABLE automation_core.consumer IS
	'named readers of the event log and their acknowledged positions';
COMMENT ON COLUMN automation_core.consumer.last_event_id IS
	'with epoch and txid: the position of the last acknowledged event; next_events returns what comes after it';

CREATE FUNCTION automation_core.event_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ac_event_guard' LANGUAGE C;
COMMENT ON FUNCTION automation_core.event_guard() IS
	'refuses every client write to the event log and its epochs';

CREATE TRIGGER event_guard BEFORE INSERT OR UPDATE OR DELETE ON automation_core.event
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.event_guard();
CREATE TRIGGER event_guard_truncate BEFORE TRUNCATE ON automation_core.event
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.event_guard();
CREATE TRIGGER event_epoch_guard BEFORE INSERT OR UPDATE OR DELETE ON automation_core.event_epoch
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.event_guard();
CREATE TRIGGER event_epoch_guard_truncate BEFORE TRUNCATE ON automation_core.event_epoch
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.event_guard();

CREATE FUNCTION automation_core.current_event_epoch() RETURNS integer
	AS 'MODULE_PATHNAME', 'ac_current_event_epoch'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION automation_core.current_event_epoch() IS
	'the epoch this cluster writes events under, or NULL before it has written any';

CREATE FUNCTION automation_core.purge_events(older_than interval) RETURNS bigint
	AS 'MODULE_PATHNAME', 'ac_purge_events'
	LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION automation_core.purge_events(interval) IS
	'deletes the events created more than older_than ago, consumed or not; returns how many';

CREATE FUNCTION automation_core.register_consumer(name text, from_start boolean DEFAULT false)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE STRICT
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	my_epoch integer := automation_core.current_event_epoch();
	p_epoch integer := 0;
	p_txid xid8 := '0';
	p_id bigint := 0;
	created boolean;
BEGIN
	IF NOT from_start THEN
		IF my_epoch IS NULL THEN
			-- Every stored event comes from another cluster: all finished.
			SELECT e.epoch, e.txid, e.id INTO p_epoch, p_txid, p_id
			  FROM automation_core.event e
			 ORDER BY e.epoch DESC, e.txid DESC, e.id DESC LIMIT 1;
			IF NOT FOUND THEN
				p_epoch := 0; p_txid := '0'; p_id := 0;
			END IF;
		ELSE
			-- Transactions at or after our xmin may still commit events:
			-- start just before them, so none is skipped.
			p_epoch := my_epoch;
			p_txid := pg_snapshot_xmin(pg_current_snapshot());
			p_id := 0;
		END IF;
	END IF;
	INSERT INTO automation_core.consumer AS c (name, epoch, txid, last_event_id)
		VALUES (register_consumer.name, p_epoch, p_txid, p_id)
		ON CONFLICT ON CONSTRAINT consumer_pkey DO NOTHING;
	GET DIAGNOSTICS created = ROW_COUNT;
	RETURN created;
END
$$;
COMMENT ON FUNCTION automation_core.register_consumer(text, boolean) IS
	'creates a consumer starting after the current end of the log, or at its start with from_start; true when created, false (and nothing changed) when it existed';

CREATE FUNCTION automation_core.unregister_consumer(name text) RETURNS boolean
	LANGUAGE sql VOLATILE STRICT
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH d AS (DELETE FROM automation_core.consumer c
			   WHERE c.name = unregister_consumer.name RETURNING 1)
	SELECT count(*) > 0 FROM d
$$;
COMMENT ON FUNCTION automation_core.unregister_consumer(text) IS
	'removes a consumer and its position; true when it existed';

CREATE FUNCTION automation_core.next_events(name text, max_events integer DEFAULT 1000)
	RETURNS SETOF automation_core.event
	LANGUAGE plpgsql STABLE STRICT
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c automation_core.consumer;
	my_epoch integer := automation_core.current_event_epoch();
	horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
BEGIN
	IF max_events < 1 THEN
		RAISE EXCEPTION 'max_events must be at least 1'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('max_events is %s.', max_events);
	END IF;
	SELECT * INTO c FROM automation_core.consumer WHERE consumer.name = next_events.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'consumer "%" does not exist', next_events.name
			USING ERRCODE = 'no_data_found',
				  HINT = 'Create it with automation_core.register_consumer().';
	END IF;
	IF my_epoch IS NULL THEN
		RETURN QUERY
			SELECT e.* FROM automation_core.event e
			 WHERE (e.epoch, e.txid, e.id) > (c.epoch, c.txid, c.last_event_id)
			 ORDER BY e.epoch, e.txid, e.id
			 LIMIT max_events;
	ELSE
		RETURN QUERY
			SELECT e.* FROM automation_core.event e
			 WHERE (e.epoch, e.txid, e.id) > (c.epoch, c.txid, c.last_event_id)
			   AND (e.epoch, e.txid) < (my_epoch, horizon)
			 ORDER BY e.epoch, e.txid, e.id
			 LIMIT max_events;
	END IF;
END
$$;
COMMENT ON FUNCTION automation_core.next_events(text, integer) IS
	'up to max_events events after the consumer''s acknowledged position, in commit-safe order: only events of transactions older than every running one';

CREATE FUNCTION automation_core.ack_events(name text, last_event_id bigint)
	RETURNS void
	LANGUAGE plpgsql VOLATILE STRICT
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ev automation_core.event;
	my_epoch integer := automation_core.current_event_epoch();
BEGIN
	PERFORM 1 FROM automation_core.consumer c WHERE c.name = ack_events.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'consumer "%" does not exist', ack_events.name
			USING ERRCODE = 'no_data_found',
				  HINT = 'Create it with automation_core.register_consumer().';
	END IF;
	SELECT * INTO ev FROM automation_core.event e WHERE e.id = ack_events.last_event_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'event % does not exist', ack_events.last_event_id
			USING ERRCODE = 'no_data_found',
				  DETAIL = format('consumer "%s" acknowledged event %s.', ack_events.name, ack_events.last_event_id),
				  HINT = 'Acknowledge the id of the last event next_events returned; it may have been purged meanwhile.';
	END IF;
	IF my_epoch IS NOT NULL AND (ev.epoch, ev.txid) >= (my_epoch, pg_snapshot_xmin(pg_current_snapshot())) THEN
		RAISE EXCEPTION 'event cannot be acknowledged while its transaction or an older one is running'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('event %s was written by transaction %s.', ev.id, ev.txid),
				  HINT = 'Acknowledge only events returned by next_events.';
	END IF;
	-- Positions only move forward: acknowledging an earlier event again
	-- changes nothing.
	UPDATE automation_core.consumer c
	   SET epoch = ev.epoch, txid = ev.txid, last_event_id = ev.id,
		   acked_at = pg_catalog.now()
	 WHERE c.name = ack_events.name
	   AND (c.epoch, c.txid, c.last_event_id) < (ev.epoch, ev.txid, ev.id);
END
$$;
COMMENT ON FUNCTION automation_core.ack_events(text, bigint) IS
	'moves the consumer''s position to the given event (one returned by next_events); everything up to it is not returned again';

SELECT pg_catalog.pg_extension_config_dump('automation_core.event_epoch', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.event', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('automation_core.consumer', '');
